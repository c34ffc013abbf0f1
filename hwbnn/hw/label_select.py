"""Argmax over a stream of signed scores (ties to the lowest index)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated


def label_width(classes: int) -> int:
    """Bits of the label beat: the class index rounded up to whole bytes."""
    return 8 * max(1, -(-max(classes - 1, 1).bit_length() // 8))


class LabelSelect(wiring.Component):
    """Class index of the largest of ``classes`` scores arriving ``per_beat`` at a time.

    A later score replaces the best only when strictly larger, so ties keep the lowest
    index, as in ``numpy.argmax``. One label beat per frame.

    Ports: ``i`` (In stream of per_beat * bits signed scores), ``o`` (Out stream of the label,
    :func:`label_width` bits).
    """

    @validated
    def __init__(self, classes: int, per_beat: int, bits: int):
        for name, value in (("classes", classes), ("per_beat", per_beat), ("bits", bits)):
            if not isinstance(value, int) or value < 1:
                raise HwbnnError(f"{name} must be a positive integer, not {value!r}")
        if classes % per_beat:
            raise HwbnnError(f"per_beat={per_beat} does not divide classes={classes}")
        self._classes, self._per_beat, self._bits = classes, per_beat, bits
        super().__init__({
            "i": In(stream.Signature(unsigned(per_beat * bits))),
            "o": Out(stream.Signature(unsigned(label_width(classes)))),
        })

    def elaborate(self, platform):
        m = Module()
        beats = self._classes // self._per_beat
        beat = Signal(range(max(beats, 2)))
        best = Signal(signed(self._bits))
        best_index = Signal(range(self._classes))
        # Running best through this beat's scores; the first beat of a frame starts afresh.
        value, index = best, best_index
        for n in range(self._per_beat):
            score = self.i.payload[n * self._bits:(n + 1) * self._bits].as_signed()
            take = (score > value) if n else ((beat == 0) | (score > value))
            value = Mux(take, score, value)
            index = Mux(take, beat * self._per_beat + n, index)
        accept = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     accept.eq(self.i.valid & self.i.ready)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            m.d.sync += [best.eq(value), best_index.eq(index)]
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), self.o.payload.eq(index), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
