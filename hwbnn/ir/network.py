"""NetworkIR: the integer-only network description that everything after export reads.

A network is an ordered list of layers (:class:`MatVec`, :class:`Conv`, :class:`MaxPool`,
:class:`Add`, :class:`AvgPool`, :class:`GlobalAvgPool`, :class:`Threshold`). Activations
are channels-last: a conv layer sees ``(H, W, C)``; a matvec that follows a spatial layer
sees the flattened ``H*W*C`` vector in that order. Matvec and conv layers carry thresholds
fused in (``out_encoding`` set), except the last layer, which produces raw integer
accumulators ("scores").

The layers form a graph stored in topological order: a layer's ``inputs`` name the layers it
reads (:data:`INPUT` is the network input); ``None`` means the previous layer (the network
input for the first), so a chain names nothing. The last layer is the network's output.
What goes beyond a chain of the first layer kinds is listed by :meth:`NetworkIR.v2_features`
(file format version 2; consumers that walk ``layers`` as a chain call
:meth:`NetworkIR.require_chain`). This module never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwbnnError
from .encoding import (
    ENCODINGS,
    MAX_SUM_BITS,
    encoding_bits,
    encoding_levels,
    encoding_range,
    integer_encoding,
    is_signed_int,
    signed_width,
    validate_encoding,
)
from .input_quantizer import InputQuantizer

WEIGHT_KINDS = ("binary", "ternary", "residual", "integer")
MAX_PLANES = 3  # residual planes
INTEGER_WEIGHT_BITS = range(2, 9)  # two's-complement integer weights (first and last layers)
MAX_ADD_SCALE = 255  # the integer multiplier of an add input, like a residual plane scale
# The name by which a layer's ``inputs`` refer to the network input.
INPUT = "input"
# The activation encodings of format version 1.
V1_ENCODINGS = tuple(e for e in ENCODINGS if not is_signed_int(e))


@dataclass
class Weights:
    """Weights of a matvec/conv layer as bit planes, shape ``(MH, MW)`` per plane.

    * ``binary``: one plane of sign bits (1 = +1, 0 = -1).
    * ``ternary``: two planes, (nonzero, sign): value = nz * (+1 if sign == 0 else -1).
    * ``residual``: heterogeneous residual binarization (Fromm et al.): plane ``p`` holds sign
      bits s_p, ``bitwidth[j]`` in {1, 2, 3} says how many planes weight j uses, and
      ``scales[p]`` is the integer plane scale a_p. value = sum_{p < b_j} a_p * s_{p,j}.
      Sign bits of planes a weight does not use are stored as 0.
    * ``integer``: b-bit two's-complement integers (b = 2..8), plane ``p`` holding bit p:
      value = sum_{p < b-1} 2^p * bit_p - 2^(b-1) * bit_{b-1} (first and last layers).
    """

    kind: str
    planes: np.ndarray
    bitwidth: np.ndarray | None = None
    scales: np.ndarray | None = None

    @classmethod
    def binary(cls, values: np.ndarray) -> Weights:
        """Binary weights from a matrix of -1/+1."""
        return cls("binary", (np.asarray(values) > 0).astype(np.uint8)[None])

    @classmethod
    def ternary(cls, values: np.ndarray) -> Weights:
        """Ternary weights from a matrix of -1/0/+1."""
        values = np.asarray(values)
        return cls("ternary", np.stack([values != 0, values < 0]).astype(np.uint8))

    @classmethod
    def residual(cls, signs: np.ndarray, bitwidth: np.ndarray, scales) -> Weights:
        """Residual weights from sign planes (-1/+1, shape (P, MH, MW)), bitwidths and scales."""
        signs = np.asarray(signs)
        bitwidth = np.asarray(bitwidth).astype(np.uint8)
        used = np.arange(signs.shape[0])[:, None, None] < bitwidth[None]
        planes = ((signs > 0) & used).astype(np.uint8)
        return cls("residual", planes, bitwidth, np.asarray(scales, dtype=np.int64))

    @classmethod
    def integer(cls, values: np.ndarray, bits: int) -> Weights:
        """``bits``-bit two's-complement weights from an integer matrix (values must fit)."""
        values = np.asarray(values).astype(np.int64)
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if values.size and (values.min() < lo or values.max() > hi):
            raise HwbnnError(f"{bits}-bit integer weights must lie in {lo}..{hi}, found "
                             f"{int(values.min())}..{int(values.max())}")
        codes = values & ((1 << bits) - 1)
        return cls("integer", np.stack([(codes >> p) & 1 for p in range(bits)]).astype(np.uint8))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.planes.shape[1:])

    def values(self) -> np.ndarray:
        """Integer weight matrix, int64 ``(MH, MW)``."""
        planes = self.planes.astype(np.int64)
        if self.kind == "binary":
            return 2 * planes[0] - 1
        if self.kind == "ternary":
            return planes[0] * (1 - 2 * planes[1])
        if self.kind == "integer":
            weights = 2 ** np.arange(len(planes), dtype=np.int64)
            weights[-1] = -weights[-1]
            return np.tensordot(weights, planes, axes=1)
        signs = 2 * planes - 1
        used = np.arange(planes.shape[0])[:, None, None] < self.bitwidth[None]
        return np.sum(self.scales[:, None, None] * signs * used, axis=0)

    def bitwidths(self) -> np.ndarray:
        """Stored bits per weight, ``(MH, MW)``: 1 binary, 2 ternary, b_j residual, b integer."""
        if self.kind == "residual":
            return self.bitwidth.astype(np.int64)
        bits = {"binary": 1, "ternary": 2}.get(self.kind, len(self.planes))
        return np.full(self.shape, bits, dtype=np.int64)

    def mix(self) -> dict[int, float]:
        """Fraction of residual weights with 1, 2 and 3 bits (empty for binary/ternary)."""
        if self.kind != "residual":
            return {}
        total = self.bitwidth.size
        return {b: float(np.count_nonzero(self.bitwidth == b)) / total for b in (1, 2, 3)}


