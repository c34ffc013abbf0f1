"""``hwbnn bench cpu``: the packed engine against float32 onnxruntime and torch, and golden.

Every figure comes from one run: the engines are timed in alternation (round robin, so all
see the same machine load; each runs a short block of calls in a row, so that all but the
first find their caches warm) and each figure is the best of its repetitions, the usual
estimator of a benchmark's undisturbed time (timeit's advice); medians are reported beside
it. The float32 baselines are onnxruntime with BatchNorm folded into biases (what a user
deploys) and eager torch. Golden, plain int64 numpy, is timed on at most ``golden_frames``
frames of each batch (whole CNV batches would take minutes) and its latency scaled to the
batch; the packed scores of those frames are checked against it. The ceiling, this CPU's
clock and vector popcount loop, is measured in the same run (:mod:`hwbnn.bench.ceiling`) and
the packed engine's 1-bit MACs per second are given as a fraction of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import data, progress
from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import NetworkIR
from ..ref import golden, packed

FLOAT_BYTES = 4
# Engines timed against each other, in the order of the report.
ENGINES = ("onnxruntime", "torch", "golden", "packed")


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


# Seconds each engine runs in a row within a round: its first call in a block finds the caches
# as the other engines left them, the following ones warm (as a deployed engine runs, and as
# the LCE peer, in its own process, is timed).
BLOCK_S = 0.05


def time_round_robin(functions: dict[str, Callable[[], object]], frames: dict[str, int],
                     min_time: float, min_repetitions: int = 3,
                     block: float = BLOCK_S) -> dict[str, Timing]:
    """Rounds in which each function runs a block of calls (one call, or more until
    ``block`` seconds have passed), until every one has ``min_repetitions`` timed calls and
    ``min_time`` seconds have passed; one untimed warm-up call each first."""
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    start = time.perf_counter()
    while (min(len(t) for t in times.values()) < min_repetitions
           or time.perf_counter() - start < min_time):
        for name, function in functions.items():
            began = time.perf_counter()
            while True:
                begin = time.perf_counter()
                function()
                end = time.perf_counter()
                times[name].append(end - begin)
                if end - began >= block:
                    break
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
               golden_frames: int = 16, seed: int = 0, lce: bool = False,
               relative_to: NetworkIR | None = None) -> dict:
    """Time every engine on each batch size; return every figure. ``lce``: also Larq Compute
    Engine, in its own venv (:mod:`hwbnn.bench.lce`), right after the others.
    ``relative_to``: also the packed engine of that model (the binary twin of a ternary or
    mixed model, say), in the same rounds, and this model's time as a multiple of its. With
    ``threads`` > 1 the packed engine is also timed on one thread, in the same rounds."""
    import platform

    import torch

    from . import ceiling
    from .baseline import float_model, onnxruntime_session

    if not batches or min(batches) < 1:
        raise HwbnnError(f"batch sizes must be positive integers, not {batches!r}")
    if golden_frames < 1:
        raise HwbnnError(f"golden frames must be at least 1, not {golden_frames}")
    if min_time < 0:
        raise HwbnnError(f"min time must not be negative, not {min_time}")
    limit = packed.max_threads()
    if not 1 <= threads <= limit:
        raise HwbnnError(f"threads must be an integer in 1..{limit}, not {threads}")
    if lce:
        from . import lce as peer

        peer.lce_spec(net)  # a model LCE cannot run the same way fails before any timing
        peer.check_venv()
    torch.set_num_threads(threads)
    engine = packed.PackedNetwork(net)
    reference = None
    if relative_to is not None:
        reference = (relative_to, packed.PackedNetwork(relative_to))
    baselines = {"torch": float_model(net), "onnxruntime": onnxruntime_session(net, threads)}
    bit_macs = bit_macs_per_frame(net)
    float_bytes = float_weight_bytes(net)
    with progress.step("bench cpu: measuring the clock and the popcount ceiling"):
        limits = ceiling.measure(threads)
        # How far this machine itself scales: the same loop on one thread, so that the
        # engine's speedup on N threads reads against the host's (two vCPUs may share a core).
        one_thread = ceiling.measure(1) if threads > 1 else None
    result = {
        "model": net.name, "threads": threads, "cpu": _cpu_name(platform.processor()),
        "cpu_clock_mhz": limits["clock_mhz"], "bit_macs_per_frame": bit_macs,
        "ceiling_macs_per_s": limits["popcount_macs_per_s"],
        "float32_weight_bytes": float_bytes, "packed_weight_bytes": engine.weight_bytes,
        "relative_to": None if relative_to is None else relative_to.name, "batches": [],
    }
    if one_thread is not None:
        result["ceiling_1_thread_macs_per_s"] = one_thread["popcount_macs_per_s"]
        result["ceiling_threads_speedup"] = (limits["popcount_macs_per_s"]
                                             / one_thread["popcount_macs_per_s"])
    with progress.step(f"bench cpu {net.name}", total=len(batches)) as step:
        for batch in batches:
            result["batches"].append(_bench_batch(
                net, engine, baselines, batch, threads=threads, min_time=min_time,
                golden_frames=golden_frames, seed=seed, bit_macs=bit_macs,
                ceiling_macs=result["ceiling_macs_per_s"], reference=reference))
            step.advance(f"batch {batch}")
    if lce:
        with progress.step("bench cpu: Larq Compute Engine in its own venv"):
            _add_lce(result, peer.run_lce(net, batches, threads, min_time))
    return result


def _add_lce(result: dict, figures: dict) -> None:
    """The LCE peer's timings as one more engine of each batch row."""
    result["lce"] = {key: figures[key] for key in ("lce_version", "tensorflow_version",
                                                    "setup")}
    for row, timing in zip(result["batches"], figures["batches"], strict=True):
        batch = row["batch"]
        row["lce"] = {"latency_s": timing["best_s"], "median_latency_s": timing["median_s"],
                      "measured_frames_per_s": batch / timing["best_s"],
                      "repetitions": timing["repetitions"], "frames_timed": batch}
        row["packed_over_lce"] = (row["packed"]["measured_frames_per_s"]
                                  / row["lce"]["measured_frames_per_s"])
        row["packed_over_lce_median"] = timing["median_s"] / row["packed"]["median_latency_s"]


