"""The float32 torch baseline: a model of the same architecture as a NetworkIR.

Shapes come from the IR; weights are random (the time of a float32 forward pass does not
depend on their values). Each thresholded layer becomes the float layers a trained model
would run in its place (Linear/Conv2d, BatchNorm, ReLU), max pooling stays max pooling.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..ir.network import Conv, MatVec, MaxPool, NetworkIR


def float_model(net: NetworkIR, seed: int = 0) -> nn.Module:
    """A float32 ``nn.Sequential`` in eval mode with the layer shapes of ``net``."""
    net.require_chain("the float baseline")
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    spatial = len(net.input_shape) == 3
    for index, layer in enumerate(net.layers):
        last = index == len(net.layers) - 1
        if isinstance(layer, MaxPool):
            modules.append(nn.MaxPool2d(layer.kernel))
            continue
        if isinstance(layer, Conv):
            modules.append(nn.Conv2d(layer.in_shape[2], layer.mh, layer.kernel,
                                     padding=layer.padding, bias=False))
            norm = nn.BatchNorm2d(layer.mh)
        elif isinstance(layer, MatVec):
            if spatial:
                modules.append(nn.Flatten())
                spatial = False
            modules.append(nn.Linear(layer.mw, layer.mh, bias=False))
            norm = nn.BatchNorm1d(layer.mh)
        if not last:
            modules += [norm, nn.ReLU()]
    return nn.Sequential(*modules).eval()


def float_input(net: NetworkIR, images: np.ndarray) -> torch.Tensor:
    """Frames ``(N, *input_shape)`` as the float32 tensor the baseline takes (NCHW if 3-D)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if x.dim() == 4:
        x = x.permute(0, 3, 1, 2).contiguous()
    return x
