"""``hwbnn bench cpu``: frames/s and latency of float32 torch, golden and the packed engine.

Every figure comes from one run: the float32 model and the packed engine are timed in
alternation (round robin, so both see the same machine load) and each figure is the best
of its repetitions, the usual estimator of a benchmark's undisturbed time (timeit's
advice); medians are reported beside it. Golden, plain int64 numpy, is timed on at most
``golden_frames`` frames of each batch (whole CNV batches would take minutes) and its
latency scaled to the batch; the packed scores of those frames are checked against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data, progress
from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import NetworkIR
from ..ref import golden, packed

FLOAT_BYTES = 4
# One scalar POPCNT per cycle on 64-bit words, each bit a binary MAC of 2 ops (XNOR and
# accumulate, the op count of FINN and Riptide): the limit the issue compares against.
POPCOUNT_BITS = 64
OPS_PER_MAC = 2


@dataclass
class Timing:
    """Repeated wall-clock times of one engine on ``frames`` frames."""

    frames: int
    seconds: list[float]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    def as_dict(self, batch: int) -> dict:
        scale = batch / self.frames
        return {"latency_s": self.best * scale, "median_latency_s": self.median * scale,
                "measured_frames_per_s": self.frames / self.best,
                "repetitions": len(self.seconds), "frames_timed": self.frames}


def time_round_robin(functions: dict[str, Callable[[], object]], frames: dict[str, int],
                     min_time: float, min_repetitions: int = 3) -> dict[str, Timing]:
    """Call each function once per round until every one has ``min_repetitions`` times and
    ``min_time`` seconds have passed; one untimed warm-up call each first."""
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    start = time.perf_counter()
    while (min(len(t) for t in times.values()) < min_repetitions
           or time.perf_counter() - start < min_time):
        for name, function in functions.items():
            begin = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - begin)
    return {name: Timing(frames[name], seconds) for name, seconds in times.items()}


def bit_macs_per_frame(net: NetworkIR) -> int:
    """1-bit x 1-bit MACs per frame: every weight bit (residual: b_j bits, integer: n bits)
    meets every input bit plane (n-bit integers: n planes; binary and ternary: one sign or
    masked plane). Adds, pools and standalone thresholds do no MACs."""
    total = 0
    for layer in net.weight_layers:
        x_planes = (1 if layer.in_encoding in ("binary", "ternary")
                    else encoding_bits(layer.in_encoding))
        total += layer.output_pixels * x_planes * int(layer.weights.bitwidths().sum())
    return total


def float_weight_bytes(net: NetworkIR) -> int:
    """Bytes of the weights as float32."""
    return FLOAT_BYTES * sum(layer.mh * layer.mw for layer in net.weight_layers)


def cpu_clock_hz(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[float | None, str]:
    """The CPU clock (highest ``cpu MHz`` in /proc/cpuinfo) and the CPU's model name."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None, "unknown CPU"
    clocks, name = [], "unknown CPU"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            clocks.append(float(value))
        elif key.strip() == "model name":
            name = value.strip()
    return (max(clocks) * 1e6 if clocks else None), name


def random_frames(net: NetworkIR, frames: int, seed: int = 0) -> np.ndarray:
    """Seeded random frames of the input encoding (binary: -1/+1)."""
    return data.random_frames(np.random.default_rng(seed), tuple(net.input_shape),
                              net.input_encoding, frames)


def bench_cpu(net: NetworkIR, batches: list[int], threads: int = 1, **options) -> dict:
    """:func:`_bench_cpu` with torch's thread count restored afterwards (a caller's later
    torch work, an export for one, must not run on the benchmark's thread count)."""
    import torch

    before = torch.get_num_threads()
    try:
        return _bench_cpu(net, batches, threads, **options)
    finally:
        torch.set_num_threads(before)


def _bench_cpu(net: NetworkIR, batches: list[int], threads: int = 1, min_time: float = 1.0,
              golden_frames: int = 16, clock_hz: float | None = None, seed: int = 0) -> dict:
    """Time float32 torch, golden and packed on each batch size; return every figure."""
    import torch

    from .baseline import float_model

    if not batches or min(batches) < 1:
        raise HwbnnError(f"batch sizes must be positive integers, not {batches!r}")
    if golden_frames < 1:
        raise HwbnnError(f"golden frames must be at least 1, not {golden_frames}")
    if min_time < 0:
        raise HwbnnError(f"min time must not be negative, not {min_time}")
    limit = packed.max_threads()
    if not 1 <= threads <= limit:
        raise HwbnnError(f"threads must be an integer in 1..{limit}, not {threads}")
    torch.set_num_threads(threads)
    engine = packed.PackedNetwork(net)
    model = float_model(net)
    detected_clock, cpu_name = cpu_clock_hz()
    clock_hz = clock_hz or detected_clock
    bit_macs = bit_macs_per_frame(net)
    float_bytes = float_weight_bytes(net)
    result = {
        "model": net.name, "threads": threads, "cpu": cpu_name,
        "cpu_clock_mhz": None if clock_hz is None else clock_hz / 1e6,
        "bit_macs_per_frame": bit_macs,
        "popcount_limit_gops": (None if clock_hz is None
                                else OPS_PER_MAC * POPCOUNT_BITS * clock_hz / 1e9),
        "float32_weight_bytes": float_bytes, "packed_weight_bytes": engine.weight_bytes,
        "batches": [],
    }
    with progress.step(f"bench cpu {net.name}", total=len(batches)) as step:
        for batch in batches:
            result["batches"].append(_bench_batch(
                net, engine, model, batch, threads=threads, min_time=min_time,
                golden_frames=golden_frames, seed=seed, bit_macs=bit_macs,
                limit_gops=result["popcount_limit_gops"]))
            step.advance(f"batch {batch}")
    return result


