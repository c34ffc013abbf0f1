"""``hwbnn build`` (bitstream for a board) and ``hwbnn program`` (load it onto the board)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..cli import fold_arguments, positive_int, print_json, seed_int
from ..errors import HwbnnError
from .targets import BOARDS

# Programmer command lines per board: (tool, arguments for SRAM, arguments for flash).
# openFPGALoader board names from its board list; iceprog is Project IceStorm's programmer.
PROGRAMMERS = {
    "icebreaker": [("iceprog", ["-S"], []),
                   ("openFPGALoader", ["-b", "icebreaker", "-m"], ["-b", "icebreaker", "-f"])],
    "ulx3s-85f": [("openFPGALoader", ["-b", "ulx3s"], ["-b", "ulx3s", "-f"])],
    "arty-a7-35": [("openFPGALoader", ["-b", "arty_a7_35t"], ["-b", "arty_a7_35t", "-f"])],
}
SUFFIXES = {"icebreaker": ".bin", "ulx3s-85f": ".bit", "arty-a7-35": ".bit"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="bitstream of a model for a board: utilization, Fmax, frames/s",
        description="Board top (UART bridge, network in label mode, LEDs) built with the "
                    "amaranth-boards platform and the YoWASP Yosys/nextpnr. arty-a7-35: "
                    "Verilog, constraints and synth_xilinx counts only (no open place and "
                    "route for Xilinx in this toolchain).")
    p.add_argument("model", help="model file (.hwbnn), zoo:NAME, or a design folder from "
                                 "`hwbnn gen` (its model, and by default its folding: the one "
                                 "verified and synthesized)")
    p.add_argument("--board", required=True, choices=tuple(BOARDS))
    fold_arguments(p, clock_default="the board's: icebreaker 24, ulx3s-85f 50, arty 100")
    p.add_argument("--selftest", action="store_true",
                   help="add a ROM of test frames with their golden labels, checked after "
                        "reset: LEDs show pass or fail")
    p.add_argument("--selftest-frames", type=positive_int, default=10,
                   help="frames in the self-test ROM (default 10)")
    p.add_argument("--scores", action="store_true",
                   help="network in scores mode: the client can read scores, not only labels")
    p.add_argument("--baud", type=positive_int, default=115200)
    p.add_argument("--seed", type=seed_int, default=1, help="nextpnr placement seed")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser(
        "program", help="load a bitstream onto a board (openFPGALoader or iceprog)")
    p.add_argument("bitstream", help="bitstream file, or the output folder of hwbnn build")
    p.add_argument("--board", required=True, choices=tuple(BOARDS))
    p.add_argument("--flash", action="store_true",
                   help="write the configuration flash (default: SRAM, lost at power-off)")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.set_defaults(func=cmd_program)


def cmd_build(args) -> int:
    from .build import build

    result = build(args.model, args.board, args.out, fold=args.fold,
                   target_fps=args.target_fps, selftest=args.selftest, scores=args.scores,
                   clock_mhz=args.clock_mhz, baud=args.baud, seed=args.seed,
                   selftest_frames=args.selftest_frames)
    if args.json:
        print_json(result.as_dict())
    else:
        print(format_result(result))
    return 0 if result.timing_met is not False else 1


def format_result(result) -> str:
    counts, have = result.counts, result.available
    lut = "LUT6" if result.board == "arty-a7-35" else "LUT4"
    clock = f"{result.clock_mhz:g} MHz" + (" (PLL)" if result.pll else " (oscillator)")
    lines = [
        f"{result.model} on {result.board}, clock {clock}, UART {result.baud} baud"
        + (f", self-test of {result.selftest_frames} frames" if result.selftest_frames else ""),
        f"  {lut} {counts['lut']}/{have['lut']}  FF {counts['ff']}/{have['ff']}  "
        f"block RAM {counts['bram']}/{have['bram']}  DSP {counts['dsp']}/{have['dsp']}"
        + (f"  LUT RAM {counts['lutram']}" if counts.get("lutram") else ""),
    ]
    if result.fmax_mhz is not None:
        verdict = "meets" if result.timing_met else "MISSES"
        lines.append(f"  Fmax {result.fmax_mhz:.1f} MHz ({verdict} the {result.clock_mhz:g} "
                     f"MHz clock)")
    lines.append(f"  core {result.frames_per_s:,.0f} frames/s ({result.cycles_per_frame} "
                 f"cycles/frame); over the UART {result.uart_frames_per_s:.0f} frames/s")
    if result.bitstream_path:
        lines.append(f"  bitstream {result.bitstream_path}")
    lines += [f"  {note}" for note in result.notes]
    return "\n".join(lines)


def programmer_command(bitstream: str, board: str, flash: bool = False,
                       which=shutil.which) -> list[str]:
    """The command that loads ``bitstream`` (a file, or a build output folder)."""
    path = Path(bitstream)
    suffix = SUFFIXES[board]
    if path.is_dir():
        found = sorted(path.glob(f"*{suffix}"))
        if not found:
            hint = (" (Arty builds have no open place and route: make the .bit with Vivado "
                    "from build/top.v and build/top.xdc)") if board == "arty-a7-35" else ""
            raise HwbnnError(f"no {suffix} bitstream in {path}{hint}")
        path = found[0]
    if not path.is_file():
        raise HwbnnError(f"bitstream {str(path)!r} does not exist")
    if path.suffix != suffix:
        raise HwbnnError(f"{board} takes a {suffix} bitstream, not {path.name}")
    options = PROGRAMMERS[board]
    for tool, sram_args, flash_args in options:
        executable = which(tool)
        if executable:
            return [executable, *(flash_args if flash else sram_args), str(path)]
    names = " or ".join(tool for tool, _, _ in options)
    tool, sram_args, flash_args = options[-1]
    example = " ".join([tool, *(flash_args if flash else sram_args), str(path)])
    raise HwbnnError(f"no programmer found: install {names} (e.g. `apt install "
                     f"openfpgaloader`), then run: {example}")


def cmd_program(args) -> int:
    command = programmer_command(args.bitstream, args.board, args.flash)
    print(" ".join(command))
    if args.dry_run:
        return 0
    done = subprocess.run(command)
    if done.returncode != 0:
        raise HwbnnError(f"{Path(command[0]).name} failed with exit code {done.returncode}")
    return 0
