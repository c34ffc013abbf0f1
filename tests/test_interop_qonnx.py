"""QONNX interchange: zoo exports run by qonnx's executor == golden, byte-identical round trip,
Brevitas-style graphs imported bit-exactly, one clear error per unsupported node."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hwbnn
from hwbnn import zoo
from hwbnn.bench import fuzz
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.interop.qonnx import (
    export_qonnx,
    images_to_input,
    import_qonnx,
    run_qonnx,
    save_qonnx,
)
from hwbnn.ir import to_bytes
from hwbnn.ir.network import MaxPool, Weights, accumulator_range, accumulator_width
from hwbnn.ref import golden

from .float_reference import assert_scores_match

QONNX = "qonnx.custom_op.general"
ZOO_MODELS = ["digits_mlp_w1a1", "digits_mlp_ternary", "digits_mlp_w2", "digits_mlp_mix14",
              "digits_cnn_w1a1"]


def _nhwc(values):
    return values.transpose(0, 2, 3, 1) if values.ndim == 4 else values


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_export_runs_exactly_in_qonnx_executor(name, digits):
    net = zoo.load(f"zoo:{name}")
    model = export_qonnx(net, batch=len(digits.test_x))
    onnx.checker.check_model(model)
    context = run_qonnx(model, images_to_input(net, digits.test_x), full_context=True)
    trace = golden.run(net, digits.test_x)
    for layer, step in zip(net.layers[:-1], trace[:-1], strict=True):
        tensor = context[f"{layer.name}_out"]
        np.testing.assert_array_equal(_nhwc(tensor).astype(np.int64), step.out)
    scores = context["global_out"]
    assert (scores == np.round(scores)).all()
    np.testing.assert_array_equal(scores.astype(np.int64), trace[-1].out)


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_round_trip_gives_identical_model_file(name, tmp_path):
    net = zoo.load(f"zoo:{name}")
    path = save_qonnx(net, tmp_path / f"{name}.onnx")
    assert to_bytes(import_qonnx(path)) == zoo.model_path(name).read_bytes()


def test_round_trip_of_other_layer_forms():
    """uint2 thresholds, ternary and residual convs, -1 padding (the imported Brevitas CNN),
    and residual weights that all use a single plane."""
    cnn = import_qonnx(brevitas_cnn(1)[0])
    assert to_bytes(import_qonnx(export_qonnx(cnn))) == to_bytes(cnn)
    net = zoo.load("zoo:digits_mlp_w1a1")
    layer = net.layers[1]
    signs = layer.weights.values()[None]
    layer.weights = Weights.residual(signs, np.ones(signs.shape[1:]), [3])
    layer.acc_range = accumulator_range(layer.weights.values(), layer.in_encoding)
    layer.acc_width = accumulator_width(layer.acc_range, layer.thresholds)
    layer.pe, layer.simd = 4, 8
    back = import_qonnx(export_qonnx(net.validate()))
    assert back.layers[1].weights.kind == "residual"
    assert to_bytes(back) == to_bytes(net)


def test_export_is_reproducible(tmp_path):
    net = zoo.load("zoo:digits_mlp_mix14")
    first = save_qonnx(net, tmp_path / "a.onnx").read_bytes()
    assert save_qonnx(net, tmp_path / "b.onnx").read_bytes() == first


def test_import_without_hwbnn_hints_keeps_the_integer_network(digits):
    """Names and folding come from metadata_props; the integers come from the graph alone."""
    net = zoo.load("zoo:digits_cnn_w1a1")
    model = export_qonnx(net)
    del model.metadata_props[:]
    imported = import_qonnx(model, name="plain")
    assert [type(layer) for layer in imported.layers] == [type(layer) for layer in net.layers]
    assert imported.name == "plain"
    assert imported.metadata["imported_from"] == "qonnx"
    for ours, theirs in zip(imported.weight_layers, net.weight_layers, strict=True):
        np.testing.assert_array_equal(ours.weights.values(), theirs.weights.values())
        if theirs.thresholds is not None:
            np.testing.assert_array_equal(ours.thresholds, theirs.thresholds)
    np.testing.assert_array_equal(golden.scores(imported, digits.test_x),
                                  golden.scores(net, digits.test_x))


# --- Brevitas-style graphs, written with onnx helper functions ------------------------------


class _Graph:
    """A small ONNX graph builder in the style of a Brevitas QONNX export."""

    def __init__(self):
        self.nodes, self.initializers = [], []

    def const(self, name, value, dtype=np.float32):
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, output, domain="", **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"/{output}/{op}",
                                           domain=domain, **attrs))
        return output

    def quant(self, x, name, scale, bits, signed, narrow=0):
        inputs = [x, self.const(f"{name}.scale", scale), self.const(f"{name}.zero_point", 0.0),
                  self.const(f"{name}.bit_width", float(bits))]
        return self.node("Quant", inputs, name, domain=QONNX, signed=signed, narrow=narrow,
                         rounding_mode="ROUND")

    def batchnorm(self, x, name, rng, channels, spread):
        gamma = rng.uniform(0.5, 1.5, channels) * rng.choice([-1, 1], channels)
        inputs = [x, self.const(f"{name}.weight", gamma),
                  self.const(f"{name}.bias", rng.normal(0, 0.2, channels)),
                  self.const(f"{name}.running_mean", rng.normal(0, spread, channels)),
                  self.const(f"{name}.running_var", rng.uniform(0.5, 2.0, channels) * spread)]
        return self.node("BatchNormalization", inputs, f"{name}_out", epsilon=1e-5)

    def model(self, input_shape, output, output_shape):
        graph = helper.make_graph(
            self.nodes, "brevitas_style",
            [helper.make_tensor_value_info("inp", TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            initializer=self.initializers)
        model = helper.make_model(graph, producer_name="brevitas-style test", ir_version=8,
                                  opset_imports=[helper.make_opsetid("", 13),
                                                 helper.make_opsetid(QONNX, 1)])
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import InferShapes

        return ModelWrapper(model).transform(InferShapes()).model


def brevitas_mlp(batch, seed=0):
    """uint5 input -> 64-32-32-10 bipolar MLP with bias, BatchNorm (some negative scales)."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.node("Flatten", [g.quant("inp", "input_quant", 1.0, 5, signed=0)], "flat", axis=1)
    widths = [64, 32, 32, 10]
    spreads = [4.0, 0.6, 0.6]
    # Hidden scales are arbitrary (thresholds absorb them); the last layer's are powers of
    # two times the act scale 1.5, so the float scores are exact multiples of the integers.
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        scale = [0.05, 0.1, 0.125][i]
        w = g.const(f"fc{i}.weight", rng.normal(0, 1, (fan_in, fan_out)))
        wq = g.node("BipolarQuant", [w, g.const(f"fc{i}.weight_scale", scale)], f"fc{i}_wq",
                    domain=QONNX)
        x = g.node("MatMul", [x, wq], f"fc{i}_mm")
        if i == len(widths) - 2:
            x = g.node("Mul", [x, g.const("tensor_norm.scale", 0.5)], "scores")
            break
        x = g.node("Add", [x, g.const(f"fc{i}.bias", rng.normal(0, 0.1, fan_out))], f"fc{i}")
        x = g.batchnorm(x, f"bn{i}", rng, fan_out, spreads[i])
        x = g.node("BipolarQuant", [x, g.const(f"act{i}.scale", 0.5 + i)], f"act{i}",
                   domain=QONNX)
    model = g.model([batch, 1, 8, 8], "scores", [batch, 10])
    return model, ["act0", "act1"], [0.5, 1.5], 1.5 * 0.125 * 0.5


