"""Build a Verilog design once per simulator and bench, and run cocotb benches on it.

A Verilator build costs ~14 s, so builds are cached by the SHA-256 of the Verilog text, the
simulator and its version, the build options and whether waveforms are compiled in (for the
compiled harness of :mod:`hwbnn.verify.harness` also its C++ source and options): every
case with identical RTL shares one build folder, and each run gets its own work folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import HwbnnError
from .tools import CONFIG_ENV, HDL_SIMULATORS, require, simulator_path, version

TIMESCALE = ("1ns", "1ps")
# Amaranth pads some expressions to a wider width than their target: harmless, so silenced.
# Icarus runs Verilog-2005: with cocotb's default -g2012 it applies declaration initializers
# before any process starts, so the `reg ... dump_module$1 = 0` that Yosys adds to wake its
# `always @*` blocks at time 0 never fires, and a block whose inputs do not change before
# their first use stays X (seen: the MVTU's plane schedule of heterogeneous layers).
BUILD_ARGS = {"verilator": ["-Wno-WIDTH", "-Wno-fatal"], "icarus": ["-g2005"]}
NETWORK_BENCH = "hwbnn.verify.tb_network"
DUMP_MODULE = "hwbnn_waveform_dump"
BUILT_MARKER = "hwbnn_build.json"
# Verilator's run-time library, compiled into every build folder: ~16 of a build's ~22 CPU
# seconds on these machines. It does not depend on the design (its make dependencies name
# only Verilator's own headers), so the objects of the first build are reused by later ones;
# make still rebuilds them if a header is newer.
RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")
HARNESS_SOURCE = Path(__file__).with_name("harness.cpp")
HARNESS_BINARY = "hwbnn_harness"
# The harness and the model's eval code at -O2: measured 6% faster than Verilator's default
# -Os on digits_mlp_w1a1 (3.9 against 3.7 M cycles/s), as fast as -O3, and no slower to build.
HARNESS_MAKE = ["OPT_FAST=-O2"]
HARNESS_TOP = "hwbnn_harness_top"


def harness_top(top: str, in_width: int, out_width: int) -> str:
    """The module the harness drives in place of ``top``: the same ports, with ``rst``
    registered once before the design sees it.

    Verilator re-evaluates, on every ``eval()``, all logic that reads a top-level input.
    Amaranth writes each register's next state as combinational logic that reads ``rst``, so
    with ``rst`` a top-level input the whole datapath is evaluated twice per cycle (measured:
    58% of LFC's simulation time); behind a register it is evaluated after clock edges only.
    The harness holds the design in reset one cycle longer to match.
    """
    for name, width in (("in_width", in_width), ("out_width", out_width)):
        if isinstance(width, bool) or not isinstance(width, int) or width < 8 or width % 8:
            raise HwbnnError(f"{name} must be a positive multiple of 8, not {width!r}")
    return (f"module {HARNESS_TOP}(\n"
            f"  input clk, input rst,\n"
            f"  input [{in_width - 1}:0] s_axis_tdata, input s_axis_tvalid,\n"
            f"  output s_axis_tready,\n"
            f"  output [{out_width - 1}:0] m_axis_tdata, output m_axis_tvalid,\n"
            f"  input m_axis_tready);\n"
            f"  reg design_rst = 1'b1;\n"
            f"  always @(posedge clk) design_rst <= rst;\n"
            f"  {top} dut(.clk(clk), .rst(design_rst),\n"
            f"    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid),\n"
            f"    .s_axis_tready(s_axis_tready), .m_axis_tdata(m_axis_tdata),\n"
            f"    .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));\n"
            f"endmodule\n")


@dataclass
class Build:
    """A compiled design: simulator, top module, folder, and what the build cost."""

    sim: str
    top: str
    directory: Path
    seconds: float
    cached: bool
    waves: bool
    harness: bool = False


def build_key(verilog_text: str, sim: str, waves: bool, harness: str | None = None) -> str:
    """Cache key of a build; ``harness`` is the text of :func:`harness_top` for a harness
    build."""
    parts = [verilog_text, sim, version(sim), repr(BUILD_ARGS[sim]), repr(waves)]
    if harness is not None:
        parts += [harness, HARNESS_SOURCE.read_text(), repr(HARNESS_MAKE)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def build(verilog: str | Path, top: str, sim: str, root: str | Path, *,
          waves: bool = False, optimize: bool = True, harness: bool = False,
          widths: tuple[int, int] | None = None) -> Build:
    """Compile ``verilog`` (top module ``top``) for ``sim`` under ``root``, or reuse the
    build of identical RTL. ``optimize=False`` compiles Verilator's model without C++
    optimization: faster to build, slower to run (for many small components).
    ``harness=True`` builds the compiled stream harness (Verilator only) instead of a
    cocotb bench; ``widths`` are then the top's input and output tdata widths."""
    if sim not in HDL_SIMULATORS:
        raise HwbnnError(f"HDL simulator must be one of {', '.join(HDL_SIMULATORS)}, "
                         f"not {sim!r}")
    if harness and (sim != "verilator" or waves or not optimize):
        raise HwbnnError("the compiled harness is built by Verilator, optimized, without "
                         "waveforms")
    wrapper = None
    if harness:
        if widths is None:
            raise HwbnnError("a harness build needs the tdata widths of the top")
        wrapper = harness_top(top, *widths)
    require(sim)
    verilog = Path(verilog).resolve()
    text = verilog.read_text()
    kind = (sim + ("-harness" if harness else "") + ("-waves" if waves else "")
            + ("" if optimize else "-O0"))
    directory = Path(root).resolve() / f"{kind}-{build_key(text, sim, waves, wrapper)}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Several test sessions may share a cache: one builds, the others wait and reuse.
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(text, verilog.name, top, sim, directory, waves, optimize,
                             wrapper)


def _build_locked(text: str, filename: str, top: str, sim: str, directory: Path,
                  waves: bool, optimize: bool, wrapper: str | None) -> Build:
    marker = directory / BUILT_MARKER
    if marker.is_file():
        return Build(sim, top, directory, 0.0, True, waves, wrapper is not None)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    # The build reads its own copy, so a later regeneration of the source cannot change it.
    source = directory / filename
    source.write_text(text)
    runtime = directory.parent / f"verilator-runtime-{build_key('', sim, waves)}"
    if sim == "verilator":
        _copy_runtime(runtime, directory)
    start = time.perf_counter()
    with simulator_path(sim, optimize=optimize):
        try:
            if wrapper is not None:
                _build_harness(source, wrapper, directory)
            else:
                _build_bench(source, top, sim, directory, waves)
        except (SystemExit, RuntimeError, OSError, subprocess.CalledProcessError) as error:
            raise HwbnnError(f"{sim} build of {filename} failed; see "
                             f"{directory / 'build.log'}") from error
    seconds = time.perf_counter() - start
    if sim == "verilator":
        _copy_runtime(directory, runtime)
    marker.write_text(json.dumps({"top": top, "sim": sim, "seconds": seconds}))
    return Build(sim, top, directory, seconds, False, waves, wrapper is not None)


def _build_bench(source: Path, top: str, sim: str, directory: Path, waves: bool) -> None:
    """Build for cocotb benches with cocotb's runner."""
    sources, build_args, runner_waves = [source], list(BUILD_ARGS[sim]), waves
    if sim == "icarus" and waves:
        # cocotb's own dump module is SystemVerilog, which -g2005 refuses.
        sources.append(_icarus_dump_module(directory, top))
        build_args += ["-s", DUMP_MODULE]
        runner_waves = False
    runner = _ReusingVerilator(directory) if sim == "verilator" else _runner(sim)
    runner.build(sources=sources, hdl_toplevel=top, build_dir=directory,
                 build_args=build_args, timescale=TIMESCALE, waves=runner_waves,
                 log_file=directory / "build.log")


def _build_harness(source: Path, wrapper: str, directory: Path) -> None:
    """Verilate ``source`` under its :func:`harness_top` wrapper with the harness's C++ as
    the main program, then make it, with the reused run-time objects marked up to date in
    between (as :func:`_ReusingVerilator`)."""
    harness = directory / HARNESS_SOURCE.name
    shutil.copy2(HARNESS_SOURCE, harness)
    top_source = directory / f"{HARNESS_TOP}.v"
    top_source.write_text(wrapper)
    jobs = max(1, min(4, len(os.sched_getaffinity(0))))
    commands = [
        ["verilator", "--cc", "--exe", "-Mdir", str(directory), "--top-module", HARNESS_TOP,
         "--prefix", "Vtop", "-o", HARNESS_BINARY, *BUILD_ARGS["verilator"], str(harness),
         str(top_source), str(source)],
        ["touch", "-c", *(str(directory / f"{name}.o") for name in RUNTIME_OBJECTS)],
        ["make", "-j", str(jobs), "-C", str(directory), "-f", "Vtop.mk", *HARNESS_MAKE],
    ]
    with open(directory / "build.log", "w") as log:
        for command in commands:
            log.write(" ".join(command) + "\n")
            log.flush()
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)


