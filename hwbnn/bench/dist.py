"""``python -m hwbnn.bench.dist``: the execution layer's scaling, measured in one run.

The same sweep with training (``hwbnn sweep mlp:32,32 --train``, one ``hwbnn train`` per mix)
runs on a local Dask cluster of one worker, then of two (``--workers``), cluster start-up
included; it prints both wall times, their ratio beside the target of issue 20 (<= 0.6x with 2
workers), and checks that both runs give the same rows (training is seeded and
single-threaded, so where a job runs changes nothing). Run it on an idle machine with at
least as many cores as workers.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..cost.sweep import SweepSettings, run_sweep
from ..dist import Executor
from ..errors import HwbnnError
from .scale import Table

MIXES = ("1", "1.2", "1.4", "1.6", "1.8", "2", "3", "ternary")
RATIO_TARGET = 0.6


def timed_sweep(settings: SweepSettings, mixes: list[str], workers: int
                ) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    rows = run_sweep(settings, mixes, Executor(jobs=workers, always_dask=True))
    return time.perf_counter() - start, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwbnn.bench.dist",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp:32,32", help="architecture (default mlp:32,32)")
    parser.add_argument("--mixes", default=",".join(MIXES),
                        help=f"mixes trained, one job each (default {','.join(MIXES)})")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per mix (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the second run")
    args = parser.parse_args(argv)
    settings = SweepSettings(args.arch, train=True, epochs=args.epochs)
    mixes = args.mixes.split(",")
    table = Table()
    try:
        one, rows_one = timed_sweep(settings, mixes, 1)
        table.add(f"sweep {args.arch} --train, {len(mixes)} mixes, 1 worker", one, "s")
        many, rows_many = timed_sweep(settings, mixes, args.workers)
        table.add(f"same, {args.workers} workers", many, "s")
    except HwbnnError as error:
        print(f"hwbnn bench dist: {error}", file=sys.stderr)
        return 2
    table.add(f"wall time, {args.workers} workers / 1 worker", many / one, "x",
              RATIO_TARGET if args.workers == 2 else None)
    same = rows_one == rows_many
    print(f"rows identical on 1 and {args.workers} workers: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
