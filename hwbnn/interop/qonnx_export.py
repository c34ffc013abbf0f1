"""Write a NetworkIR as a QONNX graph that qonnx's executor runs bit-exactly.

Graph form (one per layer, standard ONNX ops in NCHW plus the QONNX custom ops):

* input ``global_in`` float32 ``(batch, C, H, W)`` (or ``(batch, F)`` for a flat input),
  quantized by ``Quant`` (unsigned N-bit, scale 1), ``BipolarQuant`` or ``Quant`` 2-bit
  narrow (ternary), so the graph states the input encoding;
* weights are float initializers behind a quantizer: binary as ``BipolarQuant`` (scale 1),
  ternary as ``Quant`` 2-bit signed narrow, residual as one term per bit plane:
  ``BipolarQuant(signs, a_p)`` masked by ``Mul`` where some weights use fewer planes, each
  feeding its own ``MatMul``/``Conv`` and summed by ``Add``;
* a matvec after a spatial layer sees ``Transpose(0, 2, 3, 1)`` + ``Flatten``, the HWC order
  of the IR's weight columns; a binary conv input is padded with -1 by an explicit ``Pad``;
* thresholds are ``MultiThreshold`` on the integer accumulator with ``out_scale``/``out_bias``
  giving the encoding's values (binary 2c-1, ternary c-1, unsigned c);
* the last layer's accumulator is the output ``global_out`` (scores).

Every value is an integer held in float32, exact below 2^24: export checks the
accumulator and threshold ranges. Names, folding and metadata, which QONNX cannot express,
travel in ``metadata_props`` so that export then import gives a byte-identical model file.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, pad_value
from ..ir.network import Conv, MatVec, MaxPool, NetworkIR, accumulator_range

CUSTOM_DOMAIN = "qonnx.custom_op.general"
ONNX_OPSET = 13
ONNX_IR_VERSION = 8
# float32 has a 24-bit significand: every integer of magnitude <= 2^24 is exact.
FLOAT32_EXACT = 2 ** 24
INPUT_NAME = "global_in"
OUTPUT_NAME = "global_out"
META_NAME = "hwbnn.name"
META_METADATA = "hwbnn.metadata"
META_LAYERS = "hwbnn.layers"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise HwbnnError("QONNX export/import needs the 'onnx' package: "
                         "pip install 'hwbnn[qonnx]'") from None
    return onnx


class _GraphBuilder:
    """Collects nodes, float32 initializers and the value_info of every tensor."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes = []
        self.initializers = []
        self.value_info = []

    def constant(self, name: str, value, dtype=np.float32) -> str:
        array = np.asarray(value, dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        self._declare(name, array.shape, dtype)
        return name

    def node(self, op_type: str, inputs: list[str], output: str, shape, name: str,
             domain: str = "", **attributes) -> str:
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [output], name=name,
                                                     domain=domain, **attributes))
        if output != OUTPUT_NAME:
            self._declare(output, shape, np.float32)
        return output

    def _declare(self, name: str, shape, dtype) -> None:
        # qonnx's executor needs a shape for every tensor, initializers included: it
        # declares them as inputs of the one-node graphs it hands to onnxruntime.
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.value_info.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))


def _check_exact(where: str, what: str, lo: int, hi: int) -> None:
    if max(abs(lo), abs(hi)) > FLOAT32_EXACT:
        raise HwbnnError(f"{where}: {what} {lo}..{hi} is not exact in float32 "
                         f"(QONNX carries integers in float32, exact up to 2^24)")


def _quantize_input(graph: _GraphBuilder, encoding: str, source: str, shape, name: str) -> str:
    """The quantizer that states an activation encoding: identity on valid values."""
    out = f"{name}_q"
    if encoding == "binary":
        scale = graph.constant(f"{name}_scale", 1.0)
        return graph.node("BipolarQuant", [source, scale], out, shape, name,
                          domain=CUSTOM_DOMAIN)
    inputs = [source, graph.constant(f"{name}_scale", 1.0),
              graph.constant(f"{name}_zeropt", 0.0),
              graph.constant(f"{name}_bitwidth", float(encoding_bits(encoding)))]
    signed = int(encoding == "ternary")
    return graph.node("Quant", inputs, out, shape, name, domain=CUSTOM_DOMAIN,
                      signed=signed, narrow=signed, rounding_mode="ROUND")


