"""Datasets as channels-last unsigned integer frames.

``digits`` (scikit-learn's 8x8 digits, values 0..16, i.e. uint5) is embedded and needs no
download; MNIST / Fashion-MNIST (IDX files) and CIFAR-10 (python batches) load from a
user-given folder. Every loader returns a :class:`Dataset` with a fixed train/test split.

:func:`model_frames` is the one adaptor from a dataset to a model's own input: it checks the
frame shape (flattening one-channel images for a flat-input model), quantizes pixels by the
model's recorded input quantizer or binarizes them for a binary-input model
(:func:`binarize`), and also offers ``synthetic``, seeded random frames of any model's shape
and encoding (:func:`random_frames`), so a model without a matching dataset on disk can still
be run and verified.
"""

from __future__ import annotations

import gzip
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_range, uint_encoding_for
from ..ir.input_quantizer import InputQuantizer

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass
class Dataset:
    """Integer frames ``(N, H, W, C)`` (uint8) and labels, split into train and test."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    input_encoding: str
    pixel_max: int = 255  # the value of a full-scale pixel (digits: 16)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1


def load_digits() -> Dataset:
    """scikit-learn digits: 1797 8x8 images, values 0..16; stratified 80/20 split, seed 0."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
        stratify=labels)
    return Dataset("digits", train_x, train_y, test_x, test_y, uint_encoding_for(16), 16)


# Where Debian's packages put a dataset (``apt install dataset-fashion-mnist``; ``make tools``
# installs it): the folder used when no --data-path is given.
INSTALLED = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}


def _existing(path: str | Path | None, dataset: str) -> Path:
    if path is None and dataset in INSTALLED:
        if INSTALLED[dataset].is_dir():
            return INSTALLED[dataset]
        raise HwbnnError(f"dataset {dataset!r} is not installed in {INSTALLED[dataset]} "
                         f"(apt install dataset-{dataset}); or give --data-path")
    if path is None:
        raise HwbnnError(f"dataset {dataset!r} needs --data-path pointing to its files")
    path = Path(path)
    if not path.is_dir():
        raise HwbnnError(f"dataset path {str(path)!r} does not exist or is not a folder")
    return path


def _open_maybe_gz(folder: Path, stem: str) -> bytes:
    for name in (stem, stem + ".gz"):
        file = folder / name
        if file.is_file():
            return gzip.decompress(file.read_bytes()) if name.endswith(".gz") else (
                file.read_bytes())
    raise HwbnnError(f"{stem}[.gz] not found in {str(folder)!r}")


def read_idx(data: bytes, what: str) -> np.ndarray:
    """Parse an IDX file (unsigned byte data): magic 0x0000 0x08 NDIM, big-endian dims."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise HwbnnError(f"{what}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise HwbnnError(f"{what}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise HwbnnError(f"{what}: holds {body.size} bytes, dims {dims} need {np.prod(dims)}")
    return body.reshape(dims)


def load_mnist(path: str | Path | None, name: str = "mnist") -> Dataset:
    """MNIST or Fashion-MNIST from the four IDX files (optionally gzipped) in ``path``."""
    folder = _existing(path, name)
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_open_maybe_gz(folder, f"{prefix}-images-idx3-ubyte"), prefix)
        labels = read_idx(_open_maybe_gz(folder, f"{prefix}-labels-idx1-ubyte"), prefix)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise HwbnnError(f"{name} {split}: images {images.shape} and labels "
                             f"{labels.shape} do not match")
        parts[split] = (images[..., None].copy(), labels.astype(np.int64))
    return Dataset(name, *parts["train"], *parts["test"], "uint8")


def load_cifar10(path: str | Path | None) -> Dataset:
    """CIFAR-10 python batches (data_batch_1..5, test_batch) from ``path``, as (N, 32, 32, 3)."""
    folder = _existing(path, "cifar10")

    def batch(name: str):
        file = folder / name
        if not file.is_file():
            raise HwbnnError(f"cifar10: {name} not found in {str(folder)!r}")
        try:
            with file.open("rb") as handle:
                content = pickle.load(handle, encoding="bytes")
            data = np.asarray(content[b"data"], dtype=np.uint8)
            labels = np.asarray(content[b"labels"], dtype=np.int64)
        except Exception as error:
            raise HwbnnError(f"cifar10: {name} is not a CIFAR-10 python batch ({error})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise HwbnnError(f"cifar10: {name} has data {data.shape}, labels {labels.shape}")
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = batch("test_batch")
    return Dataset("cifar10", np.concatenate([x for x, _ in train]),
                   np.concatenate([y for _, y in train]), test_x, test_y, "uint8")


DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
SYNTHETIC = "synthetic"
SYNTHETIC_FRAMES = 1000  # default frame count of the synthetic dataset


def load(name: str, path: str | Path | None = None) -> Dataset:
    """Load a dataset by name; ``path`` is the folder holding its files (not for digits)."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(path, name)
    if name == "cifar10":
        return load_cifar10(path)
    raise HwbnnError(f"dataset must be one of {', '.join(DATASETS)}, not {name!r}")


