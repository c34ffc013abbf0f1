"""Quantized layers taking ``input_quantizer=`` and ``weight_quantizer=`` (the Larq way).

The layer quantizes its input first (None for the first layer, which takes unsigned
pixels as they are), pads spatially with the input encoding's pad value (-1 for binary,
as the hardware does), then applies the quantized weights. Convolution weights are viewed
as a (out_channels, K*K*in_channels) matrix in channels-last column order, the order of the
IR and the hardware, so that bitwidth groups mean the same thing everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.encoding import MAX_SUM_BITS, pad_value, validate_encoding
from .quantizers import ActivationQuantizer, QuantizedWeight, WeightQuantizer


class _QuantMixin:
    """Shared plumbing: input quantization and the IR-ordered weight matrix."""

    def _setup(self, input_encoding: str, input_quantizer, weight_quantizer):
        if input_encoding != "float":  # wide sums (a pool's) may feed a layer, as in the IR
            validate_encoding(input_encoding, "input_encoding", MAX_SUM_BITS)
        self.input_encoding = input_encoding
        if input_quantizer is not None and input_quantizer.encoding != input_encoding:
            raise ValueError(f"input_quantizer produces {input_quantizer.encoding!r}, "
                             f"not the declared input_encoding {input_encoding!r}")
        self.input_quantizer = input_quantizer
        self.weight_quantizer = weight_quantizer

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)

    def integer_weights(self) -> QuantizedWeight:
        """The integer weights export writes (IR column order)."""
        with torch.no_grad():
            return self.weight_quantizer.quantize(self.weight_matrix().detach())


class QuantLinear(nn.Linear, _QuantMixin):
    """Dense layer on quantized inputs and weights (no bias: BatchNorm carries the offset)."""

    def __init__(self, in_features: int, out_features: int, *, input_encoding: str,
                 weight_quantizer: WeightQuantizer,
                 input_quantizer: ActivationQuantizer | None = None):
        super().__init__(in_features, out_features, bias=False)
        self._setup(input_encoding, input_quantizer, weight_quantizer)

    def weight_matrix(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantize_input(x), self.weight_quantizer(self.weight))


class QuantConv2d(nn.Conv2d, _QuantMixin):
    """KxK convolution with a stride and explicit padding by the input encoding's pad value."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int = 1, *, input_encoding: str, weight_quantizer: WeightQuantizer,
                 input_quantizer: ActivationQuantizer | None = None, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         bias=False)
        self.pad = padding
        self._setup(input_encoding, input_quantizer, weight_quantizer)

    def weight_matrix(self) -> torch.Tensor:
        """(OC, K*K*IC) view, columns in (kernel row, kernel column, channel) order."""
        return self.weight.permute(0, 2, 3, 1).reshape(self.out_channels, -1)

    def padded_input(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quantize_input(x)
        return F.pad(x, [self.pad] * 4, value=float(pad_value(self.input_encoding)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        w = self.weight_quantizer(self.weight_matrix())
        w = w.reshape(self.out_channels, k, k, self.in_channels).permute(0, 3, 1, 2)
        return F.conv2d(self.padded_input(x), w, stride=self.stride)


class ScoreScale(nn.Module):
    """Learned positive temperature on the last layer's scores (training only).

    A positive scale changes no argmax, so export drops it and keeps integer scores.
    """

    def __init__(self, init: float = 0.1):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(float(init)).log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.log_scale.exp()
