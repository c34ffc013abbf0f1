"""Network profiles (the plans of every layer plus windows, pools and FIFOs) and the adder-tree
counts."""

import numpy as np

from hwbnn import zoo
from hwbnn.cost.profile import adder_tree, popcount_tree, profile_network
from hwbnn.hw.fold import Folding
from hwbnn.hw.plan import distinct_columns


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


def test_network_profile_cycles_and_streams():
    net = zoo.load("zoo:digits_cnn_w1a1")
    profile = profile_network(net, Folding.parse("4x9,8x32,1x16", net))
    assert profile.folding.pairs() == [(4, 9), (8, 32), (1, 16)]
    cycles = [p.cycles_per_frame for p in profile.layers]
    assert profile.cycles_per_frame == max(cycles)
    assert profile.latency_cycles == sum(cycles)
    # Every FIFO of the pipeline is priced: in front of each window, pool and MVTU.
    fifos = [block.name for block in profile.blocks if block.kind == "fifo"]
    assert [s.name for s in profile.streams] == fifos
    assert {"conv1_fifo", "dense2_fifo", "conv1_window_fifo"} <= set(fifos)
    assert len(profile.windows) == 2 and len(profile.pools) == 2


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


def test_tree_builder_records_the_profiled_trees():
    """What hw/popcount.py's TreeBuilder records while it builds (the unrolled units' cost
    profile) is what the folded profile counts for the same tree: the same adders (width,
    operands, carry-in, on lanes) and register bits."""
    from amaranth import Module, Signal
    from amaranth.hdl import Fragment

    from hwbnn.hw.popcount import TreeBuilder

    def builder():
        m = Module()
        return m, TreeBuilder(m, Signal())

    def adders(tree):
        return sorted((a.width, a.a, a.b, a.carry_in, a.on_lanes) for a in tree.adders)

    for lanes in (2, 3, 8, 15, 33, 64):
        m, trees = builder()
        total, _ = trees.count([(n, Signal()) for n in range(lanes)])
        trees.output("o", total)
        assert sorted(trees.adders.values()) == adders(popcount_tree(lanes))
        assert trees.register_bits == popcount_tree(lanes).register_bits
        Fragment.get(m, None)
    for lanes, width in ((4, 3), (7, 6), (64, 6)):
        m, trees = builder()
        key, total = trees.adder_sum([(n, Signal(width)) for n in range(lanes)])
        trees.output(key, total)
        assert sorted(trees.adders.values()) == adders(adder_tree(lanes, width))
        assert trees.register_bits == adder_tree(lanes, width).register_bits
        Fragment.get(m, None)
    # Two trees over the same lanes are one tree: nothing more recorded.
    m, trees = builder()
    lanes = [(n, Signal()) for n in range(9)]
    trees.output("a", trees.count(lanes)[0])
    before = (dict(trees.adders), trees.register_bits)
    trees.output("a", trees.count(lanes)[0])
    assert (trees.adders, trees.register_bits) == before
    Fragment.get(m, None)