@dataclass
class _WeightLayer:
    """Fields shared by matvec and conv layers (see the subclasses)."""

    name: str
    in_encoding: str
    weights: Weights
    thresholds: np.ndarray | None
    out_encoding: str | None
    acc_range: tuple[int, int]
    acc_width: int
    pe: int | None = None
    simd: int | None = None
    inputs: tuple[str, ...] | None = None

    @property
    def in_encodings(self) -> tuple[str, ...]:
        return (self.in_encoding,)

    @property
    def mh(self) -> int:
        """Rows of the weight matrix (output channels)."""
        return self.weights.shape[0]

    @property
    def mw(self) -> int:
        """Columns of the weight matrix (fan-in)."""
        return self.weights.shape[1]

    @property
    def produces_scores(self) -> bool:
        return self.thresholds is None


@dataclass
class MatVec(_WeightLayer):
    """Dense layer: ``acc = W @ x`` over the flattened input, then thresholds."""

    kind: str = field(default="matvec", init=False)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (self.mw,)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.mh,)

    @property
    def output_pixels(self) -> int:
        return 1


@dataclass
class Conv(_WeightLayer):
    """KxK convolution with a stride, padded on every side with the encoding's pad value.

    Weight columns are ordered (kernel row, kernel column, input channel), i.e. the
    channels-last order in which a sliding window emits a patch. Output pixel (y, x) reads the
    window at (y * stride, x * stride) of the padded input; windows that would run past the
    padded input are not computed: ``OH = (H + 2 * padding - kernel) // stride + 1``.
    """

    in_shape: tuple[int, int, int] = (0, 0, 0)
    kernel: int = 3
    padding: int = 0
    stride: int = 1
    kind: str = field(default="conv", init=False)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, _ = self.in_shape
        return (window_count(h + 2 * self.padding, self.kernel, self.stride),
                window_count(w + 2 * self.padding, self.kernel, self.stride), self.mh)

    @property
    def output_pixels(self) -> int:
        h, w, _ = self.out_shape
        return h * w