def _bench_batch(net: NetworkIR, engine, model, batch: int, *, threads: int, min_time: float,
                 golden_frames: int, seed: int, bit_macs: int,
                 limit_gops: float | None) -> dict:
    """The figures of one batch size (see :func:`bench_cpu`)."""
    import torch

    from .baseline import float_input

    images = random_frames(net, batch, seed)
    tensor = float_input(net, images)
    few = images[:min(batch, golden_frames)]

    def run_float():
        with torch.inference_mode():
            return model(tensor)

    functions = {"float32": run_float, "packed": lambda: engine.scores(images, threads)}
    timings = time_round_robin(functions, {"float32": batch, "packed": batch}, min_time)
    timings.update(time_round_robin({"golden": lambda: golden.scores(net, few)},
                                    {"golden": len(few)}, min_time / 2, 1))
    exact = bool(np.array_equal(engine.scores(few, threads), golden.scores(net, few)))
    row = {"batch": batch, **{name: t.as_dict(batch) for name, t in timings.items()}}
    packed_fps = row["packed"]["measured_frames_per_s"]
    row["packed_over_float32"] = packed_fps / row["float32"]["measured_frames_per_s"]
    row["packed_over_float32_median"] = (row["float32"]["median_latency_s"]
                                         / row["packed"]["median_latency_s"])
    row["packed_over_golden"] = packed_fps / row["golden"]["measured_frames_per_s"]
    row["binary_gops"] = OPS_PER_MAC * bit_macs * packed_fps / 1e9
    row["popcount_limit_fraction"] = (None if limit_gops is None
                                      else row["binary_gops"] / limit_gops)
    row["exact"] = exact
    return row


def _seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.1f} us"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def format_report(result: dict, model_ref: str) -> str:
    """The figures as a short text report with one table row per engine and batch."""
    clock = result["cpu_clock_mhz"]
    float_bytes, packed_bytes = result["float32_weight_bytes"], result["packed_weight_bytes"]
    threads = result["threads"]
    lines = [
        f"hwbnn bench cpu {model_ref}: {threads} thread{'s' if threads > 1 else ''}, "
        f"{result['cpu']}" + (f" at {clock / 1e3:.2f} GHz" if clock else ""),
        f"weights: float32 {float_bytes:,} B, packed {packed_bytes:,} B "
        f"({float_bytes / packed_bytes:.1f}x smaller)",
        f"binary work: {result['bit_macs_per_frame']:,} 1-bit MACs per frame"
        + (f"; scalar popcount limit {result['popcount_limit_gops']:.1f} Gop/s "
           f"(64 bits x 1 popcount/cycle x clock, 2 ops per MAC)" if clock else ""),
        "",
        f"{'batch':>5}  {'engine':8} {'latency':>10} {'median':>10} {'frames/s':>12} "
        f"{'packed speedup':>14}",
    ]
    for row in result["batches"]:
        for name in ("float32", "golden", "packed"):
            figures = row[name]
            if name == "packed":
                speedup = "-"
            else:
                ratio = row["packed"]["measured_frames_per_s"] / figures["measured_frames_per_s"]
                speedup = f"{ratio:.2f}x"
            note = ""
            if name == "golden" and figures["frames_timed"] < row["batch"]:
                note = f"  (timed on {figures['frames_timed']} frames)"
            lines.append(f"{row['batch']:>5}  {name:8} {_seconds(figures['latency_s']):>10} "
                         f"{_seconds(figures['median_latency_s']):>10} "
                         f"{figures['measured_frames_per_s']:>12,.1f} {speedup:>14}{note}")
        fraction = row["popcount_limit_fraction"]
        lines.append(f"{'':5}  packed: {row['binary_gops']:.1f} binary Gop/s"
                     + (f" = {100 * fraction:.1f}% of the popcount limit" if fraction else "")
                     + f"; packed == golden: {'yes' if row['exact'] else 'NO'}; packed / "
                       f"float32 = {row['packed_over_float32']:.2f}x (best), "
                       f"{row['packed_over_float32_median']:.2f}x (median)")
    return "\n".join(lines)
