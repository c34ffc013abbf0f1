"""Stream fork: one stream to two consumers (a tensor read by a block and its shortcut)."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import validated
from .stream_utils import _positive


class StreamFork(wiring.Component):
    """Copy every beat of ``i`` to ``o0`` and ``o1``, each with its own ready.

    A beat stays on ``i`` until both outputs took it: an output that took it early is masked
    (``taken``) until the other one does, so neither consumer sees a beat twice and neither
    waits for the other while the beat is offered. No storage besides the two ``taken``
    bits; the outputs' valid never depends on a ready.

    Ports: ``i`` (In stream), ``o0``, ``o1`` (Out streams), all ``width`` bits.
    """

    @validated
    def __init__(self, width: int):
        self._width = _positive(width, "fork width")
        super().__init__({
            "i": In(stream.Signature(unsigned(width))),
            "o0": Out(stream.Signature(unsigned(width))),
            "o1": Out(stream.Signature(unsigned(width))),
        })

    def elaborate(self, platform):
        m = Module()
        outs = (self.o0, self.o1)
        taken = [Signal(name=f"taken{n}") for n in range(2)]
        done = [Signal(name=f"done{n}") for n in range(2)]
        for out, took, finished in zip(outs, taken, done, strict=True):
            m.d.comb += [
                out.payload.eq(self.i.payload),
                out.valid.eq(self.i.valid & ~took),
                finished.eq(took | out.ready),
            ]
        m.d.comb += self.i.ready.eq(done[0] & done[1])
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [took.eq(0) for took in taken]
        with m.Else():
            for out, took in zip(outs, taken, strict=True):
                with m.If(out.valid & out.ready):
                    m.d.sync += took.eq(1)
        return m