class _Pool:
    """A pooling layer: one input, whose encoding is the layer's ``encoding``."""

    encoding: str

    @property
    def in_encoding(self) -> str:
        return self.encoding

    @property
    def in_encodings(self) -> tuple[str, ...]:
        return (self.encoding,)


@dataclass
class MaxPool(_Pool):
    """KxK max pooling with stride K (OR on binary values); the remainder rows/cols are dropped."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    encoding: str
    inputs: tuple[str, ...] | None = None
    kind: str = field(default="maxpool", init=False)

    @property
    def out_encoding(self) -> str:
        return self.encoding

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return (h // self.kernel, w // self.kernel, c)


def window_count(extent: int, kernel: int, stride: int) -> int:
    """Windows of ``kernel`` at steps of ``stride`` that fit in ``extent`` (0 if none)."""
    return max(0, (extent - kernel) // stride + 1) if stride >= 1 else 0


@dataclass
class AvgPool(_Pool):
    """KxK window *sums* at steps of ``stride`` (no padding; windows past the edge dropped).

    The IR keeps integers: the division by K*K is folded by the exporter into the thresholds
    of the layer that reads the sums. The output encoding is the smallest ``uintN``/``intN``
    holding K*K times the input range (at most :data:`~hwbnn.ir.encoding.MAX_SUM_BITS` bits).
    """

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    stride: int
    encoding: str
    inputs: tuple[str, ...] | None = None
    kind: str = field(default="avgpool", init=False)

    @property
    def window(self) -> int:
        """Values summed into one output."""
        return self.kernel * self.kernel

    @property
    def out_encoding(self) -> str:
        lo, hi = encoding_range(self.encoding)
        return integer_encoding(self.window * lo, self.window * hi)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return (window_count(h, self.kernel, self.stride),
                window_count(w, self.kernel, self.stride), c)


@dataclass
class GlobalAvgPool(_Pool):
    """Sum of every pixel of each channel: ``(H, W, C) -> (1, 1, C)``; the division by H*W is
    folded into the next layer's thresholds, as for :class:`AvgPool`."""

    name: str
    in_shape: tuple[int, int, int]
    encoding: str
    inputs: tuple[str, ...] | None = None
    kind: str = field(default="globalavgpool", init=False)

    @property
    def window(self) -> int:
        """Values summed into one output."""
        return self.in_shape[0] * self.in_shape[1]

    @property
    def out_encoding(self) -> str:
        lo, hi = encoding_range(self.encoding)
        return integer_encoding(self.window * lo, self.window * hi)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (1, 1, self.in_shape[2])


@dataclass
class Add:
    """Join of two tensors of the same shape (a residual shortcut): scaled integer sum, then
    thresholds or a clip.

    ``acc = scales[0] * a + scales[1] * b`` element by element (integers; the scales align
    two encodings exactly, e.g. a shortcut of int4 sums against a conv output in int8 steps).
    With ``thresholds`` (one sorted row per channel, the last axis), the output is the count
    of thresholds ``t`` with ``acc >= t`` mapped to ``out_encoding``, as a matvec's; without,
    the output is ``acc`` clipped to the range of ``out_encoding`` (``uintN``/``intN``, up to
    :data:`~hwbnn.ir.encoding.MAX_SUM_BITS` bits). ``inputs`` must name both operands.
    """

    name: str
    inputs: tuple[str, str]
    in_shape: tuple[int, ...]
    in_encodings: tuple[str, str]
    scales: tuple[int, int]
    thresholds: np.ndarray | None
    out_encoding: str
    kind: str = field(default="add", init=False)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.in_shape)

    @property
    def channels(self) -> int:
        return self.in_shape[-1]

    @property
    def acc_range(self) -> tuple[int, int]:
        """Exact range of the scaled sum over the two input encodings."""
        ranges = [[s * v for v in encoding_range(e)]
                  for s, e in zip(self.scales, self.in_encodings, strict=True)]
        return sum(min(r) for r in ranges), sum(max(r) for r in ranges)

    @property
    def acc_width(self) -> int:
        return accumulator_width(self.acc_range, self.thresholds)


