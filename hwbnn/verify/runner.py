"""Build a Verilog design once per simulator and run cocotb benches on it.

A Verilator build costs ~14 s, so builds are cached by the SHA-256 of the Verilog text, the
simulator and its version, the build options and whether waveforms are compiled in: every
case with identical RTL shares one build folder, and each run gets its own work folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import HwbnnError
from .bench import CONFIG_ENV
from .tools import HDL_SIMULATORS, require, simulator_path, version

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


@dataclass
class Build:
    """A compiled design: simulator, top module, folder, and what the build cost."""

    sim: str
    top: str
    directory: Path
    seconds: float
    cached: bool
    waves: bool


def build_key(verilog_text: str, sim: str, waves: bool) -> str:
    parts = [verilog_text, sim, version(sim), repr(BUILD_ARGS[sim]), repr(waves)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def build(verilog: str | Path, top: str, sim: str, root: str | Path, *,
          waves: bool = False, optimize: bool = True) -> Build:
    """Compile ``verilog`` (top module ``top``) for ``sim`` under ``root``, or reuse the
    build of identical RTL. ``optimize=False`` compiles Verilator's model without C++
    optimization: faster to build, slower to run (for many small components)."""
    if sim not in HDL_SIMULATORS:
        raise HwbnnError(f"HDL simulator must be one of {', '.join(HDL_SIMULATORS)}, "
                         f"not {sim!r}")
    require(sim)
    verilog = Path(verilog).resolve()
    text = verilog.read_text()
    kind = sim + ("-waves" if waves else "") + ("" if optimize else "-O0")
    directory = Path(root).resolve() / f"{kind}-{build_key(text, sim, waves)}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Several test sessions may share a cache: one builds, the others wait and reuse.
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(text, verilog.name, top, sim, directory, waves, optimize)


def _build_locked(text: str, filename: str, top: str, sim: str, directory: Path,
                  waves: bool, optimize: bool) -> Build:
    marker = directory / BUILT_MARKER
    if marker.is_file():
        return Build(sim, top, directory, 0.0, True, waves)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    # The build reads its own copy, so a later regeneration of the source cannot change it.
    source = directory / filename
    source.write_text(text)
    runtime = directory.parent / f"verilator-runtime-{build_key('', sim, waves)}"
    reuse = sim == "verilator" and _copy_runtime(runtime, directory)
    sources, build_args, runner_waves = [source], list(BUILD_ARGS[sim]), waves
    if sim == "icarus" and waves:
        # cocotb's own dump module is SystemVerilog, which -g2005 refuses.
        sources.append(_icarus_dump_module(directory, top))
        build_args += ["-s", DUMP_MODULE]
        runner_waves = False
    start = time.perf_counter()
    with simulator_path(sim, optimize=optimize):
        runner = _ReusingVerilator(directory) if reuse else _runner(sim)
        try:
            runner.build(sources=sources, hdl_toplevel=top, build_dir=directory,
                         build_args=build_args, timescale=TIMESCALE, waves=runner_waves,
                         log_file=directory / "build.log")
        except (SystemExit, RuntimeError, subprocess.CalledProcessError) as error:
            raise HwbnnError(f"{sim} build of {filename} failed; see "
                             f"{directory / 'build.log'}") from error
    seconds = time.perf_counter() - start
    if sim == "verilator" and not runtime.is_dir():
        _copy_runtime(directory, runtime)
    marker.write_text(json.dumps({"top": top, "sim": sim, "seconds": seconds}))
    return Build(sim, top, directory, seconds, False, waves)


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


def _copy_runtime(source: Path, target: Path) -> bool:
    """Copy the run-time library objects (with their make dependency files) if all exist."""
    files = [source / f"{name}{suffix}" for name in RUNTIME_OBJECTS for suffix in (".o", ".d")]
    if not all(file.is_file() for file in files):
        return False
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy2(file, staging / file.name)  # keeps mtimes: make sees them up to date
    if target.is_dir():
        for file in files:
            os.replace(staging / file.name, target / file.name)
        staging.rmdir()
    else:
        os.replace(staging, target)
    return True


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
