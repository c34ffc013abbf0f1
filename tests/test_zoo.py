"""The shipped zoo: accuracy claims, every shipped model is what the code builds (digits:
retrained byte for byte; Fashion-MNIST: its recipe's fingerprint), the Fashion-MNIST loader."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.ref import golden
from hwbnn.train import TrainSettings
from hwbnn.zoo.build import build, fingerprint, recipe, train_and_save
from hwbnn.zoo.recipes import RECIPES, dataset_of

# Acceptance floors on the digits test split (issue: foundation).
FLOORS = {"digits_mlp_w1a1": 0.92, "digits_cnn_w1a1": 0.93}


def _accuracy(name, digits):
    return float(np.mean(golden.predict(zoo.load(f"zoo:{name}"), digits.test_x) == digits.test_y))


DIGITS = [name for name in zoo.trained_names() if dataset_of(RECIPES[name]) == "digits"]


def test_shipped_models_meet_their_floors(digits):
    accuracy = {name: _accuracy(name, digits) for name in DIGITS}
    for name, floor in FLOORS.items():
        assert accuracy[name] >= floor, (name, accuracy[name])
    assert accuracy["digits_mlp_ternary"] >= accuracy["digits_mlp_w1a1"]
    for name in DIGITS:  # the metadata reports what golden measures
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


@pytest.mark.parametrize("name", DIGITS)
def test_rebuild_is_byte_identical(name, tmp_path):
    build([name], zoo_dir=tmp_path)
    for suffix in (".hwbnn", ".pt"):
        rebuilt = (tmp_path / f"{name}{suffix}").read_bytes()
        assert rebuilt == (zoo.ZOO_DIR / f"{name}{suffix}").read_bytes(), suffix


@pytest.mark.parametrize("name", zoo.trained_names())
def test_shipped_model_carries_its_recipes_fingerprint(name):
    """The first steps of the recipe, trained and exported with today's code, give the digest
    recorded at build: dataset, recipe and code path are those the file was made with
    (`hwbnn zoo build` retrains in full)."""
    recorded = zoo.load(f"zoo:{name}").metadata["training"]["fingerprint"]
    assert fingerprint(name) == recorded


def test_fashion_mnist_loader_reads_the_installed_files():
    dataset = data.load("fashion-mnist")
    assert dataset.train_x.shape == (60000, 28, 28, 1) and dataset.test_x.shape == (
        10000, 28, 28, 1)
    assert dataset.input_encoding == "uint8"
    assert np.bincount(dataset.train_y).tolist() == [6000] * 10
    assert np.bincount(dataset.test_y).tolist() == [1000] * 10
    # The first test image, an ankle boot (class 9), by its digest.
    assert hashlib.sha256(dataset.test_x[0].tobytes()).hexdigest()[:16] == "ffc7351ed0f8bae5"
    assert dataset.test_y[0] == 9


def test_a_fashion_mnist_model_scores_its_readme_figure_on_the_whole_split():
    dataset = data.load("fashion-mnist")
    net = zoo.load("zoo:fmnist_sfc_w1a1")
    accuracy = float(np.mean(golden.predict(net, dataset.test_x) == dataset.test_y))
    assert accuracy == net.metadata["training"]["integer_accuracy"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| fmnist_sfc_w1a1 |"))
    assert f"{100 * accuracy:.2f}%" in row


def test_unknown_references():
    with pytest.raises(HwbnnError, match="no zoo model"):
        zoo.load("zoo:digits_mlp_w9")
    with pytest.raises(HwbnnError, match="no recipe"):
        recipe("nothing")
