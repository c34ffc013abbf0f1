"""``python -m hwbnn.bench.scale``: the figures of FINN-scale designs, measured in one run.

Every step runs as a user runs it (the ``hwbnn`` command in a subprocess, imports included),
and each figure is printed beside its target from issue 15 (docs/design.md, "Scale"):

* auto-folding ``zoo:lfc_w1a1`` and ``zoo:cnv_w1a1`` over a range of targets (in process: the
  folding itself, <= 2 s each);
* ``hwbnn cost zoo:lfc_w1a1 --family ice40 --fold auto --target-fps 1e5`` (<= 10 s);
* ``hwbnn gen`` of LFC at FINN's folding (<= 30 s) and of CNV at the BNN-PYNQ CNV folding
  (<= 60 s);
* ``hwbnn verify`` in the compiled Verilator harness, with random input gaps and output
  backpressure: the digits W1A1 MLP (>= 2,000,000 cycles/s; whole split <= 20 s with a cached
  build), LFC over 10,000 frames (<= 5 min with the build), CNV over 1,000 frames (<= 10 min
  with the build).

Timings depend on the machine and on what else runs on it: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import HwbnnError

# FINN's BNN-PYNQ foldings (PE, SIMD per weight layer), as FINN's end-to-end tests fold them
# (finn tests/end2end/test_end2end_bnn_pynq.py: fold_lfc, fold_cnv_large); LFC reaches 512
# cycles per frame. The zoo's CNV names its layers after their position (pools in between).
FINN_FOLDING = {
    "lfc_w1a1": {"dense0": (32, 56), "dense1": (64, 32), "dense2": (32, 64), "dense3": (10, 8)},
    "cnv_w1a1": {"conv0": (16, 3), "conv1": (32, 32), "conv3": (16, 32), "conv4": (16, 32),
                 "conv6": (4, 32), "conv7": (1, 32), "dense8": (1, 4), "dense9": (1, 8),
                 "dense10": (5, 1)},
}
AUTO_TARGETS_FPS = (1e2, 1e3, 1e4, 1e5, 1e6)
GAP, BACKPRESSURE = 0.1, 0.2


def folding_file(model: str, directory: Path) -> Path:
    """FINN's folding of ``model`` as the JSON file ``hwbnn gen --fold`` reads."""
    path = directory / f"fold_{model}.json"
    path.write_text(json.dumps({name: {"pe": pe, "simd": simd}
                                for name, (pe, simd) in FINN_FOLDING[model].items()}))
    return path


