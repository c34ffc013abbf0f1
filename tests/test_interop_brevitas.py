"""Brevitas' own bnn_pynq models, exported unchanged by both of Brevitas' QONNX paths, import
and run exactly: labels equal and integer scores equal up to one positive scale against
Brevitas' torch forward and qonnx's executor, on random pixel frames and (28x28 models)
digits drawn 3x larger."""

import contextlib
import functools
import io
import logging
import warnings

import numpy as np
import pytest

import hwbnn
from hwbnn import data
from hwbnn.interop.qonnx import run_qonnx
from hwbnn.ir import to_bytes
from hwbnn.ir.network import NetworkIR
from hwbnn.ref import golden

from .float_reference import assert_scores_match
from .tooling import require

# Every bnn_pynq model of Brevitas' model zoo but resnet18 (brevitas_examples/bnn_pynq/cfg).
MODELS = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a",
          "lfc_1w1a", "lfc_1w2a", "cnv_1w1a", "cnv_1w2a", "cnv_2w2a"]
EXPORTERS = ["torchscript", "dynamo"]
RANDOM_FRAMES = 300
GOLDEN_FRAMES = 24  # golden (int64 numpy) on these; the packed engine on all


def _brevitas():
    try:
        import onnxoptimizer  # noqa: F401  (Brevitas' TorchScript export runs its passes)
        from brevitas.export import export_qonnx
        from brevitas_examples.bnn_pynq.models import model_with_cfg
    except ImportError as error:
        require(False, f"Brevitas is not installed ({error}): pip install 'hwbnn[brevitas]'")
    return export_qonnx, model_with_cfg


def _randomize_statistics(model, seed: int) -> None:
    """BatchNorm and TensorNorm parameters as after training (Brevitas initializes them to
    the identity): scales of both signs, offsets about the accumulators' spread."""
    import torch
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    generator = torch.Generator().manual_seed(seed)

    def uniform(n, low, high):
        return low + (high - low) * torch.rand(n, generator=generator)

    fan_in = 1
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            fan_in = weight[0].numel()
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            n = module.num_features
            sign = torch.where(torch.rand(n, generator=generator) < 0.3, -1.0, 1.0)
            module.weight.data = uniform(n, 0.5, 1.5) * sign
            module.bias.data = torch.randn(n, generator=generator) * 0.3
            module.running_mean.data = torch.randn(n, generator=generator) * 0.3 * fan_in ** 0.5
            module.running_var.data = uniform(n, 0.5, 1.5) * fan_in
        if isinstance(module, TensorNorm):
            # A negative weight on every other model: scores negated, labels by argmin.
            sign = -1.0 if seed % 2 else 1.0
            module.weight.data = uniform(1, 0.2, 1.2) * sign
            module.bias.data = torch.randn(1, generator=generator)
            module.running_mean.data = torch.randn(1, generator=generator)
            module.running_var.data = uniform(1, 0.5, 1.5)


def _digits_28x28() -> np.ndarray:
    """The digits test split drawn 3x larger and centred in 28x28 (MNIST's frame), as float
    inputs in [0, 1] (pixel / 16), NCHW."""
    pixels = data.load("digits").test_x[..., 0]
    large = np.pad(pixels.repeat(3, axis=1).repeat(3, axis=2), ((0, 0), (2, 2), (2, 2)))
    return (large[:, None] / 16).astype(np.float32)


@functools.cache
def _case(name: str):
    """The Brevitas model (seeded weights and statistics) and its float inputs."""
    import torch

    _, model_with_cfg = _brevitas()
    index = MODELS.index(name)
    torch.manual_seed(index)
    model, _ = model_with_cfg(name, pretrained=False)
    _randomize_statistics(model, index)
    model.eval()
    shape = (3, 32, 32) if name.startswith("cnv") else (1, 28, 28)
    rng = np.random.default_rng(index)
    inputs = (rng.integers(0, 256, (RANDOM_FRAMES, *shape)) / 255).astype(np.float32)
    if shape == (1, 28, 28):
        inputs = np.concatenate([inputs, _digits_28x28()])
    with torch.no_grad():
        scores = model(torch.from_numpy(inputs)).numpy()
    return model, inputs, scores