def _weight_terms(graph: _GraphBuilder, layer, to_onnx) -> list[str]:
    """Quantized weight tensors whose products with the input sum to the accumulator.

    ``to_onnx`` turns an ``(MH, MW)`` IR matrix into the ONNX weight layout.
    """
    weights, name = layer.weights, layer.name
    if weights.kind == "binary":
        source = graph.constant(f"{name}_w", to_onnx(weights.values()))
        scale = graph.constant(f"{name}_w_scale", 1.0)
        shape = to_onnx(weights.values()).shape
        return [graph.node("BipolarQuant", [source, scale], f"{name}_wq", shape,
                           f"{name}_weight_quant", domain=CUSTOM_DOMAIN)]
    if weights.kind == "ternary":
        values = to_onnx(weights.values())
        inputs = [graph.constant(f"{name}_w", values), graph.constant(f"{name}_w_scale", 1.0),
                  graph.constant(f"{name}_w_zeropt", 0.0),
                  graph.constant(f"{name}_w_bitwidth", 2.0)]
        return [graph.node("Quant", inputs, f"{name}_wq", values.shape,
                           f"{name}_weight_quant", domain=CUSTOM_DOMAIN,
                           signed=1, narrow=1, rounding_mode="ROUND")]
    terms = []
    for plane in range(weights.planes.shape[0]):
        signs = to_onnx(2 * weights.planes[plane].astype(np.int64) - 1)
        used = to_onnx((weights.bitwidth > plane).astype(np.int64))
        scale = graph.constant(f"{name}_p{plane}_scale", float(weights.scales[plane]))
        term = graph.node("BipolarQuant", [graph.constant(f"{name}_p{plane}", signs), scale],
                          f"{name}_p{plane}_q", signs.shape, f"{name}_plane{plane}_quant",
                          domain=CUSTOM_DOMAIN)
        if not used.all():
            mask = graph.constant(f"{name}_p{plane}_mask", used)
            term = graph.node("Mul", [term, mask], f"{name}_p{plane}_masked", signs.shape,
                              f"{name}_plane{plane}_mask")
        terms.append(term)
    return terms


def _sum_terms(graph: _GraphBuilder, layer, products: list[str], shape, out: str) -> str:
    """Add the per-plane products (one product passes through unchanged)."""
    total = products[0]
    for index, product in enumerate(products[1:], start=1):
        target = out if index == len(products) - 1 else f"{layer.name}_sum{index}"
        total = graph.node("Add", [total, product], target, shape, f"{layer.name}_add{index}")
    return total


def _threshold(graph: _GraphBuilder, layer, acc: str, shape, layout: str) -> str:
    encoding = layer.out_encoding
    out_scale, out_bias, dtype = {
        "binary": (2.0, -1.0, "BIPOLAR"),
        "ternary": (1.0, -1.0, "TERNARY"),
    }.get(encoding, (1.0, 0.0, f"UINT{encoding_bits(encoding)}"))
    thresholds = graph.constant(f"{layer.name}_thresholds", layer.thresholds)
    return graph.node("MultiThreshold", [acc, thresholds], f"{layer.name}_out", shape,
                      f"{layer.name}_threshold", domain=CUSTOM_DOMAIN, out_dtype=dtype,
                      out_scale=out_scale, out_bias=out_bias, data_layout=layout)


def _check_layer_ranges(where: str, layer) -> None:
    lo, hi = layer.acc_range
    _check_exact(where, "accumulator range", lo, hi)
    if layer.weights.kind == "residual":
        for plane in range(layer.weights.planes.shape[0]):
            signs = 2 * layer.weights.planes[plane].astype(np.int64) - 1
            used = layer.weights.bitwidth > plane
            term = signs * used * int(layer.weights.scales[plane])
            _check_exact(where, f"plane {plane} partial sum",
                         *accumulator_range(term, layer.in_encoding))
    if layer.thresholds is not None:
        _check_exact(where, "threshold range", int(layer.thresholds.min()),
                     int(layer.thresholds.max()))


def _to_flat(graph: _GraphBuilder, layer, x: str, shape) -> tuple[str, tuple]:
    """Flatten a spatial NCHW tensor in HWC order, the IR's matvec column order."""
    if len(shape) == 2:
        return x, shape
    batch, c, h, w = shape
    if c > 1:
        x = graph.node("Transpose", [x], f"{layer.name}_nhwc", (batch, h, w, c),
                       f"{layer.name}_to_nhwc", perm=[0, 2, 3, 1])
    flat = (batch, c * h * w)
    return graph.node("Flatten", [x], f"{layer.name}_flat", flat, f"{layer.name}_flatten",
                      axis=1), flat


def _matvec(graph: _GraphBuilder, layer: MatVec, x: str, shape, is_last: bool):
    x, shape = _to_flat(graph, layer, x, shape)
    acc_shape = (shape[0], layer.mh)
    acc = OUTPUT_NAME if is_last else f"{layer.name}_acc"
    terms = _weight_terms(graph, layer, lambda matrix: np.asarray(matrix).T)
    products = [
        graph.node("MatMul", [x, term], acc if len(terms) == 1 else f"{layer.name}_mm{index}",
                   acc_shape, f"{layer.name}_matmul{index}")
        for index, term in enumerate(terms)
    ]
    acc = _sum_terms(graph, layer, products, acc_shape, acc)
    if is_last:
        return acc, acc_shape
    return _threshold(graph, layer, acc, acc_shape, "NC"), acc_shape


