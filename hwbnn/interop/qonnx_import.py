"""Read a QONNX graph into a NetworkIR, streamlining it on the way.

The graph is interpreted symbolically, node by node, in its (topological) order. Every
tensor is one of:

* a constant (initializer, ``Constant``, or arithmetic on constants);
* a quantized constant: integer values times a broadcast float scale (weights behind
  ``Quant``/``BipolarQuant``, masks and scales applied by ``Mul``/``Div``);
* the raw float graph input x, before its input quantizer, as ``a * x + b`` with an index
  map (Brevitas' ``x.view(N, -1)`` and ``2x - 1``); its quantizer's output is the network's
  input, and the quantizer with ``a``, ``b`` is recorded as the network's
  :class:`~hwbnn.ir.input_quantizer.InputQuantizer`;
* an :class:`_Act`: activation ``scale * v + offset`` with ``v`` in a hwbnn encoding, plus an
  index map from the graph's layout to the IR's channels-last order (so ``Transpose``,
  ``Flatten``, ``Reshape`` only permute the map and weight columns follow it);
* a :class:`_Pending` layer: ``sum_t f_t * (M_t v) + b`` per output channel, the affine
  that ``Add``/``Mul``/``Sub``/``Div``/``BatchNormalization`` keep updating;
* a :class:`_Sum` of two activations (``Add``, after ``Mul`` by their scales): a residual
  join, which its ``Clip`` or quantizer turns into an IR add layer.

An activation quantizer (``BipolarQuant``, ``Quant``, ``MultiThreshold``; in graphs torch
exports from plain modules ``Sign`` and ``Where(GreaterOrEqual)``, after a ``Clip`` or not)
applied to a pending layer ends it: the terms become integer weights (binary, ternary or
residual planes), a negative per-channel scale flips that row's weights (FINN's way), and
the quantizer's decision points are moved into the accumulator as integer thresholds,
computed in float64 from the graph's parameters. The graph's output must be a pending
layer (scores), up to one nonzero scale and one offset shared by all classes (Brevitas'
TensorNorm; a negative scale negates every row). A ``MultiThreshold`` on an activation is a
threshold layer, ``AveragePool``/``GlobalAveragePool`` (times the window) are window-sum
layers, and an activation read by two nodes is a graph edge: each IR layer records the layer
whose activation it reads, and a network that is not a chain names its layers' inputs
(format version 2). Anything else is one HwbnnError naming the
node (name and op_type, and the torch layer where torch's exporter recorded it) and why.
What Brevitas and torch graphs hold, and where it goes: docs/design.md, "Brevitas in" and
"Plain PyTorch in".
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import (
    MAX_SUM_BITS,
    encoding_bits,
    encoding_levels,
    encoding_range,
    integer_encoding,
    is_signed_int,
    pad_value,
    signed_width,
    validate_encoding,
    values_from_threshold_count,
)
from ..ir.fileformat import parse_json
from ..ir.input_quantizer import SIGN, InputQuantizer, quant_round
from ..ir.network import (
    INPUT,
    INTEGER_WEIGHT_BITS,
    MAX_ADD_SCALE,
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
    Weights,
    accumulator_range,
    accumulator_width,
    window_count,
)
from .qonnx_export import META_LAYERS, META_METADATA, META_NAME, _onnx

STANDARD_DOMAINS = ("", "ai.onnx")
CUSTOM_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas",
                  "finn")
# Relative tolerance for "these float scales are the same number" (ratios of plane scales,
# one scale shared by all classes): far above float32 rounding, far below any real change.
SCALE_TOLERANCE = 1e-5
# Residual plane scales that represent small integer weights (-3..3, then -4..4), fewest
# planes first; see _residual_from_integers.
RESIDUAL_SCALE_SETS = ((1, 1, 1), (2, 1, 1))
# Most elements of the graph input per frame (the index maps of activations are built from
# its shape): 16M, far beyond any input hwbnn builds hardware for.
MAX_INPUT_ELEMENTS = 1 << 24
# Integer weights given as plain constants: beyond this they are not small integers
# (and float32, the graph's type, no longer holds every integer).
MAX_INTEGER_WEIGHT = 1 << 24
# Inputs (least, most) of every operator the interpreter reads, checked before its handler.
ARITY = {
    "Constant": (0, 0), "Identity": (1, 1), "Dropout": (1, 3),
    "BipolarQuant": (2, 2), "Quant": (4, 4), "IntQuant": (4, 4), "MultiThreshold": (2, 2),
    "Mul": (2, 2), "Div": (2, 2), "Add": (2, 2), "Sub": (2, 2),
    "MatMul": (2, 2), "Gemm": (2, 3), "XnorPopcountMatMul": (2, 2), "Conv": (2, 3),
    "Pad": (2, 4), "BatchNormalization": (5, 5), "MaxPool": (1, 1), "MaxPoolNHWC": (1, 1),
    "Transpose": (1, 1), "Flatten": (1, 1), "Reshape": (2, 2), "Pow": (2, 2), "Sqrt": (1, 1),
    "Sign": (1, 1), "Clip": (1, 3), "GreaterOrEqual": (2, 2), "Greater": (2, 2),
    "Where": (3, 3), "AveragePool": (1, 1), "GlobalAveragePool": (1, 1), "Round": (1, 1),
}


class _NodeError(HwbnnError):
    """An unsupported node; the interpreter adds the node's name and op_type."""


@dataclass
class _QConst:
    """Quantized constant: ``values * scale`` with integer ``values``; ``bits``: the width a
    signed ``Quant`` gave them (None where no quantizer said)."""

    values: np.ndarray
    scale: np.ndarray
    bits: int | None = None


@dataclass
class _Raw:
    """The float graph input x before its quantizer: graph value = ``scale * x + offset``
    (Brevitas' ``2x - 1``); ``index`` and ``logical`` as in :class:`_Act` (reshapes of the
    input before it is quantized, e.g. the flatten in front of an MLP)."""

    index: np.ndarray
    logical: tuple
    scale: float = 1.0
    offset: float = 0.0


@dataclass
class _Act:
    """Activation tensor: graph value = ``scale * v + offset`` with v in ``encoding``.

    ``index`` has the graph's shape (without batch) and holds, for each element, its
    position in the IR's flattened channels-last tensor of shape ``logical``.
    """

    encoding: str
    scale: float
    offset: float
    index: np.ndarray
    logical: tuple
    position: int
    pad: int = 0


@dataclass
class _Term:
    matrix: np.ndarray  # (MH, MW) integers, columns in the IR's order
    scale: np.ndarray  # (MH,) float
    bits: int | None = None  # the weight quantizer's bit width, where one stated it


@dataclass
class _Pending:
    """A dense/conv layer whose accumulator is not yet quantized."""

    source: _Act
    kind: str
    terms: list[_Term]
    bias: np.ndarray
    kernel: int = 1
    padding: int = 0
    stride: int = 1
    pool: int | None = None
    clip: tuple[float, float] | None = None  # a Clip (hardtanh) that only a quantizer may follow

    @property
    def channels(self) -> int:
        return len(self.bias)

    @property
    def out_logical(self) -> tuple:
        if self.kind == "matvec":
            return (self.channels,)
        h, w, _ = self.source.logical
        return (window_count(h + 2 * self.padding, self.kernel, self.stride),
                window_count(w + 2 * self.padding, self.kernel, self.stride), self.channels)


@dataclass
class _Sum:
    """``a + b`` of two activations of one shape and layout (their scales carry the add's
    integer scales): the join of a residual block, waiting for its Clip or quantizer."""

    a: _Act
    b: _Act


@dataclass
class _Cmp:
    """``y >= threshold`` (``y > threshold`` when strict) of a pending layer's output y: a
    binary decision that ``Where`` turns into an activation (torch.where(y >= 0, 1, -1))."""

    pending: _Pending
    threshold: float
    strict: bool


@dataclass
class _SteDifference:
    """``q - y`` of the straight-through trick ``y + (q - y).detach()``: adding y back gives
    the activation q (detach is an identity in the exported graph)."""

    act: _Act
    pending: _Pending


def nchw_index(logical: tuple) -> np.ndarray:
    """Index map of an NCHW graph tensor onto the channels-last tensor ``(H, W, C)``."""
    h, w, c = logical
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1)


def nhwc_index(logical: tuple) -> np.ndarray:
    return np.arange(int(np.prod(logical))).reshape(logical)


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=SCALE_TOLERANCE, atol=0))


