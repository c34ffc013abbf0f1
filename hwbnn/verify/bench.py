"""Simulator-side half of every bench: drive a stream design, record what comes out.

This module runs *inside* the simulator (it imports cocotb); the host side
(:mod:`hwbnn.verify.session`) writes a JSON config, starts the simulator and reads the JSON
result back. The design under test has the ports of DESIGN.md section 4 (``clk``, ``rst``,
``s_axis_t{data,valid,ready}``, ``m_axis_t{data,valid,ready}``), driven by cocotbext-axi's
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
    result            path of the JSON result
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

CONFIG_ENV = "HWBNN_BENCH_CONFIG"
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
    """One simulation run of a config: reset, optional prelude + reset, frames, record."""

    def __init__(self, dut, config: dict):
        self.dut = dut
        self.config = config
        self.taps = [Tap(dut, tap["name"], tap["path"]) for tap in config.get("taps", [])]
        self.frames_out = 0
        self.progress = Event()
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                      byte_lanes=1)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk,
                                  byte_lanes=1)
        seed = int(config.get("seed", 0))
        if config.get("gap", 0) > 0:
            self.source.set_pause_generator(pauses(random.Random(seed), config["gap"]))
        if config.get("backpressure", 0) > 0:
            self.sink.set_pause_generator(pauses(random.Random(seed + 1),
                                                 config["backpressure"]))

    async def _watch(self):
        """Sample the taps once per cycle (only started when there are taps: it costs a
        Python wake-up per clock cycle)."""
        clk, taps = self.dut.clk, self.taps
        while True:
            await FallingEdge(clk)
            for tap in taps:
                tap.sample()

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, int(self.config.get("reset_cycles", 3)))
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

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
        dut.s_axis_tvalid.value = 0
        dut.m_axis_tready.value = 0
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        await self.reset()
        if self.taps:
            cocotb.start_soon(self._watch())
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


async def run_bench(dut) -> dict:
    """Run the config named by the environment, write the result JSON, return it."""
    config = read_config()
    result = await Bench(dut, config).run()
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