def _conv(graph: _GraphBuilder, layer: Conv, x: str, shape, is_last: bool):
    k, pad = layer.kernel, layer.padding
    h, w, c = layer.in_shape
    conv_pads = [pad] * 4
    if pad and pad_value(layer.in_encoding) != 0:
        # ONNX Conv pads with 0; a binary input pads with -1, so pad explicitly first.
        pads = graph.constant(f"{layer.name}_pads", [0, 0, pad, pad, 0, 0, pad, pad],
                              dtype=np.int64)
        fill = graph.constant(f"{layer.name}_pad_value", float(pad_value(layer.in_encoding)))
        x = graph.node("Pad", [x, pads, fill], f"{layer.name}_padded",
                       (shape[0], c, h + 2 * pad, w + 2 * pad), f"{layer.name}_pad",
                       mode="constant")
        conv_pads = [0] * 4
    oh, ow, oc = layer.out_shape
    acc_shape = (shape[0], oc, oh, ow)
    acc = OUTPUT_NAME if is_last else f"{layer.name}_acc"

    def to_onnx(matrix):
        return np.asarray(matrix).reshape(oc, k, k, c).transpose(0, 3, 1, 2)

    terms = _weight_terms(graph, layer, to_onnx)
    products = [
        graph.node("Conv", [x, term], acc if len(terms) == 1 else f"{layer.name}_conv{index}",
                   acc_shape, f"{layer.name}_conv{index}", kernel_shape=[k, k],
                   pads=conv_pads, strides=[1, 1])
        for index, term in enumerate(terms)
    ]
    acc = _sum_terms(graph, layer, products, acc_shape, acc)
    if is_last:
        return acc, acc_shape
    return _threshold(graph, layer, acc, acc_shape, "NCHW"), acc_shape


def _maxpool(graph: _GraphBuilder, layer: MaxPool, x: str, shape):
    oh, ow, c = layer.out_shape
    out_shape = (shape[0], c, oh, ow)
    k = layer.kernel
    return graph.node("MaxPool", [x], f"{layer.name}_out", out_shape, layer.name,
                      kernel_shape=[k, k], strides=[k, k]), out_shape


def input_shape(net: NetworkIR, batch: int = 1) -> tuple[int, ...]:
    """Shape of the exported graph's input: NCHW for a spatial input, else (batch, F)."""
    if len(net.input_shape) == 3:
        h, w, c = net.input_shape
        return (batch, c, h, w)
    return (batch, int(np.prod(net.input_shape)))


def images_to_input(net: NetworkIR, images: np.ndarray) -> np.ndarray:
    """Channels-last integer frames ``(N, *input_shape)`` -> the graph's float32 input."""
    images = np.asarray(images, dtype=np.float32)
    if len(net.input_shape) == 3:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return images.reshape(len(images), -1)


def export_qonnx(net: NetworkIR, batch: int = 1):
    """The QONNX ``ModelProto`` of a validated network, for ``batch`` frames per run."""
    onnx = _onnx()
    net.validate().require_chain("QONNX export")
    if not isinstance(batch, int) or batch < 1:
        raise HwbnnError(f"batch must be a positive integer, not {batch!r}")
    graph = _GraphBuilder(onnx)
    shape = input_shape(net, batch)
    x = _quantize_input(graph, net.input_encoding, INPUT_NAME, shape, "input_quant")
    for index, layer in enumerate(net.layers):
        where = f"layer {index} ({layer.name})"
        is_last = index == len(net.layers) - 1
        if isinstance(layer, MaxPool):
            x, shape = _maxpool(graph, layer, x, shape)
            continue
        _check_layer_ranges(where, layer)
        build = _conv if isinstance(layer, Conv) else _matvec
        x, shape = build(graph, layer, x, shape, is_last)
    helper = onnx.helper
    inputs = [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT,
                                            input_shape(net, batch))]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, shape)]
    onnx_graph = helper.make_graph(graph.nodes, net.name, inputs, outputs,
                                   initializer=graph.initializers, value_info=graph.value_info)
    model = helper.make_model(
        onnx_graph, producer_name="hwbnn", ir_version=ONNX_IR_VERSION,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                       helper.make_opsetid(CUSTOM_DOMAIN, 1)])
    layers = [{"name": layer.name, "pe": getattr(layer, "pe", None),
               "simd": getattr(layer, "simd", None),
               "weight_kind": layer.weights.kind if hasattr(layer, "weights") else None}
              for layer in net.layers]
    helper.set_model_props(model, {
        META_NAME: net.name,
        META_METADATA: json.dumps(net.metadata, sort_keys=True),
        META_LAYERS: json.dumps(layers),
    })
    return model
