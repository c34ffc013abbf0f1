"""Unrolled constant-weight matrix-vector unit: one whole vector per clock, weights in logic.

Weights are constants, so every used weight bit becomes a wire into an adder tree and absent
planes cost nothing. Trees' low levels are shared between rows and planes that cover the same
lanes with the same signs, so area follows the adders that are not shared: a plane that covers
every input costs its upper levels per row, one that covers random inputs per row costs all
of its adders (docs/design.md section 4, unrolled mode).

Each row is ``sum_p a_p * sum_j s_pj * v_j`` over the columns ``j`` that use plane ``p``
(sign ``s_pj``, integer plane scale ``a_p``). Input lanes enter as ``n``-bit unsigned values
``v`` with ``x = v - c``: binary inputs as their stored bit (``n = 1``, ``c = 0``, the
``{0, 1}`` domain; ``dot = 2 acc - sum_j w_j``), unsigned ones as they are, ternary ones as
``x + 1`` (``n = 2``, ``c = 1``). A negative sign costs nothing either: ``-v`` is the
inverted lane ``~v`` minus the constant ``2**n - 1``. So each plane is a single unsigned
popcount (``n = 1``) or adder tree over lanes or their inverses, the planes are summed with
their scales (shifts and adders), and every constant is folded into the thresholds or
the score offset. No subtractions and no sign-split trees remain in the datapath.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import Conv, MatVec
from . import validated
from .plan import ceil_div, weight_planes
from .popcount import LEVELS_PER_STAGE, TreeBuilder, popcount_latency, tree_latency

# Lanes in a run that a plane in runs counts apart (TreeBuilder.aligned_count): the folded
# mode's usual SIMD tile width, and short enough that a run's sign pattern repeats across rows.
RUN = 8
# How the constant products are summed: hwbnn's per-plane trees with shared nodes, or one
# adder graph over the whole integer matrix from da4ml's solver (hw/cmvm.py).
ADDERS = ("trees", "da4ml")


# A da4ml graph's register stages: one every this many adder levels. Measured on the 2-bit
# digits MLP's dense1 (32 x 32) on iCE40 (Yosys synth_ice40): combinational 2,157 LUTs and
# 702 s of Yosys (ABC9 maps the whole graph at once); a register every 1 / 2 / 3 / 4 levels
# 2,359 / 2,253 / 2,201 / 2,115 LUTs and 5,620 / 2,900 / 1,802 / 1,502 flip-flops, 5-10 s.
GRAPH_LEVELS = 4


def check_adders(mode: str, adders: str) -> None:
    """One line unless ``adders`` is a construction (:data:`ADDERS`) that ``mode`` has."""
    if adders not in ADDERS:
        raise HwbnnError(f"adders must be one of {', '.join(ADDERS)}, not {adders!r}")
    if adders != "trees" and mode != "unrolled":
        raise HwbnnError(f"--adders {adders} is for --mode unrolled (a folded unit sums one "
                         f"tile at a time)")


MAX_UNROLLED_WEIGHT_BITS = 1 << 17  # beyond this the adder trees take hours to synthesize


def weighted_sum(terms, trees: TreeBuilder, key):
    """``sum(value * scale)`` over unsigned ``(value, scale)`` terms, a constant 0 if none;
    its adders are recorded in ``trees`` (under ``key``).

    A scale that is not a power of two is its set bits (3 = 2 + 1: the value enters twice),
    so every product is shifts and adders: no multiplier, which ECP5 synthesis would put in a
    DSP block. The power-of-two terms are summed from the largest down as
    ``(acc << k) + value`` with the low ``k`` bits of the sum taken straight from ``value``
    (``Cat``), so no adder bit ever adds a constant zero.
    """
    if not terms:
        return Const(0, 1)  # a row without weights (all-zero ternary) sums to nothing
    terms = sorted(((value, 1 << bit) for value, scale in terms
                    for bit in range(int(scale).bit_length()) if scale >> bit & 1),
                   key=lambda term: -term[1])
    acc, acc_scale = terms[0]
    for n, (value, scale) in enumerate(terms[1:]):
        shift = (acc_scale // scale).bit_length() - 1
        low = Cat(value, Const(0, shift))[:shift]  # zero-padded if value is narrower
        high = value >> shift
        trees.record_adder(("scaled", key, n), max(len(acc), len(high)) + 1, acc, high)
        acc = Cat(low, acc + high)
        acc_scale = scale
    return Cat(Const(0, acc_scale.bit_length() - 1), acc)


@dataclass(frozen=True)
class UnrolledStructure:
    """What an unrolled unit is built of (:meth:`UnrolledMatrixVectorUnit.structure`):
    every adder once, as ``(output width, operand widths a and b, carry-in bits, operands
    are lanes)``, those of the popcounts of one-bit lanes apart from the others (adder
    trees of wider lanes, sums of run counts, plane scales); register bits (the
    trees', the delays', the input and output words'); comparator bits."""

    popcount_adders: tuple[tuple[int, int, int, int, bool], ...]
    other_adders: tuple[tuple[int, int, int, int, bool], ...]
    register_bits: int
    compare_bits: int


class UnrolledMatrixVectorUnit(wiring.Component):
    """Fully parallel (PE = MH, SIMD = MW) unit for one matvec/conv layer, II = 1 vector/cycle.

    Ports: ``i`` (In stream of MW * in_bits), ``o`` (Out stream of MH * out_bits).

    ``adders``: ``"trees"`` (per-plane trees, pipelined every ``levels_per_stage`` levels) or
    ``"da4ml"``: each row's ``sum_j W[r, j] v_j`` of the integer weights from one shared
    adder graph (:mod:`hwbnn.hw.cmvm`) between the input and output registers, with a
    register stage every ``graph_levels`` adder levels of the graph (:data:`GRAPH_LEVELS`;
    latency ``2 + graph.stages(graph_levels)``), or combinational with ``graph_levels=None``
    (latency 2). ``graph_levels`` is a da4ml graph's only.
    """

    @validated
    def __init__(self, layer, *, levels_per_stage: int = LEVELS_PER_STAGE,
                 adders: str = "trees", graph_levels: int | None = GRAPH_LEVELS):
        if not isinstance(layer, MatVec | Conv):
            raise HwbnnError(f"an unrolled unit needs a matvec or conv layer, "
                             f"not {type(layer).__name__}")
        bits = int(layer.weights.bitwidths().sum())
        if bits > MAX_UNROLLED_WEIGHT_BITS:
            raise HwbnnError(f"layer {layer.name}: design too large for unrolled mode "
                             f"({bits} weight bits > {MAX_UNROLLED_WEIGHT_BITS}); use folded")
        check_adders("unrolled", adders)
        if graph_levels is not None and graph_levels < 1:
            raise HwbnnError(f"graph_levels is a positive level count of a da4ml graph or "
                             f"None, not {graph_levels!r}")
        self._layer = layer
        self._levels = levels_per_stage
        self._graph_levels = graph_levels if adders == "da4ml" else None
        self._signs, self._masks, self._scales = weight_planes(layer.weights)
        # Lanes enter every tree in one layer-wide order, the inputs that the most (row,
        # plane) pairs use first: with bitwidths grouped per input column, each plane's lanes
        # are then a prefix of the next heavier plane's, so its trees' low levels are the
        # same nodes as theirs (one TreeBuilder) instead of a pairing of its own.
        self._order = np.argsort(-self._masks.sum(axis=(0, 1)), kind="stable")
        # Planes whose rows cover different inputs, but in whole runs of RUN inputs (of that
        # order: grouped bitwidths, tiles or groups of a row): their popcounts count the runs
        # apart, so rows that agree on a run share its count. Per-parameter planes, with no
        # runs, keep the carry-in tree and the absorption of a light plane (sharing nothing
        # either way; a run-wise count measured 14% more LUTs on a 256x256 layer).
        self._runs = [self._in_runs(self._masks[p][:, self._order])
                      for p in range(self._masks.shape[0])]
        self.in_bits = encoding_bits(layer.in_encoding)
        self.out_bits = (layer.acc_width if layer.produces_scores
                         else encoding_bits(layer.out_encoding))
        self._graph = None
        if adders == "da4ml":
            from .. import progress
            from .cmvm import solve

            # da4ml's solver takes seconds on the digits layers and minutes from a few
            # hundred rows and columns on: a step, so it shows (and a log hears from it).
            with progress.step(f"da4ml: adder graph of {layer.name} ({layer.mh} x {layer.mw})"):
                self._graph = solve(layer.weights.values(), 0, (1 << self.lane_bits) - 1)
        super().__init__({
            "i": In(stream.Signature(unsigned(layer.mw * self.in_bits))),
            "o": Out(stream.Signature(unsigned(layer.mh * self.out_bits))),
        })

    pe = property(lambda self: self._layer.mh)
    simd = property(lambda self: self._layer.mw)

    @staticmethod
    def _in_runs(mask: np.ndarray) -> bool:
        """Whether rows differ (``mask``: rows x inputs) but each row is constant over every
        run of :data:`RUN` inputs."""
        if not (mask != mask[:1]).any():
            return False
        runs = np.split(mask, range(RUN, mask.shape[1], RUN), axis=1)
        return all((run == run[:, :1]).all() for run in runs)

    @property
    def cycles_per_vector(self) -> int:
        return 1

    @property
    def weight_bits(self) -> int:
        """Weight bits that enter the adder trees (the area driver)."""
        return int(self._masks.sum())

    @property
    def latency(self) -> int:
        """Input register, the (aligned) plane trees and the output register."""
        return self._tree_stages + 2

    @property
    def _tree_stages(self) -> int:
        """Register stages between the input and output registers (in a da4ml graph, none
        unless it is pipelined)."""
        if self._graph is not None:
            return self._graph.stages(self._graph_levels)
        return tree_latency(self._layer.mw, self._levels)

    @property
    def binary_input(self) -> bool:
        return self._layer.in_encoding == "binary"

    @property
    def lane_offset(self) -> int:
        """``c`` of ``x = v - c``: 1 for ternary lanes (``v = x + 1``), else 0."""
        return int(self._layer.in_encoding == "ternary")

    @property
    def lane_bits(self) -> int:
        """Bits ``n`` of a lane value ``v`` entering the trees."""
        return 2 if self._layer.in_encoding == "ternary" else self.in_bits

    def sum_offsets(self) -> np.ndarray:
        """``K`` per row: the datapath's unsigned sum ``S`` is ``acc + K``.

        A lane with sign +1 adds ``v = x + c``, one with sign -1 adds ``~v = 2**n - 1 - c - x``.
        """
        full = (1 << self.lane_bits) - 1
        c = self.lane_offset
        per_lane = np.where(self._signs == 1, c, full - c) * self._masks
        return (self._scales[:, None, None] * per_lane).sum(axis=(0, 2)).astype(np.int64)

    def sum_bounds(self) -> np.ndarray:
        """Largest ``S`` per row (every lane at its maximum)."""
        full = (1 << self.lane_bits) - 1
        return (self._scales[:, None] * self._masks.sum(axis=2) * full).sum(axis=0)

    def hw_thresholds(self) -> np.ndarray:
        """Thresholds on ``S`` (``acc >= t`` iff ``S >= t + K``), clipped to ``[0, max + 1]``.

        Binary inputs: ``acc`` counts in the ``{0, 1}`` domain, ``dot = 2 acc - sum_j w_j``.
        """
        t = self._layer.thresholds.astype(np.int64)
        if self.binary_input:
            t = ceil_div(t + self._layer.weights.values().sum(axis=1)[:, None], 2)
        t = t + self.sum_offsets()[:, None]
        return np.clip(t, 0, self.sum_bounds()[:, None] + 1)

    def score_offsets(self) -> np.ndarray:
        """``dot = (S << binary) - offset`` per row, for raw-score outputs."""
        k = self.sum_offsets()
        if self.binary_input:
            return 2 * k + self._layer.weights.values().sum(axis=1)
        return k

    def graph_thresholds(self) -> np.ndarray:
        """Thresholds on the da4ml graph's row sum ``G = sum_j W[r, j] v_j`` (``dot >= t``
        iff ``G >= t'``), clipped to ``[min, max + 1]`` of ``G`` (same results).

        ``dot = G`` for unsigned lanes, ``2 G - sum_j W[r, j]`` for binary ones (``v`` the
        stored bit), ``G - sum_j W[r, j]`` for ternary ones (``v = x + 1``)."""
        t = self._layer.thresholds.astype(np.int64)
        total = self._layer.weights.values().sum(axis=1)[:, None]
        if self.binary_input:
            t = ceil_div(t + total, 2)
        elif self.lane_offset:
            t = t + total
        lo, hi = self.graph_bounds()
        return np.clip(t, lo[:, None], hi[:, None] + 1)

    def graph_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Least and largest ``G`` per row (each lane at 0 or its maximum)."""
        values = self._layer.weights.values().astype(np.int64)
        full = (1 << self.lane_bits) - 1
        return (np.minimum(values, 0).sum(axis=1) * full,
                np.maximum(values, 0).sum(axis=1) * full)

    def graph_score_offsets(self) -> np.ndarray:
        """``dot = (G << binary) - offset`` per row, for raw-score outputs."""
        if self.binary_input or self.lane_offset:
            return self._layer.weights.values().sum(axis=1).astype(np.int64)
        return np.zeros(self._layer.mh, dtype=np.int64)

    def elaborate(self, platform):
        m = Module()
        self._build(m)
        return m

    def structure(self) -> UnrolledStructure:
        """What :meth:`elaborate` builds, counted from the same construction (the cost
        model's profile of the unit, cost/profile.py)."""
        m = Module()
        m._MustUse__used = True  # built to be counted, never elaborated (as hw.validated)
        trees, compare_bits = self._build(m)
        layer = self._layer
        # the trees' (or the graph's pipeline) and delays' registers, the input word, valid,
        # the output word
        register_bits = (trees.register_bits + layer.mw * self.in_bits + 2
                         + layer.mh * self.out_bits)
        if self._graph is not None:
            lanes = set(range(layer.mw))  # the graph's first nodes are the lanes
            return UnrolledStructure(
                popcount_adders=(),
                other_adders=tuple(
                    (width, wa, wb, 0, node.a.node in lanes and node.b.node in lanes)
                    for (width, wa, wb), node in zip(
                        self._graph.adders,
                        (n for n in self._graph.nodes if n.lane is None), strict=True)),
                register_bits=register_bits, compare_bits=compare_bits)
        return UnrolledStructure(
            popcount_adders=tuple(adder for key, adder in trees.adders.items()
                                  if key[0] == "count"),
            other_adders=tuple(adder for key, adder in trees.adders.items()
                               if key[0] != "count"),
            register_bits=register_bits, compare_bits=compare_bits)

    def _build(self, m) -> tuple[TreeBuilder, int]:
        """The unit's logic in ``m``; returns its :class:`TreeBuilder` (every adder and
        register) and the comparator bits (thresholds that are not constant outcomes)."""
        layer = self._layer
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        x = Signal(len(self.i.payload))
        valid = Signal()
        with m.If(en):
            m.d.sync += [x.eq(self.i.payload), valid.eq(self.i.valid)]
        lanes = self._lanes(x)
        graph = self._graph
        if graph is None:
            thresholds = None if layer.produces_scores else self.hw_thresholds()
            bounds = self.sum_bounds()
            offsets = self.score_offsets()
        trees = TreeBuilder(m, en, self._levels)
        if graph is not None:
            thresholds = None if layer.produces_scores else self.graph_thresholds()
            lo, bounds = self.graph_bounds()
            offsets = self.graph_score_offsets()
            sums = graph.build(m, lanes, trees.register, self._graph_levels)
        compare_bits = 0
        for row in range(layer.mh):
            total = self._row(trees, lanes, row) if graph is None else sums[row]
            if layer.produces_scores:
                value = ((total << int(self.binary_input)) - int(offsets[row]))[:self.out_bits]
            else:
                count = sum((total >= int(t)).as_unsigned() for t in thresholds[row])
                value = self._encode(count)
                # S >= its least value always holds and S >= max + 1 never does: constants,
                # no logic
                least = 0 if graph is None else lo[row]
                compare_bits += len(total) * int(((thresholds[row] > least)
                                                  & (thresholds[row] <= bounds[row])).sum())
            with m.If(en):
                m.d.sync += self.o.payload[row * self.out_bits:(row + 1) * self.out_bits].eq(value)
        delayed = self._delay(trees, valid, self._tree_stages, "valid")
        with m.If(en):
            m.d.sync += self.o.valid.eq(delayed)
        return trees, compare_bits

    def _lanes(self, x) -> list:
        """The lane values ``v`` (``n`` bits) of the registered input word."""
        bits = self.in_bits
        if self._layer.in_encoding == "ternary":
            # v = x + 1: 0 -> 1, +1 -> 2, -1 -> 0 from (nonzero, negative).
            return [Cat(~x[2 * j], x[2 * j] & ~x[2 * j + 1]) for j in range(self._layer.mw)]
        return [x[j * bits:(j + 1) * bits] for j in range(self._layer.mw)]

    def _encode(self, count):
        if self._layer.out_encoding == "ternary":
            return (count != 1) | ((count == 0) << 1)
        return count[:self.out_bits]

    def _row(self, trees, lanes, row):
        """Unsigned ``S`` of one row: one tree per plane over its lanes (inverted where the
        sign is -1), every tree aligned to the deepest, summed with the plane scales.

        Every tree of the layer comes from one :class:`TreeBuilder`, so a node over the same
        lanes (and inversions) as one already built is that one: rows share their trees' low
        levels in the generated Verilog itself, not only after Yosys merges them.
        Binary lanes of the lightest plane are absorbed into the next plane's tree when they
        are few (see :meth:`_absorb`), so a sparse third plane costs no tree of its own."""
        depth = tree_latency(self._layer.mw, self._levels)
        planes = []
        for p, scale in enumerate(int(a) for a in self._scales):
            cols = self._order[self._masks[p, row, self._order] != 0]
            if len(cols):
                planes.append((f"r{row}p{p}", scale, self._runs[p], [
                    ((int(j), False), lanes[int(j)]) if self._signs[p, row, j] == 1
                    else ((int(j), True), ~lanes[int(j)]) for j in cols]))
        planes.sort(key=lambda plane: -plane[1])
        terms = []
        if self._absorption(planes, depth):
            (name, scale, _, light), (_, heavy_scale, _, heavy) = planes.pop(), planes.pop()
            value, stages = self._absorb(trees, heavy, light, heavy_scale // scale, name)
            terms.append((self._delay(trees, value, depth - stages, name), scale))
        for _, scale, runs, inputs in planes:
            # The delay is named by the lanes and by how they were summed: the two ways give
            # the same count at different latencies.
            by_runs = runs and self.lane_bits == 1
            key = ("runs" if by_runs else "tree", tuple(k for k, _ in inputs))
            value, latency = (trees.aligned_count(inputs, RUN) if by_runs
                              else self._tree(trees, inputs))
            assert latency <= depth, "a plane's tree is never deeper than the layer's"
            terms.append((trees.delay(key, value, depth - latency), scale))
        return weighted_sum(terms, trees, row)

    def _tree(self, trees, inputs):
        """(registered sum of ``inputs``, its latency): a popcount of one-bit lanes or an
        adder tree of wider ones, as :class:`Popcount` / :class:`AdderTree` build them."""
        key = ("tree", tuple(k for k, _ in inputs))
        if self.lane_bits == 1:
            total, stages = trees.count(inputs)
            return trees.output(key, total), stages + 1
        _, total = trees.adder_sum(inputs)
        return trees.output(key, total), tree_latency(len(inputs), self._levels)

    def _absorption(self, planes, depth) -> bool:
        """Whether the lightest plane's lanes go into the next plane's tree: binary lanes,
        a power-of-two scale ratio, at most half as many lanes, and within ``depth``."""
        if self.lane_bits != 1 or self._levels != 1 or len(planes) < 2:
            return False
        (_, heavy_scale, heavy_runs, heavy), (_, scale, runs, light) = planes[-2], planes[-1]
        if heavy_runs or runs:
            return False  # their runs would not line up with the chunks
        ratio = heavy_scale // scale
        if (heavy_scale % scale or ratio < 2 or ratio & (ratio - 1)
                or len(light) > len(heavy) // 2):
            return False
        chunks = _chunks(len(heavy), len(light))
        return max(popcount_latency(n) for n in chunks) + (len(chunks) - 1).bit_length() <= depth

    def _absorb(self, trees, heavy, light, ratio, name):
        """``ratio * popcount(heavy) + popcount(light)`` as one tree: ``heavy`` is counted in
        ``k`` chunks, each chunk's count takes a light lane below it for free
        (``Cat(lane, count) = 2 count + lane``), and the ``k`` values are summed by adders
        that take the other light lanes as their carry-ins (free on an FPGA carry chain).
        Returns (value, register stages)."""
        shift = ratio.bit_length() - 1
        light = list(light)
        values = []
        start = 0
        for c, size in enumerate(_chunks(len(heavy), len(light))):
            count, latency = self._tree(trees, heavy[start:start + size])
            start += size
            bit = self._delay(trees, light.pop(0)[1], latency, f"{name}c{c}l")
            values.append((Cat(bit, Const(0, shift - 1), count), latency, (size << shift) + 1))
        level = 0
        while len(values) > 1:
            level += 1
            paired = []
            for n in range(0, len(values) - 1, 2):
                (a, at, amax), (b, bt, bmax) = values[n], values[n + 1]
                stages = max(at, bt)
                a = self._delay(trees, a, stages - at, f"{name}a{level}_{n}")
                b = self._delay(trees, b, stages - bt, f"{name}b{level}_{n}")
                total, peak, carries = a + b, amax + bmax, 0
                if light:
                    carry = self._delay(trees, light.pop(0)[1], stages, f"{name}k{level}_{n}")
                    total, peak, carries = carry + total, peak + 1, 1
                width = peak.bit_length()
                trees.record_adder((name, level, n), width, a, b, carries)
                reg = trees.register(total[:width], (name, level, n), f"{name}s{level}_{n}")
                paired.append((reg, stages + 1, peak))
            if len(values) % 2:
                paired.append(values[-1])
            values = paired
        assert not light, "every light lane has a slot (2k - 1 >= lanes)"
        value, stages, _ = values[0]
        return value, stages

    @staticmethod
    def _delay(trees, value, stages, name):
        """``value`` through ``stages`` registers of ``trees`` (named ``name``)."""
        for stage in range(stages):
            value = trees.register(value, ("unit", name, stage), f"{name}d{stage}")
        return value


def _chunks(heavy: int, light: int) -> list[int]:
    """Sizes of the ``k`` heavy chunks that give ``light`` lanes a slot each: ``k`` chunk
    counts take one lane below them and ``k - 1`` adders one carry-in, so ``2k - 1 >= light``."""
    k = light // 2 + 1
    return [len(part) for part in np.array_split(np.arange(heavy), k)]
