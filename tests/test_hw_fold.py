"""The one folding type: its three spellings, its defaults, its errors and auto-folding."""

import json

import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import Folding, LayerFold, divisors, layer_cycles
from hwbnn.hw.plan import LayerPlan


@pytest.fixture(scope="module")
def mlp():
    return zoo.load("zoo:digits_mlp_w1a1")  # dense0 32x64, dense1 32x32, dense2 10x32


def test_divisors():
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    assert divisors(1) == [1]
    assert divisors(1024) == [2 ** k for k in range(11)]


def test_default_is_the_layers_own_folding_else_one(mlp):
    folding = Folding.parse(None, mlp)
    assert folding.pairs() == [(layer.pe or 1, layer.simd or 1) for layer in mlp.weight_layers]
    assert folding.target_fps is None


def test_inline_pairs(mlp):
    folding = Folding.parse(" 2x8, 4X4,1x2", mlp)
    assert folding.pairs() == [(2, 8), (4, 4), (1, 2)]
    assert str(folding) == "2x8,4x4,1x2"
    assert folding[mlp.weight_layers[1].name] == LayerFold(4, 4)


def test_json_file_manifest_and_design_folder_give_the_same_folding(mlp, tmp_path):
    layers = {"dense0": {"pe": 2, "simd": 8}, "dense1": {"pe": 4, "simd": 4}}
    plain = tmp_path / "fold.json"
    plain.write_text(json.dumps(layers))
    design = tmp_path / "design"
    design.mkdir()
    (design / "manifest.json").write_text(json.dumps({"top": "x", "folding": layers}))
    expected = Folding(mlp, layers)
    assert Folding.parse(str(plain), mlp) == expected
    assert Folding.parse(design / "manifest.json", mlp) == expected
    assert Folding.parse(str(design), mlp) == expected
    # dense2 is missing from the file: the layer's own folding (1 here)
    assert expected["dense2"] == LayerFold(1, 1)


def test_mapping_and_folding_round_trip(mlp):
    folding = Folding.parse("2x8,4x4,1x2", mlp)
    assert Folding.parse(folding.to_dict(), mlp) == folding
    assert Folding.parse(folding, mlp) == folding
    assert json.loads(json.dumps(folding.to_dict())) == folding.to_dict()


def test_ram_style_in_every_spelling(mlp, tmp_path):
    inline = Folding.parse("2x8,4x4:block,1x2:LOGIC", mlp)
    assert inline["dense1"] == LayerFold(4, 4, "block")
    assert inline["dense2"].ram_style == "logic" and inline["dense0"].ram_style == "auto"
    assert str(inline) == "2x8,4x4:block,1x2:logic"
    assert inline.to_dict()["dense1"] == {"pe": 4, "simd": 4, "ram_style": "block"}
    assert "ram_style" not in inline.to_dict()["dense0"]
    assert Folding.parse(str(inline), mlp) == inline != Folding.parse("2x8,4x4,1x2", mlp)
    path = tmp_path / "fold.json"
    path.write_text(json.dumps({"dense2": {"ram_style": "block"}}))
    from_file = Folding.parse(path, mlp)
    assert from_file["dense2"] == LayerFold(1, 1, "block")
    plans = inline.plans()
    assert (plans["dense1"].weight_rom.style, plans["dense0"].weight_rom.style) == ("block",
                                                                                     "auto")


@pytest.mark.parametrize("spec, message", [
    ("2x8", "--fold needs 3 PExSIMD pairs"),
    ("2x8,4-4,1x2", "--fold entries look like 4x16"),
    ("3x8,4x4,1x2", "layer dense0: pe=3 does not divide MH"),
    ("2x7,4x4,1x2", "layer dense0: simd=7 does not divide MW"),
    ("0x8,4x4,1x2", "layer dense0: pe must be a positive integer, not 0"),
    ({"dense0": {"pe": True}}, "layer dense0: pe must be a positive integer, not True"),
    ({"dense0": {"pe": 2.0}}, "layer dense0: pe must be a positive integer, not 2.0"),
    ({"dense9": {"pe": 2}}, "folding names unknown layer 'dense9'"),
    ({"dense0": {"pe": 2, "lanes": 3}}, "folding of layer 'dense0' must be"),
    ({"dense0": {"ram_style": "ultra"}},
     "ram_style must be one of auto, block, logic, not 'ultra'"),
    ("2x8:bram,4x4,1x2", "ram_style must be one of auto, block, logic, not 'bram'"),
    ("2x8:,4x4,1x2", "--fold entries look like 4x16"),
    ("auto", "--fold auto needs --target-fps"),
    ("no/such/file.json", "does not exist"),
    (3, "a folding must be"),
])
def test_errors_have_one_wording(mlp, spec, message):
    with pytest.raises(HwbnnError, match=message):
        Folding.parse(spec, mlp)


def test_bad_json_file(mlp, tmp_path):
    path = tmp_path / "fold.json"
    path.write_text("{not json")
    with pytest.raises(HwbnnError, match="is not valid JSON"):
        Folding.parse(str(path), mlp)
    path.write_text("[1, 2]")
    with pytest.raises(HwbnnError, match="must hold an object of layers"):
        Folding.parse(str(path), mlp)


@pytest.mark.parametrize("target_fps, clock_mhz, message", [
    (0, None, "--target-fps must be a positive number, not 0"),
    (float("inf"), None, "--target-fps must be a positive number"),
    (1e3, -5, "--clock-mhz must be a positive number, not -5"),
])
def test_rate_errors(mlp, target_fps, clock_mhz, message):
    with pytest.raises(HwbnnError, match=message):
        Folding.parse("auto", mlp, target_fps=target_fps, clock_mhz=clock_mhz)


