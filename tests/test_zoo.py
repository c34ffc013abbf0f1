"""The shipped digits zoo: accuracy claims, reproducible rebuild, references."""

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.ref import golden
from hwbnn.train import TrainSettings
from hwbnn.zoo.build import build, recipe, train_and_save

# Acceptance floors on the digits test split (issue: foundation).
FLOORS = {"digits_mlp_w1a1": 0.92, "digits_cnn_w1a1": 0.93}


def _accuracy(name, digits):
    return float(np.mean(golden.predict(zoo.load(f"zoo:{name}"), digits.test_x) == digits.test_y))


def test_shipped_models_meet_their_floors(digits):
    accuracy = {name: _accuracy(name, digits) for name in zoo.trained_names()}
    for name, floor in FLOORS.items():
        assert accuracy[name] >= floor, (name, accuracy[name])
    assert accuracy["digits_mlp_ternary"] >= accuracy["digits_mlp_w1a1"]
    for name in zoo.trained_names():  # the metadata reports what golden measures
        recorded = zoo.load(f"zoo:{name}").metadata["training"]["integer_accuracy"]
        assert recorded == accuracy[name]


def _seed_mean(name, digits, seeds=3):
    entry = recipe(name)
    accuracies = []
    for seed in range(seeds):
        settings = TrainSettings(**entry["settings"], seed=seed)
        result = train_and_save(entry["config"], settings, digits, None, name, progress=False)
        accuracies.append(result.get("integer_accuracy", result["float_accuracy"]))
    return float(np.mean(accuracies))


def test_bits_matter_and_mix14_matches_w2_over_three_seeds(digits):
    mean = {name: _seed_mean(name, digits) for name in
            ("digits_mlp_float", "digits_mlp_w1a1", "digits_mlp_w2", "digits_mlp_mix14")}
    assert mean["digits_mlp_float"] >= 0.96
    assert mean["digits_mlp_w2"] - mean["digits_mlp_w1a1"] >= 0.01, mean  # bits matter here
    assert abs(mean["digits_mlp_mix14"] - mean["digits_mlp_w2"]) <= 0.01, mean  # Fromm et al.


def test_rebuild_is_byte_identical(tmp_path):
    build(["digits_mlp_w1a1"], zoo_dir=tmp_path)
    rebuilt = (tmp_path / "digits_mlp_w1a1.hwbnn").read_bytes()
    assert rebuilt == zoo.model_path("digits_mlp_w1a1").read_bytes()


def test_unknown_references():
    with pytest.raises(HwbnnError, match="no zoo model"):
        zoo.load("zoo:digits_mlp_w9")
    with pytest.raises(HwbnnError, match="no recipe"):
        recipe("nothing")
