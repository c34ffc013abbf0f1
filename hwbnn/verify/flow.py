"""``verify``: run a generated design on dataset frames and compare it with the golden model.

1. Build the design's Verilog for the simulator (cached: identical RTL builds once).
2. Stream all frames through it, with optional input gaps and output backpressure: in
   Verilator through the compiled harness (:mod:`hwbnn.verify.harness`, which also checks
   the output stream rules), in Icarus through the cocotb bench
   (:mod:`hwbnn.verify.tb_network`); compare the output beats with the golden scores.
3. On a difference, run again on the frames up to the first bad one in the cocotb bench,
   with waveforms compiled in and every layer's output stream tapped, and name the first
   layer and element that differ (the taps cost a Python wake-up per clock cycle, so the
   fast first pass has none).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import HwbnnError
from ..ref import golden
from . import harness, runner
from .check import compare_output, compare_taps, expected_output, input_beats, to_hex
from .design import RtlDesign
from .tools import require

DIAGNOSE_FRAMES = 16  # a waveform of more frames than this gets too large to be useful


@dataclass
class VerifyReport:
    """Outcome and speed of one verification run (``hwbnn verify --json`` prints it)."""

    top: str
    model: str
    design_path: str
    sim: str
    frames: int
    passed: bool
    difference: str | None = None
    layer: str | None = None
    waveform_path: str | None = None
    diagnosis: str | None = None
    build_s: float = 0.0
    build_cached: bool = False
    sim_s: float = 0.0
    total_s: float = 0.0
    sim_cycles: int = 0
    sim_cycles_per_s: float = 0.0  # the simulator's speed, not the design's
    sim_frames_per_s: float = 0.0
    measured_cycles_per_frame: float = 0.0  # busy cycles in simulation / frames
    cycles_per_frame: int = 0  # the cycle model's (manifest)
    backpressure: float = 0.0
    gap: float = 0.0
    seed: int = 0
    work_path: str = ""
    log_path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _probability(value: float, what: str) -> float:
    if not isinstance(value, int | float) or not 0 <= value < 1:
        raise HwbnnError(f"{what} must be a probability in [0, 1), not {value!r}")
    return float(value)


def stall_limit(design: RtlDesign, gap: float, backpressure: float) -> int:
    """Cycles without an output beat after which a run counts as stalled: four times the
    latency and a frame, stretched by the expected share of idle and refused cycles."""
    slowdown = 1 / ((1 - gap) * (1 - backpressure))
    return int(4 * slowdown * (design.latency_cycles + design.cycles_per_frame) + 1000)


def bench_config(design: RtlDesign, beats, expected, *, gap: float, backpressure: float,
                 seed: int, taps=(), window: int | None | str = "auto") -> dict:
    """The JSON config of :mod:`hwbnn.verify.bench` for these frames."""
    if window == "auto":
        # Enough frames in flight to keep the pipeline at its bottleneck's rate.
        window = max(2, math.ceil(design.latency_cycles / design.cycles_per_frame))
    return {
        "frames": [to_hex(frame) for frame in beats],
        "out_beats": design.packing["output"]["beats_per_frame"],
        "expected": None if expected is None else [to_hex(frame) for frame in expected],
        "taps": [tap.bench_entry() for tap in taps],
        "gap": gap,
        "backpressure": backpressure,
        "seed": seed,
        "window": window,
        "max_wait_cycles": stall_limit(design, gap, backpressure),
    }


def verify(design: RtlDesign, images: np.ndarray, *, sim: str = "verilator",
           backpressure: float = 0.0, gap: float = 0.0, seed: int = 0,
           work: str | Path = "build/verify", cache: str | Path | None = None,
           window: int | None | str = "auto", diagnose: bool = True) -> VerifyReport:
    """Verify ``design`` on ``images`` (``(N, *input_shape)``) with simulator ``sim``.

    ``work`` receives the run folders (beat files, config, result, log, waveform); ``cache``
    holds the builds (default ``work/cache``). Returns a :class:`VerifyReport`; HwbnnError
    only for problems that stop verification from running at all.
    """
    start = time.perf_counter()
    require(sim)
    backpressure = _probability(backpressure, "backpressure")
    gap = _probability(gap, "gap")
    images = golden.check_input(design.net, images)
    if len(images) == 0:
        raise HwbnnError("no frames to verify")
    work = Path(work)
    cache = Path(cache) if cache is not None else work / "cache"
    trace = golden.run(design.net, images)
    beats = input_beats(design, images)
    expected = expected_output(design, trace)
    report = VerifyReport(design.top, design.net.name, str(design.directory), sim, len(images),
                          False, backpressure=backpressure, gap=gap, seed=seed,
                          work_path=str(work), cycles_per_frame=design.cycles_per_frame)
    if sim == "amaranth":
        _run_amaranth(design, beats, expected, report)
    else:
        if sim == "verilator":
            output, stalled, violation = _run_harness(design, beats, expected, report, cache,
                                                      work)
        else:
            output, stalled, violation = _run_cocotb(design, beats, expected, report, cache,
                                                     work, window)
        difference = compare_output(design, expected, to_hex(output))
        if violation is not None:
            report.difference = f"stream rule broken: {violation}"
        elif difference is not None:
            report.difference = str(difference) + (
                f"; the design stalled after {len(output)} output beats" if stalled else "")
        report.passed = report.difference is None
        # Taps compare values layer by layer: they can name where a value or a frame went
        # missing, not who broke the top's handshake.
        if difference is not None and violation is None and diagnose:
            _diagnose(design, images, difference.frame or 0, sim, cache, work, report,
                      gap=gap, backpressure=backpressure, seed=seed, window=window)
    report.total_s = time.perf_counter() - start
    return report


def _run_harness(design: RtlDesign, beats, expected, report: VerifyReport, cache: Path,
                 work: Path) -> tuple[list[int], bool, str | None]:
    """All frames through the compiled Verilator harness: output beats, whether the design
    stalled, and the first broken stream rule."""
    spec = design.packing
    with progress.step(f"verify {design.top}: Verilator build"):
        built = runner.build(design.verilog, design.top, "verilator", cache, harness=True,
                             widths=(spec["input"]["tdata_width"],
                                     spec["output"]["tdata_width"]))
    report.build_s, report.build_cached = built.seconds, built.cached
    with progress.step(f"verify {design.top}: simulate {report.frames} frames (Verilator)"):
        run = harness.run(built, (beat for frame in beats for beat in frame),
                          work / "verilator-harness", in_width=spec["input"]["tdata_width"],
                          out_width=spec["output"]["tdata_width"],
                          out_beats=sum(len(frame) for frame in expected),
                          max_wait_cycles=stall_limit(design, report.gap, report.backpressure),
                          tail_cycles=design.latency_cycles + design.cycles_per_frame,
                          gap=report.gap, backpressure=report.backpressure, seed=report.seed)
    report.sim_s = run.seconds
    _record_speed(report, run.cycles, run.busy_cycles, run.wall_s)
    return run.output, run.stalled, run.violation


def _run_cocotb(design: RtlDesign, beats, expected, report: VerifyReport, cache: Path,
                work: Path, window: int | None | str) -> tuple[list[int], bool, None]:
    """All frames through the cocotb bench: output beats and whether the design stalled."""
    with progress.step(f"verify {design.top}: {report.sim} build"):
        built = runner.build(design.verilog, design.top, report.sim, cache)
    report.build_s, report.build_cached = built.seconds, built.cached
    config = bench_config(design, beats, expected, gap=report.gap,
                          backpressure=report.backpressure, seed=report.seed, window=window)
    with progress.step(f"verify {design.top}: simulate {report.frames} frames ({report.sim})"):
        run = runner.run(built, config, work / f"{report.sim}-run")
    report.log_path = str(run.log)
    report.sim_s = run.seconds
    result = run.result
    _record_speed(report, result["cycles"], result["busy_cycles"], result["wall_s"])
    return [int(beat, 16) for beat in result["output"]], result["stalled"], None


def _record_speed(report: VerifyReport, cycles: int, busy_cycles: int | None,
                  wall_s: float) -> None:
    wall = max(wall_s, 1e-9)
    report.sim_cycles = int(cycles)
    report.sim_cycles_per_s = report.sim_cycles / wall
    report.sim_frames_per_s = report.frames / wall
    if busy_cycles is not None:
        report.measured_cycles_per_frame = busy_cycles / report.frames


def _diagnose(design: RtlDesign, images, frame: int, sim: str, cache: Path, work: Path,
              report: VerifyReport, **options) -> None:
    """Re-run with taps and a waveform; name the first layer and element that differ.

    The frames up to the bad one are replayed with the same seed, so the stimulus (pauses
    included) is identical up to the difference; past :data:`DIAGNOSE_FRAMES` only the bad
    frame is replayed.
    """
    first = 0 if frame < DIAGNOSE_FRAMES else min(frame, len(images) - 1)
    subset = images[first:frame + 1]
    trace = golden.run(design.net, subset)
    with progress.step(f"verify {design.top}: diagnose (re-run with taps and a waveform)"):
        built = runner.build(design.verilog, design.top, sim, cache, waves=True)
        taps = design.taps()
        config = bench_config(design, input_beats(design, subset),
                              expected_output(design, trace), taps=taps, **options)
        run = runner.run(built, config, work / f"{sim}-diagnose")
    report.waveform_path = str(run.waveform) if run.waveform else None
    difference = compare_taps(design, taps, run.result["taps"], trace, frame_offset=first)
    frames = f"frames {first}..{frame}" if frame > first else f"frame {frame}"
    if difference is None:
        report.diagnosis = (f"the difference did not reproduce on {frames} alone with taps "
                            f"on every layer")
        return
    report.layer = difference.layer
    report.diagnosis = f"{difference} (replayed {frames})"


def _run_amaranth(design: RtlDesign, beats, expected, report: VerifyReport) -> None:
    """Simulate the generator's Amaranth description (not the Verilog file) of the design:
    the same NetworkTop re-elaborated from the model and the manifest's folding."""
    from ..hw.network import NetworkTop
    from ..hw.simulate import run_stream

    top = NetworkTop(design.net, design.folding, output=design.output)
    flat = [beat for frame in beats for beat in frame]
    count = sum(len(frame) for frame in expected)
    stalls = report.gap > 0 or report.backpressure > 0
    times: list[int] = []
    limit = int(4 * (design.latency_cycles + design.cycles_per_frame * len(beats)) + 1000)
    start = time.perf_counter()
    try:
        with progress.step(f"verify {design.top}: simulate {len(beats)} frames (Amaranth)"):
            output = run_stream(top, top.s_axis, top.m_axis, flat, count,
                                seed=report.seed if stalls else None, gap=report.gap,
                                stall=report.backpressure, times=times, max_cycles=limit)
    except AssertionError as error:
        output, times = [], []
        report.difference = f"the design stalled: {error}"
    wall = max(time.perf_counter() - start, 1e-9)
    report.sim_s = wall
    report.sim_cycles = times[-1] if times else 0
    report.sim_cycles_per_s = report.sim_cycles / wall
    report.sim_frames_per_s = len(beats) / wall
    report.measured_cycles_per_frame = report.sim_cycles / len(beats)
    if report.difference is None:
        difference = compare_output(design, expected, to_hex(output))
        report.difference = None if difference is None else str(difference)
    report.passed = report.difference is None
