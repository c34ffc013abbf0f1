"""Export: BatchNorm folding, sign flips, exactness of integer torch == golden."""

import numpy as np
import pytest
import torch
from torch import nn

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.ir.export import export, integer_trace
from hwbnn.quant.models import QuantNet
from hwbnn.ref import golden
from hwbnn.ref.compare import first_mismatch
from hwbnn.train import load_checkpoint

from .conftest import zoo_test_split


@pytest.mark.parametrize("name", zoo.trained_names())
def test_zoo_integer_torch_equals_golden_on_every_layer(name):
    images, _ = zoo_test_split(name)
    model = load_checkpoint(zoo.checkpoint_path(name))
    net = zoo.load(f"zoo:{name}")
    golden_trace = golden.run(net, images)
    torch_trace = integer_trace(model, images)
    assert [t.name for t in torch_trace] == [t.name for t in golden_trace]
    assert first_mismatch(golden_trace, torch_trace) is None
    # The shipped file is what export makes of the shipped checkpoint.
    again = export(model, name, net.metadata)
    for a, b in zip(net.layers, again.layers, strict=True):
        if a.kind != "maxpool":
            assert np.array_equal(a.weights.values(), b.weights.values())
            assert (a.thresholds is None) == (b.thresholds is None)
            if a.thresholds is not None:
                assert np.array_equal(a.thresholds, b.thresholds)


def _randomize_batchnorm(model, seed):
    """BatchNorm with negative, zero and positive scales and offsets."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.body:
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            gamma = torch.randn(n, generator=generator)
            gamma[0] = 0.0
            gamma[1] = -abs(gamma[1])
            module.weight.data = gamma
            module.bias.data = torch.randn(n, generator=generator) * 2
            module.running_mean = torch.randn(n, generator=generator) * 3
            module.running_var = torch.rand(n, generator=generator) * 4 + 0.1
    return model.eval()


@pytest.mark.parametrize("config", [
    {"arch": "mlp", "dense": [12, 8], "weights": "binary", "activations": "binary"},
    {"arch": "mlp", "dense": [12], "weights": "ternary", "activations": "ternary"},
    {"arch": "mlp", "dense": [12], "weights": "mix:0.5,0.3,0.2", "activations": "uint2"},
    {"arch": "cnn", "conv": [6, "M", 4], "dense": [8], "weights": "w2",
     "activations": "binary"},
    {"arch": "cnn", "conv": [4, 4, "M"], "dense": [], "weights": "ternary",
     "activations": "uint3"},
])
def test_export_is_exact_with_any_batchnorm(config, digits):
    torch.manual_seed(0)
    model = _randomize_batchnorm(QuantNet(config), seed=1)
    net = export(model, "random")
    images = digits.test_x[:64]
    assert first_mismatch(golden.run(net, images), integer_trace(model, images)) is None
    # Thresholds track the float model: hidden activations agree with torch's float forward
    # except where float rounding lands exactly on a threshold (never for these seeds).
    with torch.no_grad():
        first, second = [m for m in model.body if hasattr(m, "weight_quantizer")][:2]
        y = model.body[1](first(model.prepare_input(images)))
        activation = second.input_quantizer
        expected = activation(y).numpy()
    got = golden.run(net, images)[0].out
    if expected.ndim == 4:
        expected = expected.transpose(0, 2, 3, 1)
    assert np.array_equal(got, expected)


def test_negative_scale_negates_weights():
    model = QuantNet({"arch": "mlp", "dense": [4], "weights": "binary"})
    bn = model.body[1]
    bn.weight.data = torch.tensor([1.0, -1.0, 1.0, -1.0])
    model.eval()
    net = export(model, "flip")
    q = model.body[0].integer_weights().values.numpy().astype(int)
    assert np.array_equal(net.layers[0].weights.values(), q * np.array([[1], [-1], [1], [-1]]))


def test_unsupported_layer_is_named():
    model = QuantNet({"arch": "mlp", "dense": [4]})
    model.body.insert(2, nn.ReLU())
    with pytest.raises(HwbnnError, match=r"body\[2\]: layer ReLU is not supported"):
        export(model, "bad")


def test_float_model_cannot_be_exported():
    model = QuantNet({"arch": "mlp", "dense": [4], "weights": "float", "activations": "float"})
    with pytest.raises(HwbnnError, match="float layers cannot be exported"):
        export(model, "float")
