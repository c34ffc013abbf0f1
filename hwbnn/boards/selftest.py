"""Self-test: a ROM of test frames and their expected labels, run once after reset.

With no host attached the board feeds the frames through the network, compares each label
with the one the golden model gave, and shows pass or fail on its LEDs.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError


class SelfTest(wiring.Component):
    """Sends ``frames`` (lists of input beats) on ``o``, checks the labels arriving on ``result``.

    Parameters
    ----------
    frames : list[list[int]]
        Input beats of each test frame (all frames the same number of beats).
    labels : list[int]
        Expected label of each frame.
    beat_width : int
        Bits per input beat.

    Ports: ``o`` (Out stream of input beats), ``result`` (In stream of 8 bits: labels),
    ``done``, ``passed``, ``failed`` (Out: all labels seen; with none / some wrong),
    ``errors`` (Out: count of wrong labels).
    """

    def __init__(self, frames, labels, beat_width: int):
        frames = [list(frame) for frame in frames]
        labels = [int(label) for label in labels]
        if not frames or len(frames) != len(labels):
            raise HwbnnError(f"self-test needs one label per frame and at least one frame, "
                             f"not {len(frames)} frames and {len(labels)} labels")
        if len({len(frame) for frame in frames}) != 1 or not frames[0]:
            raise HwbnnError("self-test frames must all have the same, non-zero number of beats")
        if any(not 0 <= label < 256 for label in labels):
            raise HwbnnError("self-test labels must lie in 0..255")
        self._beats = [int(beat) for frame in frames for beat in frame]
        self._labels = labels
        super().__init__({
            "o": Out(stream.Signature(unsigned(beat_width))),
            "result": In(stream.Signature(8)),
            "done": Out(1),
            "passed": Out(1),
            "failed": Out(1),
            "errors": Out(range(len(labels) + 1)),
        })

    @property
    def frame_count(self) -> int:
        return len(self._labels)

    def elaborate(self, platform):
        m = Module()
        total = len(self._beats)
        # A synchronous ROM maps to block RAM; its data appears one cycle after the address.
        m.submodules.rom = rom = Memory(shape=unsigned(len(self.o.payload)), depth=total,
                                        init=self._beats)
        port = rom.read_port()
        address = Signal(range(total + 1))
        load = Signal()
        m.d.comb += [
            load.eq((~self.o.valid | self.o.ready) & (address != total)),
            port.en.eq(load),
            port.addr.eq(address),
            self.o.payload.eq(port.data),
        ]
        with m.If(load):
            m.d.sync += [address.eq(address + 1), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        expected = Array(Const(label, 8) for label in self._labels)
        checked = Signal(range(len(self._labels) + 1))
        m.d.comb += [
            self.result.ready.eq(~self.done),
            self.done.eq(checked == len(self._labels)),
            self.passed.eq(self.done & (self.errors == 0)),
            self.failed.eq(self.done & (self.errors != 0)),
        ]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += checked.eq(checked + 1)
            with m.If(self.result.payload != expected[checked]):
                m.d.sync += self.errors.eq(self.errors + 1)
        return m
