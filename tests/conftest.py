"""Shared fixtures: the digits dataset, the test frames of every zoo model, small hand-made
networks."""

import functools

import numpy as np
import pytest

from hwbnn import data
from hwbnn.ir.network import MatVec, NetworkIR, Weights, accumulator_range, accumulator_width


@pytest.fixture(scope="session")
def digits():
    return data.load("digits")


# Test images per Fashion-MNIST zoo model in the fast suite (the zoo build checks all 10,000).
FASHION_SUBSET = 500


@functools.cache
def zoo_test_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Test images and labels of a trained zoo model's dataset: the whole digits split, or the
    first :data:`FASHION_SUBSET` Fashion-MNIST test images."""
    from hwbnn.zoo.recipes import RECIPES, dataset_of

    dataset = data.load(dataset_of(RECIPES[name]))
    count = None if dataset.name == "digits" else FASHION_SUBSET
    return dataset.test_x[:count], dataset.test_y[:count]


def make_matvec(name, values, in_encoding, thresholds=None, out_encoding=None, kind="binary"):
    """A MatVec layer with exact acc_range/acc_width from integer weights."""
    weights = Weights.binary(values) if kind == "binary" else Weights.ternary(values)
    acc_range = accumulator_range(weights.values(), in_encoding)
    return MatVec(name, in_encoding, weights, thresholds, out_encoding, acc_range,
                  accumulator_width(acc_range, thresholds))


@pytest.fixture
def tiny_net():
    """4 uint2 inputs -> 3 binary neurons -> 2 scores."""
    rng = np.random.default_rng(0)
    w0 = rng.choice([-1, 1], size=(3, 4))
    w1 = rng.choice([-1, 1], size=(2, 3))
    hidden = make_matvec("dense0", w0, "uint2", np.array([[0], [-2], [3]]), "binary")
    last = make_matvec("dense1", w1, "binary")
    return NetworkIR("tiny", (4,), "uint2", [hidden, last]).validate()


@pytest.fixture(autouse=True)
def _zoo_run_record(tmp_path_factory, monkeypatch):
    """Tests read and write a copy of the zoo's run record, never the shipped one (in a folder
    of its own: tests that check what a command wrote to ``tmp_path`` do not see it)."""
    from hwbnn import zoo

    copy = tmp_path_factory.mktemp("zoo-record") / "runs.json"
    copy.write_bytes(zoo.RECORD.read_bytes())
    monkeypatch.setattr(zoo, "RECORD", copy)