def hwbnn(*args: str) -> tuple[float, str]:
    """Run ``hwbnn ARGS``; (wall seconds, stdout); HwbnnError with its stderr on failure."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hwbnn.cli", *args], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise HwbnnError(f"`hwbnn {' '.join(args)}` failed: {done.stderr.strip()[-400:]}")
    return seconds, done.stdout


def auto_fold_seconds(model: str) -> float:
    """Slowest auto-folding of ``zoo:model`` over :data:`AUTO_TARGETS_FPS`."""
    from .. import zoo
    from ..hw.fold import Folding

    net = zoo.load(f"zoo:{model}")
    worst = 0.0
    for fps in AUTO_TARGETS_FPS:
        start = time.perf_counter()
        try:
            Folding.auto(net, fps)
        except HwbnnError:
            pass  # beyond the model's fastest folding: the search ran to its end
        worst = max(worst, time.perf_counter() - start)
    return worst


class Table:
    """Rows of (figure, measured, target, met) printed as they come."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, figure: str, value: float, unit: str, target: float | None = None,
            higher_is_better: bool = False) -> None:
        met = None if target is None else (value >= target if higher_is_better
                                           else value <= target)
        self.rows.append({"figure": figure, "value": value, "unit": unit, "target": target,
                          "met": met})
        bound = "" if target is None else f"  (target {'>=' if higher_is_better else '<='} " \
                                          f"{_number(target)} {unit}: " \
                                          f"{'met' if met else 'MISSED'})"
        print(f"{figure:70s} {_number(value):>12s} {unit}{bound}", flush=True)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def verify_figures(table: Table, label: str, design: Path, model: str, *extra: str,
                   frames_target_s: float | None = None, rate_target: float | None = None,
                   work: Path) -> dict:
    seconds, out = hwbnn("verify", str(design), "--model", model, "--gap", str(GAP),
                         "--backpressure", str(BACKPRESSURE), "--work", str(work), "--json",
                         *extra)
    report = json.loads(out)
    if not report["passed"]:
        raise HwbnnError(f"{label}: verification failed: {report.get('difference')}")
    table.add(f"verify {label}: {report['frames']:,} frames, wall (build "
              f"{'cached' if report['build_cached'] else 'included'})", seconds, "s",
              frames_target_s)
    table.add(f"verify {label}: simulated cycles/s", report["sim_cycles_per_s"], "cycles/s",
              rate_target, higher_is_better=True)
    table.add(f"verify {label}: frames/s", report["sim_frames_per_s"], "frames/s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwbnn.bench.scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[],
                        choices=("fold", "cost", "gen", "verify"),
                        help="leave a part out (repeatable)")
    parser.add_argument("--work", help="folder for the designs and builds (default: temporary)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.work or temporary)
        work.mkdir(parents=True, exist_ok=True)
        table = Table()
        try:
            run(table, work, set(args.skip))
        except HwbnnError as error:
            print(f"hwbnn bench scale: {error}", file=sys.stderr)
            return 2
        if args.json:
            Path(args.json).write_text(json.dumps(table.rows, indent=2) + "\n")
    missed = [row["figure"] for row in table.rows if row["met"] is False]
    print(f"{len(table.rows)} figures, {len(missed)} targets missed"
          + (": " + "; ".join(missed) if missed else ""))
    return 0


def run(table: Table, work: Path, skip: set[str]) -> None:
    if "fold" not in skip:
        for model in ("lfc_w1a1", "cnv_w1a1"):
            table.add(f"auto-fold zoo:{model} (slowest of {len(AUTO_TARGETS_FPS)} targets)",
                      auto_fold_seconds(model), "s", 2.0)
    if "cost" not in skip:
        seconds, _ = hwbnn("cost", "zoo:lfc_w1a1", "--family", "ice40", "--fold", "auto",
                           "--target-fps", "1e5")
        table.add("hwbnn cost zoo:lfc_w1a1 --family ice40 --fold auto --target-fps 1e5",
                  seconds, "s", 10.0)
    if {"gen", "verify"} <= skip:
        return
    designs = {}
    for model, target in (("lfc_w1a1", 30.0), ("cnv_w1a1", 60.0)):
        designs[model] = work / f"rtl_{model}"
        if "gen" in skip and (designs[model] / "manifest.json").is_file():
            continue
        seconds, _ = hwbnn("gen", f"zoo:{model}", "--fold",
                           str(folding_file(model, work)), "--out", str(designs[model]))
        size = sum(path.stat().st_size for path in designs[model].glob("*.v")) / 1e6
        table.add(f"hwbnn gen zoo:{model} at FINN's folding ({size:.1f} MB Verilog)",
                  seconds, "s", target)
    if "verify" in skip:
        return
    verify_work = work / "verify"
    digits = Path(__file__).resolve().parents[2] / "rtl" / "digits_mlp_w1a1"
    if digits.is_dir():
        verify_figures(table, "digits W1A1 MLP, first run", digits, "zoo:digits_mlp_w1a1",
                       work=verify_work / "digits")
        verify_figures(table, "digits W1A1 MLP", digits, "zoo:digits_mlp_w1a1",
                       frames_target_s=20.0, rate_target=2e6, work=verify_work / "digits")
    verify_figures(table, "zoo:lfc_w1a1 at FINN's folding", designs["lfc_w1a1"],
                   "zoo:lfc_w1a1", "--dataset", "synthetic", "--frames", "10000",
                   frames_target_s=300.0, work=verify_work / "lfc")
    verify_figures(table, "zoo:cnv_w1a1 at FINN's folding", designs["cnv_w1a1"],
                   "zoo:cnv_w1a1", "--dataset", "synthetic", "--frames", "1000",
                   frames_target_s=600.0, work=verify_work / "cnv")


if __name__ == "__main__":
    sys.exit(main())
