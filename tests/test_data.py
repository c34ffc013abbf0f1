"""Dataset loaders on tiny files written by the tests."""

import gzip
import pickle

import numpy as np
import pytest

from hwbnn import data
from hwbnn.errors import HwbnnError


def test_digits_split_is_fixed_and_stratified(digits):
    again = data.load("digits")
    assert np.array_equal(digits.test_x, again.test_x)
    assert digits.train_x.shape == (1437, 8, 8, 1) and digits.test_x.shape == (360, 8, 8, 1)
    assert digits.input_encoding == "uint5" and int(digits.train_x.max()) == 16
    assert np.bincount(digits.test_y).min() >= 35


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx(tmp_path, compress):
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
             "train-labels-idx1-ubyte": np.arange(5), "t10k-images-idx3-ubyte":
             rng.integers(0, 256, (3, 28, 28)), "t10k-labels-idx1-ubyte": np.array([9, 0, 1])}
    for name, array in files.items():
        content = _idx(array)
        if compress:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (tmp_path / name).write_bytes(content)
    dataset = data.load("fashion-mnist", tmp_path)
    assert dataset.train_x.shape == (5, 28, 28, 1) and dataset.input_encoding == "uint8"
    assert np.array_equal(dataset.test_x[..., 0], files["t10k-images-idx3-ubyte"])
    assert dataset.test_y.tolist() == [9, 0, 1]


def test_mnist_truncated_idx(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((2, 28, 28)))[:-5])
    with pytest.raises(HwbnnError, match="holds .* bytes"):
        data.load("mnist", tmp_path)


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                 b"labels": [1, 2]}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    dataset = data.load("cifar10", tmp_path)
    assert dataset.train_x.shape == (10, 32, 32, 3)
    raw = pickle.loads((tmp_path / "test_batch").read_bytes())[b"data"]
    assert np.array_equal(dataset.test_x[1, :, :, 2], raw[1, 2048:].reshape(32, 32))


def test_missing_dataset_path(tmp_path):
    with pytest.raises(HwbnnError, match="does not exist"):
        data.load("mnist", tmp_path / "nowhere")
    with pytest.raises(HwbnnError, match="needs --data-path"):
        data.load("cifar10")
    with pytest.raises(HwbnnError, match="dataset must be one of"):
        data.load("imagenet")
