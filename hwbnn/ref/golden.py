"""Golden integer model: plain numpy on int64, written to be obviously correct.

Every other executor (integer-mode torch, the packed CPU engine, the hardware) is checked
against this one, bit for bit, on the per-layer trace it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_range, pad_value, values_from_threshold_count
from ..ir.network import (
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
)


@dataclass
class LayerTrace:
    """What one layer computed: accumulators (matvec/conv: the dot products, add: the scaled
    sum; None for pools and threshold layers) and its output values."""

    name: str
    acc: np.ndarray | None
    out: np.ndarray


def check_input(net: NetworkIR, images: np.ndarray) -> np.ndarray:
    """Validate a batch of input frames against the network's input shape and encoding."""
    images = np.asarray(images)
    if images.shape[1:] != tuple(net.input_shape):
        raise HwbnnError(f"input frames have shape {images.shape[1:]}, the network expects "
                         f"{tuple(net.input_shape)}")
    lo, hi = encoding_range(net.input_encoding)
    if images.size and (images.min() < lo or images.max() > hi):
        raise HwbnnError(f"input values must lie in {lo}..{hi} ({net.input_encoding}), found "
                         f"{int(images.min())}..{int(images.max())}")
    if net.input_encoding == "binary" and (images == 0).any():
        raise HwbnnError("binary input values must be -1 or +1, found 0")
    return images.astype(np.int64)


def threshold(acc: np.ndarray, thresholds: np.ndarray, encoding: str) -> np.ndarray:
    """Activation = number of thresholds t with ``acc >= t``, mapped to the encoding's values."""
    count = (acc[..., None] >= thresholds).sum(axis=-1)
    return values_from_threshold_count(encoding, count)


def im2col(x: np.ndarray, kernel: int, padding: int, fill: int, stride: int = 1) -> np.ndarray:
    """Patches of a channels-last batch ``(N, H, W, C)`` -> ``(N, OH, OW, K*K*C)``.

    Patch order is (kernel row, kernel column, channel), the order of the weight columns;
    output pixel (y, x) is the window at (y * stride, x * stride) of the padded input.
    """
    n, h, w, c = x.shape
    padded = np.full((n, h + 2 * padding, w + 2 * padding, c), fill, dtype=x.dtype)
    padded[:, padding:padding + h, padding:padding + w] = x
    oh = (h + 2 * padding - kernel) // stride + 1
    ow = (w + 2 * padding - kernel) // stride + 1
    patches = [padded[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride]
               for ky in range(kernel) for kx in range(kernel)]
    return np.concatenate(patches, axis=-1)


def maxpool(x: np.ndarray, kernel: int) -> np.ndarray:
    """KxK max pooling with stride K on ``(N, H, W, C)``; -1/+1 values make this an OR."""
    n, h, w, c = x.shape
    oh, ow = h // kernel, w // kernel
    x = x[:, :oh * kernel, :ow * kernel].reshape(n, oh, kernel, ow, kernel, c)
    return x.max(axis=(2, 4))


def avgpool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """KxK window sums at steps of ``stride`` on ``(N, H, W, C)`` (no padding)."""
    n, h, w, c = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    out = np.zeros((n, oh, ow, c), dtype=np.int64)
    for ky in range(kernel):
        for kx in range(kernel):
            out += x[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride]
    return out


def add(layer: Add, a: np.ndarray, b: np.ndarray) -> LayerTrace:
    """Scaled sum of two tensors, then thresholds per channel or a clip to the encoding."""
    acc = layer.scales[0] * a + layer.scales[1] * b
    if layer.thresholds is not None:
        return LayerTrace(layer.name, acc, threshold(acc, layer.thresholds, layer.out_encoding))
    return LayerTrace(layer.name, acc, np.clip(acc, *encoding_range(layer.out_encoding)))


def run_layer(layer, *inputs: np.ndarray) -> LayerTrace:
    """Run one layer on a batch of integer activations (two for an add, in its input order)."""
    if isinstance(layer, Add):
        return add(layer, *inputs)
    (x,) = inputs
    if isinstance(layer, MaxPool):
        return LayerTrace(layer.name, None, maxpool(x, layer.kernel))
    if isinstance(layer, AvgPool):
        return LayerTrace(layer.name, None, avgpool(x, layer.kernel, layer.stride))
    if isinstance(layer, GlobalAvgPool):
        return LayerTrace(layer.name, None, x.sum(axis=(1, 2), keepdims=True))
    if isinstance(layer, Threshold):
        return LayerTrace(layer.name, None, threshold(x, layer.thresholds, layer.out_encoding))
    weights = layer.weights.values()
    if isinstance(layer, Conv):
        patches = im2col(x, layer.kernel, layer.padding, pad_value(layer.in_encoding),
                         layer.stride)
        acc = patches @ weights.T
    elif isinstance(layer, MatVec):
        acc = x.reshape(len(x), -1) @ weights.T
    else:
        raise HwbnnError(f"golden model cannot run layer type {type(layer).__name__}")
    if layer.produces_scores:
        return LayerTrace(layer.name, acc, acc)
    return LayerTrace(layer.name, acc, threshold(acc, layer.thresholds, layer.out_encoding))


def run(net: NetworkIR, images: np.ndarray) -> list[LayerTrace]:
    """Run a batch ``(N, *input_shape)``; return the trace of every layer in stored order,
    last = scores. A layer reads the outputs of the layers its ``inputs`` name."""
    outputs = {-1: check_input(net, images)}
    trace = []
    for index, (layer, sources) in enumerate(zip(net.layers, net.sources(), strict=True)):
        step = run_layer(layer, *(outputs[source] for source in sources))
        trace.append(step)
        outputs[index] = step.out
    return trace


# Frames per call of :func:`run` inside :func:`scores`: the int64 im2col of a 28x28 CNN's
# second convolution alone takes 4.5 GB for 10,000 frames; frames are independent, so chunks
# give the same scores in bounded memory.
SCORE_CHUNK = 1000


def scores(net: NetworkIR, images: np.ndarray) -> np.ndarray:
    """Integer class scores ``(N, classes)`` (computed :data:`SCORE_CHUNK` frames at a time)."""
    images = np.asarray(images)
    if len(images) <= SCORE_CHUNK:
        return run(net, images)[-1].out
    return np.concatenate([run(net, images[start:start + SCORE_CHUNK])[-1].out
                           for start in range(0, len(images), SCORE_CHUNK)])


def predict(net: NetworkIR, images: np.ndarray) -> np.ndarray:
    """Class labels: argmax of the scores, ties to the lowest index."""
    return np.argmax(scores(net, images), axis=1)