@dataclass
class Threshold:
    """Elementwise multi-threshold (FINN's MultiThreshold): ``out`` = the count of a channel's
    thresholds ``t`` with ``x >= t``, mapped to ``out_encoding`` as a matvec's output.

    It lets one integer tensor feed two readers at two precisions: in a residual network the
    int8 block output goes to the shortcut as it is and, through a threshold layer, as its sign
    (binary) to the next block's binary convolution. ``thresholds`` has one sorted row per
    channel (the last axis of ``in_shape``); the input may be any encoding up to
    :data:`~hwbnn.ir.encoding.MAX_SUM_BITS` bits.
    """

    name: str
    in_shape: tuple[int, ...]
    in_encoding: str
    thresholds: np.ndarray
    out_encoding: str
    inputs: tuple[str, ...] | None = None
    kind: str = field(default="threshold", init=False)

    @property
    def in_encodings(self) -> tuple[str, ...]:
        return (self.in_encoding,)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.in_shape)

    @property
    def channels(self) -> int:
        return self.in_shape[-1]


Layer = MatVec | Conv | MaxPool | AvgPool | GlobalAvgPool | Add | Threshold
LAYER_TYPES = (MatVec, Conv, MaxPool, AvgPool, GlobalAvgPool, Add, Threshold)


@dataclass
class NetworkIR:
    """An integer-only network: input shape/encoding, ordered layers, free-form metadata."""

    name: str
    input_shape: tuple[int, ...]
    input_encoding: str
    layers: list[Layer]
    metadata: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.layers[-1].mh

    @property
    def weight_layers(self) -> list[MatVec | Conv]:
        return [layer for layer in self.layers if isinstance(layer, MatVec | Conv)]

    def sources(self) -> list[tuple[int, ...]]:
        """Per layer, the indices of the layers it reads (-1: the network input).

        Raises HwbnnError for a name that is unknown, ambiguous or not earlier (a cycle or a
        forward reference: layers are stored in topological order).
        """
        graph = any(getattr(layer, "inputs", None) is not None for layer in self.layers)
        index_of: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            where = f"layer {index} ({layer.name})"
            if graph and layer.name == INPUT:
                _fail(where, f"the name {INPUT!r} is reserved for the network input")
            if graph and layer.name in index_of:
                _fail(where, f"the name {layer.name!r} is used twice; layers that name their "
                             f"inputs need unique names")
            index_of[layer.name] = index
        found = []
        for index, layer in enumerate(self.layers):
            names = getattr(layer, "inputs", None)
            if names is None:
                found.append((index - 1,))
                continue
            where = f"layer {index} ({layer.name})"
            if not isinstance(names, tuple | list) or not all(isinstance(n, str) for n in names):
                _fail(where, f"inputs must be a list of layer names, not {names!r}")
            indices = []
            for name in names:
                source = -1 if name == INPUT else index_of.get(name)
                if source is None:
                    _fail(where, f"input {name!r} names no layer")
                if source >= index:
                    _fail(where, f"input {name!r} is not an earlier layer (layers are stored in "
                                 f"topological order: a cycle or a forward reference)")
                indices.append(source)
            found.append(tuple(indices))
        return found

    def v2_features(self) -> list[str]:
        """What the network uses beyond a chain of format-version-1 layers, one phrase per
        use in layer order (empty: the network is a version-1 chain)."""
        found = []
        if self.input_encoding not in V1_ENCODINGS:
            found.append(f"{self.input_encoding} inputs")
        for layer in self.layers:
            name = f"(layer {layer.name!r})"
            if getattr(layer, "inputs", None) is not None:
                found.append(f"a graph of layers {name}")
            if isinstance(layer, Add | AvgPool | GlobalAvgPool | Threshold):
                found.append(f"{layer.kind} layers {name}")
            if isinstance(layer, Conv) and layer.stride != 1:
                found.append(f"conv stride {layer.stride} {name}")
            if isinstance(layer, Conv) and layer.padding >= layer.kernel:
                found.append(f"conv padding {layer.padding} >= kernel {layer.kernel} {name}")
            if isinstance(layer, MatVec | Conv) and layer.weights.kind == "integer":
                found.append(f"integer weights {name}")
            if isinstance(layer, MatVec | Conv | MaxPool) and layer.out_encoding not in (
                    None, *V1_ENCODINGS):
                found.append(f"{layer.out_encoding} activations {name}")
        return found

    def require_chain(self, consumer: str) -> NetworkIR:
        """Return self if it is a chain of version-1 layers, else HwbnnError
        "<consumer> does not support <what> yet" (for consumers that walk ``layers`` as a chain
        of matvec, conv and maxpool layers)."""
        features = self.v2_features()
        if features:
            raise HwbnnError(f"{consumer} does not support {features[0]} yet")
        return self

    @property
    def weight_bits(self) -> int:
        """Bits of all weights (a residual weight counts its bitwidth)."""
        return sum(int(layer.weights.bitwidths().sum()) for layer in self.weight_layers)

    def validate(self) -> NetworkIR:
        """Check every field; raise HwbnnError naming the first bad one. Returns self."""
        validate_network(self)
        return self


