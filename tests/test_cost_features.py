"""Structural features: LUTs of functions and narrow adders, register counts."""

import pytest

from hwbnn.cost.features import (
    _pruned_tree_register_bits,
    bypass_bits,
    fifo_features,
    luts_of_function,
    soft_adder_luts,
)
from hwbnn.cost.profile import MemoryShape, StreamProfile, adder_tree, popcount_tree


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