def _icarus_dump_module(directory: Path, top: str) -> Path:
    """A Verilog-2005 module that dumps every signal of ``top`` to ``+dumpfile_path``."""
    path = directory / f"{DUMP_MODULE}.v"
    path.write_text(
        f"module {DUMP_MODULE}();\n"
        f"  reg [8*1024-1:0] path;\n"
        f"  initial begin\n"
        f"    if ($value$plusargs(\"dumpfile_path=%s\", path)) $dumpfile(path);\n"
        f"    $dumpvars(0, {top});\n"
        f"  end\n"
        f"endmodule\n")
    return path


def _runner(sim: str):
    from cocotb_tools.runner import get_runner

    return get_runner(sim)


def _ReusingVerilator(directory: Path):
    """cocotb's Verilator runner, with the copied run-time objects marked up to date after
    Verilator has rewritten ``Vtop.mk`` (every object depends on it)."""
    from cocotb_tools.runner import Verilator

    class ReusingVerilator(Verilator):
        def _build_command(self):
            verilate, *make = super()._build_command()
            objects = [str(directory / f"{name}.o") for name in RUNTIME_OBJECTS]
            return [verilate, ["touch", "-c", *objects], *make]

    return ReusingVerilator()


def _copy_runtime(source: Path, target: Path) -> None:
    """Copy the run-time objects (with their make dependency files) that ``source`` has and
    ``target`` lacks. Each file is copied aside and renamed into place, so builds sharing a
    run-time folder never see half a file; the object goes last, so an object's presence
    means its dependency file is there too. The aside copy has a name of its own (mkstemp),
    so concurrent builders (processes, threads of one worker, hosts sharing the cache) never
    write into one another's."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_OBJECTS:
        files = [source / f"{name}.d", source / f"{name}.o"]
        if (target / f"{name}.o").is_file() or not all(file.is_file() for file in files):
            continue
        for file in files:
            handle, staging = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp",
                                               dir=target)
            os.close(handle)
            try:
                shutil.copy2(file, staging)  # keeps mtimes: make sees them up to date
                os.replace(staging, target / file.name)
            except BaseException:
                Path(staging).unlink(missing_ok=True)
                raise


@dataclass
class Run:
    """What a bench run returned, where it ran and how long it took."""

    result: dict
    passed: bool
    directory: Path
    seconds: float
    waveform: Path | None
    log: Path


def run(built: Build, config: dict, work: str | Path, *, module: str = NETWORK_BENCH) -> Run:
    """Run bench ``module`` on ``built`` with ``config`` (see :mod:`hwbnn.verify.bench`)."""
    from cocotb_tools.runner import get_results

    work = Path(work).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    result_path = work / "result.json"
    config_path = work / "config.json"
    config_path.write_text(json.dumps(dict(config, result=str(result_path))))
    waveform = None
    plusargs = []
    if built.waves:
        waveform = work / ("dump.vcd" if built.sim == "verilator" else f"{built.top}.fst")
        if built.sim == "icarus":
            plusargs.append(f"+dumpfile_path={waveform}")
    env = {CONFIG_ENV: str(config_path),
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")}
    log = work / "sim.log"
    xml = work / "results.xml"
    start = time.perf_counter()
    with simulator_path(built.sim):
        runner = _runner(built.sim)
        try:
            runner.test(test_module=module, hdl_toplevel=built.top,
                              hdl_toplevel_lang="verilog", build_dir=built.directory,
                              test_dir=work, extra_env=env,
                              waves=built.waves, plusargs=plusargs, log_file=log,
                              results_xml=str(xml),
                              timescale=TIMESCALE if built.sim == "icarus" else None)
        except SystemExit:
            pass  # a failed bench under pytest, or a crash: told apart below
    seconds = time.perf_counter() - start
    if not result_path.is_file() or not xml.is_file():
        raise HwbnnError(f"{built.sim} simulation did not finish; see {log}")
    _, failures = get_results(xml)
    return Run(json.loads(result_path.read_text()), failures == 0, work, seconds,
               waveform if waveform is not None and waveform.is_file() else None, log)
