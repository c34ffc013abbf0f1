"""Small random IR layers for the hardware tests (every weight kind, encoding and output)."""

import numpy as np

from hwbnn.ir.encoding import encoding_levels, encoding_range
from hwbnn.ir.network import Conv, MatVec, Weights, accumulator_range, accumulator_width


def random_weights(rng, kind, mh, mw, group=None):
    """Weights of ``kind``: binary, ternary, residual (per-parameter bitwidths), grouped
    (residual with one bitwidth per ``group`` consecutive columns) or integer (8-bit two's
    complement, -128 and 127 included)."""
    if kind == "binary":
        return Weights.binary(rng.choice([-1, 1], size=(mh, mw)))
    if kind == "ternary":
        return Weights.ternary(rng.choice([-1, 0, 1], size=(mh, mw)))
    if kind == "integer":
        values = rng.integers(-128, 128, size=(mh, mw))
        values.flat[:2] = [-128, 127]
        return Weights.integer(values, 8)
    if kind == "residual":
        bitwidth = rng.choice([1, 2, 3], size=(mh, mw), p=[0.7, 0.2, 0.1])
        bitwidth[0, 0] = 3
    else:
        per_group = rng.choice([1, 2, 3], size=(mh, mw // group), p=[0.6, 0.3, 0.1])
        per_group[0, 0] = 3
        bitwidth = np.repeat(per_group, group, axis=1)
    signs = rng.choice([-1, 1], size=(3, mh, mw))
    return Weights.residual(signs, bitwidth, [4, 2, 1])


def random_thresholds(rng, weights, in_encoding, out_encoding):
    lo, hi = accumulator_range(weights.values(), in_encoding)
    levels = encoding_levels(out_encoding)
    t = rng.integers(lo - 2, hi + 3, size=(weights.shape[0], levels))
    return np.sort(t, axis=1)


def random_layer(rng, kind, in_encoding, out_encoding, mh, mw, group=2, conv=None):
    """A MatVec (or Conv with ``conv=(in_shape, kernel, padding)``) with random contents;
    ``out_encoding=None`` gives a scores layer."""
    return layer_with(rng, random_weights(rng, kind, mh, mw, group), in_encoding, out_encoding,
                      conv)


def layer_with(rng, weights, in_encoding, out_encoding, conv=None):
    """A MatVec (or Conv) around given weights, with random sorted thresholds."""
    thresholds = (None if out_encoding is None
                  else random_thresholds(rng, weights, in_encoding, out_encoding))
    acc_range = accumulator_range(weights.values(), in_encoding)
    fields = ("layer", in_encoding, weights, thresholds, out_encoding, acc_range,
              accumulator_width(acc_range, thresholds))
    if conv is None:
        return MatVec(*fields)
    in_shape, kernel, padding = conv
    return Conv(*fields, in_shape=in_shape, kernel=kernel, padding=padding)


def random_values(rng, encoding, shape):
    lo, hi = encoding_range(encoding)
    if encoding == "binary":
        return rng.choice([-1, 1], size=shape)
    return rng.integers(lo, hi + 1, size=shape)
