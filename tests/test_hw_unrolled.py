import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.popcount import tree_latency
from hwbnn.hw.simulate import run_stream, simulate_network
from hwbnn.hw.unrolled import UnrolledMatrixVectorUnit
from hwbnn.ir.network import Weights
from hwbnn.ref import golden

from .hw_layers import layer_with, random_layer, random_values


@pytest.mark.parametrize("kind, in_encoding, out_encoding", [
    ("binary", "binary", "binary"), ("ternary", "ternary", "ternary"),
    ("residual", "uint3", None), ("grouped", "binary", "uint2"), ("residual", "ternary", "binary"),
    ("ternary", "binary", None), ("residual", "binary", None), ("residual", "uint2", "ternary"),
    ("binary", "uint4", None), ("ternary", "ternary", None), ("residual", "ternary", None)])
@pytest.mark.parametrize("mw", [8, 38])
def test_unrolled_equals_golden(kind, in_encoding, out_encoding, mw):
    rng = np.random.default_rng(len(kind) + len(in_encoding) + mw)
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=4, mw=mw)
    assert_unrolled_equals_golden(rng, layer, frames=6)


def assert_unrolled_equals_golden(rng, layer, frames, dut=None):
    """Random inputs with gaps and backpressure through the unit == golden, exactly."""
    x = random_values(rng, layer.in_encoding, (frames, layer.mw))
    dut = dut or UnrolledMatrixVectorUnit(layer)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(x, layer.in_encoding, layer.mw),
                     frames, seed=1)
    codes = packing.unpack(out, dut.out_bits, layer.mh).reshape(frames, layer.mh)
    rtl = (packing.from_signed(codes, dut.out_bits) if layer.out_encoding is None
           else packing.from_codes(codes, layer.out_encoding))
    assert (rtl == golden.run_layer(layer, x).out).all()


@pytest.mark.parametrize("in_encoding, out_encoding", [("binary", "binary"), ("ternary", None),
                                                       ("uint3", "uint2")])
def test_unrolled_row_without_weights(in_encoding, out_encoding):
    """An all-zero ternary row has no trees: its sum is the constant offset alone."""
    rng = np.random.default_rng(5)
    layer = random_layer(rng, "ternary", in_encoding, out_encoding, mh=3, mw=6)
    layer.weights.planes[:, 1] = 0
    assert (layer.weights.values()[1] == 0).all()
    assert_unrolled_equals_golden(rng, layer, frames=4)


def test_unrolled_weight_bits_follow_the_mix():
    net = zoo.load("zoo:digits_mlp_mix14")
    layer = net.layers[1]
    unit = UnrolledMatrixVectorUnit(layer)
    assert unit.weight_bits == int(layer.weights.bitwidth.sum())
    Fragment.get(unit, None)


def test_unrolled_network_equals_golden():
    net = zoo.load("zoo:digits_mlp_mix14")
    images = data.load("digits").test_x[:8]
    top = NetworkTop(net, mode="unrolled")
    assert top.cycle_model()["cycles_per_frame"] == 1
    assert (simulate_network(top, images, seed=9) == golden.scores(net, images)).all()


def test_unrolled_too_large(monkeypatch):
    import hwbnn.hw.unrolled as unrolled

    monkeypatch.setattr(unrolled, "MAX_UNROLLED_WEIGHT_BITS", 1000)
    with pytest.raises(HwbnnError, match="design too large for unrolled mode"):
        UnrolledMatrixVectorUnit(zoo.load("zoo:digits_mlp_w1a1").layers[0])


@pytest.mark.parametrize("scales", [(8, 2, 1), (16, 1, 1), (6, 3, 1), (4, 2, 2)])
def test_unrolled_plane_scales(scales):
    """Power-of-two scales are summed by shifts (wide and narrow gaps), others as their set
    bits (shifts and adders, no multiplier)."""
    rng = np.random.default_rng(sum(scales))
    bitwidth = rng.choice([1, 2, 3], size=(3, 24))
    bitwidth[0, 0] = 3
    weights = Weights.residual(rng.choice([-1, 1], size=(3, 3, 24)), bitwidth, list(scales))
    assert_unrolled_equals_golden(rng, layer_with(rng, weights, "binary", None), frames=5)


