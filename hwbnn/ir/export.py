"""Export a trained :class:`~hwbnn.quant.models.QuantNet` to an integer NetworkIR.

BatchNorm (and the weight scale before it) folds into integer thresholds in the
accumulator domain: the activation counts the levels tau with ``g*acc + h >= tau``. For
``g > 0`` that is ``acc >= ceil((tau - h) / g)``; for ``g < 0`` the channel's weights are
negated (FINN's way) so the comparison is again ``>=``. Thresholds are clamped into
[acc_min, acc_max + 1], which changes no output and keeps the accumulator narrow.

:func:`integer_trace` is the integer-mode torch forward: the same network evaluated with
torch ops in torch's own layout, used to prove export == golden on every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HwbnnError
from ..quant.layers import QuantConv2d, QuantLinear
from ..quant.models import QuantNet
from ..quant.quantizers import QuantizedWeight, activation_levels
from .encoding import pad_value, values_from_threshold_count
from .network import (
    Conv,
    MatVec,
    MaxPool,
    NetworkIR,
    Weights,
    accumulator_range,
    accumulator_width,
)


@dataclass
class _Stage:
    """One IR layer as found in the torch body."""

    module: nn.Module
    name: str
    bn: nn.Module | None = None
    out_encoding: str | None = None
    flattened_chw: tuple[int, int, int] | None = None  # torch CHW shape flattened into it


def _stages(model: QuantNet) -> list[_Stage]:
    """Group the torch body into IR layers; raise HwbnnError on anything unsupported."""
    stages: list[_Stage] = []
    weight_stages: list[_Stage] = []
    shape = list(model.config["input_shape"])  # H, W, C as seen by the next module
    flatten_next = False
    for index, module in enumerate(model.body):
        if isinstance(module, QuantLinear | QuantConv2d):
            kind = "conv" if isinstance(module, QuantConv2d) else "dense"
            stage = _Stage(module, f"{kind}{len(weight_stages)}")
            if flatten_next:
                stage.flattened_chw = (shape[2], shape[0], shape[1])
                flatten_next = False
            if isinstance(module, QuantConv2d):
                shape = [shape[0] + 2 * module.pad - module.kernel_size[0] + 1,
                         shape[1] + 2 * module.pad - module.kernel_size[0] + 1,
                         module.out_channels]
            if weight_stages:
                weight_stages[-1].out_encoding = module.input_encoding
            stages.append(stage)
            weight_stages.append(stage)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            if not stages or stages[-1] is not weight_stages[-1] or stages[-1].bn is not None:
                raise HwbnnError(f"body[{index}]: BatchNorm must directly follow a quantized "
                                 "layer")
            stages[-1].bn = module
        elif isinstance(module, nn.MaxPool2d):
            kernel = module.kernel_size
            if module.stride not in (kernel, None) or module.padding not in (0, (0, 0)):
                raise HwbnnError(f"body[{index}]: only KxK max pooling with stride K exported")
            stages.append(_Stage(module, f"pool{len(stages)}"))
            shape = [shape[0] // kernel, shape[1] // kernel, shape[2]]
        elif isinstance(module, nn.Flatten):
            flatten_next = True
        else:
            raise HwbnnError(f"body[{index}]: layer {type(module).__name__} is not supported "
                             "by export")
    float_layers = [s.name for s in weight_stages if s.module.weight_quantizer.kind == "float"]
    if float_layers:
        raise HwbnnError(f"float layers cannot be exported to integers: {', '.join(float_layers)}")
    if not weight_stages or weight_stages[-1] is not stages[-1] or stages[-1].bn is not None:
        raise HwbnnError("the network must end with a quantized layer without BatchNorm")
    return stages


def _ir_columns(array: np.ndarray, chw: tuple[int, int, int] | None) -> np.ndarray:
    """Reorder the last axis from torch's CHW flattening to the IR's HWC order."""
    if chw is None:
        return array
    c, h, w = chw
    lead = array.shape[:-1]
    return array.reshape(*lead, c, h, w).swapaxes(-3, -2).swapaxes(-2, -1).reshape(*lead, -1)


def _fold(stage: _Stage, q: QuantizedWeight, values: np.ndarray, in_encoding: str):
    """Flip signs and integer thresholds for one weight stage (None thresholds: scores)."""
    rows = values.shape[0]
    if stage.out_encoding is None:
        return np.ones(rows, dtype=np.int64), None
    scale = float(q.scale)
    if stage.bn is None:
        g, h = np.full(rows, scale), np.zeros(rows)
    else:
        bn = stage.bn
        sigma = np.sqrt(bn.running_var.double().numpy() + bn.eps)
        gamma = bn.weight.detach().double().numpy()
        g = gamma * scale / sigma
        h = bn.bias.detach().double().numpy() - gamma * bn.running_mean.double().numpy() / sigma
    flip = np.where(g < 0, -1, 1).astype(np.int64)
    lo, hi = accumulator_range(values * flip[:, None], in_encoding)
    levels = np.asarray(activation_levels(stage.out_encoding))
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.ceil((levels[None, :] - h[:, None]) / np.abs(g)[:, None])
    constant = np.where(h[:, None] >= levels[None, :], lo, hi + 1)  # g == 0: y = h always
    raw = np.where(g[:, None] == 0, constant, raw)
    return flip, np.clip(raw, lo, hi + 1).astype(np.int64)


def _weights(q: QuantizedWeight, flip: np.ndarray, chw) -> Weights:
    """IR weights (rows negated where ``flip`` is -1, columns in HWC order)."""
    if q.kind == "residual":
        signs = _ir_columns(q.signs.numpy().astype(np.int64), chw) * flip[None, :, None]
        bitwidth = _ir_columns(q.bitwidth.numpy(), chw)
        return Weights.residual(signs, bitwidth, q.plane_scales)
    values = _ir_columns(q.values.numpy().astype(np.int64), chw) * flip[:, None]
    return Weights.binary(values) if q.kind == "binary" else Weights.ternary(values)


def export(model: QuantNet, name: str | None = None, metadata: dict | None = None) -> NetworkIR:
    """Fold a trained hwbnn model into a validated integer NetworkIR (``name`` defaults to
    the model's architecture). Other torch modules go through :func:`hwbnn.convert`."""
    if not isinstance(model, QuantNet):
        raise HwbnnError(f"export takes a hwbnn QuantNet, not {type(model).__name__}: convert "
                         f"a plain torch module with hwbnn.convert(module, example_input)")
    name = name if name is not None else model.config["arch"]
    model = model.eval()
    cfg = model.config
    layers = []
    shape = tuple(cfg["input_shape"])
    encoding = cfg["input_encoding"]
    for stage in _stages(model):
        module = stage.module
        if isinstance(module, nn.MaxPool2d):
            layer = MaxPool(stage.name, shape, module.kernel_size, encoding)
        else:
            q = module.integer_weights()
            values = q.values.numpy().astype(np.int64)
            flip, thresholds = _fold(stage, q, values, encoding)
            weights = _weights(q, flip, stage.flattened_chw)
            acc_range = accumulator_range(weights.values(), encoding)
            common = dict(name=stage.name, in_encoding=encoding, weights=weights,
                          thresholds=thresholds, out_encoding=stage.out_encoding,
                          acc_range=acc_range,
                          acc_width=accumulator_width(acc_range, thresholds))
            if isinstance(module, QuantConv2d):
                layer = Conv(**common, in_shape=shape, kernel=module.kernel_size[0],
                             padding=module.pad)
            else:
                layer = MatVec(**common)
        layers.append(layer)
        shape, encoding = tuple(layer.out_shape), layer.out_encoding
    net = NetworkIR(name, tuple(cfg["input_shape"]), cfg["input_encoding"], layers,
                    {"config": cfg, **(metadata or {})})
    return net.validate()


@dataclass
class TorchTrace:
    """One layer of the integer-mode torch forward, converted to the IR's layout."""

    name: str
    acc: np.ndarray | None
    out: np.ndarray


def _to_ir_layout(x: torch.Tensor) -> np.ndarray:
    array = x.numpy().astype(np.int64)
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


@torch.no_grad()
def integer_trace(model: QuantNet, images: np.ndarray) -> list[TorchTrace]:
    """Integer-mode torch forward (float64 holds every integer exactly), traced per layer.

    Computed in torch's layout with torch ops, independently of the IR's column reordering;
    accumulators of flipped channels are negated to match the IR's convention.
    """
    model = model.eval()
    x = model.prepare_input(images).double()
    trace = []
    encoding = model.config["input_encoding"]
    for stage in _stages(model):
        module = stage.module
        if isinstance(module, nn.MaxPool2d):
            x = F.max_pool2d(x, module.kernel_size)
            trace.append(TorchTrace(stage.name, None, _to_ir_layout(x)))
            continue
        if stage.flattened_chw is not None:
            x = x.flatten(1)
        q = module.integer_weights()
        w = q.values.double()
        if isinstance(module, QuantConv2d):
            k = module.kernel_size[0]
            w = w.reshape(module.out_channels, k, k, module.in_channels).permute(0, 3, 1, 2)
            x = F.pad(x, [module.pad] * 4, value=float(pad_value(encoding)))
            acc = F.conv2d(x, w)
        else:
            acc = F.linear(x, w)
        flip, thresholds = _fold(stage, q, q.values.numpy().astype(np.int64), encoding)
        view = (1, -1, 1, 1) if acc.ndim == 4 else (1, -1)
        acc = acc * torch.as_tensor(flip, dtype=acc.dtype).view(view)
        if thresholds is None:
            x = acc
        else:
            t = torch.as_tensor(thresholds, dtype=acc.dtype)
            t = t.view(1, *t.shape, 1, 1) if acc.ndim == 4 else t.view(1, *t.shape)
            count = (acc.unsqueeze(2) >= t).sum(2).to(acc.dtype)
            x = values_from_threshold_count(stage.out_encoding, count)
            encoding = stage.out_encoding
        trace.append(TorchTrace(stage.name, _to_ir_layout(acc), _to_ir_layout(x)))
    return trace


def three_way_mismatch(model: QuantNet, net: NetworkIR, images: np.ndarray,
                       chunk: int = 1000) -> str | None:
    """Integer-mode torch, the golden model and the packed engine on every layer of ``images``
    (in chunks of ``chunk`` frames, so a CNN's traces of a whole test split fit in memory):
    None when all three agree exactly, else the first disagreement in words."""
    from ..ref import golden, packed
    from ..ref.compare import first_mismatch

    compiled = packed.PackedNetwork(net)
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk]
        expected = golden.run(net, batch)
        for engine, trace in (("integer torch", integer_trace(model, batch)),
                              ("packed", packed.run(compiled, batch))):
            mismatch = first_mismatch(expected, trace)
            if mismatch is not None:
                return f"{engine} differs from golden at frame offset {start}: {mismatch}"
    return None
