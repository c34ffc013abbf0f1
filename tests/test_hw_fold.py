import json

import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import auto_folding, layer_cycles, load_folding


@pytest.mark.parametrize("model, fps", [("digits_mlp_w1a1", 1e6), ("digits_mlp_mix14", 2e5),
                                        ("digits_cnn_w1a1", 1e5), ("digits_mlp_w2", 1e3)])
def test_auto_folding_meets_target_and_balances(model, fps):
    net = zoo.load(f"zoo:{model}")
    folding, report = auto_folding(net, fps, 100e6)
    budget = report["cycle_budget"]
    assert report["cycles_per_frame"] <= budget
    for layer in net.weight_layers:
        fold = folding[layer.name]
        assert layer.mh % fold["pe"] == 0 and layer.mw % fold["simd"] == 0
        cycles = layer_cycles(layer, fold["pe"], fold["simd"])
        assert cycles <= budget
        if fold["simd"] > 1 or fold["pe"] > 1:
            # the step before (one divisor less) was over budget: folding is minimal
            smaller = ({"pe": fold["pe"], "simd": max(d for d in range(1, fold["simd"])
                                                      if layer.mw % d == 0)}
                       if fold["pe"] == 1 else
                       {"pe": max(d for d in range(1, fold["pe"]) if layer.mh % d == 0),
                        "simd": fold["simd"]})
            assert layer_cycles(layer, smaller["pe"], smaller["simd"]) > budget


def test_auto_folding_says_when_target_cannot_be_met():
    with pytest.raises(HwbnnError, match="limited by conv0_window"):
        auto_folding(zoo.load("zoo:digits_cnn_w1a1"), 1e6, 100e6)
    with pytest.raises(HwbnnError, match="target-fps must be a positive number"):
        auto_folding(zoo.load("zoo:digits_mlp_w1a1"), 0)


def test_load_folding(tmp_path):
    net = zoo.load("zoo:digits_mlp_w1a1")
    path = tmp_path / "fold.json"
    path.write_text(json.dumps({"folding": {"dense1": {"pe": 4, "simd": 8}}}))
    assert load_folding(path, net) == {"dense1": {"pe": 4, "simd": 8}}
    path.write_text("{not json")
    with pytest.raises(HwbnnError, match="is not valid JSON"):
        load_folding(path, net)
    with pytest.raises(HwbnnError, match="does not exist"):
        load_folding(tmp_path / "missing.json", net)
    path.write_text(json.dumps({"dense1": {"pe": 4, "simd": 5}}))
    with pytest.raises(HwbnnError, match="simd=5 does not divide MW"):
        load_folding(path, net)