@pytest.mark.parametrize("light", [1, 2, 6, 13])
def test_sparse_plane_absorbed_into_the_next_tree(monkeypatch, light):
    """A few 3-bit columns: plane 2's lanes ride in plane 1's tree (chunk lanes and carry-ins),
    still exact, and the unit's latency is unchanged."""
    rng = np.random.default_rng(light)
    bitwidth = np.repeat([1, 2, 3], [64 - 2 * light - 4, light + 4, light])[None].repeat(3, 0)
    weights = Weights.residual(rng.choice([-1, 1], size=(3, 3, 64)), bitwidth, [4, 2, 1])
    layer = layer_with(rng, weights, "binary", "binary")
    calls = []
    absorb = UnrolledMatrixVectorUnit._absorb
    monkeypatch.setattr(UnrolledMatrixVectorUnit, "_absorb",
                        lambda self, *args: calls.append(args[3]) or absorb(self, *args))
    dut = UnrolledMatrixVectorUnit(layer)
    assert dut.latency == tree_latency(64) + 2  # as without absorption
    assert_unrolled_equals_golden(rng, layer, frames=6, dut=dut)
    assert len(calls) == 3  # every row


def _registers(unit) -> int:
    from amaranth.back import rtlil

    text = rtlil.convert(unit)
    return text.count("cell $dff") + text.count("cell $adff")


@pytest.mark.parametrize("in_encoding", ["binary", "uint3"])
def test_rows_with_the_same_lanes_share_their_trees(in_encoding):
    """Rows whose planes cover the same lanes with the same signs are built once: four equal
    rows have the registers of one (the output register is one signal), and the unit is
    still exact."""
    rng = np.random.default_rng(3)
    bitwidth = rng.choice([1, 2, 3], size=(1, 40))
    signs = rng.choice([-1, 1], size=(3, 1, 40))
    one = layer_with(rng, Weights.residual(signs, bitwidth, [4, 3, 2]), in_encoding, None)
    four = layer_with(rng, Weights.residual(signs.repeat(4, 1), bitwidth.repeat(4, 0),
                                            [4, 3, 2]), in_encoding, None)
    assert _registers(UnrolledMatrixVectorUnit(four)) == _registers(UnrolledMatrixVectorUnit(one))
    assert_unrolled_equals_golden(rng, four, frames=4)


def test_column_grouped_planes_take_prefixes_of_one_lane_order():
    """With one bitwidth per input column, each plane's lanes are a prefix of the heavier
    plane's (3-bit columns first), so the planes' trees start with the same pairs."""
    rng = np.random.default_rng(4)
    bitwidth = rng.choice([1, 2, 3], size=(1, 30)).repeat(5, 0)
    layer = layer_with(rng, Weights.residual(rng.choice([-1, 1], size=(3, 5, 30)), bitwidth,
                                             [4, 2, 1]), "binary", "binary")
    unit = UnrolledMatrixVectorUnit(layer)
    Fragment.get(unit, None)
    order = list(unit._order)
    for bits in (3, 2):
        assert sorted(order[:int((bitwidth[0] >= bits).sum())]) == list(
            np.nonzero(bitwidth[0] >= bits)[0])
    assert_unrolled_equals_golden(rng, layer, frames=4)