@functools.cache
def _exported(name: str, exporter: str, tmp: str):
    """The export (batch = all inputs, so qonnx's executor runs them at once) and its
    import."""
    import torch

    export_qonnx, _ = _brevitas()
    model, inputs, _ = _case(name)
    if exporter == "dynamo":
        from brevitas import export as brevitas_export

        if not getattr(brevitas_export, "_DYNAMO_AVAILABLE", False):
            pytest.skip("this Brevitas/torch has no dynamo QONNX export")
    path = f"{tmp}/{name}_{exporter}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            export_qonnx(model, torch.from_numpy(inputs), path, dynamo=exporter == "dynamo")
        finally:
            logging.disable(logging.NOTSET)
    return path, hwbnn.load(path)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("brevitas"))


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", MODELS)
def test_bnn_pynq_model_imports_and_runs_exactly(name, exporter, export_dir):
    _, inputs, torch_scores = _case(name)
    path, model = _exported(name, exporter, export_dir)
    frames = model.quantize_input(inputs)
    scores = model.scores(frames, engine="packed")
    np.testing.assert_array_equal(golden.scores(model.net, frames[:GOLDEN_FRAMES]),
                                  scores[:GOLDEN_FRAMES])
    assert_scores_match(torch_scores, scores, f"{name} ({exporter}) vs Brevitas' torch forward")
    import onnx

    executor_scores = run_qonnx(onnx.load(path), inputs)
    assert_scores_match(executor_scores, scores, f"{name} ({exporter}) vs qonnx's executor")


@pytest.mark.parametrize("name", MODELS)
def test_both_exporters_give_the_same_integer_network(name, export_dir):
    nets = [_exported(name, exporter, export_dir)[1].net for exporter in EXPORTERS]
    assert nets[0].metadata["input_quantizer"] == nets[1].metadata["input_quantizer"]
    same = [NetworkIR(name, net.input_shape, net.input_encoding, net.layers) for net in nets]
    assert to_bytes(same[0]) == to_bytes(same[1])


def test_what_the_imports_are(export_dir):
    """The input step and the last normalization land where docs/design.md says."""
    tfc = _exported("tfc_1w1a", "torchscript", export_dir)[1]
    assert (tfc.net.input_shape, tfc.net.input_encoding) == ((28, 28, 1), "binary")
    assert [layer.out_encoding for layer in tfc.net.layers] == ["binary"] * 3 + [None]
    # 2x - 1, then a sign that is +1 at 0: hwbnn's own binarization of pixels.
    pixels = np.arange(256)
    frames = tfc.quantize_input(np.broadcast_to(pixels[:, None, None, None] / 255,
                                                (256, 1, 28, 28)))
    np.testing.assert_array_equal(frames[:, 0, 0, 0], data.binarize(pixels, 255))
    ternary = _exported("tfc_2w2a", "dynamo", export_dir)[1]
    assert ternary.net.input_encoding == "ternary"
    cnv = _exported("cnv_2w2a", "dynamo", export_dir)[1]
    assert (cnv.net.input_shape, cnv.net.input_encoding) == ((32, 32, 3), "uint8")
    # 8-bit signed input (scale 2^-7 on 2x - 1) counted from -128: uint8 = q + 128.
    assert cnv.net.metadata["input_quantizer"] == {"gain": 256.0, "bias": -128.0, "lo": -128,
                                                   "hi": 127, "rounding": "ROUND"}
    assert [type(layer).__name__ for layer in cnv.net.layers] == (
        ["Conv", "Conv", "MaxPool"] * 2 + ["Conv", "Conv", "MatVec", "MatVec", "MatVec"])
