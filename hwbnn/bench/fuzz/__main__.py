"""``python -m hwbnn.bench.fuzz``: the long seeded run, with its table of outcomes."""

from __future__ import annotations

import argparse
import sys
import time

from . import cli_cases, counts_table, failures, file_cases, qonnx_cases, run_cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwbnn.bench.fuzz",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="mutated model files")
    parser.add_argument("--qonnx", type=int, default=150, help="mutated QONNX graphs")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI options")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cases = file_cases(args.files, args.seed) + qonnx_cases(args.qonnx, args.seed)
    if not args.no_cli:
        cases += cli_cases()
    done = run_cases(cases)
    print(counts_table(done))
    slowest = max((r.seconds for _, r in done if r is not None), default=0.0)
    print(f"\n{len(done)} cases in {time.perf_counter() - start:.0f} s (slowest "
          f"{slowest:.1f} s), seed {args.seed}")
    problems = failures(done)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
