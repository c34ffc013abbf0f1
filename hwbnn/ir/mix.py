"""Bit mixes of heterogeneous residual weights: fractions of 1-, 2- and 3-bit weights, and
residual binarization with middle-out bit selection (Fromm et al., "Heterogeneous Bitwidth
Binarization in Convolutional Neural Networks", NeurIPS 2018).

Torch-free, so training (``hwbnn.quant``) and re-quantization in the cost model
(``hwbnn.cost.mixes``) share one policy for a mix: the same whole counts, the same selection,
the same integer plane scales.
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
    if len(mix) != 3 or not all(0 <= f <= 1 for f in mix) or abs(sum(mix) - 1.0) > 1e-6:
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


# Plane scales are integers A_p = round(a_p / alpha) with alpha = a_0 / A_0. A_0 = 4 leaves
# room for a_1 ~ a_0/2 and a_2 ~ a_0/4 (the ideal ratios for uniform weights) with +-12%
# resolution, while the largest 3-bit weight stays 4+2+1 = 7 (4-bit signed). The IR allows
# scales up to 255 (``hwbnn.ir.network``).
FIRST_PLANE_SCALE = 4
MAX_PLANE_SCALE = 255
COLUMN = "column"


def residual_binarize(w: np.ndarray, mix, group: int | str = 1):
    """Residual-binarize a (MH, MW) matrix with middle-out bit selection.

    Weight j gets b_j in {1, 2, 3} planes: w_j ~ alpha * sum_{p < b_j} A_p * s_{p,j}. Plane p
    is fitted to the residual of the weights still active at p (b_j > p). Middle-out: at plane
    p the active weights whose residual magnitude is closest to the plane's mean are the ones
    sign * mean represents best, so they stop there; the outliers on both sides (near zero and
    large) go on to the next plane. The counts per bitwidth are fixed up front
    (:func:`mix_counts`), so the mix is hit exactly.

    Groups of ``group`` consecutive inputs of a row share a bitwidth; ``group="PExSIMD"`` gives
    a folded unit's tiles one bitwidth each (:func:`parse_group`); ``group="column"`` gives
    each input one bitwidth across all rows (the unrolled hardware mode's grouping, where rows
    then share their adder trees' lanes). Exact zeros (e.g. the residual of +-1 weights) take
    alternating signs along each row (also with ``group="column"``), so a plane they do not
    need adds no bias to any row's sum.

    Returns (signs (P, MH, MW) of -1/+1 int8, bitwidth (MH, MW) int64, integer plane scales
    [A_0..A_{P-1}], float alpha), P the largest bitwidth with a nonzero count. Arithmetic is
    in ``w``'s floating dtype.
    """
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating):
        w = w.astype(np.float64)
    # Exact zeros alternate along each row (by column parity).
    alternate = np.where(np.arange(w.shape[1]) % 2 == 0, 1, -1)[None, :].astype(w.dtype)
    group = parse_group(group)
    if group == COLUMN:
        signs, bitwidth, scales, alpha = _residual_binarize(
            w.T, mix, w.shape[0], np.ascontiguousarray(np.broadcast_to(alternate, w.shape).T))
        return signs.transpose(0, 2, 1), bitwidth.T, scales, alpha
    if isinstance(group, tuple):  # tiles: PE and SIMD as the layer's rows and fan-in allow
        pe, simd = (int(np.gcd(lanes, size)) for lanes, size in zip(group, w.shape, strict=True))
        return _residual_binarize(w, mix, simd, alternate, rows_per_group=pe)
    return _residual_binarize(w, mix, group, alternate)


def parse_group(group) -> int | str | tuple[int, int]:
    """A bitwidth granularity: ``N`` (a positive integer: N consecutive inputs of a row),
    ``"column"`` or ``"PExSIMD"`` (a folded unit's tile: PE rows x SIMD consecutive inputs;
    in a layer whose rows or fan-in the numbers do not divide, their greatest common divisor
    with it). Returns the integer, ``"column"`` or the ``(PE, SIMD)`` pair."""
    if group == COLUMN:
        return group
    if isinstance(group, str) and "x" in group and group.isascii():
        parts = group.split("x")
        if len(parts) == 2 and all(part.isdigit() and int(part) > 0 for part in parts):
            return int(parts[0]), int(parts[1])
    elif isinstance(group, int) and not isinstance(group, bool) and group > 0:
        return group
    raise HwbnnError(f"bitwidth group must be a positive integer, 'column' or PExSIMD "
                     f"(e.g. 4x8), not {group!r}")


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest ``values``, ties going to the lower index: the set that
    ``np.argsort(values, kind="stable")[:k]`` gives, found by a partition (linear time; a
    stable sort of every weight at every training step was most of a mix's step time)."""
    if k >= values.size:
        return np.arange(values.size)
    kth = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < kth)
    return np.concatenate([below, np.flatnonzero(values == kth)[:k - below.size]])


def _residual_binarize(w: np.ndarray, mix, group: int, alternate: np.ndarray,
                       rows_per_group: int = 1):
    """:func:`residual_binarize` on groups of ``group`` consecutive inputs of
    ``rows_per_group`` consecutive rows; exact-zero residuals take the signs of ``alternate``
    (broadcast to ``w``)."""
    rows, cols = w.shape
    if cols % group:
        raise HwbnnError(f"bitwidth group {group} must divide the fan-in {cols}")
    grid = (rows // rows_per_group, cols // group)
    counts = mix_counts(mix, grid[0] * grid[1])
    planes = max(b + 1 for b in range(3) if counts[b])
    residual = w.copy()
    active = np.ones(grid, dtype=bool)
    bitwidth = np.full(grid, planes, dtype=np.int64)
    signs, scales, alpha = [], [], None
    # Every pass over the weights counts: this runs at each training step (an LFC layer has a
    # million weights). Where every weight is active no mask is built or applied.
    for p in range(planes):
        full = bool(active.all())
        mask = None if full else np.repeat(np.repeat(active, rows_per_group, axis=0), group,
                                           axis=1)
        magnitude = np.abs(residual)
        mean = max((magnitude if full else magnitude[mask]).mean(), w.dtype.type(1e-8))
        if alpha is None:
            alpha = mean / w.dtype.type(FIRST_PLANE_SCALE)
        stopping = counts[p] if p < planes - 1 else 0
        if stopping:
            distance = np.abs(magnitude - mean)
            if rows_per_group == 1:
                distance = distance.reshape(rows, -1, group).mean(-1)
            else:
                distance = distance.reshape(grid[0], rows_per_group, grid[1], group).mean((1, 3))
            distance = np.where(active, distance, np.inf).ravel()
            bitwidth.ravel()[_smallest(distance, stopping)] = p + 1
        scale = int(min(max(round(float(mean / alpha)), 1), MAX_PLANE_SCALE))
        sign = np.sign(residual)
        zero = ~(np.abs(sign) > 0)  # exact zeros (and NaN) take the alternating signs
        if zero.any():
            sign[zero] = np.broadcast_to(alternate, w.shape)[zero]
        if p < planes - 1:  # the last plane's residual is not needed
            step = alpha * w.dtype.type(scale) * sign
            residual = residual - (step if full else step * mask)
        signs.append(sign.astype(np.int8))
        scales.append(scale)
        active = bitwidth > p + 1
    bitwidth = np.repeat(np.repeat(bitwidth, rows_per_group, axis=0), group, axis=1)
    return np.stack(signs), bitwidth, scales, float(alpha)
