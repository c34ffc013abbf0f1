"""Synthetic benchmark models: FINN-sized architectures, seeded weights, calibrated thresholds."""

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.data import random_frames
from hwbnn.ir.network import Conv, MatVec, MaxPool
from hwbnn.ref import golden, packed
from hwbnn.ref.compare import first_mismatch
from hwbnn.zoo import synthetic
from hwbnn.zoo.synthetic import SYNTHETIC

NAMES = [f"{arch}_{variant}" for arch in ("lfc", "cnv")
         for variant in ("w1a1", "ternary", "mix14", "mix14_col")]
GRAPHS = ["resnet8_w1a1"]


@pytest.fixture(scope="module")
def models():
    return {name: zoo.load(f"zoo:{name}") for name in NAMES}


def test_registry_holds_lfc_and_cnv_variants():
    assert sorted(SYNTHETIC) == sorted(NAMES + GRAPHS)
    assert set(NAMES + GRAPHS) <= set(zoo.names())


def test_resnet8_is_a_residual_bnn_for_32x32x3():
    """The family of zoo:digits_resnet_w1a1 at CIFAR-10 size: 8-bit stem and head, six
    binary 3x3 convs, two stride-2 downsamplings with pooled 1x1 shortcuts, global pooling;
    exported exactly (golden == packed on every layer); its signs are balanced."""
    net = zoo.load("zoo:resnet8_w1a1")
    assert net.input_shape == (32, 32, 3) and net.input_encoding == "uint8"
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    binary = [layer for layer in convs if layer.weights.kind == "binary"]
    assert len(binary) == 6 and all(layer.kernel == 3 for layer in binary)
    assert [layer.stride for layer in binary] == [1, 1, 2, 1, 2, 1]
    assert [layer.out_shape for layer in binary[::2]] == [(32, 32, 16), (16, 16, 32),
                                                         (8, 8, 64)]
    assert net.weight_layers[0].weights.kind == net.weight_layers[-1].weights.kind == "integer"
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("add") == 6 and kinds.count("avgpool") == 2
    assert kinds[-2:] == ["globalavgpool", "matvec"]
    frames = random_frames(np.random.default_rng(5), net.input_shape, net.input_encoding, 1)
    expected = golden.run(net, frames)
    assert first_mismatch(expected, packed.run(net, frames)) is None
    for layer, step in zip(net.layers, expected, strict=True):
        if layer.kind == "threshold":
            assert 0.2 < np.mean(step.out > 0) < 0.8, layer.name


@pytest.mark.parametrize("variant", ["w1a1", "ternary", "mix14"])
def test_lfc_topology(models, variant):
    net = models[f"lfc_{variant}"]
    assert net.input_shape == (28, 28, 1) and net.input_encoding == "binary"
    assert all(isinstance(layer, MatVec) for layer in net.layers)
    assert [(layer.mw, layer.mh) for layer in net.layers] == [
        (784, 1024), (1024, 1024), (1024, 1024), (1024, 10)]


@pytest.mark.parametrize("variant", ["w1a1", "ternary", "mix14"])
def test_cnv_topology(models, variant):
    net = models[f"cnv_{variant}"]
    assert net.input_shape == (32, 32, 3) and net.input_encoding == "uint8"
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    assert [layer.mh for layer in convs] == [64, 64, 128, 128, 256, 256]
    assert all(layer.kernel == 3 and layer.padding == 0 for layer in convs)
    kinds = [layer.kind for layer in net.layers]
    assert kinds == ["conv", "conv", "maxpool", "conv", "conv", "maxpool", "conv", "conv",
                     "matvec", "matvec", "matvec"]
    assert [layer.out_shape for layer in net.layers if isinstance(layer, MaxPool)] == [
        (14, 14, 64), (5, 5, 128)]
    assert convs[-1].out_shape == (1, 1, 256)
    assert [(layer.mw, layer.mh) for layer in net.layers[-3:]] == [
        (256, 512), (512, 512), (512, 10)]


@pytest.mark.parametrize("name,weights,activation", [
    ("lfc_w1a1", "binary", "binary"), ("lfc_ternary", "ternary", "ternary"),
    ("cnv_mix14", "residual", "binary")])
def test_variants_have_their_encodings(models, name, weights, activation):
    net = models[name]
    assert {layer.weights.kind for layer in net.weight_layers} == {weights}
    assert {layer.out_encoding for layer in net.weight_layers[:-1]} == {activation}
    assert net.weight_layers[-1].produces_scores


@pytest.mark.parametrize("name", ["lfc_mix14", "lfc_mix14_col", "cnv_mix14_col"])
def test_mix14_hits_its_bit_mix_and_scales(models, name):
    for layer in models[name].weight_layers:
        mix = layer.weights.mix()
        # within a column of the fraction (a first conv has 27 columns)
        assert all(abs(mix[b] - f) <= 1 / layer.mw for b, f in zip((1, 2, 3), (0.7, 0.2, 0.1),
                                                                   strict=True))
        assert layer.weights.scales.tolist() == [4, 2, 1]
        assert abs(layer.weights.bitwidths().mean() - 1.4) <= 1 / layer.mw


@pytest.mark.parametrize("name,per_column", [("lfc_mix14", False), ("lfc_mix14_col", True),
                                             ("cnv_mix14_col", True)])
def test_column_variants_give_every_row_of_a_column_one_bitwidth(models, name, per_column):
    for layer in models[name].weight_layers:
        bitwidth = layer.weights.bitwidth
        assert (bitwidth == bitwidth[:1]).all() == per_column


def test_builds_are_reproducible_and_the_seed_matters():
    first, again = SYNTHETIC["lfc_w1a1"](), SYNTHETIC["lfc_w1a1"]()
    other = synthetic.build("other", synthetic.LFC, "binary", "binary", seed=synthetic.SEED + 1)
    for a, b, c in zip(first.layers, again.layers, other.layers, strict=True):
        assert np.array_equal(a.weights.planes, b.weights.planes)
        assert np.array_equal(a.thresholds, b.thresholds) or a.thresholds is None
        assert not np.array_equal(a.weights.planes, c.weights.planes)


@pytest.mark.parametrize("name", NAMES)
def test_thresholds_balance_activations_on_fresh_frames(models, name):
    """Calibrated thresholds: every hidden layer's outputs take every value of the encoding,
    none of them on more than ~3/4 of the elements (a pool's OR of +1s excepted)."""
    net = models[name]
    frames = random_frames(np.random.default_rng(11), net.input_shape, net.input_encoding, 2)
    trace = golden.run(net, frames)
    for layer, step in zip(net.layers[:-1], trace[:-1], strict=True):
        if isinstance(layer, MaxPool):
            continue
        values, counts = np.unique(step.out, return_counts=True)
        expected = [-1, 1] if layer.out_encoding == "binary" else [-1, 0, 1]
        assert values.tolist() == expected, layer.name
        assert counts.max() / counts.sum() < 0.75, layer.name


def test_fitted_thresholds_are_quantiles():
    acc = np.arange(12).reshape(4, 3)  # channel j sees j, j+3, j+6, j+9
    assert synthetic.fitted_thresholds(acc, "binary").tolist() == [[3], [4], [5]]
    assert synthetic.fitted_thresholds(acc, "ternary").tolist() == [[3, 6], [4, 7], [5, 8]]
