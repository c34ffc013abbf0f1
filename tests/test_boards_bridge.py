import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hwbnn.boards import protocol
from hwbnn.boards.bridge import BytesToBeats, ScoreCollector, crc8_next
from hwbnn.errors import HwbnnError
from hwbnn.hw.simulate import run_stream


def test_crc8_gateware_equals_protocol():
    crc, byte = Signal(8), Signal(8)
    m = Module()
    out = Signal(8)
    m.d.comb += out.eq(crc8_next(crc, byte))
    pairs = [(c, b) for c in (0x00, 0x01, 0x80, 0xF4, 0xFF) for b in range(256)]
    got = []

    async def bench(ctx):
        for c, b in pairs:
            ctx.set(crc, c)
            ctx.set(byte, b)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [protocol.crc8_update(c, b) for c, b in pairs]


@pytest.mark.parametrize("beat_bytes", [1, 3, 5])
def test_bytes_to_beats(beat_bytes):
    data = np.random.default_rng(beat_bytes).integers(0, 256, size=4 * beat_bytes)
    dut = BytesToBeats(beat_bytes)
    beats = run_stream(dut, dut.i, dut.o, [int(b) for b in data], 4, seed=beat_bytes)
    assert beats == [int.from_bytes(bytes(data[n:n + beat_bytes].tolist()), "little")
                     for n in range(0, len(data), beat_bytes)]


@pytest.mark.parametrize("bits, per_beat, beat_bytes, classes", [
    (7, 1, 1, 10), (12, 2, 3, 10), (5, 3, 2, 7)])
def test_score_collector_argmax_ties_to_lowest(bits, per_beat, beat_bytes, classes):
    rng = np.random.default_rng(classes + bits)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    frames = rng.integers(lo, hi, size=(6, classes))
    frames[0] = hi - 1          # all equal: label 0
    frames[1, 3:5] = hi - 1     # tie between 3 and 4: label 3
    frames[2] = lo              # all at the minimum
    dut = ScoreCollector(bits, per_beat, beat_bytes, classes)
    padded = np.zeros((6, dut.beats * per_beat), dtype=np.int64)
    padded[:, :classes] = frames
    beats = [int.from_bytes(protocol.pack_beats(row[n:n + per_beat], bits, per_beat,
                                                beat_bytes), "little")
             for row in padded for n in range(0, len(row), per_beat)]
    out = run_stream(dut, dut.i, dut.o, beats, 6, seed=3)
    for row, word in zip(frames, out, strict=True):
        assert word & 0xFF == int(np.argmax(row))
        data = (word >> 8).to_bytes(dut.beats * beat_bytes, "little")
        assert protocol.unpack_signed(data, bits, per_beat, beat_bytes, classes) == row.tolist()


@pytest.mark.parametrize("call, message", [
    (lambda: BytesToBeats(0), "beat_bytes must be a positive integer"),
    (lambda: ScoreCollector(12, 2, 2, 10), "do not fit a beat of 2 bytes"),
    (lambda: ScoreCollector(8, 1, 1, 300), "at most 256 classes")])
def test_errors(call, message):
    with pytest.raises(HwbnnError, match=message):
        call()
