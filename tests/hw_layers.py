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


def tiny_resnet(seed=0):
    """A small residual graph with every hardware kind of ``digits_resnet_w1a1``: an integer-
    weight stem on uint3 pixels into int4, threshold (sign) layers, a stride-1 block with an
    identity shortcut, a stride-2 block with a 2x2 average-pool + 1x1 integer-weight
    shortcut, adds clipped to int4, global average pooling and an integer-weight head."""
    from hwbnn.ir.network import Add, AvgPool, GlobalAvgPool, NetworkIR, Threshold

    rng = np.random.default_rng(seed)

    def conv(name, inputs, in_shape, in_encoding, weights, out_encoding, kernel, padding,
             stride=1):
        layer = layer_with(rng, weights, in_encoding, out_encoding,
                           conv=(in_shape, kernel, padding))
        layer.name, layer.inputs, layer.stride = name, inputs, stride
        return layer

    def sign(name, source, shape):
        return Threshold(name, shape, "int4", rng.integers(-2, 3, size=(shape[-1], 1)),
                         "binary", inputs=(source,))

    def integer(mh, mw, bits=4):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1)
        return Weights.integer(rng.integers(lo, hi, size=(mh, mw)), bits)

    c0, c1 = 2, 4
    layers = [
        conv("stem", ("input",), (4, 4, 1), "uint3", integer(c0, 9), "int4", 3, 1),
        sign("b0_sign", "stem", (4, 4, c0)),
        conv("b0_conv", ("b0_sign",), (4, 4, c0), "binary",
             Weights.binary(rng.choice([-1, 1], size=(c0, 9 * c0))), "int4", 3, 1),
        Add("b0_add", ("b0_conv", "stem"), (4, 4, c0), ("int4", "int4"), (1, 1), None,
            "int4"),
        sign("b1_sign", "b0_add", (4, 4, c0)),
        conv("b1_conv", ("b1_sign",), (4, 4, c0), "binary",
             Weights.binary(rng.choice([-1, 1], size=(c1, 9 * c0))), "int4", 3, 1, 2),
        AvgPool("b1_pool", (4, 4, c0), 2, 2, "int4", inputs=("b0_add",)),
        conv("b1_short", ("b1_pool",), (2, 2, c0), "int6", integer(c1, c0, 8), "int4", 1, 0),
        Add("b1_add", ("b1_conv", "b1_short"), (2, 2, c1), ("int4", "int4"), (1, 1), None,
            "int4"),
        GlobalAvgPool("gap", (2, 2, c1), "int4", inputs=("b1_add",)),
    ]
    head = layer_with(rng, integer(3, c1, 8), "int6", None)
    head.name, head.inputs = "fc", ("gap",)
    layers.append(head)
    return NetworkIR("tiny_resnet", (4, 4, 1), "uint3", layers).validate()
