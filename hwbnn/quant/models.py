"""Model builders: a quantized MLP, CNN and residual network described by a small JSON-able
config.

Config keys: ``arch`` (mlp | cnn | resnet), ``input_shape`` (H, W, C), ``input_encoding`` (uintN),
``num_classes``, ``conv`` (cnn only: list of output channels, "M" = 2x2 max pooling),
``dense`` (hidden widths), ``weights`` (weight spec, see :func:`weight_quantizer`, or a list
of one spec per weight layer), ``activations`` (binary | ternary | uintN, or a list of one per
hidden layer), ``group`` (bitwidth group size, or ``"column"``).
``weights="float"`` with ``activations="float"`` (ReLU) is the float32 baseline of the same
architecture; it trains and runs in torch but cannot be exported.
A ``resnet`` has no ``conv``/``dense``; it takes ``stem`` (channels of the 8-bit first conv),
``blocks`` (list of ``[channels, stride]``), ``edge_weights`` (``int2``..``int8``: first
and last layers, shortcut convs), ``path`` (the signed encoding between blocks) and
``path_step`` (its power-of-two grid); ``weights`` and ``activations`` are those of the block
convolutions and the sign before them (:mod:`hwbnn.quant.resnet`).

Each hidden layer is quantized layer -> BatchNorm (-> MaxPool); the next layer's input
quantizer is the activation. The last layer has no BatchNorm: its integer accumulators are
the scores (a positive learned temperature scales them for the loss only).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import HwbnnError
from ..ir.encoding import validate_encoding
from .layers import QuantConv2d, QuantLinear, ScoreScale
from .quantizers import ActivationQuantizer, FloatActivation, weight_quantizer
from .resnet import RESNET_DEFAULTS, ResNetBody, check_resnet_config

DEFAULTS = {
    "arch": "mlp",
    "input_shape": [8, 8, 1],
    "input_encoding": "uint5",
    "num_classes": 10,
    "conv": [],
    "dense": [256, 256],
    "weights": "binary",
    "activations": "binary",
    "group": 1,
}


def complete_config(config: dict) -> dict:
    """Fill defaults and check the config; raise HwbnnError naming a bad key."""
    if config.get("arch") == "resnet":
        return _complete_resnet(config)
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise HwbnnError(f"unknown model config key(s): {', '.join(sorted(unknown))}")
    config = {**DEFAULTS, **config}
    if config["arch"] not in ("mlp", "cnn"):
        raise HwbnnError(f"arch must be 'mlp', 'cnn' or 'resnet', not {config['arch']!r}")
    if config["arch"] == "mlp" and config["conv"]:
        raise HwbnnError("an mlp has no conv layers; use arch 'cnn'")
    if config["arch"] == "cnn" and not config["conv"]:
        raise HwbnnError("a cnn needs at least one conv layer")
    validate_encoding(config["input_encoding"], "input_encoding")
    if not config["input_encoding"].startswith("uint"):
        raise HwbnnError("the first layer takes unsigned pixels: input_encoding must be uintN")
    layers = sum(1 for item in config["conv"] if item != "M") + len(config["dense"])
    for spec in per_layer(config, "activations", layers):
        if spec != "float":
            validate_encoding(spec, "activations")
    for spec in per_layer(config, "weights", layers + 1):
        weight_quantizer(spec, config["group"])
    for width in config["dense"]:
        if not isinstance(width, int) or width < 1:
            raise HwbnnError(f"dense widths must be positive integers, not {width!r}")
    for item in config["conv"]:
        if item != "M" and (not isinstance(item, int) or item < 1):
            raise HwbnnError(f"conv entries must be channel counts or 'M', not {item!r}")
    return config


# The keys of DEFAULTS a resnet shares (no conv, no dense).
RESNET_SHARED = ("arch", "input_shape", "input_encoding", "num_classes", "weights",
                 "activations", "group")


def _complete_resnet(config: dict) -> dict:
    known = (*RESNET_SHARED, *RESNET_DEFAULTS)
    unknown = set(config) - set(known)
    if unknown:
        raise HwbnnError(f"unknown resnet config key(s): {', '.join(sorted(unknown))}")
    config = {**{key: DEFAULTS[key] for key in RESNET_SHARED}, **RESNET_DEFAULTS, **config}
    validate_encoding(config["input_encoding"], "input_encoding")
    if not config["input_encoding"].startswith("uint"):
        raise HwbnnError("the first layer takes unsigned pixels: input_encoding must be uintN")
    if len(config["input_shape"]) != 3:
        raise HwbnnError("a resnet takes (height, width, channels) frames")
    check_resnet_config(config)
    return config


def per_layer(config: dict, key: str, count: int) -> list[str]:
    """``config[key]`` as one spec per layer: a single spec repeated, or a list of ``count``."""
    value = config[key]
    if isinstance(value, str):
        return [value] * count
    if not isinstance(value, list | tuple) or len(value) != count or not all(
            isinstance(item, str) for item in value):
        raise HwbnnError(f"{key} must be one spec or a list of {count} (one per "
                         f"{'weight' if key == 'weights' else 'hidden'} layer), not {value!r}")
    return list(value)


def is_float(config: dict) -> bool:
    """True for the float32 baseline (no layer has quantized weights)."""
    value = config["weights"]
    return all(spec == "float" for spec in ([value] if isinstance(value, str) else value))


class QuantNet(nn.Module):
    """A quantized MLP or CNN (``body`` is the sequence export walks) or a residual network
    (``body`` is a :class:`~hwbnn.quant.resnet.ResNetBody`)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = complete_config(config)
        cfg = self.config
        if cfg["arch"] == "resnet":
            self.body = ResNetBody(cfg)
            self.score_scale = ScoreScale()
            return
        height, width, channels = cfg["input_shape"]
        encoding = cfg["input_encoding"]
        modules: list[nn.Module] = []
        hidden_layers = sum(1 for item in cfg["conv"] if item != "M") + len(cfg["dense"])
        weight_specs = iter(per_layer(cfg, "weights", hidden_layers + 1))
        activations = iter(per_layer(cfg, "activations", hidden_layers))

        def quantizers(current: str):
            act = None  # the first layer takes raw pixels
            if modules:
                act = FloatActivation() if current == "float" else ActivationQuantizer(current)
            return dict(input_encoding=current, input_quantizer=act,
                        weight_quantizer=weight_quantizer(next(weight_specs), cfg["group"]))

        for item in cfg["conv"]:
            if item == "M":
                modules.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
                continue
            modules += [QuantConv2d(channels, item, 3, 1, **quantizers(encoding)),
                        nn.BatchNorm2d(item)]
            channels, encoding = item, next(activations)
        features = height * width * channels
        if cfg["conv"]:
            modules.append(nn.Flatten())
        for hidden in cfg["dense"]:
            modules += [QuantLinear(features, hidden, **quantizers(encoding)),
                        nn.BatchNorm1d(hidden)]
            features, encoding = hidden, next(activations)
        modules.append(QuantLinear(features, cfg["num_classes"], **quantizers(encoding)))
        self.body = nn.Sequential(*modules)
        self.score_scale = ScoreScale()

    def prepare_input(self, images: np.ndarray) -> torch.Tensor:
        """Channels-last integer frames (N, H, W, C) -> the float tensor ``forward`` takes."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        if self.config["arch"] in ("cnn", "resnet"):
            return x.permute(0, 3, 1, 2).contiguous()
        return x.reshape(len(x), -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_scale(self.body(x))

    def clip_latent_weights(self) -> None:
        """Keep latent weights in [-1, 1] (BNN practice: beyond it the STE passes nothing)."""
        with torch.no_grad():
            for module in self.body.modules():
                if isinstance(module, QuantLinear | QuantConv2d):
                    module.weight.clamp_(-1.0, 1.0)
