"""QONNX export and import of graph models (format version 2): the residual zoo model and the
small graphs of tests/test_ir_graph.py run exactly in qonnx's executor and round-trip to
identical model files; unsupported graph constructs are one error naming the node."""

import numpy as np
import onnx
import pytest
from onnx import helper

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.interop.qonnx import export_qonnx, images_to_input, import_qonnx, run_qonnx
from hwbnn.ir import to_bytes
from hwbnn.ir.network import Add, AvgPool, Conv, GlobalAvgPool, Threshold
from hwbnn.ref import golden

from .test_interop_qonnx import _nhwc
from .test_ir_graph import GRAPHS
from .test_ref_packed import random_frames

RESNET = "digits_resnet_w1a1"


def assert_executor_matches_golden(net, images):
    """qonnx's executor on the export gives golden's integers on every layer."""
    model = export_qonnx(net, batch=len(images))
    onnx.checker.check_model(model)
    context = run_qonnx(model, images_to_input(net, images), full_context=True)
    trace = golden.run(net, images)
    for layer, step in zip(net.layers[:-1], trace[:-1], strict=True):
        tensor = context[f"{layer.name}_out"]
        assert (tensor == np.round(tensor)).all(), layer.name
        np.testing.assert_array_equal(_nhwc(tensor).astype(np.int64), step.out,
                                      err_msg=layer.name)
    np.testing.assert_array_equal(context["global_out"].astype(np.int64), trace[-1].out)


def test_residual_zoo_model_runs_exactly_in_qonnx_executor(digits):
    net = zoo.load(f"zoo:{RESNET}")
    assert {type(layer) for layer in net.layers} >= {Add, AvgPool, GlobalAvgPool, Threshold}
    assert any(isinstance(layer, Conv) and layer.stride == 2 for layer in net.layers)
    assert len(digits.test_x) == 360
    assert_executor_matches_golden(net, digits.test_x)


def test_cli_round_trip_of_the_residual_zoo_model_is_byte_identical(tmp_path):
    onnx_path, model_path = tmp_path / "resnet.onnx", tmp_path / "resnet.hwbnn"
    assert main(["export", "--to", "qonnx", f"zoo:{RESNET}", "-o", str(onnx_path)]) == 0
    assert main(["import", str(onnx_path), "-o", str(model_path)]) == 0
    assert model_path.read_bytes() == zoo.model_path(RESNET).read_bytes()


@pytest.mark.parametrize("build", GRAPHS.values(), ids=GRAPHS.keys())
def test_small_graphs_run_exactly_and_round_trip(build):
    """Add scales other than 1, thresholded adds, intN inputs and outputs, a pool of binary
    values, a global pool whose window is not a power of two, layers with and without named
    inputs in one graph."""
    rng = np.random.default_rng(5)
    net = build(rng).validate()
    assert_executor_matches_golden(net, random_frames(rng, net, 16))
    assert to_bytes(import_qonnx(export_qonnx(net))) == to_bytes(net)


def test_import_without_hwbnn_hints_keeps_the_residual_integer_network(digits):
    """Names, folding and which layers name their inputs come from metadata_props; the
    integers and the graph's edges come from the graph alone."""
    net = zoo.load(f"zoo:{RESNET}")
    model = export_qonnx(net)
    del model.metadata_props[:]
    imported = import_qonnx(model, name="plain")
    assert [type(layer) for layer in imported.layers] == [type(layer) for layer in net.layers]
    assert imported.sources() == net.sources()
    np.testing.assert_array_equal(golden.scores(imported, digits.test_x),
                                  golden.scores(net, digits.test_x))


# --- unsupported graph constructs: one error naming the node ---------------------------------


def _resnet_with(edit):
    model = export_qonnx(zoo.load(f"zoo:{RESNET}"))
    edit({node.name: node for node in model.graph.node}, model)
    return model


def _rewire(nodes, model):
    nodes["block1_add"].input[1] = "block0_add_out"  # (16, 8, 8) onto (32, 4, 4)


def _pad_pool(nodes, model):
    nodes["block1_pool"].attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))


def _wide_clip(nodes, model):
    bound = next(t for t in model.graph.initializer if t.name == "block0_add_max")
    bound.CopyFrom(onnx.numpy_helper.from_array(np.float32(100.0), "block0_add_max"))


@pytest.mark.parametrize("edit, message", [
    (_rewire, "node 'block1_add' (Add): an Add of activations of different shapes (32, 4, 4) "
              "and (16, 8, 8) is not supported (no broadcasting)"),
    (_pad_pool, "node 'block1_pool' (AveragePool): pads, ceil_mode and dilations are not "
                "supported"),
    (_wide_clip, "node 'block0_add_clip' (Clip): Clip bounds [-128.0, 100.0] after the Add are "
                 "not the range of an integer encoding (uintN/intN up to 16 bits) of its sum"),
])
def test_unsupported_graph_construct_is_one_error(edit, message):
    with pytest.raises(HwbnnError) as error:
        import_qonnx(_resnet_with(edit))
    assert str(error.value) == message


def test_cli_import_of_an_unsupported_graph_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(_resnet_with(_rewire).SerializeToString())
    assert main(["import", str(path), "-o", str(tmp_path / "bad.hwbnn")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwbnn: error: node 'block1_add' (Add)")
