"""Matrix-vector-threshold unit (MVTU): the FINN-style folded dense/conv engine.

MW inputs, MH outputs, SIMD input lanes, PE output lanes; synapse fold SF = MW/SIMD, neuron
fold NF = MH/PE. Row ``nf*PE + p`` of the weight matrix is computed by PE ``p``. An input
vector arrives as SF beats of SIMD elements during the first neuron fold, is written to an
input buffer and read back for the other NF - 1 folds; one step (tile x weight plane) enters
the pipeline per clock (II = 1). See :mod:`hwbnn.hw.plan` for the step schedule and the
popcount-domain thresholds.

Pipeline (all registers load only while the output register can move, ``en``):

====  ===========================================================================
A     step sequencer; synchronous reads of the weight ROM and input buffer
B     lanes (XNOR / ternary masks / signed products) into per-PE adder trees
...   adder-tree register stages (``Popcount`` / ``AdderTree`` latency)
C     scale by the plane's integer a_p, accumulate; synchronous threshold-ROM read
D     compare against the thresholds (or form the score) into the output register
====  ===========================================================================
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated
from .plan import LayerPlan
from .popcount import LEVELS_PER_STAGE, AdderTree, Popcount, popcount_latency, tree_latency
from .threshold import count_code, sum_bits


def pack_signed(values, width: int) -> int:
    """Pack integers as ``width``-bit two's-complement fields, element 0 lowest."""
    word = 0
    for n, value in enumerate(values):
        word |= (int(value) & ((1 << width) - 1)) << (n * width)
    return word


