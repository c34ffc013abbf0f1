"""Synthetic benchmark models: real architectures with random weights and real thresholds.

They need no training; the CPU and hardware benchmarks use them at sizes beyond digits.
``SYNTHETIC`` maps a zoo name to a function building its NetworkIR.

Architectures follow FINN's BNN-PYNQ networks (Umuroglu et al., FPGA 2017, as shipped in
Brevitas ``src/brevitas_examples/bnn_pynq``):

* LFC: 784-1024-1024-1024-10 on binarized 28x28 MNIST (``lfc_1w1a.ini``: IN_BIT_WIDTH 1);
* CNV: 32x32x3 8-bit pixels (``cnv_1w1a.ini``: IN_BIT_WIDTH 8), unpadded 3x3 convs
  64, 64, pool, 128, 128, pool, 256, 256 (``CNV_OUT_CH_POOL``), then dense 512-512-10.

And one residual BNN of the family of ``zoo:digits_resnet_w1a1`` at CIFAR-10's input size:

* RESNET8: 32x32x3 8-bit pixels, the stage widths of MLPerf Tiny's ResNet-8 for CIFAR-10
  (a 16-channel stem, stages of 16, 32 and 64 channels, the last two entered with stride 2;
  Banbury et al., "MLPerf Tiny Benchmark", 2021), each stage two Bi-Real blocks of one binary
  3x3 convolution, so 8 weight layers: 8-bit stem and head, 6 binary convolutions, two
  average-pool + 1x1 downsampling shortcuts, global average pooling.

Weights are drawn from a fixed seed. The residual model is hwbnn's own residual network
(:mod:`hwbnn.quant.resnet`) at its seeded initialization, with BatchNorm statistics measured
on a batch of random frames, exported exactly as a trained one is. The others' thresholds
are "real" in the sense export produces them: per channel, in the accumulator's integer
domain, placed the way a BatchNorm fitted to the layer's statistics places them, here at
quantiles of the accumulators that a calibration batch of random frames produces (the median
for binary outputs), so activations are balanced rather than stuck at one value.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..data import random_frames
from ..ir.encoding import encoding_levels
from ..ir.network import (
    Conv,
    MatVec,
    MaxPool,
    NetworkIR,
    Weights,
    accumulator_range,
    accumulator_width,
)

SEED = 2017
LFC = {"input_shape": (28, 28, 1), "input_encoding": "binary", "conv": [],
       "dense": [1024, 1024, 1024], "calibration_frames": 32}
CNV = {"input_shape": (32, 32, 3), "input_encoding": "uint8",
       "conv": [64, 64, "M", 128, 128, "M", 256, 256], "dense": [512, 512],
       "calibration_frames": 8}
CLASSES = 10
CONV_KERNEL = 3
POOL_KERNEL = 2
# (weights, activations) per variant. mix14 is the 1.4-bit average of the digits zoo:
# 70% 1-bit, 20% 2-bit, 10% 3-bit weights with plane scales 4, 2, 1 (hwbnn.quant.residual:
# A_0 = 4 and the ideal halving ratios for uniform weights), a bitwidth per weight;
# mix14_col the same mix with one bitwidth per input column (every row of a column alike,
# ``hwbnn train --group column``), which the packed engine can exploit.
VARIANTS = {"w1a1": ("binary", "binary"), "ternary": ("ternary", "ternary"),
            "mix14": ("mix14", "binary"), "mix14_col": ("mix14_col", "binary")}
MIX14 = (0.7, 0.2, 0.1)
MIX14_SCALES = (4, 2, 1)


# Residual weight kinds: the fraction of 1-, 2- and 3-bit weights (w2 and w3 are homogeneous
# residual weights; mix631 is the 0.6/0.3/0.1 mix of the cost issue's whole-network set).
RESIDUAL_KINDS = {"mix14": MIX14, "mix631": (0.6, 0.3, 0.1), "w2": (0.0, 1.0),
                  "w3": (0.0, 0.0, 1.0), "mix14_col": MIX14}
# Residual kinds whose bitwidth is drawn per input column rather than per weight.
COLUMN_KINDS = ("mix14_col",)
WEIGHT_KINDS = ("binary", "ternary", *RESIDUAL_KINDS)


def random_weights(rng: np.random.Generator, kind: str, rows: int, cols: int) -> Weights:
    """Random weights of one of :data:`WEIGHT_KINDS`; a residual kind hits its bitwidth mix
    exactly, over the weights or (:data:`COLUMN_KINDS`) over the columns (plane scales 4, 2,
    1 from the first plane it uses)."""
    if kind == "binary":
        return Weights.binary(rng.choice([-1, 1], size=(rows, cols)))
    if kind == "ternary":
        return Weights.ternary(rng.integers(-1, 2, size=(rows, cols)))
    fractions = RESIDUAL_KINDS[kind]
    total = cols if kind in COLUMN_KINDS else rows * cols
    counts = [int(f * total) for f in fractions]
    if kind in COLUMN_KINDS:  # few columns (a first conv has 27): largest remainders
        short = total - sum(counts)
        for b in np.argsort([int(f * total) - f * total for f in fractions])[:short]:
            counts[b] += 1
    counts[int(np.argmax(fractions))] += total - sum(counts)
    bitwidth = rng.permutation(np.repeat(np.arange(1, len(counts) + 1), counts))
    planes = len(fractions)
    signs = rng.choice([-1, 1], size=(planes, rows, cols))
    return Weights.residual(signs, np.broadcast_to(bitwidth, (rows, cols)).copy()
                            if kind in COLUMN_KINDS else bitwidth.reshape(rows, cols),
                            MIX14_SCALES[len(MIX14_SCALES) - planes:])


def fitted_thresholds(acc: np.ndarray, encoding: str) -> np.ndarray:
    """Per-channel thresholds at evenly spaced quantiles of ``acc (..., rows)``, sorted."""
    levels = encoding_levels(encoding)
    quantiles = np.arange(1, levels + 1) / (levels + 1)
    acc = acc.reshape(-1, acc.shape[-1])
    return np.quantile(acc, quantiles, axis=0, method="lower").T.astype(np.int64)


def _patches(x: np.ndarray, kernel: int) -> np.ndarray:
    """Unpadded patches (N, OH, OW, K*K*C) in (kernel row, kernel column, channel) order."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))
    n, oh, ow, c = windows.shape[:4]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, kernel * kernel * c)