def test_target_rate_beside_an_explicit_folding_is_checked(mlp):
    slow = Folding.parse("1x1,1x1,1x1", mlp)
    fps = 100e6 / slow.cycles_per_frame
    ok = Folding.parse("1x1,1x1,1x1", mlp, target_fps=fps * 0.99)
    assert ok.target_fps == pytest.approx(fps * 0.99)
    with pytest.raises(HwbnnError, match=f"limited by {slow.bottleneck}"):
        Folding.parse("1x1,1x1,1x1", mlp, target_fps=fps * 1.01)
    # The same rate at a faster clock fits.
    Folding.parse("1x1,1x1,1x1", mlp, target_fps=fps * 1.01, clock_mhz=200)


def test_a_target_rate_alone_means_auto(mlp):
    assert Folding.parse(None, mlp, target_fps=1e5) == Folding.auto(mlp, 1e5, 100)


@pytest.mark.parametrize("model, fps", [("digits_mlp_w1a1", 1e6), ("digits_mlp_mix14", 2e5),
                                        ("digits_cnn_w1a1", 1e5), ("digits_mlp_w2", 1e3)])
def test_auto_folding_meets_target_and_is_minimal(model, fps):
    net = zoo.load(f"zoo:{model}")
    folding = Folding.auto(net, fps, 100)
    budget = 100e6 // fps
    assert folding.cycles_per_frame <= budget
    assert (folding.target_fps, folding.clock_mhz) == (fps, 100)
    for layer in net.weight_layers:
        fold = folding[layer.name]
        cycles = layer_cycles(layer, fold.pe, fold.simd)
        assert cycles == LayerPlan(layer, fold.pe, fold.simd).cycles_per_frame <= budget
        if fold.simd > 1 or fold.pe > 1:
            # the step before (one divisor less) was over budget: folding is minimal
            if fold.pe == 1:
                smaller = (1, max(d for d in range(1, fold.simd) if layer.mw % d == 0))
            else:
                smaller = (max(d for d in range(1, fold.pe) if layer.mh % d == 0), fold.simd)
            assert layer_cycles(layer, *smaller) > budget


def test_auto_folding_says_when_target_cannot_be_met():
    with pytest.raises(HwbnnError, match="limited by conv0_window"):
        Folding.auto(zoo.load("zoo:digits_cnn_w1a1"), 1e6, 100)
    with pytest.raises(HwbnnError, match="more than one frame per clock cycle"):
        Folding.auto(zoo.load("zoo:digits_mlp_w1a1"), 1e9, 100)


def test_stage_cycles_include_the_sliding_windows():
    net = zoo.load("zoo:digits_cnn_w1a1")
    stages = Folding.parse(None, net).stage_cycles()
    assert "conv0_window" in stages and set(stages) >= {layer.name for layer in net.weight_layers}


def test_graph_folding_default_inline_and_auto():
    """A residual graph: its weight layers fold (default 1x1, inline pairs in layer order,
    strided windows in the cycle model); auto-folding: tests/test_cost_graph.py."""
    net = zoo.load("zoo:digits_resnet_w1a1")
    names = [layer.name for layer in net.weight_layers]
    assert names == ["stem", "block0_conv", "block1_conv", "block1_short", "block2_conv", "fc"]
    assert Folding(net).pairs() == [(1, 1)] * 6
    folding = Folding.parse("16x9,16x16,16x16,8x16,16x32,5x8", net)
    assert folding["block1_short"] == LayerFold(8, 16)
    assert folding.stage_cycles()["block1_conv_window"] == 4 * 4 * 9  # stride 2: 4x4 windows
    assert folding.stage_cycles()["stem"] == LayerPlan(net.layers[0], 16, 9).cycles_per_frame
    with pytest.raises(HwbnnError, match="pe=3 does not divide MH"):
        Folding.parse("3x1,1x1,1x1,1x1,1x1,1x1", net)
    assert Folding.parse("auto", net, target_fps=1000).cycles_per_frame <= 100_000


def test_auto_folding_takes_tiles_that_fit_bitwidth_groups():
    """Bitwidths shared per 4x8 tile: at the same lanes a PE step that keeps tiles inside the
    groups needs no masks and skips absent planes, so it wins over the wider SIMD; weights
    with one bitwidth keep SIMD first."""
    import numpy as np

    from hwbnn.ir.network import NetworkIR, Weights

    from .hw_layers import layer_with

    rng = np.random.default_rng(0)
    per_tile = rng.choice([1, 2, 3], size=(8, 8), p=[0.7, 0.2, 0.1])
    bitwidth = np.kron(per_tile, np.ones((4, 8), dtype=int))  # a 32x64 layer
    signs = rng.choice([-1, 1], size=(3, 32, 64))
    grouped = layer_with(rng, Weights.residual(signs, bitwidth, [4, 2, 1]), "binary", None)
    two_bit = layer_with(rng, Weights.residual(signs[:2], np.full((32, 64), 2), [4, 2]),
                         "binary", None)
    for layer, expected in ((grouped, (4, 8)), (two_bit, (1, 32))):
        net = NetworkIR("one", (64,), "binary", [layer]).validate()
        budget = LayerPlan(layer, *expected).cycles_per_frame
        fold = Folding.auto(net, 100e6 / (budget + 0.5), 100)[layer.name]
        assert (fold.pe, fold.simd) == expected
    plan = LayerPlan(grouped, 4, 8)
    assert not plan.needs_mask and plan.steps == int(per_tile.sum())
    assert LayerPlan(grouped, 1, 32).needs_mask
