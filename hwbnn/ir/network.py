"""NetworkIR: the integer-only network description that everything after export reads.

A network is an ordered list of layers (:class:`MatVec`, :class:`Conv`, :class:`MaxPool`).
Activations are channels-last: a conv layer sees ``(H, W, C)``; a matvec that follows a
spatial layer sees the flattened ``H*W*C`` vector in that order. Matvec and conv layers
carry thresholds fused in (``out_encoding`` set), except the last layer, which produces raw
integer accumulators ("scores"). This module never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwbnnError
from .encoding import (
    encoding_levels,
    encoding_range,
    signed_width,
    validate_encoding,
)
from .input_quantizer import InputQuantizer

WEIGHT_KINDS = ("binary", "ternary", "residual")
MAX_PLANES = 3


@dataclass
class Weights:
    """Weights of a matvec/conv layer as bit planes, shape ``(MH, MW)`` per plane.

    * ``binary``: one plane of sign bits (1 = +1, 0 = -1).
    * ``ternary``: two planes, (nonzero, sign): value = nz * (+1 if sign == 0 else -1).
    * ``residual``: heterogeneous residual binarization (Fromm et al.): plane ``p`` holds sign
      bits s_p, ``bitwidth[j]`` in {1, 2, 3} says how many planes weight j uses, and
      ``scales[p]`` is the integer plane scale a_p. value = sum_{p < b_j} a_p * s_{p,j}.
      Sign bits of planes a weight does not use are stored as 0.
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
        signs = 2 * planes - 1
        used = np.arange(planes.shape[0])[:, None, None] < self.bitwidth[None]
        return np.sum(self.scales[:, None, None] * signs * used, axis=0)

    def bitwidths(self) -> np.ndarray:
        """Stored bits per weight, ``(MH, MW)``: 1 binary, 2 ternary, b_j residual."""
        if self.kind == "residual":
            return self.bitwidth.astype(np.int64)
        return np.full(self.shape, 1 if self.kind == "binary" else 2, dtype=np.int64)

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
    """KxK convolution, stride 1, zero-cost padding with the encoding's pad value.

    Weight columns are ordered (kernel row, kernel column, input channel), i.e. the
    channels-last order in which a sliding window emits a patch.
    """

    in_shape: tuple[int, int, int] = (0, 0, 0)
    kernel: int = 3
    padding: int = 0
    kind: str = field(default="conv", init=False)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, _ = self.in_shape
        span = 2 * self.padding - self.kernel + 1
        return (h + span, w + span, self.mh)

    @property
    def output_pixels(self) -> int:
        h, w, _ = self.out_shape
        return h * w


@dataclass
class MaxPool:
    """KxK max pooling with stride K (OR on binary values); the remainder rows/cols are dropped."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    encoding: str
    kind: str = field(default="maxpool", init=False)

    @property
    def in_encoding(self) -> str:
        return self.encoding

    @property
    def out_encoding(self) -> str:
        return self.encoding

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        return (h // self.kernel, w // self.kernel, c)


Layer = MatVec | Conv | MaxPool


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
        return [layer for layer in self.layers if not isinstance(layer, MaxPool)]

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


def _validate_weight_layer(where: str, layer: MatVec | Conv, is_last: bool) -> None:
    """Encodings, thresholds, accumulator and folding of a layer whose weights are valid."""
    validate_encoding(layer.in_encoding, f"{where}: in_encoding")
    if is_last:
        if layer.thresholds is not None or layer.out_encoding is not None:
            _fail(where, "the last layer must produce scores (no thresholds, no out_encoding)")
    else:
        if layer.thresholds is None or layer.out_encoding is None:
            _fail(where, "only the last layer may produce scores; thresholds are missing")
        validate_encoding(layer.out_encoding, f"{where}: out_encoding")
        thresholds = layer.thresholds
        levels = encoding_levels(layer.out_encoding)
        if thresholds.shape != (layer.mh, levels):
            _fail(where, f"thresholds must have shape ({layer.mh}, {levels}) for "
                         f"{layer.out_encoding} outputs, not {thresholds.shape}")
        if (np.diff(thresholds, axis=1) < 0).any():
            row = int(np.nonzero((np.diff(thresholds, axis=1) < 0).any(axis=1))[0][0])
            _fail(where, f"thresholds of channel {row} are not sorted ascending")
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


def validate_network(net: NetworkIR) -> None:
    """Raise HwbnnError naming the first inconsistent field of ``net``."""
    if not net.layers:
        raise HwbnnError("network has no layers")
    validate_encoding(net.input_encoding, "input_encoding")
    shape, encoding = tuple(net.input_shape), net.input_encoding
    if isinstance(net.metadata, dict) and "input_quantizer" in net.metadata:
        InputQuantizer.from_json(net.metadata["input_quantizer"], encoding)
    if len(shape) not in (1, 3) or not all(_is_positive_int(extent) for extent in shape):
        raise HwbnnError(f"input_shape must be (features,) or (height, width, channels) of "
                         f"positive integers, not {list(shape)}")
    for index, layer in enumerate(net.layers):
        where = f"layer {index} ({layer.name})"
        is_last = index == len(net.layers) - 1
        if layer.in_encoding != encoding:
            _fail(where, f"in_encoding {layer.in_encoding!r} does not match the "
                         f"previous output {encoding!r}")
        if isinstance(layer, MatVec | Conv):
            _validate_weights(where, layer.weights)  # before mh/mw read the planes' shape
        if isinstance(layer, MatVec):
            if math.prod(shape) != layer.mw:
                _fail(where, f"expects {layer.mw} inputs but the previous layer gives "
                             f"{shape} = {math.prod(shape)}")
            _validate_weight_layer(where, layer, is_last)
        elif isinstance(layer, Conv):
            if len(shape) != 3 or tuple(layer.in_shape) != shape:
                _fail(where, f"in_shape {tuple(layer.in_shape)} does not match the previous "
                             f"output {shape}")
            h, w, c = shape
            if layer.kernel < 1 or layer.padding < 0 or layer.padding >= layer.kernel:
                _fail(where, f"kernel {layer.kernel} / padding {layer.padding} not supported")
            if layer.mw != layer.kernel * layer.kernel * c:
                _fail(where, f"weights have {layer.mw} columns, kernel {layer.kernel}x"
                             f"{layer.kernel}x{c} needs {layer.kernel ** 2 * c}")
            if min(layer.out_shape[:2]) < 1:
                _fail(where, f"kernel {layer.kernel} does not fit the {h}x{w} input")
            _validate_weight_layer(where, layer, is_last)
        elif isinstance(layer, MaxPool):
            if is_last:
                _fail(where, "the last layer must be a matvec or conv producing scores")
            if len(shape) != 3 or tuple(layer.in_shape) != shape:
                _fail(where, f"in_shape {tuple(layer.in_shape)} does not match the previous "
                             f"output {shape}")
            if layer.kernel < 1 or min(layer.out_shape[:2]) < 1:
                _fail(where, f"pool kernel {layer.kernel} does not fit {shape}")
        else:
            _fail(where, f"unsupported layer type {type(layer).__name__}")
        shape, encoding = tuple(layer.out_shape), layer.out_encoding

