import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.simulate import run_stream
from hwbnn.hw.stream_utils import StreamFifo, WidthConverter


@pytest.mark.parametrize("bits, n_in, n_out", [
    (1, 4, 4), (1, 8, 3), (3, 2, 6), (2, 6, 4), (5, 1, 7), (1, 12, 1)])
def test_width_converter_keeps_order(bits, n_in, n_out):
    rng = np.random.default_rng(bits + n_in * n_out)
    codes = rng.integers(0, 1 << bits, size=n_in * n_out * 3)
    dut = WidthConverter(bits, n_in, n_out)
    out = run_stream(dut, dut.i, dut.o, packing.pack(codes, bits, n_in), len(codes) // n_out,
                     seed=n_in)
    assert (packing.unpack(out, bits, n_out) == codes).all()


@pytest.mark.parametrize("n_in, n_out", [(4, 1), (1, 4), (3, 2)])
def test_width_converter_full_rate(n_in, n_out):
    """Without gaps the converter moves one beat per cycle on its slower side."""
    codes = np.arange(n_in * n_out * 8) % 2
    dut = WidthConverter(1, n_in, n_out)
    times = []
    run_stream(dut, dut.i, dut.o, packing.pack(codes, 1, n_in), len(codes) // n_out,
               seed=None, times=times)
    slow = max(len(codes) // n_in, len(codes) // n_out)
    assert times[-1] - times[0] <= slow


def test_fifo_passes_beats():
    dut = StreamFifo(7, 4)
    beats = list(np.random.default_rng(0).integers(0, 128, size=30))
    assert run_stream(dut, dut.i, dut.o, [int(b) for b in beats], 30, seed=2) == beats


@pytest.mark.parametrize("make, message", [
    (lambda: WidthConverter(0, 1, 1), "element width must be a positive integer"),
    (lambda: WidthConverter(1, 2, -1), "output elements per beat must be"),
    (lambda: StreamFifo(8, 0), "FIFO depth must be a positive integer")])
def test_errors(make, message):
    with pytest.raises(HwbnnError, match=message):
        make()
