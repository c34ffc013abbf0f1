"""Stream glue between layers: width converters and FIFOs with ``amaranth.lib.stream`` ports."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated


def _positive(value, what: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise HwbnnError(f"{what} must be a positive integer, not {value!r}")
    return value


class WidthConverter(wiring.Component):
    """Re-chunk a stream of ``elem_bits``-bit elements from ``in_count`` to ``out_count`` per beat.

    Elements keep their order (element 0 of a beat is in the low bits). The buffer holds up
    to ``in_count + 2 * out_count`` elements and accepts a beat whenever it fits before this
    cycle's output leaves, so ``i.ready`` depends on registers only; the extra ``out_count``
    of room lets the converter still sustain the slower side's full rate. Equal counts give a
    plain wire.

    Ports: ``i`` (In stream of ``in_count * elem_bits``), ``o`` (Out stream of
    ``out_count * elem_bits``).
    """

    @validated
    def __init__(self, elem_bits: int, in_count: int, out_count: int):
        self._bits = _positive(elem_bits, "element width")
        self._in = _positive(in_count, "input elements per beat")
        self._out = _positive(out_count, "output elements per beat")
        super().__init__({
            "i": In(stream.Signature(unsigned(in_count * elem_bits))),
            "o": Out(stream.Signature(unsigned(out_count * elem_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        if self._in == self._out:
            m.d.comb += [
                self.o.payload.eq(self.i.payload),
                self.o.valid.eq(self.i.valid),
                self.i.ready.eq(self.o.ready),
            ]
            return m
        b, n_in, n_out = self._bits, self._in, self._out
        capacity = n_in + 2 * n_out
        buf = Signal(capacity * b)
        level = Signal(range(capacity + 1))
        take = Signal()   # an output beat leaves this cycle
        put = Signal()    # an input beat enters this cycle
        kept = Signal(capacity * b)
        kept_level = Signal(range(capacity + 1))
        m.d.comb += [
            self.o.valid.eq(level >= n_out),
            self.o.payload.eq(buf[:n_out * b]),
            take.eq(self.o.valid & self.o.ready),
        ]
        with m.If(take):
            m.d.comb += [kept.eq(buf >> (n_out * b)), kept_level.eq(level - n_out)]
        with m.Else():
            m.d.comb += [kept.eq(buf), kept_level.eq(level)]
        # Readiness depends on registered state only (no combinational path from o.ready).
        m.d.comb += self.i.ready.eq(level + n_in <= capacity)
        m.d.comb += put.eq(self.i.valid & self.i.ready)
        with m.If(put):
            placed = Signal(capacity * b)
            m.d.comb += placed.eq(self.i.payload << (kept_level * b))
            m.d.sync += [buf.eq(kept | placed), level.eq(kept_level + n_in)]
        with m.Else():
            m.d.sync += [buf.eq(kept), level.eq(kept_level)]
        return m


class StreamFifo(wiring.Component):
    """A synchronous FIFO of ``depth`` beats between two streams (``amaranth.lib.fifo``).

    Ports: ``i`` (In stream), ``o`` (Out stream), both ``width`` bits.
    """

    @validated
    def __init__(self, width: int, depth: int):
        self._width = _positive(width, "FIFO width")
        self._depth = _positive(depth, "FIFO depth")
        super().__init__({
            "i": In(stream.Signature(unsigned(width))),
            "o": Out(stream.Signature(unsigned(width))),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buffer = fifo.SyncFIFOBuffered(width=self._width, depth=self._depth)
        m.d.comb += [
            buffer.w_data.eq(self.i.payload),
            buffer.w_en.eq(self.i.valid),
            self.i.ready.eq(buffer.w_rdy),
            self.o.payload.eq(buffer.r_data),
            self.o.valid.eq(buffer.r_rdy),
            buffer.r_en.eq(self.o.ready),
        ]
        return m