def _is_integer(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _scalar(value, what: str) -> float:
    """The one finite number in ``value``."""
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise _NodeError(f"{what} must be one number, not an array of shape {array.shape}")
    number = float(array.reshape(()))
    if not math.isfinite(number):
        raise _NodeError(f"{what} must be a finite number, not {number}")
    return number


def _positive(value: float, what: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise _NodeError(f"{what} must be a positive number, not {value}")
    return value


def _bit_width(value) -> int:
    """A Quant bit width: an integer 1..8 (checked before any ``2 ** bits``)."""
    bits = _scalar(value, "the Quant bit width")
    if bits != round(bits) or not 1 <= bits <= 8:
        raise _NodeError(f"bit width {bits:g} is not supported (an integer 1..8)")
    return int(bits)


def _integers(values: np.ndarray, what: str) -> list[int]:
    """Integer-valued constants (pads, shapes) as ints, without truncating 2.5 to 2."""
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind not in "iu" and not _is_integer(values.astype(np.float64)):
        raise _NodeError(f"{what} must be integers, not {values.tolist()}")
    if values.size and np.abs(values.astype(np.float64)).max() > 2 ** 62:
        raise _NodeError(f"{what} are out of range")
    return [int(v) for v in values]


def _broadcasts(value: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    """``value`` if it broadcasts to ``shape`` (an empty scale does not)."""
    try:
        if np.broadcast_shapes(value.shape, shape) == tuple(shape):
            return value
    except ValueError:
        pass
    raise _NodeError(f"{what} of shape {value.shape} does not broadcast to {tuple(shape)}")


# --- attributes: types checked, as ONNX allows any attribute type under any name


def _attr_int(attrs: dict, key: str, default: int) -> int:
    value = attrs.get(key, default)
    if type(value) is not int:
        raise _NodeError(f"attribute {key!r} must be an integer, not {value!r}")
    return value


def _attr_flag(attrs: dict, key: str, default: int) -> bool:
    value = _attr_int(attrs, key, default)
    if value not in (0, 1):
        raise _NodeError(f"attribute {key!r} must be 0 or 1, not {value!r}")
    return bool(value)


def _attr_ints(attrs: dict, key: str, default: list) -> list[int]:
    value = attrs.get(key, default)
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise _NodeError(f"attribute {key!r} must be a list of integers, not {value!r}")
    return value


def _square_stride(attrs: dict) -> int:
    """The one stride of a square ``strides`` attribute (ONNX's default: 1)."""
    strides = _attr_ints(attrs, "strides", [1, 1])
    if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1:
        raise _NodeError(f"strides {strides} must be two equal positive integers")
    return strides[0]


def _attr_float(attrs: dict, key: str, default: float) -> float:
    value = attrs.get(key, default)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _NodeError(f"attribute {key!r} must be a finite number, not {value!r}")
    return float(value)


def _attr_str(attrs: dict, key: str, default: str) -> str:
    value = attrs.get(key, default)
    if not isinstance(value, str):
        raise _NodeError(f"attribute {key!r} must be a string, not {value!r}")
    return value


def _fold(op, *operands):
    """``op`` (arithmetic, transpose, reshape) on constants; shapes, axes or permutations
    that do not fit them are the node's error."""
    try:
        return op(*operands)
    except (ValueError, IndexError, TypeError) as error:
        raise _NodeError(f"cannot compute its constants ({error})") from None


_ARITHMETIC_ERRORS = (FloatingPointError, ZeroDivisionError, OverflowError)


def _reason(error: Exception) -> str:
    if isinstance(error, _ARITHMETIC_ERRORS):
        return f"its arithmetic overflows or is undefined ({error})"
    return str(error)


def _input_layout(shape: tuple) -> tuple[np.ndarray, tuple]:
    """Index map and the IR's input shape of a graph input (N, C, H, W) or (N, F)."""
    if len(shape) == 4:
        _, c, h, w = shape
        return nchw_index((h, w, c)), (h, w, c)
    return np.arange(shape[1]), (shape[1],)


def _describe(node) -> str:
    """``node 'NAME' (OP)``, with the torch module it came from where torch's exporter
    recorded it (``pkg.torch.onnx.name_scopes``, ``class_hierarchy``): errors name the layer
    the user wrote, not only a generated node name."""
    text = f"node {node.name or '(unnamed)'!r} ({node.op_type})"
    props = {prop.key: prop.value for prop in node.metadata_props}
    try:
        scopes = ast.literal_eval(props["pkg.torch.onnx.name_scopes"])
        classes = ast.literal_eval(props["pkg.torch.onnx.class_hierarchy"])
    except (KeyError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if not (isinstance(scopes, list) and isinstance(classes, list) and len(scopes) >= 3
            and len(classes) == len(scopes) and all(isinstance(v, str) for v in scopes + classes)):
        return text
    # The last scope is the torch op, the first the root module: the layer lies between.
    layer = ".".join(scopes[1:-1])
    fused = ", fused into the layer before it" if "FuseBatchNorm" in props.get(
        "pkg.onnxscript.rewriter.rule_name", "") else ""
    return f"{text} in torch layer {layer!r} ({classes[-2].rsplit('.', 1)[-1]}{fused})"


def _check_finite(value) -> None:
    """Every number a node produced is finite (NaN thresholds or an inf scale would import
    as a wrong network, not fail)."""
    if isinstance(value, np.ndarray):
        arrays = [value] if value.dtype.kind == "f" else []
    elif isinstance(value, _QConst):
        arrays = [value.values, value.scale]
    elif isinstance(value, _Act | _Raw):
        arrays = [np.array([value.scale, value.offset])]
    elif isinstance(value, _Pending):
        arrays = [value.bias] + [term.scale for term in value.terms]
    else:
        arrays = []
    if not all(np.isfinite(array).all() for array in arrays):
        raise _NodeError("its result is not finite (inf or NaN)")


# ---------------------------------------------------------------------------------------
# Quantizers: integer level count as a function of the float input (vectorized, float64)


def _round(values: np.ndarray, mode: str) -> np.ndarray:
    try:
        return quant_round(values, mode)
    except HwbnnError as error:
        raise _NodeError(str(error)) from None


@dataclass
class _Quantizer:
    """Output = ``scale * v + offset``, v = encoding value of ``count(x)`` levels passed.

    ``lo``, ``hi`` and ``rounding`` describe a Quant/BipolarQuant (``rounding`` SIGN) for
    :class:`~hwbnn.ir.input_quantizer.InputQuantizer` when it quantizes the graph input.
    """

    encoding: str
    scale: float
    offset: float
    levels: int
    count: object  # callable: float64 array of inputs -> integer level counts
    thresholds: np.ndarray | None = None  # MultiThreshold: per-channel x-domain levels
    lo: int = -1
    hi: int = 1
    rounding: str = SIGN
    sign: bool = False  # torch.sign: ternary where an accumulator gives exactly 0, else binary


def _sign_count(x: np.ndarray) -> np.ndarray:
    return (x >= 0).astype(np.int64)


def _int_quant_params(attrs, constants) -> tuple[float, int, bool, bool, str]:
    scale = _positive(_scalar(constants[1], "the Quant scale"), "the Quant scale")
    zeropt = _scalar(constants[2], "the Quant zero point")
    bits = _bit_width(constants[3])
    if zeropt != 0:
        raise _NodeError(f"zero point {zeropt} is not supported (only 0)")
    return (scale, bits, _attr_flag(attrs, "signed", 1), _attr_flag(attrs, "narrow", 0),
            _attr_str(attrs, "rounding_mode", "ROUND"))


def _quantizer(node, attrs, constants, channels: int | None) -> _Quantizer:
    """The activation quantizer of a BipolarQuant / Quant / MultiThreshold node."""
    if node.op_type == "BipolarQuant":
        scale = _positive(_scalar(constants[1], "the BipolarQuant scale"),
                          "the activation scale")
        return _Quantizer("binary", scale, 0.0, 1, _sign_count)
    if node.op_type == "Quant":
        scale, bits, signed, narrow, mode = _int_quant_params(attrs, constants)
        if signed and bits == 1:
            return _Quantizer("binary", scale, 0.0, 1, _sign_count)
        lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - int(narrow)
        if signed and (lo, hi) == (-1, 1):
            encoding, offset = "ternary", 0.0
        elif bits >= 2:
            # Any other n-bit grid lo..hi is uint{n} counted from lo: value = scale * (v + lo),
            # and the offset scale * lo folds into the next layer's thresholds.
            encoding, offset = f"uint{bits}", scale * lo
        else:
            raise _NodeError("unsigned 1-bit activations (values 0..1) are not supported: "
                             "use a signed 1-bit (bipolar) quantizer")
        _round(np.zeros(1), mode)  # rejects an unknown rounding mode here, not later

        def count(x):
            return (_round(np.clip(x / scale, lo, hi), mode) - lo).astype(np.int64)

        return _Quantizer(encoding, scale, offset, hi - lo, count, lo=lo, hi=hi,
                          rounding=mode.upper())
    thresholds = np.asarray(constants[1], dtype=np.float64)
    if thresholds.ndim != 2 or 0 in thresholds.shape:
        raise _NodeError(f"thresholds must have shape (channels, levels), not "
                         f"{thresholds.shape}")
    if not np.isfinite(thresholds).all():
        raise _NodeError("thresholds must be finite numbers (no NaN or inf)")
    levels = thresholds.shape[1]
    if channels is not None and thresholds.shape[0] not in (1, channels):
        raise _NodeError(f"{thresholds.shape[0]} threshold rows for {channels} channels")
    out_scale = _positive(_attr_float(attrs, "out_scale", 1.0), "out_scale")
    out_bias = _attr_float(attrs, "out_bias", 0.0)
    # out = out_scale * count + out_bias, written as scale * v + offset of an encoding.
    bits = _signed_dtype_bits(_attr_str(attrs, "out_dtype", ""))
    if levels == 1:
        encoding, scale, offset = "binary", out_scale / 2, out_bias + out_scale / 2
    elif levels == 2 and out_bias == -out_scale:
        encoding, scale, offset = "ternary", out_scale, 0.0
    elif bits is not None and levels < 2 ** bits:
        # out_dtype INTn: the count c is the offset code of v = c - 2^(n-1)
        encoding, scale, offset = f"int{bits}", out_scale, out_bias + out_scale * 2 ** (bits - 1)
    elif levels <= 255:
        encoding = f"uint{max(2, levels.bit_length())}"
        scale, offset = out_scale, out_bias
    else:
        raise _NodeError(f"{levels} thresholds per channel need more than 8 bits")
    return _Quantizer(encoding, scale, offset, levels, None, np.sort(thresholds, axis=1))


def _signed_dtype_bits(datatype: str) -> int | None:
    """n of a QONNX datatype ``INTn`` with n in 2..8, else None."""
    if datatype.startswith("INT") and datatype[3:] in {str(n) for n in range(2, 9)}:
        return int(datatype[3:])
    return None


def _search_thresholds(count, a: np.ndarray, b: np.ndarray, levels: int, lo: int,
                       hi: int) -> np.ndarray:
    """Smallest acc in [lo, hi + 1] with ``count(a * acc + b) >= k`` for k = 1..levels.

    ``count`` must be nondecreasing in acc (a >= 0): bisection over all channels and
    levels at once; hi + 1 stands for "never passes".
    """
    channels = len(a)
    need = np.tile(np.arange(1, levels + 1), (channels, 1))
    low = np.full((channels, levels), lo, dtype=np.int64)
    high = np.full((channels, levels), hi + 1, dtype=np.int64)
    a2, b2 = a[:, None], b[:, None]
    while (low < high).any():
        mid = (low + high) // 2
        passed = count(a2 * mid.astype(np.float64) + b2) >= need
        high = np.where(passed, mid, high)
        low = np.where(passed, low, mid + 1)
    return low


def _multithreshold_to_acc(thresholds: np.ndarray, a: np.ndarray, b: np.ndarray, lo: int,
                           hi: int) -> np.ndarray:
    """Integer thresholds t with ``acc >= t  <=>  a * acc + b >= T`` (a >= 0), exact.

    Not clipped to the accumulator range, so a graph exported by hwbnn reads back unchanged.
    """
    thresholds = np.broadcast_to(thresholds, (len(a), thresholds.shape[1]))
    a2, b2 = a[:, None], b[:, None]
    positive = a2 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.where(positive, np.ceil((thresholds - b2) / np.where(positive, a2, 1)), 0)
    guess = np.clip(guess, lo - 2 ** 40, hi + 2 ** 40).astype(np.int64)
    for _ in range(2):
        guess = np.where(a2 * guess + b2 >= thresholds, guess, guess + 1)
        guess = np.where(a2 * (guess - 1) + b2 >= thresholds, guess - 1, guess)
    constant = np.where(b2 >= thresholds, lo, hi + 1)
    return np.where(positive, guess, constant).astype(np.int64)


def _level_thresholds(quant: _Quantizer, unit: np.ndarray, bias: np.ndarray, lo: int, hi: int,
                      count=None) -> tuple[_Quantizer, np.ndarray]:
    """Integer thresholds on ``acc`` in [lo, hi] of ``quant`` applied to ``unit * acc + bias``
    (one row per channel, ``unit`` >= 0), one per level of its encoding; ``count`` replaces
    the quantizer's level count (a Clip before it). torch.sign becomes binary where no
    accumulator gives 0."""
    if quant.thresholds is not None:
        thresholds = _multithreshold_to_acc(quant.thresholds, unit, bias, lo, hi)
    else:
        thresholds = _search_thresholds(count or quant.count, unit, bias, quant.levels, lo, hi)
    if quant.sign and (thresholds[:, 0] == thresholds[:, 1]).all():
        # No accumulator makes sign() give 0: the activation is binary.
        quant, thresholds = replace(quant, encoding="binary", levels=1), thresholds[:, :1]
    levels = encoding_levels(quant.encoding)
    if thresholds.shape[1] < levels:
        never = max(hi + 1, int(thresholds.max()))
        extra = np.full((len(thresholds), levels - thresholds.shape[1]), never)
        thresholds = np.concatenate([thresholds, extra], axis=1)
    return quant, thresholds


# ---------------------------------------------------------------------------------------
# Weights: integer terms -> binary / ternary / residual


def _residual_table(scales: tuple) -> dict[int, tuple[int, tuple]]:
    """Value -> (fewest planes, signs) over all sign choices of the given plane scales."""
    table: dict[int, tuple[int, tuple]] = {}
    for planes in range(1, len(scales) + 1):
        for code in range(2 ** planes):
            signs = tuple(1 if (code >> p) & 1 else -1 for p in range(planes))
            value = sum(s * a for s, a in zip(signs, scales, strict=False))
            table.setdefault(value, (planes, signs))
    return table


def _residual_from_integers(matrix: np.ndarray) -> Weights | None:
    """Small integer weights (-4..4) as residual planes with the fewest planes (None for
    larger ones)."""
    for scales in RESIDUAL_SCALE_SETS:
        table = _residual_table(scales)
        if not np.isin(matrix, list(table)).all():
            continue
        bitwidth = np.zeros(matrix.shape, dtype=np.int64)
        signs = np.ones((len(scales),) + matrix.shape, dtype=np.int64)
        for value, (value_planes, value_signs) in table.items():
            where = matrix == value
            bitwidth[where] = value_planes
            for p, sign in enumerate(value_signs):
                signs[p][where] = sign
        planes = int(bitwidth.max())
        signs = signs[:planes]
        return Weights.residual(signs, bitwidth, scales[:planes])
    return None


def _scaled_signs(weights: np.ndarray, out_axis: int, name: str) -> _QConst:
    """Float weights that are one scale per output channel times -1/+1: binarized weights
    with a BatchNorm folded in (torch's ONNX export folds BatchNorm into Gemm and Conv)."""
    if weights.ndim < 2 or not -weights.ndim <= out_axis < weights.ndim:
        raise _NodeError(f"weights {name!r} of shape {weights.shape} have no output axis "
                         f"{out_axis}")
    rows = np.moveaxis(weights, out_axis, 0).reshape(weights.shape[out_axis], -1)
    scale = np.abs(rows).max(axis=1)
    if not ((scale > 0).all() and (np.abs(rows) == scale[:, None]).all()):
        raise _NodeError(f"weights {name!r} are float (not one scale per output channel times "
                         f"-1/+1); quantize them with Quant/BipolarQuant, or binarize them "
                         f"with sign in forward")
    shape = [1] * weights.ndim
    shape[out_axis] = len(scale)
    return _QConst(np.sign(weights), scale.reshape(shape))


def _integer_weights(matrix: np.ndarray, bits: int | None) -> Weights:
    """Two's-complement integer weights: ``bits`` wide where the quantizer said (and they
    fit), else the fewest bits (at least 2) that hold them."""
    low, high = int(matrix.min()), int(matrix.max())
    if bits is None or not (-(2 ** (bits - 1)) <= low and high < 2 ** (bits - 1)):
        bits = max(INTEGER_WEIGHT_BITS[0], signed_width(low, high))
    if bits > INTEGER_WEIGHT_BITS[-1]:
        raise _NodeError(f"integer weights {low}..{high} need more than "
                         f"{INTEGER_WEIGHT_BITS[-1]} bits")
    return Weights.integer(matrix, bits)


def _single_term_weights(term: _Term, kind: str | None) -> tuple[Weights, np.ndarray]:
    """One weight term as the fewest planes: binary, ternary, residual (small integers) or
    integer; ``kind`` is hwbnn's export's record of the layer's weight kind, which keeps
    residual and integer weights whose values would also fit a narrower kind."""
    matrix, scale = term.matrix, term.scale
    if kind == "integer":
        return _integer_weights(matrix, term.bits), scale
    residual = kind == "residual"
    nonzero = np.abs(matrix[matrix != 0])
    divisor = math.gcd(*nonzero.astype(int).tolist()) if nonzero.size else 1
    if divisor > 1:
        matrix, scale = matrix // divisor, scale * divisor
    if np.isin(matrix, (-1, 1)).all():
        if not residual:
            return Weights.binary(matrix), scale
        # one plane: keep an integer scale shared by all rows as the plane scale a_0
        plane = int(scale[0]) if _is_integer(scale) and _close(scale, scale[0]) and (
            1 <= scale[0] <= 255) else 1
        return Weights.residual(matrix[None], np.ones(matrix.shape), [plane]), scale / plane
    if np.isin(matrix, (-1, 0, 1)).all():
        return Weights.ternary(matrix), scale
    weights = _residual_from_integers(matrix)
    if weights is None:
        weights = _integer_weights(matrix, term.bits)
    return weights, scale


def _plane_weights(terms: list[_Term]) -> tuple[Weights, np.ndarray]:
    """Several bipolar (optionally masked) terms: residual planes with integer scales."""
    for index, term in enumerate(terms):
        if not np.isin(term.matrix, (-1, 0, 1)).all():
            raise _NodeError(f"weight term {index} of a sum of bit planes is not bipolar")
    if (terms[0].matrix == 0).any():
        raise _NodeError("the first bit plane must use every weight")
    used = np.stack([term.matrix != 0 for term in terms])
    if (used[1:] & ~used[:-1]).any():
        raise _NodeError("bit planes must be used in order (a weight using plane p uses "
                         "every plane before it)")
    if len(terms) > 3:
        raise _NodeError(f"{len(terms)} bit planes: at most 3 are supported")
    base = terms[0].scale
    if (base == 0).any():
        raise _NodeError("a bit plane has a zero scale")
    ratios = np.stack([term.scale / base for term in terms])
    if not all(_close(row, row[0]) for row in ratios):
        raise _NodeError("bit plane scales differ in ratio between output channels")
    integer_scales = _integer_scales([term.scale for term in terms])
    signs = np.stack([np.where(term.matrix < 0, -1, 1) for term in terms])
    if integer_scales is None:
        raise _NodeError("bit plane scales are not in integer ratios up to 255")
    negative = integer_scales < 0
    signs[negative] *= -1
    integer_scales = np.abs(integer_scales)
    if (integer_scales < 1).any() or (integer_scales > 255).any():
        raise _NodeError(f"bit plane scales {integer_scales.tolist()} are not in 1..255")
    unit = base / (integer_scales[0] * (-1 if negative[0] else 1))
    weights = Weights.residual(signs, used.sum(axis=0), integer_scales.astype(np.int64))
    return weights, unit


def _integer_scales(scales: list[np.ndarray]) -> np.ndarray | None:
    """Integers in the ratio of ``scales`` (one vector per term, in the same ratio in every
    row): the scales themselves where each is one integer for all rows, else their ratios
    to the first times the smallest multiplier 1..255 that makes them integers (None if
    none does)."""
    if all(_is_integer(scale) and _close(scale, scale[0]) for scale in scales):
        return np.array([scale[0] for scale in scales])
    ratios = np.array([scale[0] / scales[0][0] for scale in scales])
    for first in range(1, 256):
        candidate = ratios * first
        if np.allclose(candidate, np.round(candidate), rtol=0, atol=1e-6):
            return np.round(candidate)
    return None


# ---------------------------------------------------------------------------------------
# The interpreter


@dataclass
class _Hints:
    """Names, folding and weight kinds written by hwbnn's export (absent for other tools)."""

    name: str | None = None
    metadata: dict | None = None
    layers: list | None = None


def _read_hints(model) -> _Hints:
    props = {prop.key: prop.value for prop in model.metadata_props}
    hints = _Hints(name=props.get(META_NAME))
    if META_METADATA in props:
        hints.metadata = parse_json(props[META_METADATA], f"metadata_props '{META_METADATA}'")
    if META_LAYERS in props:
        hints.layers = parse_json(props[META_LAYERS], f"metadata_props '{META_LAYERS}'")
    if hints.metadata is not None and not isinstance(hints.metadata, dict):
        raise HwbnnError(f"metadata_props '{META_METADATA}' must be a JSON object")
    if hints.layers is not None and not (
        isinstance(hints.layers, list) and all(isinstance(e, dict) for e in hints.layers)
    ):
        raise HwbnnError(f"metadata_props '{META_LAYERS}' must be a JSON list of objects")
    return hints


_DATATYPE_ENCODINGS = {"BIPOLAR": ("binary", 1.0, 0.0), "BINARY": ("binary", 0.5, 0.5),
                       "TERNARY": ("ternary", 1.0, 0.0)}


class _Importer:
    def __init__(self, model, onnx, declared_input: tuple[str, float] | None = None):
        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.env: dict[str, object] = {}
        self.layers: list = []
        self.sources: list[tuple[int, ...]] = []  # per layer, the layers it reads (-1: input)
        self.input_encoding: str | None = None
        self.input_shape: tuple | None = None
        self.input_quantizer: InputQuantizer | None = None
        self.declared_input = declared_input
        self.hints = _read_hints(model)

    @staticmethod
    def _shape_of(value_info) -> tuple | None:
        dims = value_info.type.tensor_type.shape.dim
        if not value_info.type.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)

    # -- setup ----------------------------------------------------------------------
    def tensor(self, tensor, what: str) -> np.ndarray:
        """A TensorProto's values: stored in the file, numeric, finite."""
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            raise HwbnnError(f"{what} {tensor.name!r}: external tensor data is not supported")
        try:
            array = self.onnx.numpy_helper.to_array(tensor)
        except Exception as error:  # onnx raises ValueError, TypeError, KeyError, ...
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise HwbnnError(f"{what} {tensor.name!r} is unreadable ({reason})") from None
        if array.dtype.kind not in "biuf":
            raise HwbnnError(f"{what} {tensor.name!r} must be numeric, not {array.dtype}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise HwbnnError(f"{what} {tensor.name!r} holds values that are not finite "
                             f"(NaN or inf)")
        return array

    def load_constants(self) -> None:
        for tensor in self.graph.initializer:
            self.env[tensor.name] = self.tensor(tensor, "initializer")
        constants = set(self.env)
        inputs = [vi for vi in self.graph.input if vi.name not in constants]
        if len(inputs) != 1:
            raise HwbnnError(f"the graph must have one data input, not {len(inputs)} "
                             f"({', '.join(vi.name for vi in inputs)})")
        if len(self.graph.output) != 1:
            raise HwbnnError(f"the graph must have one output, not {len(self.graph.output)}")
        source = inputs[0]
        shape = self._shape_of(source)
        if shape is None or len(shape) not in (2, 4) or None in shape[1:] or min(shape[1:]) < 1:
            raise HwbnnError(f"graph input {source.name!r} must have a known shape "
                             f"(N, C, H, W) or (N, F), not {shape}")
        if math.prod(shape[1:]) > MAX_INPUT_ELEMENTS:
            raise HwbnnError(f"graph input {source.name!r} has {math.prod(shape[1:])} values "
                             f"per frame, more than {MAX_INPUT_ELEMENTS}")
        self.env[source.name] = _Raw(*_input_layout(shape))
        annotation = self._datatype(source.name)
        if annotation is None and self.declared_input is not None:
            encoding, scale = self.declared_input
            annotation = (encoding, scale, 0.0)
            lo, hi = encoding_range(encoding)
            self.input_quantizer = InputQuantizer(1.0 / scale, 0.0, lo, hi,
                                                  SIGN if encoding == "binary" else "ROUND")
        if annotation is not None:
            self.env[source.name] = self._input_act(self.env[source.name], *annotation)

    def _datatype(self, name: str) -> tuple[str, float, float] | None:
        for annotation in self.graph.quantization_annotation:
            if annotation.tensor_name != name:
                continue
            for entry in annotation.quant_parameter_tensor_names:
                if entry.key != "finn_datatype":
                    continue
                datatype = entry.value
                if datatype in _DATATYPE_ENCODINGS:
                    return _DATATYPE_ENCODINGS[datatype]
                if datatype in {f"UINT{bits}" for bits in range(2, 9)}:
                    return (f"uint{datatype[4:]}", 1.0, 0.0)
                if _signed_dtype_bits(datatype) is not None:
                    return (f"int{datatype[3:]}", 1.0, 0.0)
                raise HwbnnError(f"graph input {name!r} has datatype {datatype}; supported: "
                                 f"BIPOLAR, BINARY, TERNARY, UINT2..UINT8, INT2..INT8")
        return None

    def _input_act(self, raw: _Raw, encoding, scale, offset) -> _Act:
        """The network input: the graph input quantized (or declared) as ``encoding``."""
        self.input_encoding, self.input_shape = encoding, raw.logical
        return _Act(encoding, scale, offset, raw.index, raw.logical, 0)

    # -- helpers --------------------------------------------------------------------
    def value(self, name: str):
        if name not in self.env:
            raise _NodeError(f"input {name!r} is not produced by an earlier node (the graph "
                             f"must be topologically sorted)")
        return self.env[name]

    def constant(self, name: str, what: str) -> np.ndarray:
        value = self.value(name)
        if not isinstance(value, np.ndarray):
            raise _NodeError(f"{what} ({name!r}) must be a constant")
        return value

    def attributes(self, node) -> dict:
        try:
            attrs = {attr.name: self.onnx.helper.get_attribute_value(attr)
                     for attr in node.attribute}
            return {key: value.decode() if isinstance(value, bytes) else value
                    for key, value in attrs.items()}
        except (ValueError, TypeError) as error:  # unknown attribute type, bytes not UTF-8
            raise _NodeError(f"unreadable attribute ({error})") from None

    def append(self, layer, *reads: _Act) -> int:
        """Add an IR layer reading the activations ``reads``; returns the position of its
        output (``_Act.position``: 1 + its index, 0 being the network input)."""
        self.layers.append(layer)
        self.sources.append(tuple(act.position - 1 for act in reads))
        return len(self.layers)

    # -- main loop ------------------------------------------------------------------
    def run(self) -> None:
        self.load_constants()
        # Overflow, division by zero and NaN are errors naming the node, not numpy warnings.
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            for node in self.graph.node:
                try:
                    self.step(node)
                except (_NodeError, *_ARITHMETIC_ERRORS) as error:
                    raise HwbnnError(f"{_describe(node)}: {_reason(error)}") from None
            out_name = self.graph.output[0].name
            result = self.env.get(out_name)
            last = next((n for n in self.graph.node if out_name in n.output), None)
            where = "" if last is None else f" ({_describe(last)})"
            if not isinstance(result, _Pending):
                raise HwbnnError(f"graph output {out_name!r}{where} must be the accumulators of "
                                 f"a dense or conv layer (scores), not "
                                 f"{'an activation' if isinstance(result, _Act) else 'a constant'}")
            try:
                self.finish_scores(result)
            except (_NodeError, *_ARITHMETIC_ERRORS) as error:
                raise HwbnnError(f"output layer{where}: {_reason(error)}") from None

    def step(self, node) -> None:
        if node.domain not in STANDARD_DOMAINS + CUSTOM_DOMAINS:
            raise _NodeError(f"domain {node.domain!r} is not supported")
        handler = getattr(self, f"op_{node.op_type}", None)
        if handler is None:
            raise _NodeError("this operator is not in the supported QONNX subset (dense and "
                             "conv layers, BatchNorm, max and average pooling, residual "
                             "adds, sign/threshold activations)")
        low, high = ARITY[node.op_type]
        if not low <= len(node.input) <= high:
            expected = f"{low}" if low == high else f"{low} to {high}"
            raise _NodeError(f"has {len(node.input)} inputs, not {expected}")
        if len(node.output) < 1 or not node.output[0]:
            raise _NodeError("node has no output")
        if node.output[0] in self.env:
            raise _NodeError(f"output {node.output[0]!r} is already defined (every ONNX "
                             f"tensor is assigned once)")
        result = handler(node, self.attributes(node))
        _check_finite(result)
        self.env[node.output[0]] = result

    # -- constants and pass-through ---------------------------------------------------
    def op_Constant(self, node, attrs):
        if not isinstance(attrs.get("value"), self.onnx.TensorProto):
            raise _NodeError("only the 'value' attribute (a tensor) is supported")
        try:
            return self.tensor(attrs["value"], "the value")
        except HwbnnError as error:
            raise _NodeError(str(error)) from None

    def op_Identity(self, node, attrs):
        return self.value(node.input[0])

    def op_Dropout(self, node, attrs):
        return self.value(node.input[0])

    # -- quantizers -----------------------------------------------------------------
    def _quantizer_inputs(self, node) -> list:
        """The data input (None) and the constant parameters of a quantizer node."""
        return [None] + [self.constant(name, f"parameter input {index}")
                         for index, name in enumerate(node.input[1:], start=1)]

    def op_BipolarQuant(self, node, attrs):
        return self._quantize(node, attrs)

    def op_Quant(self, node, attrs):
        return self._quantize(node, attrs)

    def op_IntQuant(self, node, attrs):
        return self._quantize(node, attrs)

    def op_MultiThreshold(self, node, attrs):
        return self._quantize(node, attrs)

    def _quantize(self, node, attrs):
        x = self.value(node.input[0])
        constants = self._quantizer_inputs(node)
        if isinstance(x, np.ndarray):
            return self._quantize_constant(node, attrs, x.astype(np.float64), constants)
        if isinstance(x, _Raw):
            quant = _quantizer(node, attrs, constants, None)
            if quant.thresholds is not None:
                raise _NodeError("a MultiThreshold on the float graph input is not "
                                 "supported; quantize the input with Quant/BipolarQuant")
            # The network's input is this quantizer's output; the float steps before it
            # (Brevitas' 2x - 1) are recorded with it, so frames can be made the same way.
            self.input_quantizer = InputQuantizer(x.scale / quant.scale, x.offset / quant.scale,
                                                  quant.lo, quant.hi, quant.rounding)
            return self._input_act(x, quant.encoding, quant.scale, quant.offset)
        if not isinstance(x, _Pending | _Sum | _Act):
            raise _NodeError("a quantizer must take a constant, the input, a layer's output or "
                             "an activation")
        if isinstance(x, _Act):
            quant = _quantizer(node, attrs, constants, x.logical[-1])
            if not self._changes_values(x, quant):
                # Brevitas often repeats the previous quantizer (e.g. after pooling).
                return x
            if node.op_type != "MultiThreshold":
                raise _NodeError("re-quantizing an activation is only supported when it "
                                 "changes no value (a MultiThreshold on an activation is a "
                                 "threshold layer)")
        layout = _attr_str(attrs, "data_layout", "")
        if node.op_type == "MultiThreshold" and layout and layout.find("C") != 1:
            raise _NodeError(f"data_layout {layout!r}: thresholds must be applied to the "
                             f"channel axis 1")
        if isinstance(x, _Pending):
            return self.finish_layer(x, _quantizer(node, attrs, constants, x.channels))
        if isinstance(x, _Sum):
            return self.finish_add(x, _quantizer(node, attrs, constants, x.a.logical[-1]))
        return self.threshold_layer(x, quant)

    @staticmethod
    def _changes_values(act: _Act, quant: _Quantizer) -> bool:
        """Does ``quant`` change any value of the activation?"""
        if quant.levels < encoding_levels(act.encoding):
            return True  # fewer output values than input values (and no 2^16-value table)
        lo, hi = encoding_range(act.encoding)
        values = np.arange(lo, hi + 1)
        if act.encoding == "binary":
            values = np.array([-1, 1])
        x = act.scale * values + act.offset
        if quant.thresholds is not None:
            count = (x[None, :, None] >= quant.thresholds[:, None, :]).sum(axis=-1)
        else:
            count = quant.count(x)[None]
        out = quant.scale * values_from_threshold_count(quant.encoding, count) + quant.offset
        return not np.allclose(out, x[None], rtol=SCALE_TOLERANCE, atol=0)

    def threshold_layer(self, act: _Act, quant: _Quantizer) -> _Act:
        """A MultiThreshold on an activation: a threshold layer (in a residual network, the
        sign of the int8 path that feeds the next binary convolution)."""
        natural = nchw_index(act.logical) if len(act.logical) == 3 else np.arange(
            act.logical[0])
        if act.pad or not np.array_equal(act.index, natural):
            raise _NodeError("thresholds on an activation need it unpadded, in NCHW (or NC) "
                             "layout")
        if act.scale <= 0:
            raise _NodeError("thresholds on an activation need a positive activation scale")
        channels = act.logical[-1]
        quant, thresholds = _level_thresholds(quant, np.full(channels, act.scale),
                                              np.full(channels, act.offset),
                                              *encoding_range(act.encoding))
        layer = Threshold(f"threshold{len(self.layers)}", tuple(act.logical), act.encoding,
                          thresholds, quant.encoding)
        return _Act(quant.encoding, quant.scale, quant.offset, act.index, act.logical,
                    self.append(layer, act))

    def finish_add(self, total: _Sum, quant: _Quantizer | None = None,
                   clip: tuple[float, float] | None = None) -> _Act:
        """The IR add of a :class:`_Sum`, with the thresholds of ``quant`` or clipped to the
        encoding whose range the Clip bounds ``clip`` are."""
        a, b = total.a, total.b
        scales = _integer_scales([np.array([a.scale]), np.array([b.scale])])
        if scales is None or not ((scales >= 1) & (scales <= MAX_ADD_SCALE)).all():
            raise _NodeError(f"the scales {a.scale:g} and {b.scale:g} of the Add's inputs are "
                             f"not in the ratio of two integers 1..{MAX_ADD_SCALE}")
        unit, offset = a.scale / scales[0], a.offset + b.offset
        channels = a.logical[-1]
        layer = Add(f"add{len(self.layers)}", (INPUT, INPUT), tuple(a.logical),
                    (a.encoding, b.encoding), tuple(int(s) for s in scales), None, "")
        if quant is not None:
            quant, layer.thresholds = _level_thresholds(
                quant, np.full(channels, unit), np.full(channels, offset), *layer.acc_range)
            layer.out_encoding, scale, offset = quant.encoding, quant.scale, quant.offset
        else:
            bounds = (np.array(clip) - offset) / unit
            low, high = (int(v) for v in np.round(bounds))
            encoding = integer_encoding(low, high)
            if not (np.allclose(bounds, [low, high], rtol=SCALE_TOLERANCE, atol=SCALE_TOLERANCE)
                    and encoding_range(encoding) == (low, high)
                    and encoding_bits(encoding) <= MAX_SUM_BITS):
                raise _NodeError(f"Clip bounds {list(clip)} after the Add are not the range of "
                                 f"an integer encoding (uintN/intN up to {MAX_SUM_BITS} bits) "
                                 f"of its sum")
            layer.out_encoding, scale = encoding, unit
        return _Act(layer.out_encoding, scale, offset, a.index, a.logical,
                    self.append(layer, a, b))

    def _quantize_constant(self, node, attrs, x, constants) -> _QConst:
        if node.op_type == "MultiThreshold":
            raise _NodeError("thresholds applied to a constant are not supported")
        scale = _broadcasts(np.asarray(constants[1], dtype=np.float64), x.shape,
                            "the weight scale")
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise _NodeError("weight quantizer scales must be positive numbers")
        if node.op_type == "BipolarQuant":
            return _QConst(np.where(x >= 0, 1.0, -1.0), scale)
        zeropt = _broadcasts(np.asarray(constants[2], dtype=np.float64), x.shape,
                             "the zero point")
        bits = _bit_width(constants[3])
        if (zeropt != 0).any():
            raise _NodeError("weight quantizers with a nonzero zero point are not supported")
        signed, narrow = _attr_flag(attrs, "signed", 1), _attr_flag(attrs, "narrow", 0)
        if not signed:
            raise _NodeError("unsigned weights are not supported")
        if bits == 1:
            return _QConst(np.where(x >= 0, 1.0, -1.0), scale)
        lo = -(2 ** (bits - 1)) + int(narrow)
        hi = 2 ** (bits - 1) - 1
        values = _round(np.clip(x / scale, lo, hi), _attr_str(attrs, "rounding_mode", "ROUND"))
        return _QConst(values, scale, bits)

    # -- arithmetic -----------------------------------------------------------------
    def _binary_operands(self, node):
        if len(node.input) != 2:
            raise _NodeError("expects two inputs")
        return self.value(node.input[0]), self.value(node.input[1])

    def op_Mul(self, node, attrs):
        return self._arith(node, np.multiply)

    def op_Div(self, node, attrs):
        return self._arith(node, np.divide)

    def op_Add(self, node, attrs):
        return self._arith(node, np.add)

    def op_Sub(self, node, attrs):
        return self._arith(node, np.subtract)

    # -- plain torch activations (torch.onnx.export of sign, where, hardtanh) ---------
    def op_Sign(self, node, attrs):
        x = self.value(node.input[0])
        if isinstance(x, np.ndarray):
            return np.sign(x.astype(np.float64))
        if not isinstance(x, _Pending):
            raise _NodeError("Sign must follow a MatMul/Gemm/Conv (it becomes its thresholds)")
        # sign(y) = [y >= 0] + [y > 0] - 1: ternary, binary where y = 0 is unreachable.
        quant = _Quantizer("ternary", 1.0, 0.0, 2,
                           lambda y: (y >= 0).astype(np.int64) + (y > 0).astype(np.int64),
                           sign=True)
        return self.finish_layer(x, quant)

    def op_Clip(self, node, attrs):
        x = self.value(node.input[0])
        bounds = [-np.inf, np.inf]
        for index, name in enumerate(node.input[1:3]):
            if name:
                bounds[index] = _scalar(self.constant(name, "a Clip bound"), "a Clip bound")
        if isinstance(x, np.ndarray):
            return np.clip(x.astype(np.float64), *bounds)
        if isinstance(x, _Sum):
            if not all(math.isfinite(bound) for bound in bounds):
                raise _NodeError("a Clip after an Add needs both bounds")
            return self.finish_add(x, clip=(bounds[0], bounds[1]))
        if not isinstance(x, _Pending) or x.clip is not None:
            raise _NodeError("Clip (hardtanh) must follow a MatMul/Gemm/Conv and come before "
                             "its quantizer")
        if not bounds[0] < bounds[1]:
            raise _NodeError(f"Clip bounds {bounds} are empty")
        return replace(x, clip=(bounds[0], bounds[1]))

    def op_GreaterOrEqual(self, node, attrs):
        return self._compare(node, strict=False)

    def op_Greater(self, node, attrs):
        return self._compare(node, strict=True)

    def _compare(self, node, strict: bool):
        a, b = self._binary_operands(node)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            op = np.greater if strict else np.greater_equal
            return _fold(op, a.astype(np.float64), b.astype(np.float64))
        if not isinstance(a, _Pending) or not isinstance(b, np.ndarray):
            raise _NodeError("only a MatMul/Gemm/Conv output compared with a constant is "
                             "supported (y >= t)")
        return _Cmp(a, _scalar(b, "the comparison threshold"), strict)

    def op_Where(self, node, attrs):
        cond, high, low = (self.value(name) for name in node.input)
        if all(isinstance(v, np.ndarray) for v in (cond, high, low)):
            return _fold(np.where, cond.astype(bool), high.astype(np.float64),
                         low.astype(np.float64))
        if not isinstance(cond, _Cmp):
            raise _NodeError("only Where(y >= t, a, b) on a MatMul/Gemm/Conv output y is "
                             "supported")
        high = _scalar(self.constant(node.input[1], "the value where true"), "the true value")
        low = _scalar(self.constant(node.input[2], "the value where false"), "the false value")
        if high == low:
            raise _NodeError("both values are equal: the activation is a constant")
        threshold, strict = cond.threshold, cond.strict

        def count(y):
            return (y > threshold if strict else y >= threshold).astype(np.int64)

        # a where passed, b elsewhere: binary v = +1/-1 as (a - b) / 2 * v + (a + b) / 2.
        quant = _Quantizer("binary", (high - low) / 2, (high + low) / 2, 1, count)
        return self.finish_layer(cond.pending, quant)

    def op_Pow(self, node, attrs):
        # Constants only: Brevitas' TorchScript export of TensorNorm computes
        # (running_var + eps) ** 0.5 as a node.
        base = self.constant(node.input[0], "the base").astype(np.float64)
        exponent = self.constant(node.input[1], "the exponent").astype(np.float64)
        return _fold(np.power, base, exponent)

    def op_Sqrt(self, node, attrs):
        return _fold(np.sqrt, self.constant(node.input[0], "the input").astype(np.float64))

    def _arith(self, node, op):
        a, b = self._binary_operands(node)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return _fold(op, a.astype(np.float64), b.astype(np.float64))  # no integer wrap
        if op in (np.add, np.multiply) and isinstance(a, np.ndarray):
            a, b = b, a
        if op is np.subtract and isinstance(a, _Act) and isinstance(b, _Pending):
            return _SteDifference(a, b)
        if op is np.add and isinstance(b, _Pending) and isinstance(a, _SteDifference):
            a, b = b, a
        if op is np.add and isinstance(b, _SteDifference):
            if b.pending is not a:
                raise _NodeError("a straight-through y + (q - y) must add back the same y")
            return b.act
        if op is np.add and isinstance(a, _Act) and isinstance(b, _Act):
            return self._join(a, b)
        if any(isinstance(v, _Pending) and v.clip is not None for v in (a, b)):
            raise _NodeError("only a quantizer may follow a Clip (hardtanh)")
        if isinstance(a, _Pending) and isinstance(b, _Pending) and op in (np.add, np.subtract):
            return self._merge(a, b, -1.0 if op is np.subtract else 1.0)
        if isinstance(a, np.ndarray) and isinstance(b, _Raw) and op is np.subtract:
            return self._raw_affine(b, -1.0, _scalar(a, "a constant on the float input"))
        if not isinstance(b, np.ndarray):
            raise _NodeError("a constant minus or divided by data is not supported"
                             if isinstance(a, np.ndarray) else
                             "both inputs are computed from the data; only the bit planes of "
                             "one layer (same input, same weight shape) can be summed")
        b = b.astype(np.float64)
        if isinstance(a, _QConst):
            if op in (np.add, np.subtract):
                raise _NodeError("adding to quantized weights is not supported")
            _broadcasts(b, a.values.shape, "a factor on weights")
            if op is np.multiply and np.isin(b, (0.0, 1.0)).all():
                return replace(a, values=a.values * b)
            return replace(a, scale=op(a.scale, b))
        if isinstance(a, _Act):
            if op in (np.add, np.subtract):
                raise _NodeError("adding a constant to a quantized activation is not "
                                 "supported")
            factor = _scalar(b, "a factor on an activation")
            factor = factor if op is np.multiply else 1.0 / factor
            if not factor > 0:
                raise _NodeError(f"an activation may only be scaled by a positive number, "
                                 f"not {factor}")
            return replace(a, scale=a.scale * factor, offset=a.offset * factor)
        if isinstance(a, _Pending):
            vector = self._per_channel(a, b)
            if op in (np.add, np.subtract):
                return replace(a, bias=op(a.bias, vector))
            factor = vector if op is np.multiply else 1.0 / vector
            self._check_pool_order(a, factor)
            return replace(a, bias=a.bias * factor,
                           terms=[replace(t, scale=t.scale * factor) for t in a.terms])
        if isinstance(a, _Raw):
            constant = _scalar(b, "a constant on the float input (one number for all "
                                  "elements)")
            if op in (np.add, np.subtract):
                return self._raw_affine(a, 1.0, constant if op is np.add else -constant)
            if constant == 0:
                raise _NodeError("the float input is multiplied or divided by zero")
            return self._raw_affine(a, constant if op is np.multiply else 1.0 / constant, 0.0)
        raise _NodeError(f"unsupported operands ({type(a).__name__}, {type(b).__name__})")

    @staticmethod
    def _join(a: _Act, b: _Act) -> _Sum:
        """``a + b`` of two activations: a residual join (elementwise, no broadcasting)."""
        if a.index.shape != b.index.shape or a.logical != b.logical:
            raise _NodeError(f"an Add of activations of different shapes {a.index.shape} and "
                             f"{b.index.shape} is not supported (no broadcasting)")
        if not np.array_equal(a.index, b.index):
            raise _NodeError("an Add of activations in different layouts is not supported")
        if a.pad or b.pad:
            raise _NodeError("a padded activation must feed a convolution")
        if not (a.scale > 0 and b.scale > 0):
            raise _NodeError("an Add of activations needs positive activation scales")
        return _Sum(a, b)

    @staticmethod
    def _raw_affine(raw: _Raw, factor: float, constant: float) -> _Raw:
        """``factor * (raw) + constant`` on the float input before its quantizer (Brevitas'
        ``2x - 1``): it becomes part of the input quantizer."""
        return replace(raw, scale=raw.scale * factor, offset=raw.offset * factor + constant)

    @staticmethod
    def _per_channel(pending: _Pending, constant: np.ndarray) -> np.ndarray:
        """A constant broadcast over a layer output: one value per channel (axis 1)."""
        shape = (1, pending.channels) + (() if pending.kind == "matvec" else
                                         tuple(pending.out_logical[:2]))
        try:
            full = np.broadcast_to(constant, shape)
        except ValueError:
            raise _NodeError(f"constant of shape {constant.shape} does not broadcast to "
                             f"the layer output {shape}") from None
        rows = full.reshape(pending.channels, -1)
        if not (rows == rows[:, :1]).all():
            raise _NodeError("a constant that varies over pixels cannot be folded into "
                             "per-channel thresholds")
        return rows[:, 0].astype(np.float64)

    @staticmethod
    def _check_pool_order(pending: _Pending, factor: np.ndarray) -> None:
        # Pooling before a monotone quantizer equals pooling after it, but a negative factor
        # between the pool and the quantizer would turn max pooling into min pooling.
        if pending.pool is not None and (factor < 0).any():
            raise _NodeError("a negative scale after max pooling (before the activation) "
                             "would turn it into min pooling")

    def _merge(self, a: _Pending, b: _Pending, sign: float) -> _Pending:
        same = (a.source is b.source and a.kind == b.kind and a.kernel == b.kernel
                and a.padding == b.padding and a.stride == b.stride and a.channels == b.channels
                and a.pool is None and b.pool is None)
        if not same:
            raise _NodeError("only products of the same input with weights of the same "
                             "shape can be summed (the bit planes of one layer)")
        terms = a.terms + [replace(t, scale=t.scale * sign) for t in b.terms]
        return replace(a, terms=terms, bias=a.bias + sign * b.bias)

    # -- layers ---------------------------------------------------------------------
    def _weights(self, name: str, out_axis: int) -> _QConst:
        """Weights as integers times a scale; ``out_axis`` is the output-channel axis."""
        value = self.value(name)
        if isinstance(value, np.ndarray):
            value = value.astype(np.float64)
            value = _QConst(value, np.ones(())) if _is_integer(value) else _scaled_signs(
                value, out_axis, name)
        if not isinstance(value, _QConst):
            raise _NodeError(f"weights {name!r} must be a constant, quantized or integer")
        if not _is_integer(value.values):
            raise _NodeError(f"weights {name!r} are not integers after quantization")
        if value.values.size == 0:
            raise _NodeError(f"weights {name!r} are empty")
        if np.abs(value.values).max() > MAX_INTEGER_WEIGHT:
            raise _NodeError(f"weights {name!r} are integers beyond +-{MAX_INTEGER_WEIGHT}")
        return value

    def _activation(self, name: str, what: str) -> _Act:
        value = self.value(name)
        if not isinstance(value, _Act):
            kind = ("the float graph input (quantize it in the graph, or declare its "
                    "integer encoding: input_encoding)") if isinstance(
                value, _Raw) else "not a quantized activation"
            raise _NodeError(f"{what} {name!r} is {kind}")
        return value

    @staticmethod
    def _output_scale(weights: _QConst, axis: int) -> np.ndarray:
        """Per-output-channel scale (``axis`` = output channels); constant over inputs."""
        full = np.broadcast_to(weights.scale, weights.values.shape)
        rows = np.moveaxis(full, axis, 0).reshape(full.shape[axis], -1)
        if not (rows == rows[:, :1]).all():
            raise _NodeError("a weight scale that varies along the input channels is not "
                             "supported")
        return rows[:, 0].astype(np.float64)

    def _start(self, act: _Act, matrix: np.ndarray, scale: np.ndarray, kind: str,
               bits: int | None = None, **geometry) -> _Pending:
        """A pending layer ``scale * (matrix @ (act.scale * v + act.offset))``; ``bits``: the
        weight quantizer's bit width, where one stated it."""
        if act.pad and kind != "conv":
            raise _NodeError("a padded activation must feed a convolution")
        bias = scale * act.offset * matrix.sum(axis=1)
        term = _Term(matrix.astype(np.int64), scale * act.scale, bits)
        return _Pending(act, kind, [term], bias, **geometry)

    def _dense(self, act: _Act, weights: _QConst, where: str) -> _Pending:
        if act.index.ndim != 1:
            raise _NodeError(f"{where} input has shape {act.index.shape} (without batch); "
                             f"flatten it first")
        if weights.values.ndim != 2 or weights.values.shape[0] != act.index.size:
            raise _NodeError(f"weights of shape {weights.values.shape} do not fit "
                             f"{act.index.size} inputs")
        matrix = np.zeros((weights.values.shape[1], act.index.size), dtype=np.int64)
        matrix[:, act.index] = weights.values.T.astype(np.int64)
        return self._start(act, matrix, self._output_scale(weights, 1), "matvec", weights.bits)

    def op_MatMul(self, node, attrs):
        act = self._activation(node.input[0], "MatMul input")
        return self._dense(act, self._weights(node.input[1], 1), "MatMul")

    def op_Gemm(self, node, attrs):
        if _attr_flag(attrs, "transA", 0):
            raise _NodeError("transA=1 is not supported")
        act = self._activation(node.input[0], "Gemm input")
        weights = self._weights(node.input[1], 0 if _attr_flag(attrs, "transB", 0) else 1)
        if _attr_flag(attrs, "transB", 0):
            weights = replace(weights, values=weights.values.T,
                              scale=np.broadcast_to(weights.scale, weights.values.shape).T)
        alpha, beta = _attr_float(attrs, "alpha", 1.0), _attr_float(attrs, "beta", 1.0)
        pending = self._dense(act, weights, "Gemm")
        pending = replace(pending, bias=pending.bias * alpha,
                          terms=[replace(t, scale=t.scale * alpha) for t in pending.terms])
        if len(node.input) > 2 and node.input[2]:
            bias = self.constant(node.input[2], "the Gemm bias C").astype(np.float64)
            pending.bias = pending.bias + beta * self._per_channel(pending, bias)
        return pending

    def op_XnorPopcountMatMul(self, node, attrs):
        act = self._activation(node.input[0], "XnorPopcountMatMul input")
        if act.encoding != "binary" or (act.scale, act.offset) != (0.5, 0.5):
            raise _NodeError("the input must hold binary activations as 0/1")
        weights = self._weights(node.input[1], 1)
        if not np.isin(weights.values * np.broadcast_to(weights.scale, weights.values.shape),
                       (0, 1)).all():
            raise _NodeError("XnorPopcountMatMul weights must be 0/1")
        bipolar = _QConst(2 * weights.values * weights.scale - 1, np.ones(()))
        # popcount(xnor(a, w)) = (v . (2w - 1) + K) / 2 for a = (v + 1) / 2, K the fan-in
        pending = self._dense(replace(act, offset=0.0), bipolar, "XnorPopcountMatMul")
        pending.bias = pending.bias + act.index.size / 2
        return pending

    def op_Conv(self, node, attrs):
        act = self._activation(node.input[0], "Conv input")
        weights = self._weights(node.input[1], 0)
        if act.index.ndim != 3 or not np.array_equal(act.index, nchw_index(act.logical)):
            raise _NodeError("the input must be an NCHW feature map")
        if weights.values.ndim != 4:
            raise _NodeError(f"weights must be 4-D (OC, IC, KH, KW), not "
                             f"{weights.values.shape}")
        oc, ic, kh, kw = weights.values.shape
        pads = _attr_ints(attrs, "pads", [0, 0, 0, 0])
        if _attr_int(attrs, "group", 1) != 1 or kh != kw or ic != act.logical[2]:
            raise _NodeError(f"only square, ungrouped kernels over all {act.logical[2]} input "
                             f"channels are supported, not {oc}x{ic}x{kh}x{kw}")
        stride = _square_stride(attrs)
        if any(d != 1 for d in _attr_ints(attrs, "dilations", [1, 1])):
            raise _NodeError("only dilation 1 is supported")
        if _attr_str(attrs, "auto_pad", "NOTSET") != "NOTSET":
            raise _NodeError("auto_pad is not supported; give explicit pads")
        if len(set(pads)) != 1:
            raise _NodeError(f"pads {pads} must be equal on all sides")
        padding = act.pad
        if pads[0]:
            if act.pad:
                raise _NodeError("padding both in a Pad node and in the Conv")
            if act.scale * pad_value(act.encoding) + act.offset != 0:
                raise _NodeError(f"Conv pads with 0, but a {act.encoding} input pads with "
                                 f"{pad_value(act.encoding)}: pad with an explicit Pad node")
            padding = pads[0]
        matrix = weights.values.transpose(0, 2, 3, 1).reshape(oc, -1)
        pending = self._start(act, matrix, self._output_scale(weights, 0), "conv",
                              weights.bits, kernel=kh, padding=padding, stride=stride)
        if min(pending.out_logical[:2]) < 1:
            raise _NodeError(f"kernel {kh} does not fit the {act.logical[0]}x"
                             f"{act.logical[1]} input")
        if len(node.input) > 2 and node.input[2]:
            bias = self.constant(node.input[2], "the Conv bias").astype(np.float64)
            pending.bias = pending.bias + self._per_channel(pending, bias.reshape(1, -1, 1, 1))
        return pending

    def op_Pad(self, node, attrs):
        act = self._activation(node.input[0], "Pad input")
        if _attr_str(attrs, "mode", "constant") != "constant":
            raise _NodeError("only constant padding is supported")
        if act.index.ndim != 3 or not np.array_equal(act.index, nchw_index(act.logical)):
            raise _NodeError("only NCHW feature maps can be padded")
        if len(node.input) < 2 or "pads" in attrs:
            raise _NodeError("pads must be given as an input (opset >= 11)")
        if len(node.input) > 3 and node.input[3]:
            raise _NodeError("the axes input is not supported")
        pads = _integers(self.constant(node.input[1], "pads"), "pads")
        fill = 0.0
        if len(node.input) > 2 and node.input[2]:
            fill = _scalar(self.constant(node.input[2], "the pad value"), "the pad value")
        if len(pads) != 8 or pads[:2] != [0, 0] or pads[4:6] != [0, 0] or len(
                set(pads[2:4] + pads[6:8])) != 1:
            raise _NodeError(f"pads {pads} must pad H and W equally on all sides")
        if pads[2] < 0:
            raise _NodeError(f"pads {pads} must not be negative")
        expected = act.scale * pad_value(act.encoding) + act.offset
        if fill != expected:
            raise _NodeError(f"pad value {fill} differs from {expected}, the padding value "
                             f"of a {act.encoding} activation")
        if act.pad:
            raise _NodeError("padding an activation twice is not supported")
        return replace(act, pad=pads[2])

    def op_BatchNormalization(self, node, attrs):
        x = self.value(node.input[0])
        if not isinstance(x, _Pending) or x.clip is not None:
            raise _NodeError("BatchNormalization must follow a MatMul/Gemm/Conv (it is "
                             "folded into the thresholds)")
        if _attr_flag(attrs, "training_mode", 0):
            raise _NodeError("training_mode=1 is not supported")
        gamma, beta, mean, var = (self.constant(name, what).astype(np.float64).reshape(-1)
                                  for name, what in zip(node.input[1:5],
                                                        ("scale", "B", "mean", "var"),
                                                        strict=True))
        if not all(len(v) == x.channels for v in (gamma, beta, mean, var)):
            raise _NodeError(f"parameters must have {x.channels} channels")
        epsilon = _attr_float(attrs, "epsilon", 1e-5)
        if not (var + epsilon > 0).all():
            raise _NodeError("var + epsilon must be positive")
        factor = gamma / np.sqrt(var + epsilon)
        self._check_pool_order(x, factor)
        return replace(x, bias=(x.bias - mean) * factor + beta,
                       terms=[replace(t, scale=t.scale * factor) for t in x.terms])

    @staticmethod
    def _pool_params(node, attrs) -> tuple[int, int]:
        """Kernel and stride of a square pooling window without padding."""
        kernel = _attr_ints(attrs, "kernel_shape", [])
        if len(node.output) > 1 and node.output[1]:
            raise _NodeError("the Indices output is not supported")
        if len(kernel) != 2 or kernel[0] != kernel[1] or kernel[0] < 1:
            raise _NodeError(f"kernel_shape {kernel} must be square and positive")
        stride = _square_stride(attrs)
        if any(_attr_ints(attrs, "pads", [0, 0, 0, 0])) or _attr_int(
                attrs, "ceil_mode", 0) or any(d != 1 for d in _attr_ints(attrs, "dilations",
                                                                         [1, 1])):
            raise _NodeError("pads, ceil_mode and dilations are not supported")
        if _attr_str(attrs, "auto_pad", "NOTSET") != "NOTSET":
            raise _NodeError("auto_pad is not supported")
        return kernel[0], stride

    def op_MaxPool(self, node, attrs):
        return self._maxpool(node, attrs, nchw_index)

    def op_MaxPoolNHWC(self, node, attrs):
        return self._maxpool(node, attrs, nhwc_index)

    def _maxpool(self, node, attrs, layout):
        kernel, stride = self._pool_params(node, attrs)
        if stride != kernel:
            raise _NodeError("stride must equal the kernel size")
        x = self.value(node.input[0])
        if isinstance(x, _Pending):
            # Quantizers are monotone, so pooling the affine accumulator before them equals
            # pooling the activations after them: the pool moves behind the threshold.
            if x.kind != "conv" or x.pool is not None or layout is not nchw_index:
                raise _NodeError("max pooling before the activation needs a Conv output "
                                 "in NCHW")
            return replace(x, pool=kernel)
        return self._emit_pool(self._feature_map(node, layout), kernel, layout)

    def _feature_map(self, node, layout=nchw_index) -> _Act:
        """The unpadded activation, in ``layout``, that a pooling node reads."""
        act = self._activation(node.input[0], f"{node.op_type} input")
        if act.index.ndim != 3 or not np.array_equal(act.index, layout(act.logical)):
            raise _NodeError("the input layout does not match the pooling operator")
        if act.pad:
            raise _NodeError("pooling a padded activation is not supported")
        return act

    def op_AveragePool(self, node, attrs):
        kernel, stride = self._pool_params(node, attrs)
        act = self._feature_map(node)
        name = f"pool{len(self.layers)}"
        return self._emit_sum(act, AvgPool(name, tuple(act.logical), kernel, stride,
                                           act.encoding))

    def op_GlobalAveragePool(self, node, attrs):
        act = self._feature_map(node)
        return self._emit_sum(act, GlobalAvgPool(f"gap{len(self.layers)}", tuple(act.logical),
                                                 act.encoding))

    def _emit_sum(self, act: _Act, pool: AvgPool | GlobalAvgPool) -> _Act:
        """An average pool as the IR's window sums: the mean is ``scale / window`` times the
        sum (plus the offset), so the activation's scale carries the division (the ``Mul``
        by the window that hwbnn's export writes after the pool restores it)."""
        if min(pool.out_shape[:2]) < 1:
            raise _NodeError(f"the pooling window does not fit {act.logical}")
        if encoding_bits(pool.out_encoding) > MAX_SUM_BITS:
            raise _NodeError(f"a sum of {pool.window} {act.encoding} values needs "
                             f"{pool.out_encoding}, more than {MAX_SUM_BITS} bits")
        return _Act(pool.out_encoding, act.scale / pool.window, act.offset,
                    nchw_index(pool.out_shape), pool.out_shape, self.append(pool, act))

    def op_Round(self, node, attrs):
        x = self.value(node.input[0])
        if isinstance(x, np.ndarray):
            return np.round(x.astype(np.float64))  # half to even, as ONNX
        if isinstance(x, _Act):
            # scale * v + offset with v, scale and offset integers is integer: Round keeps it
            # (and removes the float rounding of a mean times its window).
            scale, offset = round(x.scale), round(x.offset)
            if scale > 0 and np.allclose([x.scale, x.offset], [scale, offset],
                                         rtol=SCALE_TOLERANCE, atol=SCALE_TOLERANCE):
                return replace(x, scale=float(scale), offset=float(offset))
        raise _NodeError("Round is only supported on constants and on activations whose "
                         "values are integers (the window sums of an average pool)")

    def _emit_pool(self, act: _Act, kernel: int, layout) -> _Act:
        if act.scale <= 0:
            raise _NodeError("max pooling needs a positive activation scale")
        name = f"pool{len(self.layers)}"
        pool = MaxPool(name, tuple(act.logical), kernel, act.encoding)
        if min(pool.out_shape[:2]) < 1:
            raise _NodeError(f"pool kernel {kernel} does not fit {act.logical}")
        return _Act(act.encoding, act.scale, act.offset, layout(pool.out_shape),
                    pool.out_shape, self.append(pool, act))

    # -- layout ---------------------------------------------------------------------
    @staticmethod
    def _reindexable(x) -> bool:
        """Activations and the raw input are permuted by moving their index map (a padded
        activation is not: its padding lives in the next convolution)."""
        return isinstance(x, _Raw) or (isinstance(x, _Act) and not x.pad)

    def op_Transpose(self, node, attrs):
        x = self.value(node.input[0])
        perm = _attr_ints(attrs, "perm", [])
        if perm and sorted(perm) != list(range(len(perm))):
            raise _NodeError(f"perm {perm} is not a permutation of the axes")
        if isinstance(x, np.ndarray):
            return _fold(np.transpose, x, perm or None)
        if isinstance(x, _QConst):
            full = np.broadcast_to(x.scale, x.values.shape)
            return replace(x, values=_fold(np.transpose, x.values, perm or None),
                           scale=_fold(np.transpose, full, perm or None))
        if self._reindexable(x):
            if not perm or perm[0] != 0:
                raise _NodeError(f"perm {perm} must keep the batch axis first")
            return replace(x, index=_fold(np.transpose, x.index, [p - 1 for p in perm[1:]]))
        raise _NodeError("only constants, the input and unpadded activations can be "
                         "transposed")

    def op_Flatten(self, node, attrs):
        x = self.value(node.input[0])
        axis = _attr_int(attrs, "axis", 1)
        if isinstance(x, np.ndarray):
            return _fold(lambda a: a.reshape(math.prod(a.shape[:axis]), -1), x)
        if self._reindexable(x):
            if axis != 1:
                raise _NodeError(f"axis {axis}: only axis 1 (keep the batch) is supported")
            return replace(x, index=x.index.reshape(-1))
        raise _NodeError("only constants, the input and unpadded activations can be "
                         "flattened")

    def op_Reshape(self, node, attrs):
        x = self.value(node.input[0])
        target = _integers(self.constant(node.input[1], "the shape"), "the shape")
        if _attr_flag(attrs, "allowzero", 0) and 0 in target:
            raise _NodeError(f"shape {target} with allowzero=1 has an empty axis")
        if isinstance(x, np.ndarray):
            return _fold(lambda a: a.reshape([d if d != 0 else a.shape[i]
                                              for i, d in enumerate(target)]), x)
        if isinstance(x, _QConst):
            full = np.broadcast_to(x.scale, x.values.shape)
            return replace(x, values=_fold(np.reshape, x.values, target),
                           scale=_fold(np.reshape, full, target))
        if not self._reindexable(x):
            raise _NodeError("only constants, the input and unpadded activations can be "
                             "reshaped")
        # The batch axis (first) is the graph's own; the rest reorders one frame's features.
        rest = [x.index.shape[i] if d == 0 and i < x.index.ndim else d
                for i, d in enumerate(target[1:])]
        try:
            index = x.index.reshape(rest)
        except (ValueError, TypeError):
            raise _NodeError(f"shape {target} does not keep the batch axis and the "
                             f"{x.index.size} features per frame") from None
        return replace(x, index=index)

    # -- finishing layers ---------------------------------------------------------------
    def _weights_and_unit(self, pending: _Pending):
        if len(pending.terms) == 1:
            return _single_term_weights(pending.terms[0], self._hinted_weight_kind())
        return _plane_weights(pending.terms)

    def _hinted_weight_kind(self) -> str | None:
        """The weight kind hwbnn's export recorded for the next layer (None: no record). A
        residual layer whose weights all use one plane reads like binary weights otherwise,
        and integer weights of small values like ternary or residual ones."""
        layers, index = self.hints.layers, len(self.layers)
        kind = layers[index].get("weight_kind") if layers and index < len(layers) else None
        return kind if isinstance(kind, str) else None

    def _layer(self, pending: _Pending, weights: Weights, thresholds, out_encoding):
        index = len(self.layers)
        name = f"{'dense' if pending.kind == 'matvec' else 'conv'}{index}"
        acc_range = accumulator_range(weights.values(), pending.source.encoding)
        common = dict(name=name, in_encoding=pending.source.encoding, weights=weights,
                      thresholds=thresholds, out_encoding=out_encoding, acc_range=acc_range,
                      acc_width=accumulator_width(acc_range, thresholds))
        if pending.kind == "matvec":
            return MatVec(**common)
        return Conv(**common, in_shape=tuple(pending.source.logical), kernel=pending.kernel,
                    padding=pending.padding, stride=pending.stride)

    def finish_layer(self, pending: _Pending, quant: _Quantizer) -> _Act:
        weights, unit = self._weights_and_unit(pending)
        bias = pending.bias.copy()
        flip = unit < 0
        if flip.any():
            weights = _flip_rows(weights, flip)
            unit = np.abs(unit)
        lo, hi = accumulator_range(weights.values(), pending.source.encoding)
        count = None
        if pending.clip is not None:
            if quant.thresholds is not None:
                raise _NodeError("thresholds after a Clip are not supported")
            low, high = pending.clip

            def count(x):
                return quant.count(np.clip(x, low, high))
        quant, thresholds = _level_thresholds(quant, unit, bias, lo, hi, count)
        position = self.append(self._layer(pending, weights, thresholds, quant.encoding),
                               pending.source)
        out = pending.out_logical
        index = np.arange(out[0]) if pending.kind == "matvec" else nchw_index(out)
        act = _Act(quant.encoding, quant.scale, quant.offset, index, out, position)
        if pending.pool is not None:
            if quant.scale <= 0:
                raise _NodeError("max pooling needs a positive activation scale")
            act = self._emit_pool(act, pending.pool, nchw_index)
        return act

    def finish_scores(self, pending: _Pending) -> None:
        """The last layer: raw integer accumulators. Raises _NodeError; the caller names the
        output layer."""
        if pending.pool is not None or pending.clip is not None:
            raise _NodeError("the network must end with a dense/conv layer, not "
                             f"{'pooling' if pending.pool is not None else 'a Clip'}")
        weights, unit = self._weights_and_unit(pending)
        if not (_close(unit, unit[0]) and unit[0] != 0):
            raise _NodeError("per-class scales of the scores differ or are zero; hwbnn scores "
                             "are the integer accumulators, so the classes must share one "
                             "scale")
        if unit[0] < 0:
            # One negative scale for all classes (e.g. a TensorNorm with a negative weight):
            # negated rows make it positive, as for thresholds.
            weights = _flip_rows(weights, np.ones(len(unit), dtype=bool))
        # What remains, one positive scale and one offset shared by all classes (Brevitas'
        # TensorNorm, a temperature), changes no argmax and is dropped.
        if not np.allclose(pending.bias, pending.bias[0], rtol=SCALE_TOLERANCE,
                           atol=SCALE_TOLERANCE * float(np.abs(unit[0]))):
            raise _NodeError("per-class biases of the scores differ; hwbnn scores are bare "
                             "integer accumulators with no per-class offset, so they cannot "
                             "be kept")
        self.append(self._layer(pending, weights, None, None), pending.source)

    def network(self, name: str | None, default: str) -> NetworkIR:
        hints = self.hints
        layers = self.layers
        named = [False] * len(layers)
        if hints.layers is not None and len(hints.layers) == len(layers):
            for index, (layer, hint) in enumerate(zip(layers, hints.layers, strict=True)):
                if isinstance(hint.get("name"), str):
                    layer.name = hint["name"]
                if isinstance(layer, MatVec | Conv):
                    for key in ("pe", "simd"):
                        if hint.get(key) is None or type(hint.get(key)) is int:
                            setattr(layer, key, hint.get(key))
                named[index] = hint.get("named_inputs") is True
        # A layer that reads anything but the previous layer names its inputs (a graph);
        # so does one whose export recorded named inputs. A chain names none (version 1).
        for index, (layer, sources) in enumerate(zip(layers, self.sources, strict=True)):
            if named[index] or sources != (index - 1,):
                layer.inputs = tuple(INPUT if source < 0 else layers[source].name
                                     for source in sources)
        metadata = hints.metadata if hints.metadata is not None else {
            "imported_from": "qonnx", "producer": self.model.producer_name or "unknown"}
        quantizer = self.input_quantizer
        if quantizer is not None and not quantizer.is_identity(self.input_encoding):
            metadata = {**metadata, "input_quantizer": self.input_quantizer.to_json()}
        net = NetworkIR(name or hints.name or default, tuple(self.input_shape), self.input_encoding,
                        layers, metadata)
        return net.validate()


def _flip_rows(weights: Weights, rows: np.ndarray) -> Weights:
    """Negate the weights of the selected output rows."""
    planes = weights.planes.copy()
    if weights.kind == "ternary":
        planes[1, rows] = planes[0, rows] & (1 - planes[1, rows])
        return Weights("ternary", planes)
    if weights.kind == "binary":
        planes[:, rows] = 1 - planes[:, rows]
        return Weights("binary", planes)
    if weights.kind == "integer":
        values = weights.values()
        values[rows] *= -1
        try:
            return Weights.integer(values, len(planes))
        except HwbnnError as error:  # -2^(b-1) has no b-bit negation
            raise _NodeError(f"negating rows for a negative scale: {error}") from None
    used = np.arange(planes.shape[0])[:, None, None] < weights.bitwidth[None]
    flipped = (1 - planes) & used
    planes[:, rows] = flipped[:, rows]
    return Weights("residual", planes, weights.bitwidth, weights.scales)


def import_qonnx(source, name: str | None = None, *, input_encoding: str | None = None,
                 input_scale: float = 1.0) -> NetworkIR:
    """Import a QONNX graph (a ``ModelProto`` or a path) as a validated NetworkIR.

    ``name`` defaults to the name hwbnn's export recorded, else the file's stem. A graph
    whose float input feeds its first layer without a quantizer (a plain torch model) needs
    ``input_encoding``: the graph input is then ``input_scale`` times integer frames of that
    encoding (e.g. ``"uint5"`` and ``1/16`` for digits pixels scaled to [0, 1]).
    """
    onnx = _onnx()
    declared = None
    if input_encoding is not None:
        validate_encoding(input_encoding, "input_encoding")
        if is_signed_int(input_encoding):  # the importer's input steps assume unsigned codes
            raise HwbnnError(f"input_encoding must be binary, ternary or uint2..uint8 for an "
                             f"import, not {input_encoding!r}")
        if type(input_scale) not in (int, float) or not (math.isfinite(input_scale)
                                                         and input_scale > 0):
            raise HwbnnError(f"input_scale must be a positive number, not {input_scale!r}")
        declared = (input_encoding, float(input_scale))
    if isinstance(source, str | Path):
        from .qonnx import load_onnx

        default = Path(source).stem
        model = load_onnx(source)
    else:
        default, model = "imported", source
    importer = _Importer(model, onnx, declared)
    importer.run()
    if not any(not isinstance(layer, MaxPool) for layer in importer.layers):
        raise HwbnnError("the graph holds no dense or conv layer")
    return importer.network(name, default)
