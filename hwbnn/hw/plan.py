"""Generation-time plan of a matvec/conv layer: weight planes, step schedule, ROM contents.

Every weight kind becomes a list of *planes* ``p`` with an integer scale ``a_p``, sign bits
``s`` (1 = +1) and a usage mask ``m``: binary is one full plane; ternary is one plane whose
mask is the nonzero bit; residual (heterogeneous) weights have plane ``p`` used by the weights
whose bitwidth exceeds ``p``. So ``w = sum_p a_p * m_p * (2 s_p - 1)`` for all three.

The hardware walks *steps*: for each neuron fold ``nf`` and synapse fold ``sf`` (one *tile*
of PE x SIMD weights) one step per plane that some weight of the tile uses. Absent planes
are skipped at generation time (weights are constants), so cycles and weight-memory bits
follow the average bitwidth when bitwidths are grouped per tile.

Binary inputs use popcounts: ``sum_j m s' x' = 2 popcount(m & xnor(s, x)) - popcount(m)``;
the second term is a constant per row (``offset``), folded into the thresholds, so the
accumulator holds ``A = sum a_p popcount(...)`` and ``dot = 2 A - offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_range, signed_width
from ..ir.network import Conv, MatVec


def ceil_div(a, b):
    """Integer ceiling division on numpy arrays or ints (b > 0)."""
    return -((-a) // b)


@dataclass
class Step:
    """One cycle of a vector: tile (nf, sf) and weight plane."""

    nf: int
    sf: int
    plane: int
    first: bool  # first step of an accumulation (sf == 0, first plane)
    last: bool   # last step of an accumulation (sf == SF - 1, last plane)
    fresh: bool  # consumes a new input word (nf == 0, first plane of the tile)


def weight_planes(weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signs, masks, scales) of any weight kind; signs/masks ``(P, MH, MW)`` uint8."""
    planes = weights.planes.astype(np.uint8)
    if weights.kind == "binary":
        return planes, np.ones_like(planes), np.array([1], dtype=np.int64)
    if weights.kind == "ternary":
        return (1 - planes[1])[None], planes[0][None], np.array([1], dtype=np.int64)
    used = (np.arange(planes.shape[0])[:, None, None] < weights.bitwidth[None]).astype(np.uint8)
    return planes, used, weights.scales.astype(np.int64)


def check_folding(layer, pe: int, simd: int) -> None:
    """Raise HwbnnError unless ``pe`` divides MH and ``simd`` divides MW."""
    for name, value, extent, what in (("pe", pe, layer.mh, "MH (output channels)"),
                                      ("simd", simd, layer.mw, "MW (fan-in)")):
        if not isinstance(value, int | np.integer) or value < 1:
            raise HwbnnError(f"layer {layer.name}: {name} must be a positive integer, "
                             f"not {value!r}")
        if extent % value:
            raise HwbnnError(f"layer {layer.name}: {name}={value} does not divide "
                             f"{what} = {extent}")