def _threshold(acc: np.ndarray, thresholds: np.ndarray, encoding: str) -> np.ndarray:
    count = (acc[..., None] >= thresholds).sum(axis=-1)
    if encoding == "binary":
        return 2 * count - 1
    if encoding == "ternary":
        return count - 1
    return count


def _layer(cls, name, in_encoding, weights, acc, out_encoding, **geometry):
    """A weight layer with thresholds fitted to its calibration accumulators."""
    acc_range = accumulator_range(weights.values(), in_encoding)
    thresholds = None if out_encoding is None else fitted_thresholds(acc, out_encoding)
    layer = cls(name, in_encoding, weights, thresholds, out_encoding, acc_range,
                accumulator_width(acc_range, thresholds), **geometry)
    out = acc if thresholds is None else _threshold(acc, thresholds, out_encoding)
    return layer, out


def _exact_product(x: np.ndarray, weights: Weights) -> np.ndarray:
    """Integer ``x @ W.T`` through float64 BLAS: exact, every partial sum is far below 2^53."""
    return np.rint(x.astype(np.float64) @ weights.values().T.astype(np.float64)).astype(np.int64)


def build(name: str, arch: dict, weight_kind: str, activation: str,
          seed: int = SEED) -> NetworkIR:
    """Build an architecture spec with random weights and calibrated thresholds."""
    rng = np.random.default_rng(seed)
    shape, encoding = tuple(arch["input_shape"]), arch["input_encoding"]
    x = random_frames(rng, shape, encoding, arch["calibration_frames"])
    layers = []
    for item in arch["conv"]:
        index = len(layers)
        if item == "M":
            layers.append(MaxPool(f"pool{index}", shape, POOL_KERNEL, encoding))
            n, h, w, c = x.shape
            x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        else:
            weights = random_weights(rng, weight_kind, item, CONV_KERNEL ** 2 * shape[2])
            acc = _exact_product(_patches(x, CONV_KERNEL), weights)
            layer, x = _layer(Conv, f"conv{index}", encoding, weights, acc, activation,
                              in_shape=shape, kernel=CONV_KERNEL, padding=0)
            layers.append(layer)
            encoding = activation
        shape = tuple(layers[-1].out_shape)
    x = x.reshape(len(x), -1)
    widths = [*arch["dense"], arch.get("classes", CLASSES)]
    for i, rows in enumerate(widths):
        last = i == len(widths) - 1
        weights = random_weights(rng, weight_kind, rows, x.shape[1])
        layer, x = _layer(MatVec, f"dense{len(layers)}", encoding, weights,
                          _exact_product(x, weights), None if last else activation)
        layers.append(layer)
        encoding = activation
    metadata = {"synthetic": {"architecture": arch, "weights": weight_kind,
                              "activations": activation, "seed": seed}}
    return NetworkIR(name, tuple(arch["input_shape"]), arch["input_encoding"], layers,
                     metadata)


RESNET8 = {"arch": "resnet", "input_shape": [32, 32, 3], "input_encoding": "uint8",
           "stem": 16, "blocks": [[16, 1], [16, 1], [32, 2], [32, 1], [64, 2], [64, 1]],
           "num_classes": CLASSES, "weights": "binary", "activations": "binary"}
RESNET_CALIBRATION_FRAMES = 64


def build_resnet(name: str, config: dict, seed: int = SEED) -> NetworkIR:
    """A residual network at its seeded initialization, BatchNorm statistics measured on
    random frames (so every sign and path level is in use), exported exactly."""
    import torch

    from ..ir.export import export
    from ..quant.models import QuantNet
    from ..quant.quantizers import one_thread

    with one_thread(), torch.no_grad():
        torch.manual_seed(seed)
        model = QuantNet(config)
        frames = random_frames(np.random.default_rng(seed), tuple(config["input_shape"]),
                               config["input_encoding"], RESNET_CALIBRATION_FRAMES)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # a cumulative average: one batch gives its statistics
        model.train()(model.prepare_input(frames))
        metadata = {"synthetic": {"architecture": config, "seed": seed,
                                  "calibration_frames": RESNET_CALIBRATION_FRAMES}}
        return export(model.eval(), name, metadata)


SYNTHETIC: dict[str, Callable[[], NetworkIR]] = {
    **{f"{arch_name}_{variant}": partial(build, f"{arch_name}_{variant}", arch, *kinds)
       for arch_name, arch in (("lfc", LFC), ("cnv", CNV))
       for variant, kinds in VARIANTS.items()},
    "resnet8_w1a1": partial(build_resnet, "resnet8_w1a1", RESNET8),
}