def accumulator_range(weight_values: np.ndarray, in_encoding: str) -> tuple[int, int]:
    """Exact accumulator range over all rows for inputs anywhere in the encoding's range.

    Padding values lie inside the input range, so the bound also holds for padded convs.
    """
    lo, hi = encoding_range(in_encoding)
    w = weight_values.astype(np.int64)
    row_min = np.minimum(w * lo, w * hi).sum(axis=1)
    row_max = np.maximum(w * lo, w * hi).sum(axis=1)
    return int(row_min.min()), int(row_max.max())


def accumulator_width(acc_range: tuple[int, int], thresholds: np.ndarray | None) -> int:
    """Signed width holding the accumulator range and every threshold."""
    lo, hi = acc_range
    if thresholds is not None and thresholds.size:
        lo, hi = min(lo, int(thresholds.min())), max(hi, int(thresholds.max()))
    return signed_width(lo, hi)


def _fail(where: str, message: str):
    raise HwbnnError(f"{where}: {message}")


def _is_positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= 1


def _validate_weights(where: str, weights: Weights) -> None:
    if weights.kind not in WEIGHT_KINDS:
        _fail(where, f"weights.kind must be one of {WEIGHT_KINDS}, not {weights.kind!r}")
    planes = weights.planes
    if not isinstance(planes, np.ndarray) or planes.ndim != 3 or 0 in planes.shape:
        _fail(where, "weights.planes must be a non-empty (planes, MH, MW) array")
    if not np.isin(planes, (0, 1)).all():
        _fail(where, "weights.planes must hold only bits 0 and 1")
    expected_planes = {"binary": 1, "ternary": 2}.get(weights.kind)
    if expected_planes is not None and planes.shape[0] != expected_planes:
        _fail(where, f"{weights.kind} weights need {expected_planes} plane(s), "
                     f"not {planes.shape[0]}")
    if weights.kind == "integer" and planes.shape[0] not in INTEGER_WEIGHT_BITS:
        _fail(where, f"integer weights must have {INTEGER_WEIGHT_BITS[0]}.."
                     f"{INTEGER_WEIGHT_BITS[-1]} bits, not {planes.shape[0]}")
    if weights.kind != "residual":
        return
    bitwidth, scales = weights.bitwidth, weights.scales
    if bitwidth is None or bitwidth.shape != planes.shape[1:]:
        _fail(where, f"weights.bitwidth must have shape {planes.shape[1:]}")
    bad = bitwidth[(bitwidth < 1) | (bitwidth > MAX_PLANES)]
    if bad.size:
        _fail(where, f"weights.bitwidth must be 1, 2 or 3, found {int(bad.flat[0])}")
    if planes.shape[0] != int(bitwidth.max()):
        _fail(where, f"weights.planes has {planes.shape[0]} planes but the largest "
                     f"bitwidth is {int(bitwidth.max())}")
    if scales is None or scales.shape != (planes.shape[0],):
        _fail(where, f"weights.scales must hold one integer per plane ({planes.shape[0]})")
    if (scales < 1).any() or (scales > 255).any():
        _fail(where, "weights.scales must be integers in 1..255")


