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
from ..quant.quantizers import QuantizedWeight, activation_levels, one_thread
from ..quant.resnet import POOL
from .encoding import encoding_range, pad_value, values_from_threshold_count
from .network import (
    INPUT,
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
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


def _fold(stage: _Stage, q: QuantizedWeight, values: np.ndarray, in_encoding: str,
          input_scale: float = 1.0, step: float = 1.0):
    """Flip signs and integer thresholds for one weight stage (None thresholds: scores).

    ``input_scale`` is the real value of one integer input unit (an average pool's sums of
    path values: ``path_step / (K*K)``, the pool's division folded in here); ``step`` is the
    grid of a signed path output (its levels are ``step * (k - 0.5)``).
    """
    rows = values.shape[0]
    if stage.out_encoding is None:
        return np.ones(rows, dtype=np.int64), None
    scale = float(q.scale) * input_scale
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
    levels = np.asarray(activation_levels(stage.out_encoding)) * step
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.ceil((levels[None, :] - h[:, None]) / np.abs(g)[:, None])
    constant = np.where(h[:, None] >= levels[None, :], lo, hi + 1)  # g == 0: y = h always
    raw = np.where(g[:, None] == 0, constant, raw)
    return flip, np.clip(raw, lo, hi + 1).astype(np.int64)


def _weights(q: QuantizedWeight, flip: np.ndarray, chw) -> Weights:
    """IR weights (rows negated where ``flip`` is -1, columns in HWC order)."""
    if q.kind == "integer":  # symmetric values: a negated row stays in range
        return Weights.integer(_ir_columns(q.values.numpy().astype(np.int64), chw)
                               * flip[:, None], q.bits)
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
    with one_thread():  # the weight scales' rounding, as in training
        return _export(model.eval(), name if name is not None else model.config["arch"],
                       metadata)


def _export(model: QuantNet, name: str, metadata: dict | None) -> NetworkIR:
    cfg = model.config
    if cfg["arch"] == "resnet":
        layers = [step.layer for step in _resnet_plan(model)]
        net = NetworkIR(name, tuple(cfg["input_shape"]), cfg["input_encoding"], layers,
                        {"config": cfg, **(metadata or {})})
        return net.validate()
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
    if model.config["arch"] == "resnet":
        return _resnet_trace(_resnet_plan(model), x)
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


# --- Residual networks (arch "resnet", hwbnn.quant.resnet) ---------------------------------
#
# Every tensor between blocks is the path: integers v on the grid ``path_step`` (torch holds
# step * v). So both operands of an add are on one grid and its scales are (1, 1); the add
# clips to the path encoding (what torch's clip does), without thresholds. Each BatchNorm sits
# on a branch before the add and folds into its convolution's thresholds, levels
# ``step * (k - 0.5)``; a negative scale negates that convolution's weights (FINN's way), which
# is exact here because the convolution's *output* is the quantized BatchNorm value itself,
# not a sign that the add would need flipped. The shortcut's 2x2 average pool keeps sums and
# its 1/4 goes into the 1x1 convolution's thresholds (``input_scale = step / 4``); the global
# pool keeps sums and its 1/(H*W), with the path step and the weight scale, is a positive
# factor on the scores that changes no argmax, so it is dropped as the score temperature is.


@dataclass
class _ResStep:
    """One IR layer of a residual network with what integer-mode torch needs to run it."""

    layer: object
    module: nn.Module | None = None
    flip: np.ndarray | None = None
    q: QuantizedWeight | None = None


def _resnet_weight_step(module, bn, name: str, inputs: tuple, in_shape: tuple,
                        in_encoding: str, out_encoding: str | None, input_scale: float,
                        step: float) -> _ResStep:
    q = module.integer_weights()
    values = q.values.numpy().astype(np.int64)
    flip, thresholds = _fold(_Stage(module, name, bn, out_encoding), q, values, in_encoding,
                             input_scale, step)
    weights = _weights(q, flip, None)
    acc_range = accumulator_range(weights.values(), in_encoding)
    common = dict(name=name, in_encoding=in_encoding, weights=weights, thresholds=thresholds,
                  out_encoding=out_encoding, acc_range=acc_range,
                  acc_width=accumulator_width(acc_range, thresholds), inputs=inputs)
    if isinstance(module, QuantConv2d):
        layer = Conv(**common, in_shape=in_shape, kernel=module.kernel_size[0],
                     padding=module.pad, stride=module.stride[0])
    else:
        layer = MatVec(**common)
    return _ResStep(layer, module, flip, q)


def _sign_thresholds(block, activations: str, path: str, step: float) -> np.ndarray:
    """The sign before a block's conv, ``(step * v - shift) >= tau``, as integer thresholds on
    the path values v: ``v >= ceil((tau + shift) / step)`` (exact: step is a power of two),
    clamped into the path's range (which changes no output)."""
    shift = block.shift.detach().double().numpy()
    levels = np.asarray(activation_levels(activations))
    lo, hi = encoding_range(path)
    return np.clip(np.ceil((levels[None, :] + shift[:, None]) / step), lo, hi + 1).astype(
        np.int64)


def _resnet_plan(model: QuantNet) -> list[_ResStep]:
    """The IR layers of a residual network in topological order (see the notes above)."""
    cfg, body = model.config, model.body
    path, step, activations = cfg["path"], cfg["path_step"], cfg["activations"]
    stem = _resnet_weight_step(body.stem, body.stem_bn, "stem", (INPUT,),
                               tuple(cfg["input_shape"]), cfg["input_encoding"], path, 1.0, step)
    steps = [stem]
    source = stem.layer
    for index, block in enumerate(body.blocks):
        prefix = f"block{index}"
        sign = Threshold(f"{prefix}_sign", source.out_shape, path,
                         _sign_thresholds(block, activations, path, step), activations,
                         inputs=(source.name,))
        conv = _resnet_weight_step(block.conv, block.bn, f"{prefix}_conv", (sign.name,),
                                   sign.out_shape, activations, path, 1.0, step)
        steps += [_ResStep(sign, block), conv]
        short = source
        if block.downsample:
            scale = step
            if block.stride == 2:
                pool = AvgPool(f"{prefix}_pool", source.out_shape, POOL, POOL, path,
                               inputs=(source.name,))
                steps.append(_ResStep(pool))
                short, scale = pool, step / pool.window
            short_step = _resnet_weight_step(block.short, block.short_bn, f"{prefix}_short",
                                             (short.name,), short.out_shape, short.out_encoding,
                                             path, scale, step)
            steps.append(short_step)
            short = short_step.layer
        add = Add(f"{prefix}_add", (conv.layer.name, short.name), conv.layer.out_shape,
                  (path, path), (1, 1), None, path)
        steps.append(_ResStep(add))
        source = add
    gap = GlobalAvgPool("gap", source.out_shape, path, inputs=(source.name,))
    steps.append(_ResStep(gap))
    steps.append(_resnet_weight_step(body.fc, None, "fc", (gap.name,), (gap.out_shape[-1],),
                                     gap.out_encoding, None, 1.0, step))
    return steps


def _count(x: torch.Tensor, thresholds: np.ndarray, encoding: str) -> torch.Tensor:
    """Per-channel threshold counts on NCHW (or NC) ``x``, mapped to ``encoding``'s values."""
    t = torch.as_tensor(thresholds, dtype=x.dtype)
    t = t.view(1, *t.shape, 1, 1) if x.ndim == 4 else t.view(1, *t.shape)
    return values_from_threshold_count(encoding, (x.unsqueeze(2) >= t).sum(2).to(x.dtype))


def _resnet_trace(steps: list[_ResStep], x: torch.Tensor) -> list[TorchTrace]:
    """Integer-mode torch forward of a residual network, NCHW, one entry per IR layer."""
    outputs = {INPUT: x}
    trace = []
    for step in steps:
        layer = step.layer
        inputs = [outputs[name] for name in layer.inputs]
        acc = None
        if isinstance(layer, Threshold):
            out = _count(inputs[0], layer.thresholds, layer.out_encoding)
        elif isinstance(layer, AvgPool):
            out = F.avg_pool2d(inputs[0], layer.kernel, layer.stride, divisor_override=1)
        elif isinstance(layer, GlobalAvgPool):
            out = inputs[0].sum(dim=(2, 3), keepdim=True)
        elif isinstance(layer, Add):
            acc = layer.scales[0] * inputs[0] + layer.scales[1] * inputs[1]
            out = acc.clamp(*encoding_range(layer.out_encoding))
        else:
            w = step.q.values.double()
            module = step.module
            view = (1, -1, 1, 1)
            if isinstance(layer, Conv):
                k = module.kernel_size[0]
                w = w.reshape(module.out_channels, k, k, module.in_channels).permute(0, 3, 1, 2)
                padded = F.pad(inputs[0], [layer.padding] * 4,
                               value=float(pad_value(layer.in_encoding)))
                acc = F.conv2d(padded, w, stride=layer.stride)
            else:
                acc, view = F.linear(inputs[0].flatten(1), w), (1, -1)
            acc = acc * torch.as_tensor(step.flip, dtype=acc.dtype).view(view)
            out = acc if layer.thresholds is None else _count(acc, layer.thresholds,
                                                             layer.out_encoding)
        outputs[layer.name] = out
        trace.append(TorchTrace(layer.name, None if acc is None else _to_ir_layout(acc),
                                _to_ir_layout(out)))
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
