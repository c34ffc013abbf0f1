"""Helpers shared by the cocotb pytest entry points in ``sim/``.

Builds go to one content-addressed cache (``build/sim/cache``), so every case with
identical RTL shares one Verilator build, within a session and across sessions; each case
runs in its own work folder (pytest's ``tmp_path``, named after the test node).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hwbnn.hw.plan import LayerPlan

REPO = Path(__file__).resolve().parents[1]
RTL = REPO / "rtl"
CACHE = REPO / "build" / "sim" / "cache"
SIMULATORS = ("verilator", "icarus")

sys.path.insert(0, str(REPO))
from tests.tooling import require_simulator  # noqa: E402,F401  (the sim tests import it here)


def zoo_designs() -> list[str]:
    """Names of the shipped generated designs (``rtl/NAME/manifest.json``)."""
    return sorted(path.parent.name for path in RTL.glob("*/manifest.json"))


WEIGHT_INIT = re.compile(r"(\s)weights\[(\d+)\] = (\d+)'([hdb])([0-9a-fA-F]+);")
RADIX = {"h": 16, "d": 10, "b": 2}


def flip_weight_bit(verilog: str, top: str, layer: str, word: int, bit: int) -> str:
    """The Verilog text with bit ``bit`` of word ``word`` of ``layer``'s weight ROM flipped.

    The ROM is the ``weights`` memory of module ``\\TOP.network.LAYER``, written by Amaranth
    as one ``weights[k] = W'hX;`` (or ``'dX``, ``'bX``) line per word in an ``initial`` block.
    """
    header = f"module \\{top}.network.{layer} "
    start = verilog.find(header)
    if start < 0:
        raise ValueError(f"no module {header.strip()} in the Verilog")
    end = verilog.find("endmodule", start)
    for match in WEIGHT_INIT.finditer(verilog, start, end):
        if int(match.group(2)) == word:
            width = int(match.group(3))
            if bit >= width:
                raise ValueError(f"word {word} of {layer} has {width} bits, not {bit + 1}")
            value = int(match.group(5), RADIX[match.group(4)]) ^ (1 << bit)
            text = f"{match.group(1)}weights[{word}] = {width}'h{value:x};"
            return verilog[:match.start()] + text + verilog[match.end():]
    raise ValueError(f"{layer} has no weight ROM word {word}")


def rom_bit_of_weight(layer, pe: int, simd: int, row: int, col: int) -> tuple[int, int]:
    """ROM word and bit that hold the sign of binary weight ``(row, col)`` (plan layout:
    word = step, bit ``p * SIMD + s``)."""
    plan = LayerPlan(layer, pe, simd)
    for word, (nf, sf, _) in enumerate(zip(*plan.step_tiles(), strict=True)):
        rows, cols = list(plan.tile_rows(nf)), list(plan.tile_cols(sf))
        if row in rows and col in cols:
            return word, rows.index(row) * simd + cols.index(col)
    raise ValueError(f"weight ({row}, {col}) is in no step of {layer.name}")