def random_frames(rng: np.random.Generator, shape: tuple, encoding: str,
                  count: int) -> np.ndarray:
    """``count`` random frames of ``shape`` covering every value of ``encoding``
    (binary: -1/+1)."""
    if encoding == "binary":
        return rng.choice(np.array([-1, 1]), size=(count, *shape))
    lo, hi = encoding_range(encoding)
    return rng.integers(lo, hi + 1, size=(count, *shape))


def binarize(pixels: np.ndarray, pixel_max: int) -> np.ndarray:
    """Pixels as binary -1/+1 inputs: +1 where ``2 * pixel >= pixel_max``.

    FINN's binary-input LFC sees MNIST this way: Brevitas' BNN-PYNQ models map a pixel
    scaled to [0, 1] through ``2x - 1`` into a binary quantizer whose sign is +1 at zero
    (``binary_sign``), so +1 from half the range up (uint8: pixel >= 128).
    """
    return np.where(2 * np.asarray(pixels, dtype=np.int64) >= pixel_max, 1, -1)


def input_quantizer(net) -> InputQuantizer | None:
    """The float-input quantizer an import recorded in ``net.metadata`` (None: the network
    takes integer frames directly)."""
    recorded = net.metadata.get("input_quantizer")
    return None if recorded is None else InputQuantizer.from_json(recorded, net.input_encoding)


def _fit_shape(frames: np.ndarray, shape: tuple, dataset: str, net) -> np.ndarray:
    """Frames in the model's input shape: as they are, or flattened for a flat-input model.

    The one place a dataset's frames change shape: a flatten is only taken when the element
    counts match and the frames have one channel, where channels-last and torch's
    channels-first flattening give the same order.
    """
    frame_shape = tuple(frames.shape[1:])
    if frame_shape == shape:
        return frames
    if len(shape) == 1 and math.prod(frame_shape) == shape[0] and frame_shape[-1] == 1:
        return frames.reshape(len(frames), -1)
    raise HwbnnError(f"dataset {dataset} has {'x'.join(map(str, frame_shape))} frames, model "
                     f"{net.name} takes {'x'.join(map(str, shape))}: use another dataset or "
                     f"--dataset {SYNTHETIC}")


def model_frames(net, dataset: str, path: str | Path | None = None, count: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """Test frames for ``net`` (a NetworkIR) in its own input shape and encoding.

    ``dataset`` is a dataset name (its test split, the first ``count`` frames; the split
    repeated when ``count`` exceeds it) or
    ``synthetic`` (``count`` seeded random frames, default :data:`SYNTHETIC_FRAMES`).
    Dataset pixels become the model's input by its recorded input quantizer (an imported
    Brevitas model's own ``2x - 1`` and quantizer, on pixels scaled to [0, 1] as torchvision
    gives them), else binarized for a binary-input model and taken as they are otherwise.
    One-channel images are flattened for a flat-input model (:func:`_fit_shape`); any other
    shape difference is an HwbnnError naming both shapes.
    """
    shape = tuple(int(extent) for extent in net.input_shape)
    if dataset not in (*DATASETS, SYNTHETIC):
        raise HwbnnError(f"dataset must be one of {', '.join((*DATASETS, SYNTHETIC))}, not "
                         f"{dataset!r}")
    if count is not None and count < 1:
        raise HwbnnError(f"frame count must be a positive integer, not {count}")
    if dataset == SYNTHETIC:
        return random_frames(np.random.default_rng(seed), shape, net.input_encoding,
                             SYNTHETIC_FRAMES if count is None else count)
    quantizer = input_quantizer(net)
    source = load(dataset, path)
    test = source.test_x
    if count is not None and count > len(test):  # a soak on real frames: the split repeated
        test = np.take(test, np.arange(count) % len(test), axis=0)
    frames = _fit_shape(test[:count], shape, dataset, net)
    if quantizer is not None:
        return quantizer.values(frames / source.pixel_max, net.input_encoding)
    if net.input_encoding == "binary":
        return binarize(frames, source.pixel_max)
    lo, hi = encoding_range(net.input_encoding)
    if net.input_encoding == "ternary" or source.pixel_max > hi:
        raise HwbnnError(f"dataset {dataset} has pixels 0..{source.pixel_max}, model "
                         f"{net.name} takes {net.input_encoding} input ({lo}..{hi}): use "
                         f"--dataset {SYNTHETIC}")
    return frames.astype(np.int64)
