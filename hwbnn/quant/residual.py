"""Heterogeneous residual binarization with middle-out bit selection (Fromm et al. 2018).

Weight j gets b_j in {1, 2, 3} planes: w_j ~ alpha * sum_{p < b_j} A_p * s_{p,j}, s in {-1, +1}.
Plane p is fitted to the residual of the weights still active at p (those with b_j > p).
Middle-out selection: at plane p, the active weights whose residual magnitude is closest to
the plane's scale are the ones that sign * scale represents best, so they stop there; the
outliers on both sides (near zero and large) continue to the next plane. The counts per
bitwidth are fixed up front from the requested mix, so the mix is hit exactly.

Plane scales are snapped to integers A_p = round(a_p / alpha) with alpha = a_0 / A_0 and
A_0 = SCALE_BASE, so the integer weights exported are exactly those trained with.
"""

from __future__ import annotations

import torch

from ..errors import HwbnnError
from ..ir.mix import mix_counts

# A_0 = 4 leaves room for a_1 ~ a_0/2 and a_2 ~ a_0/4 (the ideal ratios for uniform weights)
# with +-12% resolution, while the largest 3-bit weight stays 4+2+1 = 7 (4-bit signed).
SCALE_BASE = 4
MAX_PLANE_SCALE = 255


COLUMN = "column"


def residual_binarize(w: torch.Tensor, mix, group: int | str = 1):
    """Residual-binarize a (MH, MW) matrix with middle-out bit selection.

    Returns (signs (P, MH, MW) of -1/+1, bitwidth (MH, MW) int64, integer plane scales
    [A_0..A_{P-1}], float scale alpha) where P is the largest bitwidth with a nonzero count.
    Selection works on groups of ``group`` consecutive inputs of a row, which share a bitwidth,
    or with ``group="column"`` on whole input columns (every row of an input shares it: the
    unrolled hardware mode's grouping, where rows then share their adder trees' lanes).
    """
    if group == COLUMN:
        signs, bitwidth, plane_scales, alpha = residual_binarize(w.t(), mix, w.shape[0])
        return signs.transpose(1, 2), bitwidth.t(), plane_scales, alpha
    rows, cols = w.shape
    if cols % group:
        raise HwbnnError(f"bitwidth group {group} must divide the fan-in {cols}")
    counts = mix_counts(mix, rows * cols // group)
    planes = max(b + 1 for b in range(3) if counts[b])
    residual = w.detach().clone()
    active = torch.ones(rows, cols // group, dtype=torch.bool)
    bitwidth = torch.full((rows, cols // group), planes, dtype=torch.int64)
    signs, plane_scales, alpha = [], [], None
    for p in range(planes):
        mask = active.repeat_interleave(group, dim=1)
        scale = residual.abs()[mask].mean().clamp_min(1e-8)
        if alpha is None:
            alpha = scale / SCALE_BASE
        stopping = counts[p] if p < planes - 1 else 0
        if stopping:
            # Distance of each active group from the plane scale; the closest stop here.
            distance = (residual.abs() - scale).abs().view(rows, -1, group).mean(-1)
            distance = torch.where(active, distance, torch.inf).flatten()
            chosen = torch.argsort(distance, stable=True)[:stopping]
            bitwidth.view(-1)[chosen] = p + 1
        snapped = int(min(max(round(float(scale / alpha)), 1), MAX_PLANE_SCALE))
        sign = torch.where(residual >= 0, 1.0, -1.0).to(w.dtype)
        residual = residual - alpha * snapped * sign * mask
        signs.append(sign)
        plane_scales.append(snapped)
        active = bitwidth > p + 1
    return (torch.stack(signs), bitwidth.repeat_interleave(group, dim=1), plane_scales,
            alpha.detach())
