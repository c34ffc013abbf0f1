"""Command-line interface: ``hwbnn COMMAND ...``.

Every user-facing problem (bad model file, missing path, unsupported layer) is one line
on stderr and exit code 2; commands that report figures take ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .errors import HwbnnError

# Modules that add subcommands: each has ``register(subparsers)``.
COMMAND_MODULES = [
    "hwbnn.commands",  # train, export, summary, run, zoo
    "hwbnn.bench.commands",  # bench cpu
    "hwbnn.hw.commands",  # gen
    "hwbnn.verify.commands",  # verify
    "hwbnn.synth.commands",  # synth
    "hwbnn.cost.commands",  # cost, sweep, compare
    "hwbnn.boards.commands",  # build, program
    "hwbnn.interop.commands",  # import (export --to qonnx lives in hwbnn.commands)
]


def print_json(data) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


def _json_default(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, tuple | np.ndarray):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and one line for every usage error."""

    def error(self, message):
        raise HwbnnError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwbnn", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except HwbnnError as error:
        print(f"hwbnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwbnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file (.hwbnn) or zoo:NAME")


def fold_arguments(parser: argparse.ArgumentParser, clock_default: str = "100") -> None:
    """``--fold``, ``--target-fps`` and ``--clock-mhz``, spelled and defaulted the same in
    every command (parsed by :meth:`hwbnn.hw.fold.Folding.parse`)."""
    parser.add_argument("--fold",
                        help="folding: a JSON file {layer: {pe, simd}} (or a design folder or "
                             "manifest.json), PExSIMD pairs in layer order (e.g. 4x16,2x8,1x4), "
                             "or auto (needs --target-fps). Default: auto when --target-fps is "
                             "given, else the model's own PE/SIMD (1 if unset)")
    parser.add_argument("--target-fps", type=float,
                        help="frames per second: folded for with --fold auto, checked against "
                             "an explicit folding")
    parser.add_argument("--clock-mhz", type=float,
                        help=f"clock for the frame rate and --fold auto (default "
                             f"{clock_default})")


def output_path(path: str, suffix: str) -> Path:
    """The output path with ``suffix`` ensured."""
    path = Path(path)
    return path if path.suffix == suffix else path.with_name(path.name + suffix)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
