import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hwbnn.errors import HwbnnError
from hwbnn.hw.fork import StreamFork
from hwbnn.hw.simulate import get_beats, put_beats


@pytest.mark.parametrize("seed, stalls", [(0, (0.3, 0.3)), (1, (0.8, 0.0)), (2, (0.0, 0.9))])
def test_fork_copies_every_beat_to_both(seed, stalls):
    """Each consumer gets every beat once, in order, whatever the other's stalls."""
    rng = np.random.default_rng(seed)
    beats = [int(v) for v in rng.integers(0, 256, size=60)]
    dut = StreamFork(8)
    got = {}

    async def source(ctx):
        await put_beats(ctx, dut.i, beats, np.random.default_rng(seed + 10), 0.3)

    def sink(n):
        async def run(ctx):
            got[n] = await get_beats(ctx, getattr(dut, f"o{n}"), len(beats),
                                     np.random.default_rng(seed + n), stalls[n], max_cycles=2000)
        return run

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    for bench in (source, sink(0), sink(1)):
        sim.add_testbench(bench)
    sim.run()
    assert got[0] == beats and got[1] == beats


def test_fork_errors():
    with pytest.raises(HwbnnError, match="fork width must be a positive integer"):
        StreamFork(0)
