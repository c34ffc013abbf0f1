"""Unrolled layers from da4ml's adder graph (hw/cmvm.py): exact, shared, and refused cleanly."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw import cmvm
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.simulate import simulate_network
from hwbnn.hw.unrolled import GRAPH_LEVELS, UnrolledMatrixVectorUnit
from hwbnn.ref import golden

from .hw_layers import random_layer
from .test_hw_unrolled import assert_unrolled_equals_golden


@pytest.mark.parametrize("lo, hi, density", [(0, 1, 0.5), (0, 31, 0.3), (0, 2, 0.8), (0, 7, 1.0)])
def test_graph_computes_the_matrix_product(lo, hi, density):
    """The graph's integer evaluation is W @ v at the lanes' extremes and in between, for
    sparse and dense matrices with weights of several magnitudes (and a zero row)."""
    rng = np.random.default_rng(hi)
    weights = rng.integers(-9, 10, size=(12, 20)) * (rng.random((12, 20)) < density)
    weights[3] = 0
    graph = cmvm.solve(weights, lo, hi)
    lanes = rng.integers(lo, hi + 1, size=(64, 20))
    lanes[0], lanes[1] = lo, hi
    lanes[2] = np.where(weights[0] > 0, hi, lo)  # row 0 at its largest sum
    assert (graph.evaluate(lanes) == lanes.astype(object) @ weights.T.astype(object)).all()
    assert graph.outputs[3] is None
    # Every node's bounds hold what it is built to hold (the widths are exact, not padded).
    assert all(node.lo <= node.hi for node in graph.nodes)


def test_graph_shares_subexpressions_across_rows():
    """Rows that repeat a column pattern cost fewer adders than rows summed apart."""
    rng = np.random.default_rng(3)
    base = rng.choice([-1, 1], size=(1, 32))
    weights = np.repeat(base, 8, axis=0)
    weights[:, :4] = rng.choice([-1, 1], size=(8, 4))
    graph = cmvm.solve(weights, 0, 1)
    assert len(graph.adders) < 8 * 31 // 2


@pytest.mark.parametrize("kind, in_encoding, out_encoding", [
    ("binary", "binary", "binary"), ("residual", "uint3", None), ("grouped", "binary", "uint2"),
    ("residual", "ternary", "binary"), ("ternary", "ternary", None), ("residual", "binary", None),
    ("residual", "uint2", "ternary")])
def test_da4ml_unit_equals_golden(kind, in_encoding, out_encoding):
    rng = np.random.default_rng(len(kind) + len(in_encoding))
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=5, mw=24)
    unit = UnrolledMatrixVectorUnit(layer, adders="da4ml", graph_levels=None)
    assert unit.latency == 2
    assert_unrolled_equals_golden(rng, layer, frames=8, dut=unit)


@pytest.mark.parametrize("graph_levels", [1, 2, 3])
@pytest.mark.parametrize("kind, in_encoding, out_encoding", [
    ("residual", "uint3", None), ("residual", "binary", "binary"), ("ternary", "ternary", "uint2")])
def test_pipelined_da4ml_unit_equals_golden(monkeypatch, graph_levels, kind, in_encoding,
                                            out_encoding):
    """A register stage every ``graph_levels`` levels of the graph (and delays where an
    operand or a row sum is needed later, across column blocks too): exact under gaps and
    backpressure, with the latency the stages say, and its registers counted."""
    monkeypatch.setattr(cmvm, "BLOCK_COLUMNS", 16)
    rng = np.random.default_rng(graph_levels + len(kind))
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=6, mw=40)
    flat = UnrolledMatrixVectorUnit(layer, adders="da4ml", graph_levels=None)
    unit = UnrolledMatrixVectorUnit(layer, adders="da4ml", graph_levels=graph_levels)
    depth = max(unit._graph.depths())
    assert unit.latency == 2 + unit._graph.stages(graph_levels) >= 2 + depth // graph_levels - 1
    assert unit.latency > 2
    Fragment.get(flat, None)
    Fragment.get(unit, None)
    assert unit.structure().register_bits > flat.structure().register_bits
    assert unit.structure().other_adders == flat.structure().other_adders
    assert_unrolled_equals_golden(rng, layer, frames=12, dut=unit)


def test_graph_levels_are_a_da4ml_graphs():
    """da4ml graphs are pipelined every GRAPH_LEVELS levels unless asked otherwise; trees
    keep their own stages."""
    layer = zoo.load("zoo:digits_mlp_w2").weight_layers[1]
    unit = UnrolledMatrixVectorUnit(layer, adders="da4ml")
    assert unit.latency == 2 + unit._graph.stages(GRAPH_LEVELS) > 2
    trees = UnrolledMatrixVectorUnit(layer, graph_levels=2)
    assert trees.latency == UnrolledMatrixVectorUnit(layer).latency
    with pytest.raises(HwbnnError, match="graph_levels is a positive level count"):
        UnrolledMatrixVectorUnit(layer, adders="da4ml", graph_levels=0)


def test_da4ml_network_equals_golden(tmp_path):
    net = zoo.load("zoo:digits_mlp_mix14")
    images = data.load("digits").test_x[:8]
    top = NetworkTop(net, mode="unrolled", adders="da4ml")
    assert top.cycle_model()["cycles_per_frame"] == 1
    assert (simulate_network(top, images, seed=9) == golden.scores(net, images)).all()


def test_da4ml_structure_counts_its_adders():
    layer = zoo.load("zoo:digits_mlp_w2").weight_layers[2]
    unit = UnrolledMatrixVectorUnit(layer, adders="da4ml")
    Fragment.get(unit, None)
    built = unit.structure()
    assert not built.popcount_adders and len(built.other_adders) > 0
    assert sum(a[0] for a in built.other_adders) == cmvm.solve(
        layer.weights.values(), 0, 1).adder_bits


def test_bad_adders_choice():
    layer = zoo.load("zoo:digits_mlp_w2").weight_layers[2]
    with pytest.raises(HwbnnError, match="adders must be one of trees, da4ml, not 'dsp'"):
        UnrolledMatrixVectorUnit(layer, adders="dsp")
    with pytest.raises(HwbnnError, match="--adders da4ml is for --mode unrolled"):
        NetworkTop(zoo.load("zoo:digits_mlp_w2"), adders="da4ml")
    with pytest.raises(HwbnnError, match="integer weights"):
        cmvm.solve(np.ones((2, 2)), 0, 1)


def test_missing_da4ml_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_da4ml(name, *args, **kwargs):
        if name.startswith("da4ml"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_da4ml)
    with pytest.raises(HwbnnError, match="needs da4ml"):
        cmvm.solve(np.ones((2, 2), dtype=int), 0, 1)


def test_cli_builds_verifies_and_prices_da4ml_designs(tmp_path, capsys):
    """``--adders da4ml`` in gen (recorded in the manifest), verify (bit-exact in Verilator
    with gaps and backpressure, a frame per cycle), cost and compare; refused in one line
    beside the folded mode and for a design folder."""
    import json

    from hwbnn.cli import main

    out = tmp_path / "rtl"
    assert main(["gen", "zoo:digits_mlp_w2", "--mode", "unrolled", "--adders", "da4ml",
                 "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["adders"] == "da4ml"
    assert json.loads((out / "manifest.json").read_text())["adders"] == "da4ml"
    assert main(["verify", str(out), "--gap", "0.1", "--backpressure", "0.2", "--work",
                 str(tmp_path / "v"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["frames"] == 360
    assert main(["cost", "zoo:digits_mlp_w2", "--mode", "unrolled", "--adders", "da4ml",
                 "--family", "ecp5", "--json"]) == 0
    da4ml_lut = json.loads(capsys.readouterr().out)["totals"]["lut"]
    assert main(["compare", "zoo:digits_mlp_w2", "--mode", "unrolled", "--adders", "da4ml",
                 "--family", "ecp5", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["models"][0]
    assert row["adders"] == "da4ml" and row["lut"] == round(da4ml_lut)
    for argv, message in (
            (["gen", "zoo:digits_mlp_w2", "--adders", "da4ml", "--out", str(tmp_path / "x")],
             "--adders da4ml is for --mode unrolled"),
            (["cost", "zoo:digits_mlp_w2", "--adders", "da4ml", "--family", "ice40"],
             "--adders da4ml is for --mode unrolled"),
            (["compare", "zoo:digits_mlp_w2", "--adders", "da4ml"],
             "--adders da4ml is for --mode unrolled"),
            (["sweep", "zoo:digits_mlp_w2", "--mixes", "1", "--adders", "da4ml"],
             "--adders da4ml is for --mode unrolled"),
            (["verify", str(out), "--adders", "da4ml"], "--mode and --adders are for a"),
            (["cost", "calibrate", "--family", "ice40", "--adders", "da4ml"],
             "--adders is for an estimate")):
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error, (argv, error)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("cols", [20, 24, 50])
def test_wide_matrices_are_solved_in_column_blocks(monkeypatch, cols):
    """Columns beyond BLOCK_COLUMNS are solved block by block and each row adds its blocks'
    sums: still W @ v exactly, with a block of zeros, a row of zeros and a ragged last block."""
    monkeypatch.setattr(cmvm, "BLOCK_COLUMNS", 8)
    calls = []
    real = cmvm_solver()
    monkeypatch.setattr("da4ml.cmvm.solve", lambda kernel, **kw: calls.append(kernel.shape)
                        or real(kernel, **kw))
    rng = np.random.default_rng(cols)
    weights = rng.integers(-3, 4, size=(10, cols))
    weights[:, 8:16] = 0  # a block with no weight: no sum to add
    weights[4] = 0
    graph = cmvm.solve(weights, 0, 7)
    assert calls == [(min(8, cols - start), 10) for start in range(0, cols, 8)]
    lanes = rng.integers(0, 8, size=(64, cols))
    lanes[0], lanes[1] = 0, 7
    lanes[2] = np.where(weights[0] > 0, 7, 0)
    assert (graph.evaluate(lanes) == lanes.astype(object) @ weights.T.astype(object)).all()
    assert graph.outputs[4] is None
    assert [node.lane for node in graph.nodes[:cols]] == list(range(cols))


def cmvm_solver():
    from da4ml.cmvm import solve

    return solve
