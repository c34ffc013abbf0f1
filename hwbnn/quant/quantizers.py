"""Quantizers in three tiers (the Larq way): STE functions, quantizer modules, layers.

Activation quantizers turn a real pre-activation ``y`` into integer values by counting
passed levels (the same rule the IR's thresholds follow, so export is exact):

* binary:  +1 if y >= 0 else -1                       (levels: 0)
* ternary: count(y >= -0.5, y >= 0.5) - 1             (levels: -0.5, +0.5)
* uintN:   count(y >= k - 0.5 for k = 1..2^N-1)       (round half up, clamped)
* intN:    count(y >= k - 0.5 for k = -2^(N-1)+1..2^(N-1)-1) - 2^(N-1)
           (round half up, clamped to the signed range: the clipped 8-bit path of a
           residual network, with a power-of-two ``step``: levels and values times ``step``)

Weight quantizers return a :class:`QuantizedWeight`: integer values and one positive float
scale per layer, ``w_q = scale * values``. The integers are what export writes.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import HwbnnError
from ..ir.encoding import (
    encoding_bits,
    encoding_levels,
    encoding_range,
    is_signed_int,
    validate_encoding,
    values_from_threshold_count,
)
from ..ir.mix import mix_for_average, parse_group, weight_mix
from .residual import residual_binarize

INTEGER_BITS = range(2, 9)  # as the IR's integer weights
INTEGER_SPECS = tuple(f"int{bits}" for bits in INTEGER_BITS)


def activation_levels(encoding: str) -> list[float]:
    """Real-valued levels ``y`` is compared against, ascending (see module docstring)."""
    if encoding == "binary":
        return [0.0]
    if encoding == "ternary":
        return [-0.5, 0.5]
    lo, _ = encoding_range(encoding)
    return [k - 0.5 for k in range(lo + 1, lo + encoding_levels(encoding) + 1)]


def power_of_two_step(step) -> float:
    """``step`` if it is a positive power of two (so scaling by it is exact in floats)."""
    if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0 or (
            math.frexp(step)[0] != 0.5):
        raise HwbnnError(f"path_step must be a positive power of two, not {step!r}")
    return float(step)


def clipped_ste(x: torch.Tensor, target: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Forward ``target``; backward pass the gradient where ``lo <= x <= hi`` (Hubara et al.)."""
    mask = ((x >= lo) & (x <= hi)).to(x.dtype)
    return target.detach() + (x - x.detach()) * mask


class ActivationQuantizer(nn.Module):
    """Binary, ternary, unsigned or signed n-bit activation with a clipped straight-through
    estimator.

    Signed ``intN`` takes a fixed power-of-two ``step``: the output is ``step * v`` for the
    integer ``v`` the levels ``step * (k - 0.5)`` give, and the gradient passes where ``y``
    lies in ``step * [lo, hi]``. It computes that count as ``v = round_half_up(y / step)``
    clamped (``y / step`` and ``x - floor(x)`` are exact in floats, so it is the same count)
    instead of comparing against 255 levels.
    """

    def __init__(self, encoding: str, step: float = 1.0):
        super().__init__()
        self.encoding = validate_encoding(encoding, "activation encoding")
        self.step = power_of_two_step(step)
        if self.step != 1.0 and not is_signed_int(encoding):
            raise HwbnnError(f"only intN activations take a step, not {encoding!r}")
        self.register_buffer("levels", torch.tensor(activation_levels(encoding)),
                             persistent=False)

    @property
    def bits(self) -> int:
        return encoding_bits(self.encoding)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        lo, hi = encoding_range(self.encoding)
        if is_signed_int(self.encoding):
            x = y.detach() / self.step
            whole = torch.floor(x)
            values = (whole + (x - whole >= 0.5).to(y.dtype)).clamp(lo, hi)
            return clipped_ste(y, values * self.step, lo * self.step, hi * self.step)
        count = (y.unsqueeze(-1) >= self.levels.to(y.dtype)).sum(-1).to(y.dtype)
        return clipped_ste(y, values_from_threshold_count(self.encoding, count), lo, hi)

    def extra_repr(self) -> str:
        return self.encoding if self.step == 1.0 else f"{self.encoding}, step={self.step}"


@dataclass
class QuantizedWeight:
    """Integer weights ``values`` (MH, MW) with ``w_q = scale * values``.

    Residual weights also carry their sign planes (P, MH, MW) of -1/+1, the per-weight
    bitwidth map and the integer plane scales.
    """

    kind: str
    values: torch.Tensor
    scale: torch.Tensor
    signs: torch.Tensor | None = None
    bitwidth: torch.Tensor | None = None
    plane_scales: list[int] | None = None
    bits: int | None = None  # integer weights: their two's-complement width


class WeightQuantizer(nn.Module):
    """Base class: ``forward`` applies the subclass's ``quantize`` with a clipped STE.

    Latent weights live in [-1, 1] (training clips them after every step).
    """

    kind = "binary"
    bits = 1.0

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = self.quantize(w.detach())
        return clipped_ste(w, q.scale * q.values, -1.0, 1.0)


class FloatWeight(WeightQuantizer):
    """No quantization: the float32 baseline of the same architecture (not exportable)."""

    kind = "float"
    bits = 32.0

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w


