"""``hwbnn bench cpu MODEL``: the CPU benchmark's command line."""

from __future__ import annotations

import argparse

from ..cli import model_argument, non_negative_float, positive_int, print_json


def _batches(text: str) -> list[int]:
    try:
        batches = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated batch sizes, not {text!r}") from None
    if not batches or min(batches) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be positive, not {text!r}")
    return batches


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks")
    benches = p.add_subparsers(dest="bench_command", required=True)
    q = benches.add_parser("cpu", help="packed engine vs float32 onnxruntime and torch, and "
                                       "golden: frames/s, latency, weight bytes, 1-bit MAC/s "
                                       "against the measured ceiling")
    model_argument(q)
    q.add_argument("--batch", type=_batches, default=[1, 256],
                   help="comma-separated batch sizes (default 1,256)")
    q.add_argument("--threads", type=positive_int, default=1,
                   help="threads for torch and the packed engine (default 1)")
    q.add_argument("--min-time", type=non_negative_float, default=1.0,
                   help="seconds of timing per batch and engine pair (default 1)")
    q.add_argument("--golden-frames", type=positive_int, default=16,
                   help="frames golden is timed on, at most (default 16)")
    q.add_argument("--lce", action="store_true",
                   help="also time Larq Compute Engine (binary chains; its own venv, made by "
                        "`make lce`)")
    q.add_argument("--relative-to", metavar="MODEL",
                   help="also time this model's packed engine in the same rounds and print "
                        "the model's time as a multiple of it (e.g. a ternary model against "
                        "its binary twin)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_bench_cpu)


def cmd_bench_cpu(args) -> int:
    from .. import zoo
    from .cpu import bench_cpu, format_report

    net = zoo.load(args.model)
    relative_to = None if args.relative_to is None else zoo.load(args.relative_to)
    result = bench_cpu(net, args.batch, threads=args.threads, min_time=args.min_time,
                       golden_frames=args.golden_frames, lce=args.lce,
                       relative_to=relative_to)
    result["model_path"] = args.model
    if args.json:
        print_json(result)
    else:
        print(format_report(result, args.model))
    return 0 if all(row["exact"] for row in result["batches"]) else 1