class MatrixVectorThresholdUnit(wiring.Component):
    """Folded matrix-vector-threshold unit for one IR matvec or conv layer.

    Parameters
    ----------
    layer : MatVec | Conv
        The IR layer (weights, thresholds, encodings). A conv layer is computed on the
        patches of a :class:`~hwbnn.hw.sliding_window.SlidingWindow`.
    pe, simd : int
        Output / input lanes (default: the layer's own fields, else 1). Must divide MH / MW.
    ram_style : str
        Where synthesis puts the constant memories (weights, schedule, thresholds): ``auto``
        (its choice), ``block`` or ``logic``, as a ``ram_style`` attribute
        (:class:`~hwbnn.hw.fold.LayerFold`).
    mode : str
        ``"folded"`` (weights in a ROM, bit-plane schedule for heterogeneous weights) or
        ``"unrolled"`` (see :mod:`hwbnn.hw.unrolled`).
    levels_per_stage : int
        Adder-tree levels between pipeline registers.

    Ports
    -----
    i : In(stream of SIMD * in_bits)
        SIMD input elements per beat (element 0 in the low bits).
    o : Out(stream of PE * out_bits)
        PE outputs per beat: thresholded activations, or signed scores for the last layer.
    """

    @validated
    def __init__(self, layer, *, pe: int | None = None, simd: int | None = None,
                 ram_style: str = "auto", mode: str = "folded",
                 levels_per_stage: int = LEVELS_PER_STAGE):
        if mode != "folded":
            raise HwbnnError(f"MatrixVectorThresholdUnit mode must be 'folded', not {mode!r} "
                             f"(the unrolled mode is UnrolledMatrixVectorUnit)")
        self._plan = LayerPlan(layer, pe, simd, ram_style=ram_style)
        self._levels_per_stage = levels_per_stage
        plan = self._plan
        super().__init__({
            "i": In(stream.Signature(unsigned(plan.simd * plan.in_bits))),
            "o": Out(stream.Signature(unsigned(plan.pe * plan.out_bits))),
        })

    @property
    def plan(self) -> LayerPlan:
        return self._plan

    @property
    def pe(self) -> int:
        return self._plan.pe

    @property
    def simd(self) -> int:
        return self._plan.simd

    @property
    def in_bits(self) -> int:
        return self._plan.in_bits

    @property
    def out_bits(self) -> int:
        return self._plan.out_bits

    @property
    def cycles_per_vector(self) -> int:
        """Clock cycles per input vector in steady state (NF * SF plus extra plane steps)."""
        return self._plan.cycles_per_vector

    @property
    def tree_latency(self) -> int:
        """Register stages of the per-PE adder trees (popcounts for binary and ternary
        inputs, two-input adder trees for unsigned ones)."""
        if self._plan.in_encoding in ("binary", "ternary"):
            return popcount_latency(self.simd - self._carry_lane, self._levels_per_stage)
        return tree_latency(self.simd, self._levels_per_stage)

    @property
    def _carry_lane(self) -> bool:
        """See :attr:`LayerPlan.carry_lane` and :class:`Popcount`."""
        return self._plan.carry_lane

    @property
    def acc_shape(self) -> Shape:
        """Shape of each PE's accumulator register. In the popcount domain the accumulator
        never goes below 0 and its thresholds lie in [0, hi + 1], so an unsigned register one
        bit narrower than ``acc_width`` holds both (one LUT4 less per PE for the adder and
        for each comparator); otherwise signed ``acc_width``."""
        if self._plan.popcount_domain:
            return unsigned(self._plan.acc_bits)
        return signed(self._plan.acc_bits)

    @property
    def latency(self) -> int:
        """Pipeline depth: cycles from a step's issue to its result in the output register."""
        return self.tree_latency + 3

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        step = self._sequencer(m, en)
        lane_sums, meta = self._lanes(m, en, step)
        acc, done, thr_data = self._accumulate(m, en, lane_sums, meta)
        results = self._results(acc, thr_data)
        with m.If(en):
            m.d.sync += self.o.valid.eq(done)
            for p, result in enumerate(results):
                bits = plan.out_bits
                m.d.sync += self.o.payload[p * bits:(p + 1) * bits].eq(result)
        return m

    # --- stage A: step sequencer and memory reads -----------------------------------------
    def _sequencer(self, m, en):
        plan = self._plan
        schedule = plan.plane_schedule
        regular, max_slots, in_rom = not plan.irregular, plan.max_slots, plan.schedule_in_rom

        k = Signal(range(max(plan.steps, 2)))
        nf = Signal(range(max(plan.nf, 2)))
        sf = Signal(range(max(plan.sf, 2)))
        tile = Signal(range(max(len(schedule), 2)))
        slot = Signal(range(max(max_slots, 2)))
        plane = Signal(range(max(len(plan.scales), 2)))
        slots = Signal(range(max_slots + 1))
        if regular:
            m.d.comb += [plane.eq(Array(Const(p, plane.shape()) for p in schedule[0])[slot]
                                  if max_slots > 1 else schedule[0][0]),
                         slots.eq(len(schedule[0]))]
        elif in_rom:
            # Every tile takes a prefix of the planes: the plane is the slot, and where a
            # tile's steps end comes from the weight memory (below), not from a table.
            m.d.comb += plane.eq(slot)
        else:
            # Per tile, its planes' indices, ``code_bits`` each (8-bit integer weights: 3).
            code_bits = max(1, (len(plan.scales) - 1).bit_length())
            codes = Array(Const(sum(p << (code_bits * n) for n, p in enumerate(planes)),
                                code_bits * max_slots) for planes in schedule)
            counts = Array(Const(len(planes), slots.shape()) for planes in schedule)
            m.d.comb += [plane.eq(codes[tile].bit_select(slot * code_bits, code_bits)),
                         slots.eq(counts[tile])]

        fresh, first, last_slot, last, fire = (Signal(name=n) for n in
                                               ("fresh", "first", "last_slot", "last", "fire"))
        m.d.comb += [
            fresh.eq((nf == 0) & (slot == 0)),
            first.eq((sf == 0) & (slot == 0)),
            *([] if in_rom else [last_slot.eq(slot == slots - 1)]),
            last.eq((sf == plan.sf - 1) & last_slot),
            fire.eq(en & (~fresh | self.i.valid)),
            self.i.ready.eq(en & fresh),
        ]
        next_tile, first_tile = ([], []) if in_rom else ([tile.eq(tile + 1)], [tile.eq(0)])
        with m.If(fire):
            with m.If(~last_slot):
                m.d.sync += [slot.eq(slot + 1), k.eq(k + 1)]
            with m.Else():
                m.d.sync += slot.eq(0)
                with m.If(sf != plan.sf - 1):
                    m.d.sync += [sf.eq(sf + 1), *next_tile, k.eq(k + 1)]
                with m.Elif(nf != plan.nf - 1):
                    m.d.sync += [sf.eq(0), nf.eq(nf + 1), *next_tile, k.eq(k + 1)]
                with m.Else():
                    m.d.sync += [sf.eq(0), nf.eq(0), *first_tile, k.eq(0)]

        style = plan.memory_attrs
        m.submodules.weights = rom = Memory(shape=unsigned(plan.rom_width),
                                            depth=plan.steps, init=plan.rom_words(),
                                            attrs=style)
        m.submodules.inbuf = buf = Memory(shape=unsigned(plan.simd * plan.in_bits),
                                          depth=plan.sf, init=[])
        rom_rd = rom.read_port()
        buf_rd = buf.read_port()
        buf_wr = buf.write_port()
        m.d.comb += [
            rom_rd.addr.eq(k), rom_rd.en.eq(en),
            buf_rd.addr.eq(sf), buf_rd.en.eq(en),
            buf_wr.addr.eq(sf), buf_wr.data.eq(self.i.payload), buf_wr.en.eq(fire & fresh),
        ]

        b = {name: Signal(shape, name=f"b_{name}") for name, shape in (
            ("valid", 1), ("fresh", 1), ("first", 1), ("last", 1),
            ("plane", plane.shape()), ("nf", nf.shape()), ("word", len(self.i.payload)))}
        with m.If(en):
            m.d.sync += [b["valid"].eq(fire), b["fresh"].eq(fresh), b["first"].eq(first),
                         b["last"].eq(last), b["plane"].eq(plane), b["nf"].eq(nf),
                         b["word"].eq(self.i.payload)]
        x = Signal(len(self.i.payload))
        m.d.comb += x.eq(Mux(b["fresh"], b["word"], buf_rd.data))
        if in_rom:
            # The word read for the step that fired last cycle carries the flag of the step
            # that follows it, the current one; without a fire since (stall, waiting for
            # input) the flag already taken is held. After reset: step 0's own flag.
            if plan.schedule_apart:
                m.submodules.ends = ends = Memory(shape=1, depth=plan.steps,
                                                  init=plan.ends_ahead().tolist(),
                                                  attrs=style)
                ends_rd = ends.read_port()
                m.d.comb += [ends_rd.addr.eq(k), ends_rd.en.eq(en)]
                ahead = ends_rd.data
            else:
                ahead = rom_rd.data[-1]
            held = Signal(name="last_held", init=int(plan.last_steps()[0]))
            m.d.comb += last_slot.eq(Mux(b["valid"], ahead, held))
            with m.If(en):
                m.d.sync += held.eq(last_slot)
        return {"x": x, "w": rom_rd.data, **b}

    # --- stage B: lanes into adder trees ----------------------------------------------------
    def _lanes(self, m, en, step):
        plan = self._plan
        simd, lanes = plan.simd, plan.pe * plan.simd
        x, w = step["x"], step["w"]
        sums, carries = [], []
        for p in range(plan.pe):
            signs = w[p * simd:(p + 1) * simd]
            masks = (w[lanes + p * simd:lanes + (p + 1) * simd] if plan.needs_mask
                     else Const(-1, simd))
            if plan.in_encoding == "binary":
                tree = Popcount(simd, levels_per_stage=self._levels_per_stage,
                                carry=self._carry_lane)
                m.d.comb += tree.i.as_value().eq(~(x ^ signs) & masks)
                sums.append(tree.o)
                carries.append(tree.carry if self._carry_lane else 0)
            elif plan.in_encoding == "ternary":
                nz = Signal(simd, name=f"nz{p}")
                neg = Signal(simd, name=f"neg{p}")
                for j in range(simd):
                    m.d.comb += [nz[j].eq(x[2 * j]), neg[j].eq(x[2 * j + 1])]
                used = masks & nz
                agree = Popcount(simd, levels_per_stage=self._levels_per_stage)
                count = Popcount(simd, levels_per_stage=self._levels_per_stage)
                # Product is +1 where the weight sign (1 = +1) differs from the input's
                # negative bit, -1 where they agree: dot = 2 * pc(+1 lanes) - pc(used lanes).
                m.d.comb += [agree.i.as_value().eq(used & (signs ^ neg)),
                             count.i.as_value().eq(used)]
                m.submodules[f"pc_agree{p}"] = agree
                m.submodules[f"pc_used{p}"] = count
                m.d.comb += [agree.en.eq(en), count.en.eq(en)]
                sums.append((agree.o << 1) - count.o)
                carries.append(0)
                continue
            else:
                bits = plan.in_bits
                tree = AdderTree(simd, signed(bits + 1), levels_per_stage=self._levels_per_stage)
                for j in range(simd):
                    value = x[j * bits:(j + 1) * bits]
                    value = value.as_signed() if plan.signed_input else value.as_unsigned()
                    m.d.comb += tree.i[j].eq(Mux(masks[j], Mux(signs[j], value, -value), 0))
                sums.append(tree.o)
                carries.append(0)
            m.submodules[f"tree{p}"] = tree
            m.d.comb += tree.en.eq(en)
        latency = self.tree_latency
        meta = {name: step[name] for name in ("valid", "first", "last", "plane", "nf")}
        for stage in range(latency):
            delayed = {}
            for name, sig in meta.items():
                reg = Signal.like(sig, name=f"t{stage}_{name}")
                with m.If(en):
                    m.d.sync += reg.eq(sig)
                delayed[name] = reg
            meta = delayed
        return list(zip(sums, carries, strict=True)), meta

    # --- stage C: scale and accumulate ------------------------------------------------------
    def _accumulate(self, m, en, sums, meta):
        plan = self._plan
        scales = [int(a) for a in plan.scales]
        accs = []
        for p, (lane_sum, carry) in enumerate(sums):
            if len(set(scales)) == 1:
                value = lane_sum * scales[0] if scales[0] != 1 else lane_sum
            else:
                value = Array(lane_sum * a for a in scales)[meta["plane"]]
            acc = Signal(self.acc_shape, name=f"acc{p}")
            with m.If(en & meta["valid"]):
                m.d.sync += acc.eq(Mux(meta["first"], 0, acc) + value + carry)
            accs.append(acc)
        done = Signal()
        with m.If(en):
            m.d.sync += done.eq(meta["valid"] & meta["last"])
        words = self._threshold_words()
        if words is None:
            return accs, done, None
        m.submodules.thresholds = thr = Memory(
            shape=unsigned(self._thr_width), depth=plan.nf,
            init=[pack_signed(row, plan.acc_width) for row in words],
            attrs=plan.memory_attrs)
        thr_rd = thr.read_port()
        m.d.comb += [thr_rd.addr.eq(meta["nf"]), thr_rd.en.eq(en)]
        return accs, done, thr_rd.data

    @property
    def _thr_fields(self) -> int:
        """Values per PE in the threshold ROM: the levels, or one offset for popcount scores."""
        return self._plan.threshold_fields

    @property
    def _thr_width(self) -> int:
        return self._plan.pe * self._thr_fields * self._plan.acc_width

    def _threshold_words(self):
        """Per neuron fold: the values of every PE (thresholds, or popcount offsets)."""
        table = self._plan.threshold_table()
        if table is None:
            return None
        return table.reshape(self._plan.nf, -1).tolist()

    # --- stage D: thresholds or scores ------------------------------------------------------
    def _results(self, accs, thr_data):
        plan = self._plan
        width = plan.acc_width
        fields = self._thr_fields
        results = []
        for p, acc in enumerate(accs):
            def field(n, p=p):
                start = (p * fields + n) * width
                if plan.popcount_domain:
                    return thr_data[start:start + width - 1]
                return thr_data[start:start + width].as_signed()
            if plan.layer.produces_scores:
                score = (acc << 1) - field(0) if plan.popcount_domain else acc
                results.append(score[:plan.out_bits])
                continue
            count = sum_bits([acc >= field(n) for n in range(fields)])
            results.append(count_code(count, plan.out_encoding))
        return results