class FloatActivation(nn.Module):
    """ReLU for the float32 baseline (not exportable)."""

    encoding = "float"
    bits = 32

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(y)


@contextmanager
def one_thread():
    """Run torch on one thread, restoring its thread count after. A weight scale (mean|w|) is
    a float reduction whose last bit depends on how many threads share it, and a threshold
    folded from it can move by one; training and export both run on one thread, so a model
    file has the same bytes whatever the core count (docs/design.md, "The zoo")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class BinaryWeight(WeightQuantizer):
    """sign(w) in {-1, +1} (0 maps to +1), scale mean|w| (XNOR-Net)."""

    kind = "binary"
    bits = 1.0

    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        values = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        return QuantizedWeight("binary", values, w.abs().mean().clamp_min(1e-8))


class TernaryWeight(WeightQuantizer):
    """Ternary weights (TWN, Li et al. 2016): zero below delta = 0.7 * mean|w|."""

    kind = "ternary"
    bits = 2.0

    def __init__(self, delta_factor: float = 0.7):  # 0.7: TWN's approximation of the optimum
        super().__init__()
        self.delta_factor = delta_factor

    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        delta = self.delta_factor * w.abs().mean()
        nonzero = w.abs() > delta
        values = torch.where(nonzero, torch.where(w >= 0, 1.0, -1.0), 0.0).to(w.dtype)
        scale = w.abs()[nonzero].mean() if nonzero.any() else w.new_tensor(1.0)
        return QuantizedWeight("ternary", values, scale.clamp_min(1e-8))


class ResidualWeight(WeightQuantizer):
    """Heterogeneous residual binarization (Fromm et al., NeurIPS 2018).

    ``mix`` gives the fractions of 1-, 2- and 3-bit weights; the bitwidth of each weight (or
    group: :func:`hwbnn.ir.mix.parse_group`, e.g. a folded unit's PE x SIMD tile) is chosen by
    middle-out selection, and plane scales are snapped to integers so the exported model is
    exact. A homogeneous b-bit residual quantizer is ``mix`` with all weight on b.
    """

    kind = "residual"

    def __init__(self, mix: tuple[float, float, float], group: int | str = 1):
        super().__init__()
        self.mix = weight_mix(mix)
        parse_group(group)
        self.group = group

    @property
    def bits(self) -> float:
        return sum((b + 1) * f for b, f in enumerate(self.mix))

    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        signs, bitwidth, plane_scales, scale = residual_binarize(w, self.mix, self.group)
        used = torch.arange(len(plane_scales)).view(-1, 1, 1) < bitwidth.unsqueeze(0)
        ints = torch.tensor(plane_scales, dtype=w.dtype).view(-1, 1, 1)
        values = (ints * signs * used).sum(0)
        return QuantizedWeight("residual", values, scale, signs, bitwidth, plane_scales)

    def extra_repr(self) -> str:
        return f"mix={self.mix}, group={self.group}"


class IntegerWeight(WeightQuantizer):
    """Signed ``bits``-bit integer weights (first and last layers, shortcut convolutions):
    symmetric per-tensor scale ``max|w| / (2^(b-1) - 1)``, values rounded into
    ``-(2^(b-1) - 1) .. 2^(b-1) - 1``. The range is symmetric so that export may negate a row
    (a negative BatchNorm scale) and stay in b bits.
    """

    kind = "integer"

    def __init__(self, bits: int):
        super().__init__()
        if bits not in INTEGER_BITS:
            raise HwbnnError(f"integer weights have {INTEGER_BITS[0]}..{INTEGER_BITS[-1]} "
                             f"bits, not {bits!r}")
        self.bits = bits

    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        top = 2 ** (self.bits - 1) - 1
        scale = (w.abs().max() / top).clamp_min(1e-8)
        values = torch.round(w / scale).clamp(-top, top).to(w.dtype)
        return QuantizedWeight("integer", values, scale, bits=self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def weight_quantizer(spec: str, group: int | str = 1) -> WeightQuantizer:
    """Build a weight quantizer from a spec string.

    ``float`` (baseline) | ``binary`` | ``ternary`` | ``w2`` | ``w3`` (homogeneous residual) |
    ``mix:F1,F2,F3`` (fractions of 1/2/3-bit weights) | ``mix:AVG`` (average bits, e.g. 1.4) |
    ``int2`` .. ``int8`` (signed integers, for first and last layers).
    """
    if isinstance(spec, str) and spec in INTEGER_SPECS:
        return IntegerWeight(int(spec[3:]))
    if spec == "float":
        return FloatWeight()
    if spec in ("binary", "w1"):
        return BinaryWeight()
    if spec == "ternary":
        return TernaryWeight()
    if spec in ("w2", "w3"):
        bits = int(spec[1])
        return ResidualWeight(tuple(1.0 if b == bits else 0.0 for b in (1, 2, 3)), group)
    if spec.startswith("mix:"):
        parts = spec[4:].split(",")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if len(numbers) == 3:
            return ResidualWeight(tuple(numbers), group)
        if len(numbers) == 1:
            return ResidualWeight(mix_for_average(numbers[0]), group)
    raise HwbnnError("weight spec must be float, binary, ternary, w2, w3, mix:F1,F2,F3, "
                     f"mix:AVG or int2..int8, not {spec!r}")
