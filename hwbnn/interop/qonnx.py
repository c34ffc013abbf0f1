"""QONNX interchange: export hwbnn models to QONNX, import Brevitas/FINN-style QONNX graphs.

QONNX (https://github.com/fastmachinelearning/qonnx) is ONNX plus custom quantization ops
(``Quant``, ``BipolarQuant``, ``MultiThreshold``, ``XnorPopcountMatMul``); Brevitas, QKeras
and HAWQ export it, FINN, hls4ml and chisel4ml import it. Export and import need only the
``onnx`` package; running a graph with qonnx's own executor (:func:`run_qonnx`, an
independent check of hwbnn's integer semantics) needs ``qonnx`` and ``onnxruntime``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ..errors import HwbnnError
from ..ir import fileformat
from ..ir.network import NetworkIR
from .qonnx_export import ONNX_IR_VERSION, _onnx, export_qonnx, images_to_input, input_shape
from .qonnx_import import import_qonnx

__all__ = ["export_qonnx", "images_to_input", "import_qonnx", "input_shape", "load_onnx",
           "run_qonnx", "save_qonnx"]

# Largest ONNX file read: far above any network hwbnn builds hardware for, and a bound on
# the memory one import takes.
MAX_ONNX_BYTES = 1 << 28


def save_qonnx(net: NetworkIR, path: str | os.PathLike, batch: int = 1) -> Path:
    """Export ``net`` and write the ``.onnx`` file atomically."""
    model = export_qonnx(net, batch)
    return fileformat.write_atomic(path, model.SerializeToString(deterministic=True))


def load_onnx(path: str | os.PathLike):
    """Read an ONNX file; a missing or unparsable file is one HwbnnError."""
    onnx = _onnx()
    path = Path(path)
    data = fileformat.read_file(path, "ONNX file", MAX_ONNX_BYTES)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:
        raise HwbnnError(f"{path}: not an ONNX model ({error})") from None
    if not model.graph.node:
        raise HwbnnError(f"{path}: not an ONNX model (no graph nodes)")
    return model


@contextlib.contextmanager
def _single_node_ir_version(ir_version: int):
    """Make qonnx's executor build its one-node models with a given ONNX IR version.

    qonnx runs each standard node through onnxruntime as a one-node model made with the
    installed onnx's newest IR version (14 for onnx 1.23), which onnxruntime 1.31 refuses
    (it reads up to 13). The graph's own IR version is one onnxruntime accepts.
    """
    from qonnx.core import onnx_exec

    original = onnx_exec.qonnx_make_model

    def make_model(graph, **kwargs):
        model = original(graph, **kwargs)
        model.ir_version = min(model.ir_version, ir_version)
        return model

    onnx_exec.qonnx_make_model = make_model
    try:
        yield
    finally:
        onnx_exec.qonnx_make_model = original


def run_qonnx(model, inputs: np.ndarray, full_context: bool = False):
    """Run a QONNX graph with qonnx's executor on one input batch.

    Returns the graph's first output, or with ``full_context`` every tensor by name.
    """
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes
    except ImportError:
        raise HwbnnError("running QONNX graphs needs 'qonnx' and 'onnxruntime': "
                         "pip install 'hwbnn[qonnx]'") from None
    wrapper = ModelWrapper(model)
    if not wrapper.check_all_tensor_shapes_specified():
        # Brevitas' exports leave intermediate shapes out; the executor needs them.
        wrapper = wrapper.transform(InferShapes())
    name = wrapper.graph.input[0].name
    with _single_node_ir_version(model.ir_version or ONNX_IR_VERSION):
        context = execute_onnx(wrapper, {name: np.asarray(inputs, dtype=np.float32)},
                               return_full_exec_context=full_context)
    if full_context:
        return context
    return context[wrapper.graph.output[0].name]