def _cpu_name(fallback: str) -> str:
    """The CPU's model name from /proc/cpuinfo (else ``fallback``)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return fallback or "unknown CPU"


def _bench_batch(net: NetworkIR, engine, baselines: dict, batch: int, *, threads: int,
                 min_time: float, golden_frames: int, seed: int, bit_macs: int,
                 ceiling_macs: float, reference: tuple | None = None) -> dict:
    """The figures of one batch size (see :func:`bench_cpu`)."""
    import torch

    from .baseline import float_input

    images = random_frames(net, batch, seed)
    tensor = float_input(net, images)
    array = tensor.numpy()
    few = images[:min(batch, golden_frames)]
    model, session = baselines["torch"], baselines["onnxruntime"]

    def run_torch():
        with torch.inference_mode():
            return model(tensor)

    functions = {"onnxruntime": lambda: session(array), "torch": run_torch,
                 "packed": lambda: engine.scores(images, threads)}
    if threads > 1:
        functions["packed_1_thread"] = lambda: engine.scores(images, 1)
    if reference is not None:
        reference_images = random_frames(reference[0], batch, seed)
        functions["reference"] = lambda: reference[1].scores(reference_images, threads)
    timings = time_round_robin(functions, dict.fromkeys(functions, batch), min_time)
    timings.update(time_round_robin({"golden": lambda: golden.scores(net, few)},
                                    {"golden": len(few)}, min_time / 2, 1))
    exact = bool(np.array_equal(engine.scores(few, threads), golden.scores(net, few)))
    row = {"batch": batch, **{name: timings[name].as_dict(batch) for name in ENGINES}}
    packed_fps = row["packed"]["measured_frames_per_s"]
    for name in ("onnxruntime", "torch", "golden"):
        row[f"packed_over_{name}"] = packed_fps / row[name]["measured_frames_per_s"]
    for name in ("onnxruntime", "torch"):
        row[f"packed_over_{name}_median"] = (row[name]["median_latency_s"]
                                             / row["packed"]["median_latency_s"])
    if threads > 1:
        row["packed_1_thread"] = timings["packed_1_thread"].as_dict(batch)
        row["threads_speedup"] = (row["packed_1_thread"]["latency_s"]
                                  / row["packed"]["latency_s"])
    if reference is not None:
        row["reference"] = timings["reference"].as_dict(batch)
        row["time_over_reference"] = row["packed"]["latency_s"] / row["reference"]["latency_s"]
    row["packed_macs_per_s"] = bit_macs * packed_fps
    row["ceiling_fraction"] = row["packed_macs_per_s"] / ceiling_macs
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
    float_bytes, packed_bytes = result["float32_weight_bytes"], result["packed_weight_bytes"]
    threads = result["threads"]
    ceiling = result["ceiling_macs_per_s"]
    lines = [
        f"hwbnn bench cpu {model_ref}: {threads} thread{'s' if threads > 1 else ''}, "
        f"{result['cpu']}, clock measured {result['cpu_clock_mhz'] / 1e3:.2f} GHz",
        f"weights: float32 {float_bytes:,} B, packed {packed_bytes:,} B "
        f"({float_bytes / packed_bytes:.1f}x smaller)",
        f"binary work: {result['bit_macs_per_frame']:,} 1-bit MACs per frame; ceiling "
        f"{ceiling / 1e9:,.0f} G MAC/s (measured: vector XOR-popcounts in L1, eight per "
        f"accumulator update)",
        "",
        f"{'batch':>5}  {'engine':11} {'latency':>10} {'median':>10} {'frames/s':>12} "
        f"{'packed speedup':>14}",
    ]
    if "lce" in result:
        lines.insert(3, f"lce: Larq Compute Engine {result['lce']['lce_version']} "
                        f"(TensorFlow {result['lce']['tensorflow_version']}), "
                        f"{result['lce']['setup']}; timed in its own venv after the others")
    for row in result["batches"]:
        for name in ("lce", *ENGINES) if "lce" in row else ENGINES:
            figures = row[name]
            speedup = "-" if name == "packed" else f"{row[f'packed_over_{name}']:.2f}x"
            note = ""
            if name == "golden" and figures["frames_timed"] < row["batch"]:
                note = f"  (timed on {figures['frames_timed']} frames)"
            lines.append(f"{row['batch']:>5}  {name:11} {_seconds(figures['latency_s']):>10} "
                         f"{_seconds(figures['median_latency_s']):>10} "
                         f"{figures['measured_frames_per_s']:>12,.1f} {speedup:>14}{note}")
        lines.append(f"{'':5}  packed: {row['packed_macs_per_s'] / 1e9:,.1f} G MAC/s = "
                     f"{100 * row['ceiling_fraction']:.1f}% of the ceiling; packed == golden: "
                     f"{'yes' if row['exact'] else 'NO'}")
        if "threads_speedup" in row:
            lines.append(f"{'':5}  packed on {threads} threads: {row['threads_speedup']:.2f}x "
                         f"one thread ({_seconds(row['packed_1_thread']['latency_s'])}); the "
                         f"ceiling loop: {result['ceiling_threads_speedup']:.2f}x")
        if "reference" in row:
            lines.append(f"{'':5}  packed: {row['time_over_reference']:.2f}x the time of "
                         f"{result['relative_to']} packed "
                         f"({_seconds(row['reference']['latency_s'])}), same run")
    return "\n".join(lines)
