"""The float32 torch baseline: a model of the same architecture as a NetworkIR.

Shapes come from the IR; weights are random (the time of a float32 forward pass does not
depend on their values). Each thresholded layer becomes the float layers a trained model
would run in its place (Linear/Conv2d, BatchNorm, ReLU; with BatchNorm folded into a bias for
onnxruntime, :func:`onnxruntime_session`), max pooling stays max pooling; in a
graph, an add is a float add, a standalone threshold a BatchNorm and ReLU, average pooling
``AvgPool2d`` and global average pooling a mean over the pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..ir.network import (
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MaxPool,
    NetworkIR,
    Threshold,
)


class _Mean(nn.Module):
    """Global average pooling to (N, C, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


def _float_layer(layer, fused: bool) -> nn.Module | None:
    """The float module of one layer (None: an add, which sums its two inputs); a layer that
    produces scores (the last) has no BatchNorm and ReLU. ``fused``: BatchNorm folded into the
    weight layer's bias, as an inference runtime runs it."""
    if isinstance(layer, MaxPool):
        return nn.MaxPool2d(layer.kernel)
    if isinstance(layer, AvgPool):
        return nn.AvgPool2d(layer.kernel, layer.stride)
    if isinstance(layer, GlobalAvgPool):
        return _Mean()
    if isinstance(layer, Add):
        return None
    if isinstance(layer, Threshold):
        if fused:
            return nn.ReLU()
        return nn.Sequential(nn.BatchNorm2d(layer.channels) if len(layer.out_shape) == 3
                             else nn.BatchNorm1d(layer.channels), nn.ReLU())
    if isinstance(layer, Conv):
        modules = [nn.Conv2d(layer.in_shape[2], layer.mh, layer.kernel, stride=layer.stride,
                             padding=layer.padding, bias=fused)]
        norm = nn.BatchNorm2d(layer.mh)
    else:
        modules = [nn.Flatten(), nn.Linear(layer.mw, layer.mh, bias=fused)]
        norm = nn.BatchNorm1d(layer.mh)
    if layer.out_encoding is None:
        return nn.Sequential(*modules)
    return nn.Sequential(*modules, *(() if fused else (norm,)), nn.ReLU())


class FloatGraph(nn.Module):
    """The layers of a NetworkIR as float modules, run in the IR's (topological) order."""

    def __init__(self, net: NetworkIR, fused: bool = False):
        super().__init__()
        self.sources = net.sources()
        self.steps = nn.ModuleList(_float_layer(layer, fused) or nn.Identity()
                                   for layer in net.layers)
        self.adds = [isinstance(layer, Add) for layer in net.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for step, sources, add in zip(self.steps, self.sources, self.adds, strict=True):
            inputs = [x if source < 0 else outputs[source] for source in sources]
            outputs.append(inputs[0] + inputs[1] if add else step(inputs[0]))
        return outputs[-1]


def float_model(net: NetworkIR, seed: int = 0, fused: bool = False) -> nn.Module:
    """A float32 module in eval mode with the layer shapes of ``net`` (chain or graph);
    ``fused``: BatchNorm folded into biases."""
    torch.manual_seed(seed)
    return FloatGraph(net, fused).eval()


def onnxruntime_session(net: NetworkIR, threads: int):
    """``run(tensor) -> scores``: the fused float32 model exported to ONNX and run by
    onnxruntime on ``threads`` threads, every graph optimization on (the float engine a user
    deploys; onnxruntime is in the 'qonnx' extra)."""
    import io
    import warnings

    try:
        import onnxruntime
    except ImportError:
        from ..errors import HwbnnError

        raise HwbnnError("the onnxruntime baseline needs the 'qonnx' extra (pip install "
                         "'hwbnn[qonnx]')") from None
    model = float_model(net, fused=True)
    example = float_input(net, np.zeros((1, *net.input_shape), dtype=np.int64))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["x"],
                          output_names=["scores"], dynamic_axes={"x": {0: "n"}})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                           providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": x})[0]

    return run


def float_input(net: NetworkIR, images: np.ndarray) -> torch.Tensor:
    """Frames ``(N, *input_shape)`` as the float32 tensor the baseline takes (NCHW if 3-D)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if x.dim() == 4:
        x = x.permute(0, 3, 1, 2).contiguous()
    return x