def _validate_thresholds(where: str, thresholds, channels: int, encoding: str) -> None:
    """Thresholds that produce ``encoding``: one sorted row per output channel."""
    validate_encoding(encoding, f"{where}: out_encoding")
    levels = encoding_levels(encoding)
    if not isinstance(thresholds, np.ndarray) or thresholds.shape != (channels, levels):
        shape = getattr(thresholds, "shape", thresholds)
        _fail(where, f"thresholds must have shape ({channels}, {levels}) for "
                     f"{encoding} outputs, not {shape}")
    if (np.diff(thresholds, axis=1) < 0).any():
        row = int(np.nonzero((np.diff(thresholds, axis=1) < 0).any(axis=1))[0][0])
        _fail(where, f"thresholds of channel {row} are not sorted ascending")


def _validate_weight_layer(where: str, layer: MatVec | Conv, is_last: bool) -> None:
    """Encodings, thresholds, accumulator and folding of a layer whose weights are valid."""
    if is_last:
        if layer.thresholds is not None or layer.out_encoding is not None:
            _fail(where, "the last layer must produce scores (no thresholds, no out_encoding)")
    else:
        if layer.thresholds is None or layer.out_encoding is None:
            _fail(where, "only the last layer may produce scores; thresholds are missing")
        _validate_thresholds(where, layer.thresholds, layer.mh, layer.out_encoding)
    expected_range = accumulator_range(layer.weights.values(), layer.in_encoding)
    if tuple(layer.acc_range) != expected_range:
        _fail(where, f"acc_range {tuple(layer.acc_range)} does not match the weights "
                     f"({expected_range})")
    width = accumulator_width(expected_range, layer.thresholds)
    if layer.acc_width != width:
        _fail(where, f"acc_width is {layer.acc_width} but weights and thresholds need {width}")
    for name, value, extent in (("pe", layer.pe, layer.mh), ("simd", layer.simd, layer.mw)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            _fail(where, f"{name} must be a positive integer or null, not {value!r}")
        if extent % value:
            _fail(where, f"{name}={value} must divide {extent}")


def _validate_conv(where: str, layer: Conv, is_last: bool) -> None:
    h, w, c = layer.in_shape
    if not _is_positive_int(layer.stride):
        _fail(where, f"stride must be a positive integer, not {layer.stride!r}")
    if layer.kernel < 1 or layer.padding < 0:
        _fail(where, f"kernel {layer.kernel} / padding {layer.padding} not supported")
    if layer.mw != layer.kernel * layer.kernel * c:
        _fail(where, f"weights have {layer.mw} columns, kernel {layer.kernel}x"
                     f"{layer.kernel}x{c} needs {layer.kernel ** 2 * c}")
    if min(layer.out_shape[:2]) < 1:
        _fail(where, f"kernel {layer.kernel} does not fit the {h}x{w} input")
    _validate_weight_layer(where, layer, is_last)


def _validate_pool(where: str, layer: MaxPool | AvgPool | GlobalAvgPool) -> None:
    if isinstance(layer, AvgPool) and not _is_positive_int(layer.stride):
        _fail(where, f"stride must be a positive integer, not {layer.stride!r}")
    kernel = getattr(layer, "kernel", 1)
    if kernel < 1 or min(layer.out_shape[:2]) < 1:
        _fail(where, f"pool kernel {kernel} does not fit {tuple(layer.in_shape)}")
    if isinstance(layer, AvgPool | GlobalAvgPool) and (
            encoding_bits(layer.out_encoding) > MAX_SUM_BITS):
        _fail(where, f"a sum of {layer.window} {layer.encoding} values needs "
                     f"{layer.out_encoding}, more than {MAX_SUM_BITS} bits")


def _validate_add(where: str, layer: Add) -> None:
    scales = layer.scales
    if not isinstance(scales, tuple | list) or len(scales) != 2 or not all(
            _is_positive_int(s) and s <= MAX_ADD_SCALE for s in scales):
        _fail(where, f"scales must be two integers in 1..{MAX_ADD_SCALE}, not {scales!r}")
    if layer.thresholds is not None:
        _validate_thresholds(where, layer.thresholds, layer.channels, layer.out_encoding)
    elif not isinstance(layer.out_encoding, str) or layer.out_encoding in ("binary", "ternary"):
        _fail(where, f"an add without thresholds clips to a uintN or intN out_encoding, not "
                     f"{layer.out_encoding!r}")
    else:
        validate_encoding(layer.out_encoding, f"{where}: out_encoding", MAX_SUM_BITS)


def _check_input(where: str, layer, expected: str, shape: tuple, encoding: str,
                 source: str) -> None:
    """One input of ``layer``: ``source`` (a phrase) gives ``shape`` in ``encoding``."""
    if expected != encoding:
        _fail(where, f"in_encoding {expected!r} does not match {source} output {encoding!r}")
    if isinstance(layer, MatVec):
        if math.prod(shape) != layer.mw:
            _fail(where, f"expects {layer.mw} inputs but {source} layer gives "
                         f"{shape} = {math.prod(shape)}")
    elif tuple(layer.in_shape) != shape or (len(shape) != 3 and not isinstance(
            layer, Add | Threshold)):
        _fail(where, f"in_shape {tuple(layer.in_shape)} does not match {source} output {shape}")


def validate_network(net: NetworkIR) -> None:
    """Raise HwbnnError naming the first inconsistent field of ``net``."""
    if not net.layers:
        raise HwbnnError("network has no layers")
    validate_encoding(net.input_encoding, "input_encoding")
    if isinstance(net.metadata, dict) and "input_quantizer" in net.metadata:
        InputQuantizer.from_json(net.metadata["input_quantizer"], net.input_encoding)
    shape = tuple(net.input_shape)
    if len(shape) not in (1, 3) or not all(_is_positive_int(extent) for extent in shape):
        raise HwbnnError(f"input_shape must be (features,) or (height, width, channels) of "
                         f"positive integers, not {list(shape)}")
    for index, layer in enumerate(net.layers):
        if not isinstance(layer, LAYER_TYPES):
            _fail(f"layer {index} ({layer.name})", f"unsupported layer type "
                                                   f"{type(layer).__name__}")
    sources = net.sources()
    outputs = {-1: (shape, net.input_encoding)}
    for index, layer in enumerate(net.layers):
        where = f"layer {index} ({layer.name})"
        is_last = index == len(net.layers) - 1
        if len(sources[index]) != len(layer.in_encodings):
            _fail(where, f"reads {len(layer.in_encodings)} input(s) but its inputs name "
                         f"{len(sources[index])}")
        if isinstance(layer, MatVec | Conv):
            _validate_weights(where, layer.weights)  # before mh/mw read the planes' shape
        if isinstance(layer, MatVec | Conv | Threshold):
            validate_encoding(layer.in_encoding, f"{where}: in_encoding", MAX_SUM_BITS)
        elif is_last:
            _fail(where, "the last layer must be a matvec or conv producing scores")
        for expected, source in zip(layer.in_encodings, sources[index], strict=True):
            phrase = ("the previous" if layer.inputs is None else
                      "the network input's" if source < 0 else
                      f"{net.layers[source].name!r}'s")
            _check_input(where, layer, expected, *outputs[source], phrase)
        if isinstance(layer, MatVec):
            _validate_weight_layer(where, layer, is_last)
        elif isinstance(layer, Conv):
            _validate_conv(where, layer, is_last)
        elif isinstance(layer, Add):
            _validate_add(where, layer)
        elif isinstance(layer, Threshold):
            _validate_thresholds(where, layer.thresholds, layer.channels, layer.out_encoding)
        else:
            _validate_pool(where, layer)
        outputs[index] = (tuple(layer.out_shape), layer.out_encoding)
    used = {source for found in sources for source in found}
    for index, layer in enumerate(net.layers[:-1]):
        if index not in used:
            _fail(f"layer {index} ({layer.name})", "its output feeds no layer (only the last "
                                                   "layer, the network's output, may)")
