"""The generated designs of the shipped zoo models kept under ``rtl/`` (one folder each).

Regenerate them with ``python -m hwbnn.hw.zoo_rtl`` (or the ``hwbnn gen`` lines it prints);
``tests/test_hw_gen.py`` fails when a committed design differs from a fresh generation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import zoo
from .fold import Folding
from .gen import generate

RTL_DIR = Path(__file__).resolve().parents[2] / "rtl"
CLOCK_HZ = 100e6

# folder -> (model, target frames/s at 100 MHz, output mode)
DESIGNS = {
    "digits_mlp_w1a1": ("zoo:digits_mlp_w1a1", 1_000_000, "scores"),
    "digits_mlp_w1a1_label": ("zoo:digits_mlp_w1a1", 1_000_000, "label"),
    "digits_mlp_ternary": ("zoo:digits_mlp_ternary", 1_000_000, "scores"),
    "digits_mlp_w2": ("zoo:digits_mlp_w2", 1_000_000, "scores"),
    "digits_mlp_mix14": ("zoo:digits_mlp_mix14", 1_000_000, "scores"),
    "digits_mlp_mix14_t4x8": ("zoo:digits_mlp_mix14_t4x8", 1_000_000, "scores"),
    "digits_cnn_w1a1": ("zoo:digits_cnn_w1a1", 100_000, "scores"),
}


def command(folder: str) -> str:
    """The ``hwbnn gen`` line that writes ``rtl/FOLDER``."""
    model, fps, output = DESIGNS[folder]
    return (f"hwbnn gen {model} --fold auto --target-fps {fps} --clock-mhz {CLOCK_HZ / 1e6:g} "
            f"--output {output} --name hwbnn_{folder} --out rtl/{folder}/")


def generate_design(folder: str, rtl_dir: str | Path = RTL_DIR) -> dict:
    model, fps, output = DESIGNS[folder]
    net = zoo.load(model)
    folding = Folding.auto(net, fps, CLOCK_HZ / 1e6)
    return generate(net, folding, Path(rtl_dir) / folder, output=output,
                    name=f"hwbnn_{folder}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rtl_dir = Path(argv[0]) if argv else RTL_DIR
    for folder in DESIGNS:
        result = generate_design(folder, rtl_dir)
        print(f"{command(folder)}  # {result['cycles_per_frame']} cycles/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
