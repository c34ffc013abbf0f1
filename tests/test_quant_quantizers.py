"""Quantizer forward tables and straight-through gradients."""

import pytest
import torch

from hwbnn.errors import HwbnnError
from hwbnn.quant import (
    ActivationQuantizer,
    BinaryWeight,
    ResidualWeight,
    TernaryWeight,
    mix_for_average,
    weight_quantizer,
)
from hwbnn.quant.quantizers import IntegerWeight

Y = torch.tensor([-2.0, -1.0, -0.5, -0.1, 0.0, 0.4, 0.5, 1.49, 1.5, 2.6, 9.0])


@pytest.mark.parametrize("encoding,expected", [
    ("binary", [-1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1]),
    ("ternary", [-1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ("uint2", [0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 3]),
    ("uint3", [0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 7]),
])
def test_activation_forward_table(encoding, expected):
    assert ActivationQuantizer(encoding)(Y).tolist() == expected


@pytest.mark.parametrize("encoding,passing", [
    ("binary", [False, True, True, True, True, True, True, False, False, False, False]),
    ("uint2", [False, False, False, False, True, True, True, True, True, True, False]),
])
def test_activation_ste_gradient_is_clipped(encoding, passing):
    y = Y.clone().requires_grad_(True)
    ActivationQuantizer(encoding)(y).sum().backward()
    assert (y.grad == 1).tolist() == passing
    assert set(y.grad.tolist()) <= {0.0, 1.0}


def test_binary_weight_values_and_scale():
    w = torch.tensor([[0.5, -0.25, 0.0, -1.0]])
    q = BinaryWeight().quantize(w)
    assert q.values.tolist() == [[1, -1, 1, -1]]
    assert float(q.scale) == pytest.approx(0.4375)


def test_ternary_weight_threshold():
    w = torch.tensor([[0.9, -0.9, 0.1, -0.1]])  # mean|w| 0.5, delta 0.35
    assert TernaryWeight().quantize(w).values.tolist() == [[1, -1, 0, 0]]


def test_weight_ste_passes_gradient_inside_unit_range():
    w = torch.tensor([[0.3, -1.5, 0.9]], requires_grad=True)
    BinaryWeight()(w).sum().backward()
    assert w.grad.tolist() == [[1.0, 0.0, 1.0]]


def test_quantized_weight_is_scale_times_integers():
    w = torch.randn(8, 16) * 0.3
    quantizer = ResidualWeight((0.5, 0.3, 0.2))
    q = quantizer.quantize(w)
    assert torch.equal(quantizer(w), q.scale * q.values)
    assert torch.equal(q.values, q.values.round())


@pytest.mark.parametrize("spec,kind,bits", [
    ("binary", "binary", 1.0), ("ternary", "ternary", 2.0), ("w2", "residual", 2.0),
    ("w3", "residual", 3.0), ("mix:0.6,0.3,0.1", "residual", 1.5), ("mix:1.4", "residual", 1.4),
    ("int2", "integer", 2), ("int8", "integer", 8),
])
def test_weight_specs(spec, kind, bits):
    quantizer = weight_quantizer(spec)
    assert quantizer.kind == kind
    assert quantizer.bits == pytest.approx(bits)


@pytest.mark.parametrize("spec", ["w4", "mix:0.5,0.6,0.1", "mix:3.5", "mix:a,b,c", "int9", "int1",
                                  "int08"])
def test_bad_weight_specs(spec):
    with pytest.raises(HwbnnError):
        weight_quantizer(spec)


@pytest.mark.parametrize("step", [1.0, 0.25, 0.0625])
def test_signed_activation_rounds_half_up_on_its_grid_and_clips(step):
    """int4 on a grid of ``step``: v = round_half_up(y / step) in -8..7, output v * step: the
    count of the levels step * (k - 0.5) that export folds into thresholds, minus 8."""
    quantizer = ActivationQuantizer("int4", step)
    expected = [-2, -1, 0, 0, 0, 0, 1, 1, 2, 3, 7]
    assert (quantizer(Y * step) / step).tolist() == expected
    levels = quantizer.levels * step
    assert ((Y * step).unsqueeze(-1) >= levels).sum(-1).sub(8).tolist() == expected
    assert quantizer(torch.tensor([-9.0 * step]))[0] == -8 * step


def test_int8_activation_covers_its_range_and_clips_the_gradient():
    quantizer = ActivationQuantizer("int8", 0.5)
    y = torch.tensor([-80.0, -64.0, -63.9, -0.26, -0.25, 0.0, 63.4, 63.5, 63.75, 70.0],
                     requires_grad=True)
    out = quantizer(y)
    assert (out / 0.5).tolist() == [-128, -128, -128, -1, 0, 0, 127, 127, 127, 127]
    out.sum().backward()
    assert y.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]  # inside 0.5 * [-128, 127]
    assert quantizer.levels[0] == -127.5 and quantizer.levels[-1] == 126.5
    assert len(quantizer.levels) == 255


@pytest.mark.parametrize("step", [0.3, 0, -0.5, True, "1"])
def test_activation_step_must_be_a_power_of_two(step):
    with pytest.raises(HwbnnError, match="path_step must be a positive power of two"):
        ActivationQuantizer("int8", step)


def test_only_signed_activations_take_a_step():
    with pytest.raises(HwbnnError, match="only intN activations take a step"):
        ActivationQuantizer("uint4", 0.5)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_integer_weights_are_symmetric_and_scale_times_integers(bits):
    top = 2 ** (bits - 1) - 1
    w = torch.linspace(-0.9, 0.6, 41).reshape(1, -1)
    q = IntegerWeight(bits).quantize(w)
    assert q.kind == "integer" and q.bits == bits
    assert q.values.min() == -top and q.values.max() <= top  # max|w| maps to -top
    assert torch.equal(q.values, q.values.round())
    assert float(q.scale) == pytest.approx(0.9 / top)
    assert (q.values * q.scale - w).abs().max() <= float(q.scale) / 2 + 1e-7
    assert torch.equal(IntegerWeight(bits)(w), q.scale * q.values)


def test_integer_weights_have_two_to_eight_bits():
    with pytest.raises(HwbnnError, match="integer weights have 2..8 bits, not 9"):
        IntegerWeight(9)


def test_mix_for_average():
    assert mix_for_average(1.4) == pytest.approx((0.7, 0.2, 0.1))
    for average in (1.0, 1.2, 1.6, 2.0, 2.5, 3.0):
        mix = mix_for_average(average)
        assert sum(mix) == pytest.approx(1.0)
        assert sum((b + 1) * f for b, f in enumerate(mix)) == pytest.approx(average)
