"""Bit mixes of heterogeneous residual weights: fractions of 1-, 2- and 3-bit weights.

Torch-free, so training (``hwbnn.quant``) and re-quantization in the cost model use the same
whole counts for a requested mix.
"""

from __future__ import annotations

import numpy as np

from ..errors import HwbnnError


def weight_mix(mix) -> tuple[float, float, float]:
    """Validate a (f1, f2, f3) mix of 1/2/3-bit fractions: non-negative, summing to 1."""
    try:
        mix = tuple(float(f) for f in mix)
    except (TypeError, ValueError):
        raise HwbnnError(f"bit mix must be three fractions, not {mix!r}") from None
    if len(mix) != 3 or min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise HwbnnError(f"bit mix must be three non-negative fractions of 1/2/3-bit weights "
                         f"summing to 1, not {mix!r}")
    return mix


def mix_counts(mix, total: int) -> list[int]:
    """Whole counts of 1/2/3-bit items for ``total`` items (largest-remainder rounding)."""
    exact = [f * total for f in weight_mix(mix)]
    counts = [int(np.floor(x)) for x in exact]
    by_remainder = sorted(range(3), key=lambda b: (counts[b] - exact[b], b))
    for b in by_remainder[: total - sum(counts)]:
        counts[b] += 1
    return counts


def mix_for_average(average: float) -> tuple[float, float, float]:
    """A 1/2/3-bit mix with the given average bits.

    Up to 2 bits: f3 = (avg-1)/4, f2 = (avg-1)/2 (so 1.4 bits = 70/20/10 %); above: 2/3-bit only.
    """
    if not 1.0 <= average <= 3.0:
        raise HwbnnError(f"average bitwidth must lie in 1..3, not {average}")
    if average <= 2.0:
        f3, f2 = (average - 1) / 4, (average - 1) / 2
        return (1 - f2 - f3, f2, f3)
    return (0.0, 3 - average, average - 2)
