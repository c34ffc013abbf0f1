"""Quantizers in three tiers (the Larq way): STE functions, quantizer modules, layers.

Activation quantizers turn a real pre-activation ``y`` into integer values by counting
passed levels (the same rule the IR's thresholds follow, so export is exact):

* binary:  +1 if y >= 0 else -1                       (levels: 0)
* ternary: count(y >= -0.5, y >= 0.5) - 1             (levels: -0.5, +0.5)
* uintN:   count(y >= k - 0.5 for k = 1..2^N-1)       (round half up, clamped)

Weight quantizers return a :class:`QuantizedWeight`: integer values and one positive float
scale per layer, ``w_q = scale * values``. The integers are what export writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import HwbnnError
from ..ir.encoding import (
    encoding_bits,
    encoding_levels,
    encoding_range,
    validate_encoding,
    values_from_threshold_count,
)
from ..ir.mix import mix_for_average, weight_mix
from .residual import COLUMN, residual_binarize


def activation_levels(encoding: str) -> list[float]:
    """Real-valued levels ``y`` is compared against, ascending (see module docstring)."""
    if encoding == "binary":
        return [0.0]
    if encoding == "ternary":
        return [-0.5, 0.5]
    return [k - 0.5 for k in range(1, encoding_levels(encoding) + 1)]


def clipped_ste(x: torch.Tensor, target: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Forward ``target``; backward pass the gradient where ``lo <= x <= hi`` (Hubara et al.)."""
    mask = ((x >= lo) & (x <= hi)).to(x.dtype)
    return target.detach() + (x - x.detach()) * mask


class ActivationQuantizer(nn.Module):
    """Binary, ternary or unsigned n-bit activation with a clipped straight-through estimator."""

    def __init__(self, encoding: str):
        super().__init__()
        self.encoding = validate_encoding(encoding, "activation encoding")
        self.register_buffer("levels", torch.tensor(activation_levels(encoding)),
                             persistent=False)

    @property
    def bits(self) -> int:
        return encoding_bits(self.encoding)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        count = (y.unsqueeze(-1) >= self.levels.to(y.dtype)).sum(-1).to(y.dtype)
        lo, hi = encoding_range(self.encoding)
        return clipped_ste(y, values_from_threshold_count(self.encoding, count), lo, hi)

    def extra_repr(self) -> str:
        return self.encoding


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

    ``mix`` gives the fractions of 1-, 2- and 3-bit weights; the bitwidth of each weight
    (or group of ``group`` consecutive inputs, or ``"column"``: each input across all
    outputs) is chosen by middle-out selection, and plane
    scales are snapped to integers so the exported model is exact. A homogeneous b-bit
    residual quantizer is ``mix`` with all weight on b.
    """

    kind = "residual"

    def __init__(self, mix: tuple[float, float, float], group: int | str = 1):
        super().__init__()
        self.mix = weight_mix(mix)
        if group != COLUMN and (not isinstance(group, int) or group < 1):
            raise HwbnnError(f"bitwidth group must be a positive integer or 'column', "
                             f"not {group!r}")
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


def weight_quantizer(spec: str, group: int | str = 1) -> WeightQuantizer:
    """Build a weight quantizer from a spec string.

    ``float`` (baseline) | ``binary`` | ``ternary`` | ``w2`` | ``w3`` (homogeneous residual) |
    ``mix:F1,F2,F3`` (fractions of 1/2/3-bit weights) | ``mix:AVG`` (average bits, e.g. 1.4).
    """
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
    raise HwbnnError("weight spec must be float, binary, ternary, w2, w3, mix:F1,F2,F3 or "
                     f"mix:AVG, not {spec!r}")