def brevitas_cnn(batch, seed=1):
    """uint5 -> conv 2-bit weights, BN, maxpool, bipolar -> Pad(-1), conv 3-bit weights, BN,
    uint2 -> Flatten (NCHW order) -> Gemm(transB) with bipolar weights -> 10 scores."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.quant("inp", "input_quant", 1.0, 5, signed=0)
    w0 = g.quant(g.const("conv0.weight", rng.normal(0, 0.3, (8, 1, 3, 3))), "conv0_wq",
                 rng.uniform(0.1, 0.3, (8, 1, 1, 1)), 2, signed=1, narrow=1)
    x = g.node("Conv", [x, w0, g.const("conv0.bias", rng.normal(0, 0.5, 8))], "conv0",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = g.batchnorm(x, "bn0", rng, 8, 3.0)
    x = g.node("MaxPool", [x], "pool0", kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("BipolarQuant", [x, g.const("act0.scale", 1.0)], "act0", domain=QONNX)
    pads = g.const("pad1.pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)
    x = g.node("Pad", [x, pads, g.const("pad1.value", -1.0)], "pad1", mode="constant")
    w1 = g.quant(g.const("conv1.weight", rng.normal(0, 0.2, (16, 8, 3, 3))), "conv1_wq",
                 0.1, 3, signed=1, narrow=1)
    x = g.node("Conv", [x, w1], "conv1", kernel_shape=[3, 3], pads=[0, 0, 0, 0])
    x = g.batchnorm(x, "bn1", rng, 16, 2.0)
    x = g.quant(x, "act1", 0.25, 2, signed=0)
    x = g.node("Flatten", [x], "flat", axis=1)
    w2 = g.const("fc.weight", rng.normal(0, 1, (10, 256)))
    w2 = g.node("BipolarQuant", [w2, g.const("fc.weight_scale", 2.0 ** -6)], "fc_wq",
                domain=QONNX)
    x = g.node("Gemm", [x, w2], "scores", transB=1)
    model = g.model([batch, 1, 8, 8], "scores", [batch, 10])
    return model, ["act0", "act1"], [1.0, 0.25], 0.25 * 2.0 ** -6


@pytest.mark.parametrize("build", [brevitas_mlp, brevitas_cnn])
def test_brevitas_style_graph_imports_bit_exactly(build, digits):
    model, activations, scales, score_factor = build(len(digits.test_x))
    frames = digits.test_x.transpose(0, 3, 1, 2).astype(np.float32)
    context = run_qonnx(model, frames, full_context=True)
    net = import_qonnx(model)
    trace = golden.run(net, digits.test_x)
    # The activations the graph feeds on: each weight layer's (pooled) output.
    outputs = [step.out for layer, step in zip(net.layers, trace, strict=True)
               if not isinstance(layer, MaxPool)] if build is brevitas_mlp else [
                   trace[1].out, trace[2].out]
    for name, scale, out in zip(activations, scales, outputs, strict=False):
        values = _nhwc(context[name]) / scale
        np.testing.assert_array_equal(values.astype(np.int64), out)
        assert len(np.unique(out)) > 1, "the test network must not have constant activations"
    np.testing.assert_array_equal(context["scores"], trace[-1].out * score_factor)


def test_brevitas_style_weights_become_the_expected_kinds():
    mlp, cnn = brevitas_mlp(1)[0], brevitas_cnn(1)[0]
    assert [layer.weights.kind for layer in import_qonnx(mlp).weight_layers] == ["binary"] * 3
    net = import_qonnx(cnn)
    assert [layer.kind for layer in net.layers] == ["conv", "maxpool", "conv", "matvec"]
    assert [layer.weights.kind for layer in net.weight_layers] == [
        "ternary", "residual", "binary"]
    assert [net.layers[0].out_encoding, net.layers[2].out_encoding] == ["binary", "uint2"]
    assert net.layers[2].padding == 1 and net.layers[2].in_encoding == "binary"


def _tensor_norm(g, x, weight):
    """Brevitas' TensorNorm as its TorchScript export writes it: (x - mean) / (var + eps) **
    0.5 * weight + bias, one number each."""
    x = g.node("Sub", [x, g.const("tn.mean", [0.3])], "tn_sub")
    root = g.node("Pow", [g.const("tn.var_eps", [1.5]), g.const("tn.half", 0.5)], "tn_pow")
    x = g.node("Div", [x, root], "tn_div")
    x = g.node("Mul", [x, g.const("tn.weight", [weight])], "tn_mul")
    return g.node("Add", [x, g.const("tn.bias", [0.7])], "scores")


def brevitas_input_step_mlp(batch, seed=3):
    """bnn_pynq's FC: x.view(N, -1), 2x - 1, a sign, bipolar dense layers, TensorNorm."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.node("Reshape", ["inp", g.const("view", [batch, -1], np.int64)], "flat")
    x = g.node("Mul", [x, g.const("two", 2.0)], "times2")
    x = g.node("Sub", [x, g.const("one", [1.0])], "minus1")
    x = g.node("BipolarQuant", [x, g.const("in.scale", 1.0)], "in_q", domain=QONNX)
    w0 = g.node("BipolarQuant", [g.const("w0", rng.normal(0, 1, (64, 32))),
                                 g.const("w0.scale", 1.0)], "w0_q", domain=QONNX)
    x = g.batchnorm(g.node("MatMul", [x, w0], "mm0"), "bn0", rng, 32, 8.0)
    x = g.node("BipolarQuant", [x, g.const("act0.scale", 1.0)], "act0", domain=QONNX)
    w1 = g.node("BipolarQuant", [g.const("w1", rng.normal(0, 1, (32, 10))),
                                 g.const("w1.scale", 1.0)], "w1_q", domain=QONNX)
    _tensor_norm(g, g.node("MatMul", [x, w1], "mm1"), -0.8)
    return g.model([batch, 1, 8, 8], "scores", [batch, 10])