class LayerPlan:
    """Folding, step schedule and memory images of one matvec/conv layer.

    Parameters
    ----------
    layer : MatVec | Conv
    pe, simd : int
        Output and input lanes; default to the layer's own ``pe``/``simd`` or 1.
    """

    def __init__(self, layer, pe: int | None = None, simd: int | None = None):
        if not isinstance(layer, MatVec | Conv):
            raise HwbnnError(f"a matrix-vector unit needs a matvec or conv layer, "
                             f"not {type(layer).__name__}")
        pe = pe if pe is not None else (layer.pe or 1)
        simd = simd if simd is not None else (layer.simd or 1)
        check_folding(layer, pe, simd)
        self.layer = layer
        self.pe, self.simd = int(pe), int(simd)
        self.sf, self.nf = layer.mw // self.simd, layer.mh // self.pe
        self.signs, self.masks, self.scales = weight_planes(layer.weights)
        self.in_encoding = layer.in_encoding
        self.in_bits = encoding_bits(layer.in_encoding)
        self.steps = self._schedule()
        self.needs_mask = any(not self.tile_mask(s).all() for s in self.steps)

    # --- schedule -------------------------------------------------------------------------
    def tile_rows(self, nf: int) -> np.ndarray:
        """Rows of neuron fold ``nf`` in PE order: row ``nf*PE + p`` goes to PE ``p``."""
        return nf * self.pe + np.arange(self.pe)

    def tile_cols(self, sf: int) -> np.ndarray:
        return sf * self.simd + np.arange(self.simd)

    def tile_planes(self, nf: int, sf: int) -> list[int]:
        """Planes that some weight of tile (nf, sf) uses (plane 0 if none: a zero tile)."""
        rows, cols = self.tile_rows(nf), self.tile_cols(sf)
        used = [p for p in range(len(self.scales))
                if self.masks[p][np.ix_(rows, cols)].any()]
        return used or [0]

    def _schedule(self) -> list[Step]:
        steps = []
        for nf in range(self.nf):
            for sf in range(self.sf):
                planes = self.tile_planes(nf, sf)
                for n, plane in enumerate(planes):
                    steps.append(Step(nf, sf, plane, sf == 0 and n == 0,
                                      sf == self.sf - 1 and n == len(planes) - 1,
                                      nf == 0 and n == 0))
        return steps

    def tile_signs(self, step: Step) -> np.ndarray:
        return self.signs[step.plane][np.ix_(self.tile_rows(step.nf), self.tile_cols(step.sf))]

    def tile_mask(self, step: Step) -> np.ndarray:
        return self.masks[step.plane][np.ix_(self.tile_rows(step.nf), self.tile_cols(step.sf))]

    @property
    def cycles_per_vector(self) -> int:
        """Steps per input vector: NF * SF plus the extra plane steps."""
        return len(self.steps)

    @property
    def weight_bits(self) -> int:
        """Bits of the weight memory (signs, and masks where a tile mixes plane usage)."""
        return len(self.steps) * self.pe * self.simd * (2 if self.needs_mask else 1)

    @property
    def plane_schedule(self) -> list[list[int]]:
        """Planes per tile, tile order (nf, sf)."""
        return [self.tile_planes(nf, sf) for nf in range(self.nf) for sf in range(self.sf)]

    def rom_words(self) -> list[int]:
        """Weight-memory image: word k holds step k; bit ``p*SIMD + s`` = sign of PE p lane s,
        then (with masks) the mask bits at offset ``PE*SIMD``."""
        words = []
        lanes = self.pe * self.simd
        for step in self.steps:
            word = _bits_to_int(self.tile_signs(step).reshape(-1))
            if self.needs_mask:
                word |= _bits_to_int(self.tile_mask(step).reshape(-1)) << lanes
            words.append(word)
        return words

    # --- accumulator domain ---------------------------------------------------------------
    @property
    def popcount_domain(self) -> bool:
        """Binary inputs: the accumulator holds scaled popcounts (see module docstring)."""
        return self.in_encoding == "binary"

    def offsets(self) -> np.ndarray:
        """Per row: ``sum_steps a_p * popcount(mask)`` (the popcount-domain constant)."""
        return np.einsum("p,prc->r", self.scales, self.masks.astype(np.int64))

    def acc_bounds(self) -> tuple[int, int]:
        """Range of every partial accumulation (any subset of steps) of any row."""
        if self.popcount_domain:
            return 0, int(self.offsets().max())
        lo, hi = encoding_range(self.in_encoding)
        contrib = self.scales[:, None, None] * self.masks * (2 * self.signs.astype(np.int64) - 1)
        low = np.minimum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        high = np.maximum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        return int(low.min()), int(high.max())

    def hw_thresholds(self) -> np.ndarray | None:
        """Thresholds in the accumulator's domain, clamped to [lo, hi + 1] (same results)."""
        if self.layer.thresholds is None:
            return None
        t = self.layer.thresholds.astype(np.int64)
        if self.popcount_domain:
            off = self.offsets()[:, None]
            return np.clip(ceil_div(t + off, 2), 0, off + 1)
        lo, hi = self.acc_bounds()
        return np.clip(t, lo, hi + 1)

    @property
    def acc_width(self) -> int:
        """Signed width of the hardware accumulator (partial sums and thresholds)."""
        lo, hi = self.acc_bounds()
        return signed_width(lo, hi + 1)

    @property
    def out_encoding(self) -> str | None:
        return self.layer.out_encoding

    @property
    def out_bits(self) -> int:
        """Bits per output element: the encoding's, or the layer's acc_width for scores."""
        if self.layer.produces_scores:
            return self.layer.acc_width
        return encoding_bits(self.layer.out_encoding)

    # --- numpy model of the schedule (checks the plan without simulation) -----------------
    def reference_acc(self, x: np.ndarray) -> np.ndarray:
        """Accumulators ``(N, MH)`` as the hardware forms them, for value vectors ``(N, MW)``."""
        x = np.asarray(x, dtype=np.int64)
        acc = np.zeros((len(x), self.layer.mh), dtype=np.int64)
        for step in self.steps:
            rows, cols = self.tile_rows(step.nf), self.tile_cols(step.sf)
            s = self.tile_signs(step).astype(np.int64)
            m = self.tile_mask(step).astype(np.int64)
            xs = x[:, cols]
            if self.popcount_domain:
                lane = ((xs[:, None, :] > 0) == (s[None] > 0)) * m[None]
            else:
                lane = m[None] * (2 * s[None] - 1) * xs[:, None, :]
            acc[:, rows] += self.scales[step.plane] * lane.sum(axis=2)
        return acc

    def reference_dot(self, x: np.ndarray) -> np.ndarray:
        """The layer's accumulators in the IR's domain, from :meth:`reference_acc`."""
        acc = self.reference_acc(x)
        return 2 * acc - self.offsets()[None] if self.popcount_domain else acc


def _bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for n, bit in enumerate(bits):
        value |= int(bit) << n
    return value
