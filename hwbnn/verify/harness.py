"""Host side of the compiled stream harness: beats to a file, the harness run, beats back.

The harness (``harness.cpp`` beside this file, built with the design by
:func:`hwbnn.verify.runner.build` with ``harness=True``) streams input beats from a file
into the design's ``s_axis`` port with seeded random idle cycles, takes the ``m_axis``
output with seeded random backpressure, checks the output stream rules (data held while
stalled, no beat beyond the expected count) and writes every output beat to a file. It runs
a whole test split at millions of cycles per second where a cocotb bench runs thousands;
the comparison with the golden model stays in Python (:mod:`hwbnn.verify.check`).

Beat files hold each beat as ``tdata_width / 8`` bytes, least significant byte first.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import HwbnnError
from .runner import HARNESS_BINARY, Build

RESULT = "result.json"


@dataclass
class HarnessRun:
    """What the harness saw: output beats, cycles, speed and the first broken stream rule."""

    output: list[int]
    cycles: int  # every simulated clock cycle, reset and the tail after the last beat included
    busy_cycles: int  # from the first cycle after reset to the last output beat
    wall_s: float  # the simulation loop alone
    seconds: float  # the whole run: files, start-up, simulation
    in_beats: int  # input beats the design took
    stalled: bool  # no output beat for max_wait_cycles
    violation: str | None
    directory: Path


def write_beats(path: Path, beats: Iterable[int], width: int) -> None:
    """Write ``beats`` as ``width / 8`` little-endian bytes each."""
    size = width // 8
    path.write_bytes(b"".join(int(beat).to_bytes(size, "little") for beat in beats))


def read_beats(path: Path, width: int) -> list[int]:
    """The beats of a file written by the harness (or :func:`write_beats`)."""
    size = width // 8
    raw = path.read_bytes()
    return [int.from_bytes(raw[n:n + size], "little") for n in range(0, len(raw), size)]


def run(built: Build, beats: Iterable[int], work: str | Path, *, in_width: int,
        out_width: int, out_beats: int, max_wait_cycles: int, tail_cycles: int = 0,
        gap: float = 0.0, backpressure: float = 0.0, seed: int = 0,
        prelude: Iterable[int] = (), reset_cycles: int = 3) -> HarnessRun:
    """Stream ``beats`` (ints of ``in_width`` bits) through the harness of ``built``.

    ``out_beats`` output beats of ``out_width`` bits are expected; after the last one the
    harness idles ``tail_cycles`` more with a ready sink, so an extra beat shows. The
    ``prelude`` beats go in first, then a reset; what they produce is dropped. A stall or
    broken stream rule is reported in the result, not raised.
    """
    if not built.harness:
        raise HwbnnError(f"{built.directory} is a cocotb build, not the compiled harness")
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    prelude = list(prelude)
    frames, output, result = work / "frames.bin", work / "output.bin", work / RESULT
    output.unlink(missing_ok=True)
    result.unlink(missing_ok=True)
    write_beats(frames, [*prelude, *beats], in_width)
    options = {"frames": frames, "output": output, "result": result,
               "in-bytes": in_width // 8, "out-bytes": out_width // 8, "out-beats": out_beats,
               "prelude-beats": len(prelude), "gap": gap, "backpressure": backpressure,
               "seed": seed, "max-wait-cycles": max_wait_cycles, "tail-cycles": tail_cycles,
               "reset-cycles": reset_cycles}
    command = [str(built.directory / HARNESS_BINARY)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if process.returncode != 0 or not result.is_file():
        lines = (process.stderr or process.stdout).strip().splitlines()
        raise HwbnnError(f"the compiled harness of {built.top} failed (exit "
                         f"{process.returncode}): {lines[-1] if lines else 'no message'}")
    outcome = json.loads(result.read_text())
    return HarnessRun(read_beats(output, out_width), outcome["cycles"],
                      outcome["busy_cycles"], outcome["wall_s"], seconds, outcome["in_beats"],
                      outcome["stalled"], outcome["violation"], work)
