"""Amaranth-simulation helpers: drive a stream with random gaps, drain one with backpressure.

Used by the tests and by :func:`hwbnn.hw.network.simulate_network`; the simulator runs about
2-8k cycles/s, so callers keep designs and frame counts small.
"""

from __future__ import annotations

import numpy as np
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator


async def put_beats(ctx, port, beats, rng: np.random.Generator | None, gap: float):
    """Send ``beats`` on stream ``port``; with ``rng``, idle cycles with probability ``gap``."""
    for beat in beats:
        while rng is not None and rng.random() < gap:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.payload, beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def get_beats(ctx, port, count: int, rng: np.random.Generator | None, stall: float,
                    times: list | None = None, max_cycles: int = 100_000):
    """Receive ``count`` beats from ``port``; with ``rng``, drop ready with probability
    ``stall``. Appends the cycle of each beat to ``times`` when given; fails after
    ``max_cycles`` cycles."""
    beats = []
    cycle = 0
    while len(beats) < count:
        if cycle >= max_cycles:
            raise AssertionError(f"only {len(beats)} of {count} output beats after "
                                 f"{max_cycles} cycles")
        ready = not (rng is not None and rng.random() < stall)
        ctx.set(port.ready, ready)
        *_, payload, valid = await ctx.tick().sample(port.payload, port.valid)
        cycle += 1
        if ready and valid:
            beats.append(int(payload))
            if times is not None:
                times.append(cycle)
    ctx.set(port.ready, 0)
    return beats


def run_stream(dut, in_port, out_port, beats, out_count: int, *, seed: int | None = 0,
               gap: float = 0.3, stall: float = 0.3, times: list | None = None,
               max_cycles: int = 100_000) -> list[int]:
    """Simulate ``dut`` fed with ``beats`` on ``in_port``; return ``out_count`` output beats.

    ``seed=None`` runs without gaps or stalls (for cycle measurements); the run fails after
    ``max_cycles`` cycles without all outputs.
    """
    rng = None if seed is None else np.random.default_rng(seed)
    result = []

    async def source(ctx):
        await put_beats(ctx, in_port, beats, rng, gap)

    async def sink(ctx):
        result.extend(await get_beats(ctx, out_port, out_count, rng, stall, times, max_cycles))

    top = Module()
    top.domains.sync = ClockDomain()  # also for designs that are pure wiring
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return result


def simulate_network(top, images: np.ndarray, *, seed: int | None = 0, gap: float = 0.3,
                     stall: float = 0.3, times: list | None = None,
                     max_cycles: int = 100_000) -> np.ndarray:
    """Run frames through a :class:`~hwbnn.hw.network.NetworkTop` in simulation.

    Returns the scores ``(N, classes)`` in ``scores`` mode or the labels ``(N,)`` in
    ``label`` mode, decoded with the top's own packing description. Fails (AssertionError)
    when the outputs do not all come within ``max_cycles`` cycles (a deadlock).
    """
    from . import packing

    info = top.packing()
    inp, out = info["input"], info["output"]
    images = np.asarray(images)
    beats = []
    for frame in images:
        beats += packing.pack_values(frame.reshape(-1), inp["encoding"],
                                     inp["elements_per_beat"])
    words = run_stream(top, top.s_axis, top.m_axis, beats, len(images) * out["beats_per_frame"],
                       seed=seed, gap=gap, stall=stall, times=times, max_cycles=max_cycles)
    codes = packing.unpack(words, out["bits"], out["elements_per_beat"]).reshape(len(images), -1)
    if out["kind"] == "label":
        return codes[:, 0]
    return packing.from_signed(codes, out["bits"])