def test_compare_synthesizes_unrolled_models(capsys):
    """``hwbnn compare --mode unrolled --synth``: a frame per cycle, the estimate of the
    unrolled design beside its synthesis counts; --fold refused."""
    import json

    from hwbnn.cli import main

    assert main(["compare", "zoo:digits_mlp_w1a1", "--mode", "unrolled", "--synth",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["models"][0]
    assert (row["mode"], row["cycles_per_frame"]) == ("unrolled", 1)
    assert row["measured_lut"] > 1000 and row["measured_bram"] == row["bram"] == 0
    # digits_mlp_w1a1 unrolled is a training network of the fit (cost/networks.py); held-out
    # ones: test_cost_networks
    assert abs(row["lut"] - row["measured_lut"]) <= 0.15 * row["measured_lut"]
    assert abs(row["ff"] - row["measured_ff"]) <= 0.05 * row["measured_ff"]
    assert row["energy_pj_per_frame"] > 0
    assert main(["compare", "zoo:digits_mlp_w1a1", "--mode", "unrolled", "--fold", "auto",
                 "--target-fps", "1e5"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--fold is for --mode folded" in error


def test_verify_generates_a_model_unrolled(tmp_path, capsys):
    """``hwbnn verify MODEL --mode unrolled``: generated unrolled, bit-exact, a frame per
    cycle; --mode for a design folder and --fold with it are refused in one line."""
    import json

    from hwbnn.cli import main

    assert main(["verify", "zoo:digits_mlp_w1a1", "--mode", "unrolled", "--sim", "amaranth",
                 "--frames", "3", "--work", str(tmp_path / "v"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["cycles_per_frame"] == 1
    for argv, message in (
            ([str(tmp_path / "v" / "rtl"), "--mode", "unrolled"],
             "--mode and --adders are for a"),
            (["zoo:digits_mlp_w1a1", "--mode", "unrolled", "--fold", "1x1,1x1,1x1"],
             "--fold is for --mode folded")):
        assert main(["verify", *argv, "--sim", "amaranth"]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error


@pytest.mark.parametrize("mw", [40, 48])
def test_planes_in_runs_count_the_runs_apart(mw):
    """Bitwidths per 4x8 tile: planes 1 and 2 cover different inputs in each row block, but
    in whole runs of 8, so their popcounts count runs (shared by rows that agree on one):
    still exact; a per-parameter plane keeps the carry-in tree."""
    from hwbnn.hw.unrolled import RUN

    rng = np.random.default_rng(mw)
    tiles = rng.choice([1, 2, 3], size=(2, -(-mw // RUN)))
    tiles[:, :3] = [[3, 1, 3], [3, 2, 1]]  # row blocks differ on planes 1 and 2
    bitwidth = np.kron(tiles, np.ones((4, RUN), dtype=int))[:, :mw]
    weights = Weights.residual(rng.choice([-1, 1], size=(3, 8, mw)), bitwidth, [4, 2, 1])
    layer = layer_with(rng, weights, "binary", "binary")
    unit = UnrolledMatrixVectorUnit(layer)
    assert unit._runs == [False, True, True]
    assert_unrolled_equals_golden(rng, layer, frames=4, dut=unit)
    mixed = Weights.residual(rng.choice([-1, 1], size=(3, 8, mw)),
                             rng.choice([1, 2, 3], size=(8, mw)), [4, 2, 1])
    unit = UnrolledMatrixVectorUnit(layer_with(rng, mixed, "binary", None))
    Fragment.get(unit, None)
    assert unit._runs == [False, False, False]


def test_unrolled_design_blocks_and_report(tmp_path, capsys):
    """An unrolled design's blocks compare with its unrolled estimate (synth --blocks); the
    design report, which shows a folding, refuses it in one line (before Yosys)."""
    from types import SimpleNamespace

    import hwbnn
    from hwbnn.cli import main

    design = hwbnn.load("zoo:digits_mlp_w1a1").generate(tmp_path / "u", mode="unrolled")
    assert design.mode == "unrolled"
    counted = {"dense0": {"lut": 900, "ff": 1000}, "dense1_fifo": {"lut": 5, "ff": 60}}
    rows = design.compare_blocks(SimpleNamespace(blocks=counted, family="ice40"))
    kinds = {row["block"]: row["kind"] for row in rows}
    assert kinds["dense0"] == kinds["dense2"] == "unrolled" and kinds["dense1_fifo"] == "fifo"
    dense0 = next(row for row in rows if row["block"] == "dense0")
    assert dense0["lut"]["synthesis"] == 900 and dense0["lut"]["estimate"] > 100
    assert main(["report", str(tmp_path / "u")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "this one is unrolled: use hwbnn cost" in error
    with pytest.raises(HwbnnError, match="folded design's folding"):
        design.report(tmp_path / "r.html")


def test_unrolled_estimate(capsys):
    """``hwbnn cost --mode unrolled``: every weight layer an unrolled unit priced from what
    it builds, a frame per clock, no memories; energy with no weight memory or buffers;
    a folding is refused in one line."""
    import json

    from hwbnn.cli import main
    from hwbnn.cost.estimate import estimate
    from hwbnn.cost.profile import profile_network

    assert main(["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--mode", "unrolled",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kinds = [c["kind"] for c in report["components"]]
    assert kinds == ["unrolled", "fifo", "unrolled", "fifo", "unrolled"]
    totals = report["totals"]
    assert (totals["cycles_per_frame"], totals["bram"], totals["clock_source"]) == (
        1, 0, "assumed")
    assert [(row["pe"], row["simd"]) for row in report["layers"]] == [(32, 64), (32, 32),
                                                                     (10, 32)]
    net = zoo.load("zoo:digits_mlp_w1a1")
    chip = estimate(net, "asic", mode="unrolled").totals()
    assert chip["energy_weight_memory_pj"] == chip["energy_activation_buffers_pj"] == 0
    assert chip["energy_compute_pj"] > 0
    # the binary-input layers' popcounts, each shared node counted once: fewer adder bits
    # than a popcount per row
    from hwbnn.cost.profile import popcount_tree

    for unit in profile_network(net, None, "unrolled").layers[1:]:
        assert 0 < unit.popcount.adder_bits < unit.mh * popcount_tree(unit.mw).adder_bits
    assert main(["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--mode", "unrolled",
                 "--fold", "1x1,1x1,1x1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--fold is for --mode folded" in error
