"""Quantizers, quantized layers and model builders (torch; only training and export use it)."""

from ..ir.mix import mix_counts
from .layers import QuantConv2d, QuantLinear, ScoreScale
from .quantizers import (
    ActivationQuantizer,
    BinaryWeight,
    IntegerWeight,
    QuantizedWeight,
    ResidualWeight,
    TernaryWeight,
    WeightQuantizer,
    mix_for_average,
    weight_quantizer,
)
from .residual import residual_binarize

__all__ = [
    "ActivationQuantizer", "BinaryWeight", "IntegerWeight", "QuantConv2d", "QuantLinear",
    "QuantizedWeight", "ResidualWeight", "ScoreScale", "TernaryWeight", "WeightQuantizer",
    "mix_counts", "mix_for_average", "residual_binarize", "weight_quantizer",
]
