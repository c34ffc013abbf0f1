"""Dataset loaders on tiny files written by the tests."""

import gzip
import pickle
import re
from types import SimpleNamespace

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


def model(shape, encoding, metadata=None):
    """What :func:`data.model_frames` reads of a NetworkIR."""
    return SimpleNamespace(name="m", input_shape=shape, input_encoding=encoding,
                           metadata=metadata or {})


def test_binarize_is_plus_one_from_half_the_range_up():
    assert data.binarize(np.array([0, 127, 128, 255]), 255).tolist() == [-1, -1, 1, 1]
    assert data.binarize(np.array([0, 7, 8, 16]), 16).tolist() == [-1, -1, 1, 1]


def test_a_binary_model_sees_binarized_pixels(digits):
    frames = data.model_frames(model((8, 8, 1), "binary"), "digits", count=5)
    assert frames.shape == (5, 8, 8, 1)
    assert np.array_equal(frames, np.where(digits.test_x[:5] >= 8, 1, -1))


def test_an_unsigned_model_sees_the_pixels(digits):
    frames = data.model_frames(model((8, 8, 1), "uint5"), "digits")
    assert np.array_equal(frames, digits.test_x)


def test_a_flat_input_model_sees_flattened_pixels(digits):
    frames = data.model_frames(model((64,), "uint5"), "digits")
    assert frames.shape == (len(digits.test_x), 64)
    assert np.array_equal(frames, digits.test_x.reshape(-1, 64))


def test_a_recorded_input_quantizer_makes_the_frames(digits):
    """Brevitas' tfc_2w2a: 2x - 1 on pixels scaled to [0, 1], then round to -1/0/+1."""
    quantizer = {"gain": 2.0, "bias": -1.0, "lo": -1, "hi": 1, "rounding": "ROUND"}
    net = model((8, 8, 1), "ternary", {"input_quantizer": quantizer})
    frames = data.model_frames(net, "digits")
    assert np.array_equal(frames, np.round(2 * digits.test_x / 16 - 1))
    assert set(np.unique(frames).tolist()) == {-1, 0, 1}


@pytest.mark.parametrize(("quantizer", "message"), [
    ({"gain": 2.0, "bias": -1.0, "lo": -1, "hi": 1}, "must be an object with gain"),
    ({"gain": "2", "bias": -1.0, "lo": -1, "hi": 1, "rounding": "ROUND"}, "finite numbers"),
    ({"gain": 2.0, "bias": -1.0, "lo": 1, "hi": 1, "rounding": "ROUND"}, "lo < hi"),
    ({"gain": 2.0, "bias": -1.0, "lo": -1, "hi": 1, "rounding": "ODD"}, "rounding must be"),
    ({"gain": 2.0, "bias": -1.0, "lo": -1, "hi": 1, "rounding": "SIGN"}, "do not give ternary"),
])
def test_a_bad_input_quantizer_is_refused(quantizer, message):
    with pytest.raises(HwbnnError, match=message):
        data.model_frames(model((8, 8, 1), "ternary", {"input_quantizer": quantizer}), "digits")


@pytest.mark.parametrize(("name", "shape", "encoding", "values"), [
    ("zoo:lfc_w1a1", (28, 28, 1), "binary", {-1, 1}),
    ("zoo:cnv_w1a1", (32, 32, 3), "uint8", set(range(256))),
])
def test_synthetic_frames_have_the_models_shape_and_encoding(name, shape, encoding, values):
    from hwbnn import zoo

    net = zoo.load(name)
    assert (tuple(net.input_shape), net.input_encoding) == (shape, encoding)
    frames = data.model_frames(net, "synthetic", seed=1)
    assert frames.shape == (data.SYNTHETIC_FRAMES, *shape)
    assert set(np.unique(frames).tolist()) == values
    assert np.array_equal(frames[:7], data.model_frames(net, "synthetic", count=7, seed=1))
    assert not np.array_equal(frames[:7], data.model_frames(net, "synthetic", count=7, seed=2))


def test_ternary_synthetic_frames_cover_zero():
    frames = data.model_frames(model((4,), "ternary"), "synthetic", count=50)
    assert set(np.unique(frames).tolist()) == {-1, 0, 1}


@pytest.mark.parametrize(("net", "message"), [
    (model((28, 28, 1), "binary"), "dataset digits has 8x8x1 frames, model m takes 28x28x1: "
                                   "use another dataset or --dataset synthetic"),
    (model((65,), "uint5"), "dataset digits has 8x8x1 frames, model m takes 65: "),
    (model((8, 8, 1), "uint2"), "dataset digits has pixels 0..16, model m takes uint2 input"),
    (model((8, 8, 1), "ternary"), "model m takes ternary input (-1..1): use --dataset synthetic"),
])
def test_frames_that_do_not_fit_the_model_are_refused(net, message):
    with pytest.raises(HwbnnError, match=re.escape(message)):
        data.model_frames(net, "digits")


def test_model_frames_checks_its_arguments():
    with pytest.raises(HwbnnError, match="dataset must be one of .*synthetic, not 'nothing'"):
        data.model_frames(model((4,), "uint2"), "nothing")
    with pytest.raises(HwbnnError, match="frame count must be a positive integer, not 0"):
        data.model_frames(model((4,), "uint2"), "synthetic", count=0)


def test_more_frames_than_the_split_repeat_it(digits):
    """``--frames N`` above the split's size: a soak on real frames, the split repeated."""
    frames = data.model_frames(model((8, 8, 1), "uint5"), "digits", count=1000)
    assert frames.shape == (1000, 8, 8, 1)
    split = len(digits.test_x)
    np.testing.assert_array_equal(frames[:split], digits.test_x)
    np.testing.assert_array_equal(frames[split:2 * split], digits.test_x)
    np.testing.assert_array_equal(frames[2 * split:], digits.test_x[:1000 - 2 * split])