def brevitas_input_step_cnn(batch, seed=4):
    """bnn_pynq's CNV: 2x - 1 into a signed 8-bit quantizer (scale 2^-7), conv, BatchNorm,
    ternary activations, max pooling, flatten, dense, TensorNorm."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    x = g.node("Mul", ["inp", g.const("two", 2.0)], "times2")
    x = g.node("Sub", [x, g.const("one", [1.0])], "minus1")
    x = g.quant(x, "in_q", 2.0 ** -7, 8, signed=1)
    w0 = g.node("BipolarQuant", [g.const("w0", rng.normal(0, 1, (8, 3, 3, 3))),
                                 g.const("w0.scale", 1.0)], "w0_q", domain=QONNX)
    x = g.batchnorm(g.node("Conv", [x, w0], "conv0", kernel_shape=[3, 3]), "bn0", rng, 8, 4.0)
    x = g.quant(x, "act0", 1.0, 2, signed=1, narrow=1)
    x = g.node("MaxPool", [x], "pool0", kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Reshape", [x, g.const("view", [batch, -1], np.int64)], "flat")
    w1 = g.quant(g.const("w1", rng.normal(0, 1, (72, 10))), "w1_q", 1.0, 2, signed=1, narrow=1)
    _tensor_norm(g, g.node("MatMul", [x, w1], "mm1"), 1.3)
    return g.model([batch, 3, 8, 8], "scores", [batch, 10])


@pytest.mark.parametrize("build, channels, encoding", [
    (brevitas_input_step_mlp, 1, "binary"), (brevitas_input_step_cnn, 3, "uint8")])
def test_brevitas_input_step_and_tensor_norm_import_exactly(build, channels, encoding,
                                                           tmp_path):
    """Pixels scaled to [0, 1] through the graph's own 2x - 1 and input quantizer; the
    TensorNorm at the end (a negative weight in the MLP) is one scale and offset. The input
    quantizer is kept in the model file."""
    pixels = np.random.default_rng(5).integers(0, 256, (400, channels, 8, 8))
    inputs = (pixels / 255).astype(np.float32)
    model = build(len(inputs))
    imported = hwbnn.load(hwbnn.load(import_qonnx(model)).save(tmp_path / "m.hwbnn"))
    assert imported.net.input_encoding == encoding
    scores = golden.scores(imported.net, imported.quantize_input(inputs))
    assert_scores_match(run_qonnx(model, inputs), scores, build.__name__)


def finn_streamlined_mlp(batch, seed=2):
    """FINN-style streamlined graph: UINT5-annotated flat input, integer MatMul, thresholds
    giving 0/1 activations, XnorPopcountMatMul with 0/1 weights, popcount outputs."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    w0 = g.const("w0", rng.choice([-1.0, 1.0], (64, 32)))
    x = g.node("MatMul", ["inp", w0], "mm0")
    t0 = np.sort(rng.integers(-60, 60, (32, 1)), axis=1).astype(np.float32)
    x = g.node("MultiThreshold", [x, g.const("t0", t0)], "act0", domain=QONNX,
               out_dtype="BINARY", out_scale=1.0, out_bias=0.0)
    x = g.node("XnorPopcountMatMul", [x, g.const("w1", rng.choice([0.0, 1.0], (32, 32)))],
               "pc1", domain=QONNX)
    t1 = rng.integers(10, 22, (32, 1)).astype(np.float32)
    x = g.node("MultiThreshold", [x, g.const("t1", t1)], "act1", domain=QONNX,
               out_dtype="BINARY", out_scale=1.0, out_bias=0.0)
    g.node("XnorPopcountMatMul", [x, g.const("w2", rng.choice([0.0, 1.0], (32, 10)))],
           "scores", domain=QONNX)
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(g.model([batch, 64], "scores", [batch, 10]))
    model.set_tensor_datatype("inp", DataType["UINT5"])
    return model.model


