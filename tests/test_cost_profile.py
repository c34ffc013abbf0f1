"""Layer profiles against the hardware generator's own plan, and the adder-tree counts."""

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.cost.profile import (
    LayerProfile,
    adder_tree,
    auto_folds,
    distinct_columns,
    parse_fold,
    popcount_tree,
    profile_network,
)
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import auto_folding, layer_cycles
from hwbnn.hw.plan import LayerPlan

from .hw_layers import random_layer

KINDS = ("binary", "ternary", "residual", "grouped")
ENCODINGS = ("binary", "ternary", "uint3")
FOLDS = ((2, 4), (4, 8), (16, 32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("in_encoding", ENCODINGS)
@pytest.mark.parametrize("out_encoding", ("binary", None))
def test_profile_matches_plan(kind, in_encoding, out_encoding):
    rng = np.random.default_rng(len(kind) * 7 + len(in_encoding))
    layer = random_layer(rng, kind, in_encoding, out_encoding, 16, 32, group=4)
    for pe, simd in FOLDS:
        plan, profile = LayerPlan(layer, pe, simd), LayerProfile(layer, pe, simd)
        assert profile.steps == plan.cycles_per_vector
        assert profile.needs_mask == plan.needs_mask
        assert profile.acc_width == plan.acc_width
        assert profile.weight_rom.bits == plan.weight_bits
        assert profile.out_bits == plan.out_bits
        schedule = plan.plane_schedule
        assert profile.irregular == any(planes != schedule[0] for planes in schedule)
        # The ROM images the estimator counts distinct columns of are the generator's.
        words = [sum(int(bit) << n for n, bit in enumerate(row))
                 for row in profile.weight_image()]
        assert words == plan.rom_words()
        table = profile.threshold_table()
        if out_encoding is not None:
            assert (table == plan.hw_thresholds()).all()
        elif in_encoding == "binary":
            assert (table[:, 0] == plan.offsets()).all()
        else:
            assert table is None


def test_distinct_columns():
    image = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 1, 1], [0, 1, 1, 0, 0]])
    # Column 1 is constant; columns 0 and 3 are equal: distinct varying columns 0, 2, 4.
    assert distinct_columns(image) == 3
    assert distinct_columns(np.ones((4, 3))) == 0


def test_adder_tree_counts():
    # A single input: no adders, a registered output of the input width.
    one = adder_tree(1, 3)
    assert (one.adder_bits, one.register_bits, one.out_width) == (0, 3, 3)
    # Eight 1-bit inputs: level 1: 4 x 2 bits, level 2: 2 x 3 bits, level 3: 1 x 4 bits.
    every = adder_tree(8, 1, levels_per_stage=1)
    assert (every.adder_bits, every.register_bits, every.out_width) == (18, 18, 4)
    # Registers every second level: after level 2 (6 bits) and the output (4 bits).
    second = adder_tree(8, 1, levels_per_stage=2)
    assert (second.register_bits, second.stages) == (10, 2)
    # Five 3-bit inputs: the odd one rides along (and is registered) until the last level.
    odd = adder_tree(5, 3, levels_per_stage=1)
    assert odd.adder_bits == 2 * 4 + 5 + 6
    assert odd.register_bits == (2 * 4 + 3) + (5 + 3) + 6


def test_profile_rejects_bad_folding():
    layer = zoo.load("zoo:digits_mlp_w1a1").layers[0]
    with pytest.raises(HwbnnError, match="pe=3"):
        LayerProfile(layer, 3, 1)


def test_network_profile_cycles_and_streams():
    net = zoo.load("zoo:digits_cnn_w1a1")
    folds = [(4, 9), (8, 32), (1, 16)]
    profile = profile_network(net, folds)
    cycles = [p.cycles_per_frame for p in profile.layers]
    assert profile.cycles_per_frame == max(cycles)
    assert profile.latency_cycles == sum(cycles)
    assert [s.name for s in profile.streams] == [p.name for p in profile.layers[1:]]
    assert len(profile.windows) == 2 and len(profile.pools) == 2


def test_parse_fold_and_errors():
    net = zoo.load("zoo:digits_mlp_w1a1")
    assert parse_fold("2x8, 4x4,1x2", net) == [(2, 8), (4, 4), (1, 2)]
    with pytest.raises(HwbnnError, match="needs 3"):
        parse_fold("2x8", net)
    with pytest.raises(HwbnnError, match="PE x SIMD"):
        parse_fold("2x8,4-4,1x2", net)


@pytest.mark.parametrize("name", ["digits_mlp_w1a1", "digits_mlp_mix14", "digits_cnn_w1a1"])
def test_auto_folds_are_the_generators_and_meet_the_target(name):
    net = zoo.load(f"zoo:{name}")
    target_fps, clock_mhz = 50_000, 100
    folds = auto_folds(net, target_fps, clock_mhz)
    folding, report = auto_folding(net, target_fps, clock_mhz * 1e6)
    assert folds == [(folding[layer.name]["pe"], folding[layer.name]["simd"])
                     for layer in net.weight_layers]
    budget = clock_mhz * 1e6 / target_fps
    for layer, (pe, simd) in zip(net.weight_layers, folds, strict=True):
        assert LayerProfile(layer, pe, simd).cycles_per_frame <= budget
        assert layer_cycles(layer, pe, simd) == LayerProfile(layer, pe, simd).cycles_per_frame


def test_auto_folds_name_an_unreachable_target():
    with pytest.raises(HwbnnError, match="cannot be met"):
        auto_folds(zoo.load("zoo:digits_cnn_w1a1"), 10_000_000, 100)


def test_popcount_tree_registers_match_the_generator():
    """Register bits of the carry-in popcount, counted on the Amaranth netlist: every
    registered signal of an elaborated Popcount."""
    from amaranth.hdl import Fragment

    from hwbnn.hw.popcount import Popcount

    def assigned_bits(statements):
        bits = 0
        for statement in statements:
            if hasattr(statement, "cases"):
                bits += max(assigned_bits(case[1]) for case in statement.cases)
            else:
                bits += len(statement.lhs)
        return bits

    for width, carry in ((8, False), (13, False), (64, True)):
        fragment = Fragment.get(Popcount(width, carry=carry), None)
        assert popcount_tree(width, carry).register_bits == assigned_bits(
            fragment.statements["sync"])


def test_tree_adders_sum_to_adder_bits():
    for tree in (adder_tree(5, 3), adder_tree(32, 3), popcount_tree(16, carry=True),
                 popcount_tree(64)):
        assert sum(adder.width for adder in tree.adders) == tree.adder_bits
    # Four 3-bit lanes: two 4-bit adders on the lanes, one 5-bit adder on their sums.
    four = adder_tree(4, 3)
    assert [(a.width, a.a, a.b, a.on_lanes) for a in four.adders] == [
        (4, 3, 3, True), (4, 3, 3, True), (5, 4, 4, False)]
    # Fifteen counted lanes: 3-lane nodes on the lanes (carry-in), then 7- and 15-lane nodes.
    widths = sorted(a.width for a in popcount_tree(16, carry=True).adders)
    assert widths == [2, 2, 2, 2, 3, 3, 4]
    assert popcount_tree(16, carry=True).adder_bits_up_to(2) == 8
