"""Unrolled constant-weight matrix-vector unit: one whole vector per clock, weights in logic.

Weights are constants, so each row is ``sum_p a_p * (sum_{j in P+} x_j - sum_{j in P-} x_j)``
where ``P+``/``P-`` are the columns whose plane-``p`` sign is +1/-1 among the weights that use
plane ``p``. Every used weight bit feeds one input of an adder tree and absent planes cost
nothing, so area follows the total number of weight bits: a 1.4-bit mix is cheaper than
homogeneous 2-bit at the same throughput (DESIGN.md section 4, mode 2). Binary inputs enter
as their stored bits ``b`` (``x = 2b - 1``); the constant ``sum_j w_j`` is folded into the
thresholds as in the folded unit's popcount domain.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_range, signed_width
from ..ir.network import Conv, MatVec
from . import validated
from .plan import ceil_div, weight_planes
from .popcount import LEVELS_PER_STAGE, AdderTree, Popcount, tree_latency

MAX_UNROLLED_WEIGHT_BITS = 1 << 17  # beyond this the adder trees take hours to synthesize


class UnrolledMatrixVectorUnit(wiring.Component):
    """Fully parallel (PE = MH, SIMD = MW) unit for one matvec/conv layer, II = 1 vector/cycle.

    Ports: ``i`` (In stream of MW * in_bits), ``o`` (Out stream of MH * out_bits).
    """

    @validated
    def __init__(self, layer, *, levels_per_stage: int = LEVELS_PER_STAGE):
        if not isinstance(layer, MatVec | Conv):
            raise HwbnnError(f"an unrolled unit needs a matvec or conv layer, "
                             f"not {type(layer).__name__}")
        bits = int(layer.weights.bitwidths().sum())
        if bits > MAX_UNROLLED_WEIGHT_BITS:
            raise HwbnnError(f"layer {layer.name}: design too large for unrolled mode "
                             f"({bits} weight bits > {MAX_UNROLLED_WEIGHT_BITS}); use folded")
        self._layer = layer
        self._levels = levels_per_stage
        self._signs, self._masks, self._scales = weight_planes(layer.weights)
        self.in_bits = encoding_bits(layer.in_encoding)
        self.out_bits = (layer.acc_width if layer.produces_scores
                         else encoding_bits(layer.out_encoding))
        super().__init__({
            "i": In(stream.Signature(unsigned(layer.mw * self.in_bits))),
            "o": Out(stream.Signature(unsigned(layer.mh * self.out_bits))),
        })

    pe = property(lambda self: self._layer.mh)
    simd = property(lambda self: self._layer.mw)

    @property
    def cycles_per_vector(self) -> int:
        return 1

    @property
    def weight_bits(self) -> int:
        """Weight bits that enter the adder trees (the area driver)."""
        return int(self._masks.sum())

    @property
    def latency(self) -> int:
        return tree_latency(self._layer.mw, self._levels) + 2

    @property
    def binary_input(self) -> bool:
        return self._layer.in_encoding == "binary"

    def row_offsets(self) -> np.ndarray:
        """``sum_j w_j`` per row (binary inputs: ``dot = 2 acc - offset``)."""
        return self._layer.weights.values().sum(axis=1)

    def acc_bounds(self) -> tuple[int, int]:
        lo, hi = (0, 1) if self.binary_input else encoding_range(self._layer.in_encoding)
        w = self._layer.weights.values()
        low = np.minimum(w * lo, w * hi).sum(axis=1)
        high = np.maximum(w * lo, w * hi).sum(axis=1)
        return int(low.min()), int(high.max())

    def hw_thresholds(self) -> np.ndarray:
        t = self._layer.thresholds.astype(np.int64)
        lo, hi = self.acc_bounds()
        if self.binary_input:
            t = ceil_div(t + self.row_offsets()[:, None], 2)
        return np.clip(t, lo, hi + 1)

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        x = Signal(len(self.i.payload))
        valid = Signal()
        with m.If(en):
            m.d.sync += [x.eq(self.i.payload), valid.eq(self.i.valid)]
        lo, hi = self.acc_bounds()
        width = signed_width(min(lo, -1), hi + 1)
        thresholds = None if layer.produces_scores else self.hw_thresholds()
        latency = tree_latency(layer.mw, self._levels)
        for row in range(layer.mh):
            acc = self._row(m, en, x, row, width)
            if layer.produces_scores:
                offset = int(self.row_offsets()[row])
                result = (acc << 1) - offset if self.binary_input else acc
                value = result[:self.out_bits]
            else:
                count = sum((acc >= int(t)).as_unsigned() for t in thresholds[row])
                value = self._encode(count)
            with m.If(en):
                m.d.sync += self.o.payload[row * self.out_bits:(row + 1) * self.out_bits].eq(value)
        delayed = valid
        for stage in range(latency):
            reg = Signal(name=f"valid{stage}")
            with m.If(en):
                m.d.sync += reg.eq(delayed)
            delayed = reg
        with m.If(en):
            m.d.sync += self.o.valid.eq(delayed)
        return m

    def _encode(self, count):
        if self._layer.out_encoding == "ternary":
            return (count != 1) | ((count == 0) << 1)
        return count[:self.out_bits]

    def _row(self, m, en, x, row, width):
        """Registered sum for one row: per plane, a tree over the +1 and -1 columns."""
        bits = self.in_bits
        terms = []
        for p, scale in enumerate(int(a) for a in self._scales):
            for sign in (1, 0):
                cols = np.nonzero(self._masks[p, row] & (self._signs[p, row] == sign))[0]
                if not len(cols):
                    continue
                if self.binary_input:
                    tree = Popcount(len(cols), levels_per_stage=self._levels)
                    for n, j in enumerate(cols):
                        m.d.comb += tree.i[n].eq(x[int(j)])
                elif self._layer.in_encoding == "ternary":
                    tree = AdderTree(len(cols), signed(2), levels_per_stage=self._levels)
                    for n, j in enumerate(cols):
                        nz, neg = x[2 * int(j)], x[2 * int(j) + 1]
                        m.d.comb += tree.i[n].eq(Mux(nz, Mux(neg, -1, 1), 0))
                else:
                    tree = AdderTree(len(cols), unsigned(bits), levels_per_stage=self._levels)
                    for n, j in enumerate(cols):
                        m.d.comb += tree.i[n].eq(x[int(j) * bits:(int(j) + 1) * bits])
                m.submodules[f"r{row}p{p}s{sign}"] = tree
                m.d.comb += tree.en.eq(en)
                # Align every tree to the deepest one so all terms of a row meet together.
                out = tree.o
                for stage in range(tree_latency(self._layer.mw, self._levels) - tree.latency):
                    reg = Signal.like(out, name=f"r{row}p{p}s{sign}d{stage}")
                    with m.If(en):
                        m.d.sync += reg.eq(out)
                    out = reg
                terms.append(out * scale if sign else -(out * scale))
        acc = Signal(signed(width), name=f"acc{row}")
        m.d.comb += acc.eq(sum(terms) if terms else 0)
        return acc
