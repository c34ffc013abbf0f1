"""The binary MVTU's per-lane datapath alone, for area measurements (LUT4 per SIMD lane).

:func:`lane_datapath` builds what every binary MVTU lane costs and nothing else: XNOR of
registered input and weight bits, :class:`~hwbnn.hw.popcount.Popcount` with its carry lane,
and the accumulator exactly as :class:`~hwbnn.hw.mvtu.MatrixVectorThresholdUnit` builds them
for binary weights and inputs (unsigned, as wide as the popcount domain 0..MW + 1 needs, the
carry lane as the adder's carry-in). Memory (weight ROM, input buffer, threshold ROM) and
control (step sequencer, comparators) are left out: ``x`` and ``w`` come from registers
loaded from the input stream, so synthesis cannot fold them into anything.

Run ``python -m hwbnn.hw.area`` to synthesize it with :func:`hwbnn.synth.synthesize` on
iCE40 at several SIMD widths and print LUT4 per lane and the slope over SIMD.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated
from .popcount import Popcount

# Issue 4 target: LUT4 per SIMD lane of a binary MVTU (XNOR + popcount + accumulate), iCE40.
LUTS_PER_LANE_TARGET = 2.5


def accumulator_bits(mw: int) -> int:
    """Bits of the MVTU's popcount-domain accumulator for fan-in ``mw`` (values 0..MW, and
    thresholds up to MW + 1)."""
    return (mw + 1).bit_length()


class LaneDatapath(wiring.Component):
    """XNOR + popcount + accumulate of one binary PE with ``simd`` lanes, fan-in ``mw``.

    Input beat: ``x`` (bits ``[0, SIMD)``), ``w`` (bits ``[SIMD, 2 SIMD)``), ``first`` (the
    top bit: this beat starts a new accumulation). Every beat adds ``popcount(xnor(x, w))``
    to the accumulator, which is the output beat (:attr:`latency` beats later).
    """

    @validated
    def __init__(self, simd: int, mw: int):
        if not isinstance(simd, int) or simd < 2:
            raise HwbnnError(f"lane datapath simd must be an integer >= 2, not {simd!r}")
        if not isinstance(mw, int) or mw < simd or mw % simd:
            raise HwbnnError(f"lane datapath mw must be a multiple of simd={simd}, not {mw!r}")
        self._simd, self._mw = simd, mw
        super().__init__({"i": In(stream.Signature(unsigned(2 * simd + 1))),
                          "o": Out(stream.Signature(unsigned(accumulator_bits(mw))))})

    @property
    def latency(self) -> int:
        """Beats from an input beat to the output beat that includes it: the x/w register,
        the popcount and the accumulator."""
        return Popcount(self._simd, carry=True).latency + 2

    def elaborate(self, platform):
        m = Module()
        simd = self._simd
        m.submodules.popcount = tree = Popcount(simd, carry=True)
        en = Signal()
        x, w = Signal(simd), Signal(simd)
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en),
                     tree.en.eq(en), tree.i.as_value().eq(~(x ^ w))]
        valid, first = Signal(tree.latency + 1), Signal(tree.latency + 1)
        with m.If(en):
            m.d.sync += [x.eq(self.i.payload[:simd]), w.eq(self.i.payload[simd:2 * simd]),
                         valid.eq((valid << 1) | self.i.valid),
                         first.eq((first << 1) | self.i.payload[-1]),
                         self.o.valid.eq(valid[-1])]
            with m.If(valid[-1]):
                # The same expression as the MVTU's accumulator (stage C).
                m.d.sync += self.o.payload.eq(Mux(first[-1], 0, self.o.payload)
                                              + tree.o + tree.carry)
        return m


def lane_datapath(simd: int, mw: int | None = None) -> LaneDatapath:
    """:class:`LaneDatapath` with ``simd`` lanes and fan-in ``mw`` (default 8 * SIMD)."""
    return LaneDatapath(simd, 8 * simd if mw is None else mw)


def measure(simds: list[int], sf: int = 8, work: Path | None = None) -> list[dict]:
    """Synthesize :func:`lane_datapath` on iCE40 at each SIMD (fan-in SF * SIMD)."""
    from ..synth.bench import component_design
    from ..synth.flow import synthesize

    root = work or Path(tempfile.mkdtemp(prefix="hwbnn-area-"))
    rows = []
    for simd in simds:
        folder = root / f"simd{simd}"
        folder.mkdir(parents=True, exist_ok=True)
        unit = lane_datapath(simd, sf * simd)
        result = synthesize(component_design(unit, f"lane_datapath_simd{simd}", folder),
                            "ice40", seeds=0, work_dir=folder / "synth")
        rows.append({"simd": simd, "mw": sf * simd, "acc_bits": accumulator_bits(sf * simd),
                     **{key: result.counts[key] for key in ("lut", "ff", "carry")}})
    return rows


def _slope(rows: list[dict]) -> float | None:
    """Least-squares LUT4 per lane over the SIMD points (None for fewer than two)."""
    if len(rows) < 2:
        return None
    xs = [r["simd"] for r in rows]
    ys = [r["lut"] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwbnn.hw.area",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--simd", default="16,32,64,128",
                        help="comma-separated SIMD points (default 16,32,64,128)")
    parser.add_argument("--sf", type=int, default=8, help="synapse fold: MW = SF * SIMD")
    parser.add_argument("--work", help="keep Verilog and Yosys files here")
    args = parser.parse_args(argv)
    try:
        simds = [int(part) for part in args.simd.split(",") if part]
        rows = measure(simds, args.sf, Path(args.work) if args.work else None)
    except (HwbnnError, ValueError) as error:
        print(f"hwbnn area: error: {error}", file=sys.stderr)
        return 2
    print("XNOR + popcount + accumulate, datapath alone (registered x/w), iCE40 synth_ice40")
    for r in rows:
        print(f"  SIMD {r['simd']:4d} (MW {r['mw']}, accumulator {r['acc_bits']} bits): "
              f"LUT4 {r['lut']:4d}  FF {r['ff']:4d}  carry {r['carry']:4d}  "
              f"{r['lut'] / r['simd']:.3f} LUT4/lane")
    slope = _slope(rows)
    if slope is not None:
        print(f"  slope {slope:.3f} LUT4 per SIMD lane (target <= {LUTS_PER_LANE_TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
