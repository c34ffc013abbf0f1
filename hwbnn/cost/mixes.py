"""Bitwidth mixes: names, fractions, and re-quantizing an IR model to a mix without training.

A mix is named by its average bits per weight (``1``, ``1.2``, ``1.4``, ``1.6``, ``2``, ``3``)
or ``ternary``. Fractional mixes are residual-binarized (Fromm et al., "Heterogeneous
Bitwidth Binarization in Convolutional Neural Networks", NeurIPS 2018) with fractions of
1/2/3-bit weights; ``1`` is plain binary, ``2`` and ``3`` homogeneous residual 2 and 3 bits.

Re-quantization (no training) works on the integer weights of an existing model: it treats them
as real weights, residual-binarizes them with training's middle-out bit selection
(:func:`hwbnn.ir.mix.residual_binarize`), and scales the thresholds by the same factor, so a
trained model can be costed and roughly scored at every mix in seconds.
Accuracy after re-quantization is a lower bound on what retraining (``--train``) reaches.
"""

from __future__ import annotations

from dataclasses import replace
from math import ceil

import numpy as np

from ..errors import HwbnnError
from ..ir.mix import mix_for_average, residual_binarize
from ..ir.network import (
    Conv,
    MatVec,
    NetworkIR,
    Weights,
    accumulator_range,
    accumulator_width,
)

# Homogeneous mixes by name; every other average takes training's policy
# (:func:`hwbnn.ir.mix.mix_for_average`: 1.4 = 70/20/10, Fromm et al.'s mix).
MIX_FRACTIONS = {
    "1": (1.0, 0.0, 0.0),
    "2": (0.0, 1.0, 0.0),
    "3": (0.0, 0.0, 1.0),
}
DEFAULT_MIXES = ("1", "1.2", "1.4", "1.6", "2", "3", "ternary")
# Ternary threshold Delta = 0.7 * E|w| (Li and Liu, "Ternary Weight Networks", 2016).
TERNARY_DELTA = 0.7


def parse_mixes(text: str) -> list[str]:
    """``"1,1.4,2,ternary"`` -> validated mix names."""
    mixes = [part.strip() for part in text.split(",") if part.strip()]
    for mix in mixes:
        if mix != "ternary" and mix not in MIX_FRACTIONS:
            try:
                average = float(mix)
            except ValueError:
                average = None
            if average is None or not 1 <= average <= 3:
                raise HwbnnError(f"mix must be an average bitwidth in 1..3 or 'ternary', "
                                 f"not {mix!r}")
    if not mixes:
        raise HwbnnError("--mixes needs at least one mix")
    return mixes


def mix_fractions(mix: str) -> tuple[float, float, float]:
    """Fractions of 1/2/3-bit weights of a named or numeric mix (not ternary)."""
    if mix in MIX_FRACTIONS:
        return MIX_FRACTIONS[mix]
    return mix_for_average(float(mix))


def average_bits(mix: str) -> float:
    if mix == "ternary":
        return 2.0
    f1, f2, f3 = mix_fractions(mix)
    return f1 + 2 * f2 + 3 * f3


def train_spec(mix: str) -> str:
    """The ``hwbnn train --weights`` spec of a mix."""
    if mix == "ternary":
        return "ternary"
    if mix == "1":
        return "binary"
    if mix in ("2", "3"):
        return f"w{mix}"
    return "mix:" + ",".join(f"{f:g}" for f in mix_fractions(mix))


def quantize_weights(w: np.ndarray, mix: str, group: int = 1) -> tuple[Weights, float]:
    """(IR weights of ``mix``, alpha) approximating ``w ~= alpha * values``."""
    w = np.asarray(w, dtype=np.float64)
    magnitude = max(float(np.abs(w).mean()), 1e-12)
    if mix == "ternary":
        delta = TERNARY_DELTA * magnitude
        values = np.where(w > delta, 1, np.where(w < -delta, -1, 0))
        kept = np.abs(w)[values != 0]
        return Weights.ternary(values), float(kept.mean()) if kept.size else magnitude
    if mix == "1":
        return Weights.binary(np.where(w >= 0, 1, -1)), magnitude
    signs, bitwidth, scales, alpha = residual_binarize(w, mix_fractions(mix), group)
    return Weights.residual(signs, bitwidth, scales), alpha


def _requantize_layer(layer, mix: str, group: int):
    weights, alpha = quantize_weights(layer.weights.values(), mix, group)
    thresholds = layer.thresholds
    if thresholds is not None:
        # acc_new ~= acc_old / alpha: the comparison acc >= t keeps its meaning at t / alpha.
        thresholds = np.array([[ceil(t / alpha) for t in row] for row in
                               thresholds.astype(np.float64)], dtype=np.int64)
        thresholds.sort(axis=1)
    acc_range = accumulator_range(weights.values(), layer.in_encoding)
    return replace(layer, weights=weights, thresholds=thresholds, acc_range=acc_range,
                   acc_width=accumulator_width(acc_range, thresholds))


def requantize(net: NetworkIR, mix: str, group: int = 1) -> NetworkIR:
    """A copy of ``net`` with every matvec/conv layer's weights re-quantized to ``mix``."""
    net.require_chain("requantization")
    layers = []
    for layer in net.layers:
        if isinstance(layer, MatVec | Conv):
            columns = group if layer.mw % group == 0 else 1
            layers.append(_requantize_layer(layer, mix, columns))
        else:
            layers.append(layer)
    name = f"{net.name}_mix{mix.replace('.', '')}"
    return NetworkIR(name, net.input_shape, net.input_encoding, layers,
                     {**net.metadata, "requantized_from": net.name, "mix": mix}).validate()