def test_finn_streamlined_graph_imports_bit_exactly(digits):
    frames = digits.test_x.reshape(len(digits.test_x), -1)
    model = finn_streamlined_mlp(len(frames))
    context = run_qonnx(model, frames.astype(np.float32), full_context=True)
    net = import_qonnx(model)
    assert net.input_shape == (64,) and net.input_encoding == "uint5"
    trace = golden.run(net, frames)
    for name, step in zip(["act0", "act1"], trace, strict=False):
        np.testing.assert_array_equal(context[name].astype(np.int64), (step.out + 1) // 2)
        assert len(np.unique(step.out)) > 1
    # popcount of xnor = (bipolar dot product + fan-in) / 2
    np.testing.assert_array_equal(context["scores"].astype(np.int64), (trace[-1].out + 32) // 2)


def test_identity_requantization_is_absorbed():
    """Brevitas may repeat an activation's quantizer (e.g. after pooling): no value changes."""
    model = brevitas_cnn(1)[0]
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    index = [n.name for n in model.graph.node].index("/act0/BipolarQuant")
    model.graph.initializer.append(numpy_helper.from_array(np.float32(1.0), "again.scale"))
    model.graph.node.insert(index + 1, helper.make_node(
        "BipolarQuant", ["act0", "again.scale"], ["act0_again"], name="/again/BipolarQuant",
        domain=QONNX))
    pad.input[0] = "act0_again"
    reference = import_qonnx(brevitas_cnn(1)[0])
    assert to_bytes(import_qonnx(model)) == to_bytes(reference)
    model.graph.initializer[-1].CopyFrom(numpy_helper.from_array(np.float32(2.0), "again.scale"))
    with pytest.raises(HwbnnError, match=r"'/again/BipolarQuant' \(BipolarQuant\): re-quant"):
        import_qonnx(model)


# --- unsupported graphs: one error naming the node and why ----------------------------------


def _tiny(extra_nodes, output="y", output_shape=(1, 4), conv=False):
    g = _Graph()
    x = g.quant("inp", "input_quant", 1.0, 2, signed=0)
    if conv:
        w = g.node("BipolarQuant", [g.const("w", np.ones((4, 1, 3, 3))),
                                    g.const("w_scale", 1.0)], "wq", domain=QONNX)
        g.node("Conv", [x, w], "y", kernel_shape=[3, 3], strides=[2, 1])
        return g.model([1, 1, 8, 8], "y", [1, 4, 3, 6])
    x = g.node("Flatten", [x], "flat", axis=1)
    w = g.node("BipolarQuant", [g.const("w", np.ones((64, 4))), g.const("w_scale", 1.0)], "wq",
               domain=QONNX)
    x = g.node("MatMul", [x, w], "mm")
    for op, attrs in extra_nodes:
        x = g.node(op, [x], f"{op.lower()}_out", **attrs)
    g.nodes[-1].output[0] = output
    return g.model([1, 1, 8, 8], output, list(output_shape))


@pytest.mark.parametrize("model, fragments", [
    (lambda: _tiny([("Relu", {})]), ["'/relu_out/Relu'", "(Relu)", "not in the supported"]),
    (lambda: _tiny([("Softmax", {"axis": 1})]), ["(Softmax)", "not in the supported"]),
    (lambda: _tiny([], conv=True), ["'/y/Conv'", "(Conv)", "strides [2, 1] must be two equal"]),
])
def test_unsupported_node_is_one_clear_error(model, fragments):
    with pytest.raises(HwbnnError) as error:
        import_qonnx(model())
    for fragment in fragments:
        assert fragment in str(error.value)


def test_zero_padding_of_binary_input_is_refused():
    model = brevitas_cnn(1)[0]
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    conv = next(n for n in model.graph.node if n.name == "/conv1/Conv")
    conv.input[0] = "act0"
    del conv.attribute[:]
    conv.attribute.extend([helper.make_attribute("kernel_shape", [3, 3]),
                           helper.make_attribute("pads", [1, 1, 1, 1])])
    model.graph.node.remove(pad)
    with pytest.raises(HwbnnError, match=r"'/conv1/Conv' \(Conv\): Conv pads with 0, but a "
                                         r"binary input pads with -1"):
        import_qonnx(model)


def test_export_refuses_values_float32_cannot_hold():
    net = zoo.load("zoo:digits_mlp_w1a1")
    layer = net.layers[0]
    layer.thresholds = layer.thresholds + 2 ** 25
    layer.acc_width = accumulator_width(layer.acc_range, layer.thresholds)
    with pytest.raises(HwbnnError, match="not exact in float32"):
        export_qonnx(net)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_export_then_import(tmp_path, capsys):
    onnx_path, model_path = tmp_path / "m.onnx", tmp_path / "m.hwbnn"
    assert main(["export", "--to", "qonnx", "zoo:digits_mlp_ternary", "-o", str(onnx_path)]) == 0
    assert main(["import", str(onnx_path), "-o", str(model_path)]) == 0
    assert model_path.read_bytes() == zoo.model_path("digits_mlp_ternary").read_bytes()
    assert "wrote" in capsys.readouterr().out


def test_cli_import_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["import", str(bad), "-o", str(tmp_path / "x")]) == 2
    assert main(["import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "x")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("hwbnn: error: ") for line in lines)
    assert "not an ONNX model" in lines[0] and "does not exist" in lines[1]


# --- the imported Brevitas-style graphs on the other executors ---------------------------------


@pytest.mark.parametrize("build", [brevitas_mlp, brevitas_cnn])
def test_brevitas_style_graph_runs_exactly_in_packed_engine(build, digits):
    from hwbnn.ref import packed
    from hwbnn.ref.compare import first_mismatch

    net = import_qonnx(build(1)[0])
    assert first_mismatch(golden.run(net, digits.test_x), packed.run(net, digits.test_x)) is None


FOLDING = {
    brevitas_mlp: {"dense0": {"pe": 8, "simd": 16}, "dense1": {"pe": 8, "simd": 8},
                   "dense2": {"pe": 5, "simd": 8}},
    brevitas_cnn: {"conv0": {"pe": 8, "simd": 9}, "conv2": {"pe": 16, "simd": 24},
                   "dense3": {"pe": 10, "simd": 32}},
}


@pytest.mark.parametrize("build", [brevitas_mlp, brevitas_cnn])
def test_brevitas_style_graph_runs_exactly_in_amaranth_simulation(build, digits):
    from hwbnn.hw.network import NetworkTop
    from hwbnn.hw.packing import from_signed, pack_values, unpack
    from hwbnn.hw.simulate import run_stream

    net = import_qonnx(build(1)[0])
    frames = digits.test_x[:6]
    top = NetworkTop(net, FOLDING[build])
    packing = top.packing()
    beats = pack_values(frames, net.input_encoding, packing["input"]["elements_per_beat"])
    out = packing["output"]
    result = run_stream(top, top.s_axis, top.m_axis, beats, out["beats_per_frame"] * len(frames))
    scores = from_signed(unpack(result, out["bits"], out["elements_per_beat"]), out["bits"])
    np.testing.assert_array_equal(scores.reshape(len(frames), -1), golden.scores(net, frames))


# --- issue 17: graphs with bad values end in one error, never a hang or a wrong network ------


def _set(model, name, value):
    tensor = next(t for t in model.graph.initializer if t.name == name)
    tensor.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))
    return model


def _import_isolated(model):
    """``hwbnn import`` of ``model`` in a worker process under a watchdog (a regression
    hangs no test run)."""
    case = fuzz.Case("qonnx", "regression", ["import", "g.onnx", "-o", "out"],
                     {"g.onnx": model.SerializeToString()})
    [(_, result)] = fuzz.run_cases([case], timeout=30)
    return result


@pytest.mark.parametrize("name, bits, message", [
    ("conv0_wq.bit_width", 1e30, "bit width 1e+30 is not supported (an integer 1..8)"),
    ("conv0_wq.bit_width", np.inf, "'conv0_wq.bit_width' holds values that are not finite"),
    ("conv0_wq.bit_width", 2.5, "bit width 2.5 is not supported"),
    ("act1.bit_width", 1e30, "bit width 1e+30 is not supported"),
])
def test_bit_width_is_an_integer_1_to_8(name, bits, message):
    """8: a weight bit width of 1e30 hung in 2 ** (bits - 1); inf overflowed."""
    result = _import_isolated(_set(brevitas_cnn(1)[0], name, bits))
    assert result.outcome == "clean error", result
    assert message in result.stderr and result.seconds < 10


def test_node_arity_and_parameter_shapes():
    """9: too few inputs was an IndexError, an empty scale a broadcast ValueError."""
    model = brevitas_cnn(1)[0]
    quant = next(n for n in model.graph.node if n.name == "/conv0_wq/Quant")
    del quant.input[2:]
    with pytest.raises(HwbnnError, match=r"'/conv0_wq/Quant' \(Quant\): has 2 inputs, not 4"):
        import_qonnx(model)
    model = _set(brevitas_cnn(1)[0], "conv0_wq.scale", np.zeros(0))
    with pytest.raises(HwbnnError, match=r"\(Quant\): the weight scale of shape \(0,\) does not"):
        import_qonnx(model)


@pytest.mark.parametrize("build, name, edit", [
    (finn_streamlined_mlp, "t0", lambda t: np.full_like(t, np.nan)),
    (finn_streamlined_mlp, "t1", lambda t: np.where(np.arange(t.size).reshape(t.shape) == 3,
                                                    np.nan, t)),
    (brevitas_cnn, "act0.scale", lambda t: np.inf),
    (brevitas_mlp, "fc0.weight_scale", lambda t: -np.inf),
])
def test_non_finite_values_are_refused(build, name, edit):
    """10: NaN thresholds and an inf activation scale were imported as wrong networks
    (checks written as ``> 0`` let inf through, NaN fails every comparison)."""
    model = build(1)[0] if build is not finn_streamlined_mlp else build(1)
    tensor = next(t for t in model.graph.initializer if t.name == name)
    _set(model, name, edit(numpy_helper.to_array(tensor)))
    with pytest.raises(HwbnnError, match=f"initializer '{name}' holds values that are not "
                                         f"finite"):
        import_qonnx(model)


def test_overflowing_arithmetic_is_an_error_without_warnings():
    """10: an inf plane scale printed a numpy RuntimeWarning before the error; a scale that
    overflows in the graph's arithmetic is one error naming the node, and no warning."""
    g = _Graph()
    x = g.node("Flatten", [g.quant("inp", "input_quant", 1.0, 2, signed=0)], "flat", axis=1)
    w = g.node("BipolarQuant", [g.const("w", np.ones((64, 4))), g.const("w_scale", 1.0)],
               "wq", domain=QONNX)
    x = g.node("MatMul", [x, w], "mm")
    for index in range(9):
        x = g.node("Mul", [x, g.const(f"big{index}", 3e38)], f"mul{index}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(HwbnnError, match=r"'/mul8/Mul' \(Mul\): its arithmetic overflows"):
            import_qonnx(g.model([1, 1, 8, 8], x, [1, 4]))
    model = _set(export_qonnx(zoo.load("zoo:digits_mlp_w2")), "dense0_p1_scale", np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(HwbnnError, match="'dense0_p1_scale' holds values that are not"):
            import_qonnx(model)
