"""Simulator-side half of every bench: drive a stream design, record what comes out.

This module runs *inside* the simulator (it imports cocotb); the host side
(:mod:`hwbnn.verify.runner`, :mod:`hwbnn.verify.flow`) writes a JSON config, starts the
simulator and reads the JSON result back. The design under test has the ports of
docs/design.md section 4 (``clk``, ``rst``, ``s_axis_t{data,valid,ready}``,
``m_axis_t{data,valid,ready}``), driven by cocotbext-axi's
:class:`AxiStreamSource`/:class:`AxiStreamSink` with random pause generators (input gaps,
output backpressure). Optionally it records internal streams ("taps": any
``o__payload/o__valid/o__ready`` triple of a submodule), so the host can name the first
layer that differs from the golden model.

Config (JSON, path in the environment variable :data:`CONFIG_ENV`)::

    frames            list of frames, each a list of input beats (hex strings)
    out_beats         output beats expected per frame
    expected          expected output beats per frame (hex) or null (record only)
    taps              [{"name": str, "path": [instance, ...]}]
    gap, backpressure probabilities of an idle input cycle / a cycle without tready
    seed              seed of both pause generators
    prelude           beats sent before a reset in the middle of a frame, or null
    reset_cycles      cycles rst is held (start and after the prelude)
    max_wait_cycles   give up when no output beat arrives for this many cycles
    window            frames queued ahead of the output (null: all at once)
    result            path of the JSON result

A config with ``cases`` (a list of such configs, each with a ``prefix`` for its ports,
e.g. ``"fifo0_"`` for ``fifo0_s_axis_tdata``) runs them one after the other in one
simulation: one build of many components serves a whole table of component benches. The
result then maps each case's ``name`` to its result.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import (
    ClockCycles,
    Event,
    FallingEdge,
    RisingEdge,
    SimTimeoutError,
    with_timeout,
)
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .tools import CONFIG_ENV

CLOCK_NS = 10


def read_config() -> dict:
    return json.loads(Path(os.environ[CONFIG_ENV]).read_text())


def pauses(rng: random.Random, probability: float):
    """Endless pause pattern: True (pause this cycle) with ``probability``."""
    while True:
        yield rng.random() < probability


class Tap:
    """Records every handshake on a submodule's output stream ``o``.

    Sampled on the falling edge: the DUT's outputs and the bench's inputs are stable there,
    and the handshake happens at the next rising edge with exactly these values (the same
    in Verilator and Icarus, which order rising-edge callbacks differently).
    """

    def __init__(self, dut, name: str, path: list[str]):
        handle = dut
        for part in path:
            handle = getattr(handle, part)
        self.name = name
        self.valid, self.ready, self.payload = handle.o__valid, handle.o__ready, handle.o__payload
        self.beats: list[int] = []

    def sample(self):
        if self.valid.value and self.ready.value:
            self.beats.append(int(self.payload.value))


class Bench:
    """One stream run of a config on the ports ``{prefix}s_axis_*`` / ``{prefix}m_axis_*``:
    optional prelude + reset, frames, record. The clock runs and reset is done already."""

    def __init__(self, dut, config: dict, prefix: str = ""):
        self.dut = dut
        self.config = config
        self.taps = [Tap(dut, tap["name"], tap["path"]) for tap in config.get("taps", [])]
        self.frames_out = 0
        self.progress = Event()
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, f"{prefix}s_axis"),
                                      dut.clk, byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, f"{prefix}m_axis"), dut.clk,
                                  byte_lanes=1)

    async def _watch(self):
        """Sample the taps once per cycle (only started when there are taps: it costs a
        Python wake-up per clock cycle)."""
        clk, taps = self.dut.clk, self.taps
        while True:
            await FallingEdge(clk)
            for tap in taps:
                tap.sample()

    async def reset(self):
        await reset(self.dut, int(self.config.get("reset_cycles", 3)))

    def _pauses(self, on: bool):
        """Start (or stop) the random input gaps and output backpressure of this run."""
        seed = int(self.config.get("seed", 0))
        for port, key, offset in ((self.source, "gap", 0), (self.sink, "backpressure", 1)):
            probability = self.config.get(key, 0)
            if on and probability > 0:
                port.set_pause_generator(pauses(random.Random(seed + offset), probability))
            else:
                port.clear_pause_generator()
                port.pause = False

    async def feed(self, frames: list[list[int]]):
        """Queue the frames; with a ``window``, at most that many frames ahead of the
        output. The source polls every cycle while it holds a beat the design does not
        take, so a small window keeps the bench fast on deeply folded designs."""
        window = self.config.get("window")
        for n, frame in enumerate(frames):
            while window is not None and n - self.frames_out >= window:
                self.progress.clear()
                await self.progress.wait()
            self.source.send_nowait(AxiStreamFrame(frame))

    async def receive(self, count: int) -> tuple[list[int], bool, float | None]:
        """Up to ``count`` output beats; stops early when none arrives for a while.
        Returns the beats, whether the design stalled, and the time of the last beat."""
        limit = int(self.config["max_wait_cycles"]) * CLOCK_NS
        per_frame = int(self.config["out_beats"])
        beats, last = [], None
        while len(beats) < count:
            try:
                frame = await with_timeout(self.sink.recv(), limit, "ns")
            except SimTimeoutError:
                return beats, True, last
            beats.extend(frame.tdata)
            last = get_sim_time("ns")
            if len(beats) // per_frame != self.frames_out:
                self.frames_out = len(beats) // per_frame
                self.progress.set()
        return beats, False, last

    async def run(self) -> dict:
        dut, config = self.dut, self.config
        self._pauses(True)
        watch = cocotb.start_soon(self._watch()) if self.taps else None
        prelude = [int(beat, 16) for beat in config.get("prelude") or []]
        if prelude:
            await self._prelude(prelude)
        frames = [[int(beat, 16) for beat in frame] for frame in config["frames"]]
        wall = time.perf_counter()
        start = get_sim_time("ns")
        cocotb.start_soon(self.feed(frames))
        beats, stalled, last = await self.receive(len(frames) * int(config["out_beats"]))
        wall = time.perf_counter() - wall
        end = get_sim_time("ns")
        await ClockCycles(dut.clk, 4)  # let the taps see the last handshakes
        self._pauses(False)
        if watch is not None:
            watch.cancel()
        return {
            "output": [format(beat, "x") for beat in beats],
            "taps": {tap.name: [format(beat, "x") for beat in tap.beats] for tap in self.taps},
            "stalled": stalled,
            "cycles": round((end - start) / CLOCK_NS),
            "busy_cycles": None if last is None else round((last - start) / CLOCK_NS),
            "wall_s": wall,
        }

    async def _prelude(self, beats: list[int]):
        """Send part of a stream, reset in the middle of it, and forget what came out."""
        self.source.send_nowait(AxiStreamFrame(beats))
        await self.source.wait()
        await ClockCycles(self.dut.clk, random.Random(self.config.get("seed", 0)).randrange(1, 64))
        await self.reset()
        self.sink.clear()
        for tap in self.taps:
            tap.beats.clear()


async def reset(dut, cycles: int):
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def run_bench(dut) -> dict:
    """Run the config named by the environment, write the result JSON, return it."""
    config = read_config()
    cases = config.get("cases")
    for case in cases or [config]:
        prefix = case.get("prefix", "")
        getattr(dut, f"{prefix}s_axis_tvalid").value = 0
        getattr(dut, f"{prefix}m_axis_tready").value = 0
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await reset(dut, int(config.get("reset_cycles", 3)))
    if cases is None:
        result = await Bench(dut, config).run()
    else:
        result = {}
        for case in cases:
            result[case["name"]] = await Bench(dut, case, case["prefix"]).run()
    Path(config["result"]).write_text(json.dumps(result))
    return result


def check_output(config: dict, result: dict) -> None:
    """Assert the output beats equal the expected ones (the host reports the details)."""
    assert not result["stalled"], (
        f"design stalled after {len(result['output'])} output beats")
    expected = [beat for frame in config["expected"] for beat in frame]
    got = result["output"]
    assert len(got) == len(expected), f"{len(got)} output beats, expected {len(expected)}"
    for n, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert int(want, 16) == int(have, 16), (
            f"output beat {n} (frame {n // config['out_beats']}): expected 0x{want}, "
            f"got 0x{have}")
