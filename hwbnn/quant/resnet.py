"""A residual BNN (``arch: "resnet"``): Bi-Real-style blocks on a clipped 8-bit path.

The data between blocks (the *path*) is a signed integer tensor, ``int8`` by default, on a fixed
power-of-two grid ``path_step``: torch carries ``step * v`` with ``v`` in -128..127. That is the
seed paper's clipped 8-bit path (Vorabbi et al.: the data between binary layers clipped from 32
to 8 bits), which is what lets a shortcut be a plain integer stream in hardware.

* Stem: a 3x3 convolution with ``edge_weights`` (``int8``) on the raw unsigned pixels,
  BatchNorm, quantized onto the path.
* Block (Bi-Real Net, Liu et al. 2018: a shortcut around every binary convolution, BatchNorm
  before the add): ``r -> sign(r - shift) -> binary 3x3 conv (stride s) -> BatchNorm -> path
  quantizer``, plus the shortcut, summed and clipped to the path's range. ``shift`` is a
  learned per-channel threshold of the sign (ReActNet's RSign, Liu et al. 2020).
* Downsampling block (stride 2 or a change of width): the shortcut is a 2x2 average pool with
  stride 2 (stride-2 blocks only), a 1x1 convolution with ``edge_weights`` and BatchNorm,
  quantized onto the path (Bi-Real's downsampling shortcut, with 8-bit instead of real weights).
  Integer rather than binary 1x1 weights: the shortcut is the only path along which the block's
  input reaches its output unbinarized, and it costs ``C_in * C_out`` weights, 1/9 of the
  binary convolution's bits per weight at 8 bits.
* Head: global average pooling, then a dense layer with ``edge_weights`` producing the scores.

Both operands of an add are on the path's grid, so the add is an exact integer sum; every
BatchNorm sits before an add or a quantizer and folds into integer thresholds
(:mod:`hwbnn.ir.export`). The layer names are the IR's: ``stem``, ``block{i}_sign``,
``block{i}_conv``, ``block{i}_pool``, ``block{i}_short``, ``block{i}_add``, ``gap``, ``fc``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HwbnnError
from ..ir.encoding import encoding_range, integer_encoding, is_signed_int, validate_encoding
from .layers import QuantConv2d, QuantLinear
from .quantizers import (
    INTEGER_SPECS,
    ActivationQuantizer,
    clipped_ste,
    power_of_two_step,
    weight_quantizer,
)

RESNET_DEFAULTS = {
    "stem": 16,
    "blocks": [[16, 1], [32, 2], [32, 1]],
    "edge_weights": "int8",
    "path": "int8",
    "path_step": 0.0625,
}
POOL = 2  # the downsampling shortcut's average pool: 2x2, stride 2 (Bi-Real Net)


def check_resnet_config(config: dict) -> None:
    """Raise HwbnnError naming the first bad resnet key of a completed config."""
    if not isinstance(config["stem"], int) or isinstance(config["stem"], bool) or (
            config["stem"] < 1):
        raise HwbnnError(f"stem must be a positive channel count, not {config['stem']!r}")
    blocks = config["blocks"]
    if not isinstance(blocks, list | tuple) or not blocks:
        raise HwbnnError(f"blocks must be a non-empty list of [channels, stride], not "
                         f"{blocks!r}")
    height, width, _ = config["input_shape"]
    for index, block in enumerate(blocks):
        if not (isinstance(block, list | tuple) and len(block) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in block)
                and block[0] >= 1 and block[1] in (1, 2)):
            raise HwbnnError(f"blocks[{index}] must be [channels, stride] with stride 1 or 2, "
                             f"not {block!r}")
        if block[1] == 2:
            if height % 2 or width % 2:
                raise HwbnnError(f"blocks[{index}]: a stride-2 block needs an even input, not "
                                 f"{height}x{width}")
            height, width = height // 2, width // 2
    if config["edge_weights"] not in INTEGER_SPECS:
        raise HwbnnError(f"edge_weights must be one of int2..int8, not "
                         f"{config['edge_weights']!r}")
    path = config["path"]
    if not isinstance(path, str) or not is_signed_int(validate_encoding(path, "path")):
        raise HwbnnError(f"path must be a signed encoding int2..int8, not {path!r}")
    power_of_two_step(config["path_step"])
    if config["activations"] not in ("binary", "ternary"):
        raise HwbnnError(f"a resnet's activations (before each block's convolution) must be "
                         f"binary or ternary, not {config['activations']!r}")
    if not isinstance(config["weights"], str):
        raise HwbnnError("a resnet takes one weights spec for its block convolutions")
    weight_quantizer(config["weights"], config["group"])


def pool_encoding(encoding: str, window: int) -> str:
    """Encoding of the sum of ``window`` values of ``encoding`` (the IR's average pools)."""
    lo, hi = encoding_range(encoding)
    return integer_encoding(window * lo, window * hi)


class PathQuantizer(ActivationQuantizer):
    """The path's signed quantizer, with :meth:`clip` for the sum of an add."""

    def clip(self, z: torch.Tensor) -> torch.Tensor:
        lo, hi = (self.step * v for v in encoding_range(self.encoding))
        return clipped_ste(z, z.clamp(lo, hi), lo, hi)


class ResidualBlock(nn.Module):
    """One block; ``downsample`` when the stride is 2 or the width changes."""

    def __init__(self, in_channels: int, channels: int, stride: int, config: dict):
        super().__init__()
        path, step = config["path"], config["path_step"]
        self.stride = stride
        self.shift = nn.Parameter(torch.zeros(in_channels))
        self.conv = QuantConv2d(
            in_channels, channels, 3, 1, stride=stride, input_encoding=config["activations"],
            input_quantizer=ActivationQuantizer(config["activations"]),
            weight_quantizer=weight_quantizer(config["weights"], config["group"]))
        self.bn = nn.BatchNorm2d(channels)
        self.quant = PathQuantizer(path, step)
        self.downsample = stride != 1 or in_channels != channels
        if self.downsample:
            window = POOL * POOL if stride == 2 else 1
            self.short = QuantConv2d(in_channels, channels, 1, 0,
                                     input_encoding=pool_encoding(path, window),
                                     weight_quantizer=weight_quantizer(config["edge_weights"]))
            self.short_bn = nn.BatchNorm2d(channels)
            self.short_quant = PathQuantizer(path, step)

    def pooled(self, r: torch.Tensor) -> torch.Tensor:
        """The shortcut's average pool (the mean; the IR keeps the window sums)."""
        return F.avg_pool2d(r, POOL) if self.stride == 2 else r

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        main = self.quant(self.bn(self.conv(r - self.shift.view(1, -1, 1, 1))))
        short = r
        if self.downsample:
            short = self.short_quant(self.short_bn(self.short(self.pooled(r))))
        return self.quant.clip(main + short)


class ResNetBody(nn.Module):
    """Stem, blocks and head of a :class:`~hwbnn.quant.models.QuantNet` with arch resnet."""

    def __init__(self, config: dict):
        super().__init__()
        height, width, channels = config["input_shape"]
        path, step, edge = config["path"], config["path_step"], config["edge_weights"]
        self.stem = QuantConv2d(channels, config["stem"], 3, 1,
                                input_encoding=config["input_encoding"],
                                weight_quantizer=weight_quantizer(edge))
        self.stem_bn = nn.BatchNorm2d(config["stem"])
        self.stem_quant = PathQuantizer(path, step)
        blocks, channels = [], config["stem"]
        for out_channels, stride in config["blocks"]:
            blocks.append(ResidualBlock(channels, out_channels, stride, config))
            channels, height, width = out_channels, height // stride, width // stride
        self.blocks = nn.ModuleList(blocks)
        self.gap_pixels = height * width
        self.fc = QuantLinear(channels, config["num_classes"],
                              input_encoding=pool_encoding(path, self.gap_pixels),
                              weight_quantizer=weight_quantizer(edge))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.stem_quant(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            r = block(r)
        return self.fc(r.mean(dim=(2, 3)))
