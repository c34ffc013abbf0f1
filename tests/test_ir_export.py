"""Export: BatchNorm folding, sign flips, exactness of integer torch == golden."""

import numpy as np
import pytest
import torch
from torch import nn

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.ir import fileformat
from hwbnn.ir.export import export, integer_trace, three_way_mismatch
from hwbnn.quant.models import QuantNet
from hwbnn.quant.resnet import ResidualBlock
from hwbnn.ref import golden
from hwbnn.ref.compare import first_mismatch
from hwbnn.train import TrainSettings, load_checkpoint, train

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
        assert (a.kind, a.name, a.inputs) == (b.kind, b.name, b.inputs)
        if hasattr(a, "weights"):
            assert np.array_equal(a.weights.values(), b.weights.values())
        if hasattr(a, "thresholds"):  # weight, add and threshold layers
            assert (a.thresholds is None) == (b.thresholds is None)
            if a.thresholds is not None:
                assert np.array_equal(a.thresholds, b.thresholds)


def _randomize_batchnorm(model, seed):
    """BatchNorm with negative, zero and positive scales and offsets (a resnet's sign shifts
    too)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.body.modules():
        if isinstance(module, ResidualBlock):
            module.shift.data = torch.randn(len(module.shift), generator=generator)
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


# --- residual networks ------------------------------------------------------------------

TINY_RESNETS = [
    # stride-1 block, stride-2 downsampling block (avgpool + 1x1 shortcut), then a stride-1
    # block that widens (1x1 shortcut, no pool)
    {"arch": "resnet", "stem": 6, "blocks": [[6, 1], [8, 2], [10, 1]]},
    # int4 path on a coarse grid, ternary signs, 2-bit residual block weights, 4-bit edges
    {"arch": "resnet", "stem": 4, "blocks": [[6, 2], [6, 1]], "path": "int4",
     "path_step": 0.5, "activations": "ternary", "weights": "w2", "edge_weights": "int4"},
]


def _trained_tiny_resnet(config, digits, steps=5):
    settings = TrainSettings(epochs=1, batch_size=32, seed=3)
    return train(config, digits, settings, progress=False, max_steps=steps)


@pytest.mark.parametrize("config", TINY_RESNETS)
@pytest.mark.parametrize("seed", [1, 2])
def test_resnet_export_is_exact_with_any_batchnorm(config, seed, digits):
    """A few training steps, then BatchNorm with negative, zero and positive scales (on both
    branches of an add) and random sign shifts: integer torch == golden == packed on every
    layer, and every path tensor of the float model is the golden one times the path step."""
    model = _randomize_batchnorm(_trained_tiny_resnet(config, digits), seed)
    net = export(model, "tiny")
    images = digits.test_x
    assert three_way_mismatch(model, net, images) is None
    blocks = {}
    hooks = [block.register_forward_hook(
        lambda module, args, out, index=index: blocks.__setitem__(index, out))
        for index, block in enumerate(model.body.blocks)]
    with torch.no_grad():
        model(model.prepare_input(images))
    for hook in hooks:
        hook.remove()
    trace = {t.name: t.out for t in golden.run(net, images)}
    step = model.config["path_step"]
    for index, out in blocks.items():
        expected = trace[f"block{index}_add"]
        assert np.array_equal(out.numpy().transpose(0, 2, 3, 1) / step, expected)
        assert len(np.unique(expected)) > 3  # the path carries more than signs


def test_resnet_export_layers_shapes_and_encodings(digits):
    model = _trained_tiny_resnet(TINY_RESNETS[0], digits, steps=1)
    net = export(model, "tiny")
    layers = {layer.name: layer for layer in net.layers}
    assert [layer.kind for layer in net.layers] == [
        "conv", "threshold", "conv", "add", "threshold", "conv", "avgpool", "conv", "add",
        "threshold", "conv", "conv", "add", "globalavgpool", "matvec"]
    assert layers["stem"].weights.kind == "integer" and layers["stem"].in_encoding == "uint5"
    assert layers["stem"].weights.planes.shape == (8, 6, 9)
    assert layers["block1_conv"].stride == 2 and layers["block1_conv"].weights.kind == "binary"
    assert layers["block1_pool"].out_encoding == "int10"
    assert layers["block1_short"].in_encoding == "int10" and layers["block1_short"].kernel == 1
    assert layers["block1_add"].inputs == ("block1_conv", "block1_short")
    assert layers["block0_add"].inputs == ("block0_conv", "stem")
    assert layers["block0_add"].scales == (1, 1) and layers["block0_add"].thresholds is None
    assert layers["block2_short"].inputs == ("block1_add",)  # widening, stride 1: no pool
    assert layers["gap"].out_encoding == "int12" and layers["fc"].in_encoding == "int12"
    assert layers["fc"].weights.kind == "integer" and layers["fc"].produces_scores
    assert net.v2_features() and fileformat.from_bytes(fileformat.to_bytes(net)).layers[
        1].kind == "threshold"


def test_a_negative_scale_before_an_add_negates_the_convs_weights(digits):
    """The conv's output is the quantized BatchNorm value, so FINN's negation is exact there:
    the add reads the same int8 values either way."""
    model = _trained_tiny_resnet(TINY_RESNETS[0], digits, steps=1)
    block = model.body.blocks[0]
    block.bn.weight.data = -block.bn.weight.data.abs()
    net = export(model.eval(), "negative")
    q = block.conv.integer_weights().values.numpy().astype(int)
    assert np.array_equal(net.layers[2].weights.values(), -q)
    assert three_way_mismatch(model, net, digits.test_x[:50]) is None


@pytest.mark.parametrize("edit,message", [
    ({"blocks": []}, "blocks must be a non-empty list"),
    ({"blocks": [[8, 3]]}, "blocks\\[0\\] must be \\[channels, stride\\] with stride 1 or 2"),
    ({"blocks": [[8, 2], [8, 2], [8, 2], [8, 2]]}, "blocks\\[3\\]: a stride-2 block needs an "
                                                   "even input, not 1x1"),
    ({"edge_weights": "binary"}, "edge_weights must be one of int2..int8"),
    ({"path": "uint8"}, "path must be a signed encoding"),
    ({"path_step": 0.1}, "path_step must be a positive power of two, not 0.1"),
    ({"activations": "uint2"}, "activations .* must be binary or ternary"),
    ({"dense": [8]}, "unknown resnet config key\\(s\\): dense"),
    ({"stem": 0}, "stem must be a positive channel count"),
])
def test_bad_resnet_configs_are_one_line_errors(edit, message):
    with pytest.raises(HwbnnError, match=message) as error:
        QuantNet({"arch": "resnet", **edit})
    assert "\n" not in str(error.value)
