"""Plain torch BNNs in: hwbnn.convert runs them exactly (labels equal torch's, scores up to one
positive scale), names the torch layer it cannot take, and the worked example runs."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import hwbnn
from hwbnn.errors import HwbnnError
from hwbnn.ir.export import export

from .float_reference import assert_scores_match

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plain_torch_bnn.py"


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class WhereSign(nn.Module):
    def forward(self, x):
        return SignSTE.apply(x)


class HardtanhSign(nn.Module):
    def forward(self, x):
        return torch.sign(F.hardtanh(x))


class DetachTrickSign(nn.Module):
    """The straight-through estimator written inline: y + (sign(y) - y).detach()."""

    def forward(self, x):
        x = F.hardtanh(x)
        return x + (torch.sign(x) - x).detach()


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, torch.sign(self.weight), self.bias)


class BinaryConv2d(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, SignSTE.apply(self.weight), self.bias, padding=self.padding)


def mlp(activation, last=None):
    return nn.Sequential(nn.Flatten(), BinaryLinear(64, 32, bias=False), nn.BatchNorm1d(32),
                         activation(), last or BinaryLinear(32, 10, bias=False))


def cnn(activation):
    return nn.Sequential(BinaryConv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), activation(),
                         nn.MaxPool2d(2), BinaryConv2d(8, 16, 2, bias=True),
                         nn.BatchNorm2d(16), activation(), nn.Flatten(),
                         BinaryLinear(64, 10, bias=False))


def trained_statistics(module, seed=0):
    """BatchNorm statistics as after training (torch initializes them to the identity)."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            n = layer.num_features
            layer.weight.data = torch.randn(n, generator=generator)
            layer.bias.data = torch.randn(n, generator=generator) * 0.5
            layer.running_mean.data = torch.randn(n, generator=generator) * 3
            layer.running_var.data = torch.rand(n, generator=generator) * 10 + 1
    return module.eval()


@pytest.fixture(scope="module")
def inputs(digits):
    """Digits pixels / 16 and random pixels / 16, NCHW."""
    random = np.random.default_rng(0).integers(0, 17, (300, 8, 8, 1))
    pixels = np.concatenate([digits.test_x, random])
    return torch.from_numpy(pixels.transpose(0, 3, 1, 2) / 16).float()


@pytest.mark.parametrize("build", [mlp, cnn])
@pytest.mark.parametrize("activation", [WhereSign, HardtanhSign, DetachTrickSign])
def test_plain_torch_bnn_converts_exactly(build, activation, inputs):
    torch.manual_seed(0)
    module = trained_statistics(build(activation))
    model = hwbnn.convert(module, inputs[:2], input_encoding="uint5", input_scale=1 / 16)
    encodings = [layer.out_encoding for layer in model.net.weight_layers]
    assert encodings == ["binary"] * (len(encodings) - 1) + [None]
    frames = model.quantize_input(inputs.numpy())
    with torch.no_grad():
        reference = module(inputs).numpy()
    assert_scores_match(reference, model.scores(frames), f"{build.__name__} {activation}")


def test_convert_keeps_the_module_mode_and_takes_digits_frames(digits):
    module = trained_statistics(mlp(WhereSign)).train()
    model = hwbnn.convert(module, torch.zeros(1, 64), input_encoding="uint5", input_scale=1 / 16)
    assert module.training
    assert model.net.input_shape == (64,)
    frames = model.frames("digits")
    np.testing.assert_array_equal(frames, digits.test_x.reshape(len(digits.test_x), 64))


def test_sign_that_can_give_zero_is_ternary():
    """torch.sign(0) = 0: with untrained BatchNorm an accumulator of 0 gives 0, so the layer
    is ternary; with trained statistics no integer accumulator does and it is binary."""
    module = mlp(HardtanhSign).eval()
    model = hwbnn.convert(module, torch.zeros(1, 1, 8, 8), input_encoding="uint5")
    assert model.net.layers[0].out_encoding == "ternary"
    pixels = torch.randint(0, 17, (200, 1, 8, 8)).float()
    with torch.no_grad():
        reference = module(pixels).numpy()
    assert_scores_match(reference, model.scores(model.quantize_input(pixels.numpy())),
                        "untrained sign")


@pytest.mark.parametrize("module, kwargs, message", [
    (mlp(nn.ReLU), {}, r"node 'node_relu' \(Relu\) in torch layer '3' \(ReLU\): this "
                       r"operator is not in the supported"),
    (mlp(WhereSign, BinaryLinear(32, 10, bias=True)), {},
     r"output layer \(node 'node_linear_1' \(Gemm\) in torch layer '4' \(BinaryLinear\)\): "
     r"per-class biases of the scores differ"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), WhereSign(),
                   BinaryLinear(32, 10, bias=False)), {},
     r"weights '1.weight' are float \(not one scale per output channel times -1/\+1\)"),
    (nn.Sequential(BinaryConv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), WhereSign(),
                   BinaryConv2d(8, 8, 3, padding=1, bias=False), nn.Flatten(),
                   BinaryLinear(288, 10, bias=False)), {},
     r"in torch layer '3' \(BinaryConv2d\): Conv pads with 0, but a binary input pads with -1"),
    (mlp(WhereSign), {"input_encoding": None},
     r"is the float graph input \(quantize it in the graph, or declare its integer encoding"),
])
def test_what_convert_cannot_take_is_one_error_naming_the_layer(module, kwargs, message):
    options = {"input_encoding": "uint5", "input_scale": 1 / 16, **kwargs}
    with pytest.raises(HwbnnError, match=message) as error:
        hwbnn.convert(trained_statistics(module), torch.zeros(2, 1, 8, 8), **options)
    assert "\n" not in str(error.value)


def test_convert_checks_its_arguments():
    with pytest.raises(HwbnnError, match="convert takes a torch.nn.Module, not str"):
        hwbnn.convert("model.pt", torch.zeros(1, 64))
    with pytest.raises(HwbnnError, match="example_input must be a torch.Tensor, not list"):
        hwbnn.convert(mlp(WhereSign), [0.0] * 64)
    with pytest.raises(HwbnnError, match=re.escape("input_scale must be a positive number")):
        hwbnn.convert(mlp(WhereSign), torch.zeros(1, 64), input_encoding="uint5",
                      input_scale=0)
    with pytest.raises(HwbnnError, match="input_encoding must be"):
        hwbnn.convert(mlp(WhereSign), torch.zeros(1, 64), input_encoding="int8")


def test_hwbnn_export_refuses_other_modules():
    with pytest.raises(HwbnnError, match="export takes a hwbnn QuantNet, not Sequential: "
                                         r"convert a plain torch module with hwbnn.convert"):
        export(mlp(WhereSign))
    with pytest.raises(HwbnnError, match=r"hwbnn.convert\(module, example_input\)"):
        hwbnn.load(mlp(WhereSign))


def test_the_plain_torch_example_runs():
    """examples/plain_torch_bnn.py: train, convert, labels equal torch's on the test split."""
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "labels equal on 100.00% of 360 test frames" in done.stdout
