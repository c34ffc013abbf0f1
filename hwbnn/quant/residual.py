"""Heterogeneous residual binarization of torch weights: the torch face of
:func:`hwbnn.ir.mix.residual_binarize` (middle-out bit selection, Fromm et al. 2018), which
re-quantization in the cost model uses too. Signs are constants of the forward pass; the
straight-through estimator carries the gradient (:mod:`.quantizers`)."""

from __future__ import annotations

import torch

from ..ir import mix
from ..ir.mix import COLUMN

__all__ = ["COLUMN", "residual_binarize"]


def residual_binarize(w: torch.Tensor, bit_mix, group: int | str = 1):
    """Residual-binarize a (MH, MW) weight tensor (see :func:`hwbnn.ir.mix.residual_binarize`).

    Returns (signs (P, MH, MW) of -1/+1 in ``w``'s dtype, bitwidth (MH, MW) int64, integer
    plane scales, alpha as a 0-d tensor), on ``w``'s device.
    """
    signs, bitwidth, scales, alpha = mix.residual_binarize(
        w.detach().cpu().numpy(), bit_mix, group)
    return (torch.from_numpy(signs).to(device=w.device, dtype=w.dtype),
            torch.from_numpy(bitwidth).to(w.device), scales,
            torch.tensor(alpha, dtype=w.dtype, device=w.device))
