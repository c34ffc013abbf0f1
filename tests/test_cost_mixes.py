"""Bitwidth mixes: parsing, re-quantization to a mix, and its accuracy on digits."""

import numpy as np
import pytest

from hwbnn import data, zoo
from hwbnn.cost.mixes import (
    DEFAULT_MIXES,
    average_bits,
    mix_fractions,
    parse_mixes,
    quantize_weights,
    requantize,
    train_spec,
)
from hwbnn.errors import HwbnnError
from hwbnn.ir.mix import mix_for_average
from hwbnn.ref import golden


def test_parse_mixes():
    assert parse_mixes("1, 1.4,ternary,2.5") == ["1", "1.4", "ternary", "2.5"]
    for bad in ("0.5", "four", "", "binary"):
        with pytest.raises(HwbnnError):
            parse_mixes(bad)


@pytest.mark.parametrize("mix", [m for m in DEFAULT_MIXES if m != "ternary"] + ["1.8", "2.5"])
def test_fractions_reach_the_average(mix):
    fractions = mix_fractions(mix)
    assert min(fractions) >= 0 and sum(fractions) == pytest.approx(1)
    assert average_bits(mix) == pytest.approx(float(mix))


@pytest.mark.parametrize("average", [1.2, 1.4, 1.6, 1.8, 2.5])
def test_sweep_uses_the_training_policy(average):
    """A sweep re-quantizes to the mix ``hwbnn train --weights mix:AVG`` trains."""
    assert mix_fractions(str(average)) == mix_for_average(average)


def test_train_spec():
    assert [train_spec(m) for m in ("1", "2", "3", "ternary")] == ["binary", "w2", "w3",
                                                                   "ternary"]
    assert train_spec("1.4") == "mix:0.7,0.2,0.1"


@pytest.mark.parametrize("mix", ["1.2", "1.4", "1.6", "2", "3"])
def test_residual_weights_hit_the_mix(mix):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(32, 64))
    weights, alpha = quantize_weights(w, mix)
    assert weights.kind == "residual"
    counts = np.bincount(weights.bitwidth.ravel(), minlength=4)[1:] / w.size
    assert counts == pytest.approx(mix_fractions(mix), abs=1 / w.size)
    # More bits approximate the real weights better.
    error = np.abs(alpha * weights.values() - w).mean()
    coarser, coarse_alpha = quantize_weights(w, "1")
    assert error < np.abs(coarse_alpha * coarser.values() - w).mean()


def test_requantized_model_is_valid_and_scores():
    net = zoo.load("zoo:digits_mlp_w2")
    digits = data.load("digits")
    base = (golden.predict(net, digits.test_x) == digits.test_y).mean()
    three = requantize(net, "3")
    assert all(layer.weights.kind == "residual" for layer in three.weight_layers)
    accuracy = (golden.predict(three, digits.test_x) == digits.test_y).mean()
    # Adding a plane to a trained 2-bit model keeps it close to its accuracy.
    assert accuracy >= base - 0.03
    ternary = requantize(net, "ternary")
    assert {layer.weights.kind for layer in ternary.weight_layers} == {"ternary"}
