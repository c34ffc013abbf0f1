"""Write a NetworkIR as a QONNX graph that qonnx's executor runs bit-exactly.

Graph form (one per layer, standard ONNX ops in NCHW plus the QONNX custom ops):

* input ``global_in`` float32 ``(batch, C, H, W)`` (or ``(batch, F)`` for a flat input),
  quantized by ``Quant`` (unsigned N-bit, scale 1), ``BipolarQuant``, ``Quant`` 2-bit
  narrow (ternary) or ``Quant`` signed N-bit (intN, also annotated ``finn_datatype`` INTN),
  so the graph states the input encoding;
* weights are float initializers behind a quantizer: binary as ``BipolarQuant`` (scale 1),
  ternary as ``Quant`` 2-bit signed narrow, integer as ``Quant`` b-bit signed, residual as
  one term per bit plane: ``BipolarQuant(signs, a_p)`` masked by ``Mul`` where some weights
  use fewer planes, each feeding its own ``MatMul``/``Conv`` and summed by ``Add``;
* a matvec after a spatial layer sees ``Transpose(0, 2, 3, 1)`` + ``Flatten``, the HWC order
  of the IR's weight columns; a binary conv input is padded with -1 by an explicit ``Pad``;
  a strided conv is a ``Conv`` with ``strides``;
* thresholds are ``MultiThreshold`` on the integer accumulator with ``out_scale``/``out_bias``
  giving the encoding's values (binary 2c-1, ternary c-1, unsigned c, intN c - 2^(N-1));
  a threshold layer is a ``MultiThreshold`` on its input tensor;
* an add is ``Mul`` by its integer scales (where not 1), ``Add``, then its ``MultiThreshold``
  or a ``Clip`` to its encoding's range; an average pool (window sums) is ``AveragePool`` /
  ``GlobalAveragePool`` times the window (then ``Round`` where the window is not a power of
  two, as the mean is not exact in float32 then);
* a layer reads the tensors of the layers its ``inputs`` name, so a tensor with two readers
  (a residual shortcut) is an edge to two nodes;
* the last layer's accumulator is the output ``global_out`` (scores).

Every value is an integer held in float32, exact below 2^24: export checks the
accumulator and threshold ranges. Names, folding and metadata, which QONNX cannot express,
travel in ``metadata_props`` so that export then import gives a byte-identical model file.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_range, is_signed_int, pad_value
from ..ir.network import (
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
    accumulator_range,
)

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
    ternary = encoding == "ternary"
    return graph.node("Quant", inputs, out, shape, name, domain=CUSTOM_DOMAIN,
                      signed=int(ternary or is_signed_int(encoding)), narrow=int(ternary),
                      rounding_mode="ROUND")


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
    if weights.kind in ("ternary", "integer"):
        # ternary: 2-bit narrow (-1..1); integer: b-bit two's complement, the whole range
        ternary = weights.kind == "ternary"
        values = to_onnx(weights.values())
        inputs = [graph.constant(f"{name}_w", values), graph.constant(f"{name}_w_scale", 1.0),
                  graph.constant(f"{name}_w_zeropt", 0.0),
                  graph.constant(f"{name}_w_bitwidth", 2.0 if ternary else
                                 float(len(weights.planes)))]
        return [graph.node("Quant", inputs, f"{name}_wq", values.shape,
                           f"{name}_weight_quant", domain=CUSTOM_DOMAIN,
                           signed=1, narrow=int(ternary), rounding_mode="ROUND")]
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


def _layout(shape) -> str:
    return "NCHW" if len(shape) == 4 else "NC"


def _threshold(graph: _GraphBuilder, layer, acc: str, shape) -> str:
    """``MultiThreshold`` of a layer's thresholds on ``acc``; the output is ``<name>_out``."""
    encoding = layer.out_encoding
    bits = encoding_bits(encoding)
    if is_signed_int(encoding):
        out_scale, out_bias, dtype = 1.0, -float(2 ** (bits - 1)), f"INT{bits}"
    else:
        out_scale, out_bias, dtype = {
            "binary": (2.0, -1.0, "BIPOLAR"),
            "ternary": (1.0, -1.0, "TERNARY"),
        }.get(encoding, (1.0, 0.0, f"UINT{bits}"))
    thresholds = graph.constant(f"{layer.name}_thresholds", layer.thresholds)
    return graph.node("MultiThreshold", [acc, thresholds], f"{layer.name}_out", shape,
                      f"{layer.name}_threshold", domain=CUSTOM_DOMAIN, out_dtype=dtype,
                      out_scale=out_scale, out_bias=out_bias, data_layout=_layout(shape))


def _check_layer_ranges(where: str, layer) -> None:
    if isinstance(layer, MaxPool | AvgPool | GlobalAvgPool):
        return  # sums of at most MAX_SUM_BITS (16) bits
    if not isinstance(layer, Threshold):
        _check_exact(where, "accumulator range", *layer.acc_range)
    if isinstance(layer, MatVec | Conv) and layer.weights.kind == "residual":
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
    return _threshold(graph, layer, acc, acc_shape), acc_shape


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
                   pads=conv_pads, strides=[layer.stride] * 2)
        for index, term in enumerate(terms)
    ]
    acc = _sum_terms(graph, layer, products, acc_shape, acc)
    if is_last:
        return acc, acc_shape
    return _threshold(graph, layer, acc, acc_shape), acc_shape


def _maxpool(graph: _GraphBuilder, layer: MaxPool, x: str, shape):
    oh, ow, c = layer.out_shape
    out_shape = (shape[0], c, oh, ow)
    k = layer.kernel
    return graph.node("MaxPool", [x], f"{layer.name}_out", out_shape, layer.name,
                      kernel_shape=[k, k], strides=[k, k]), out_shape


def _window_sum(graph: _GraphBuilder, layer, mean: str, shape) -> str:
    """``mean * window``: an average pool's integer window sums (exact for a power-of-two
    window; otherwise the float32 mean is off by a rounding, and ``Round`` restores it)."""
    window = graph.constant(f"{layer.name}_window", float(layer.window))
    if layer.window & (layer.window - 1) == 0:
        return graph.node("Mul", [mean, window], f"{layer.name}_out", shape,
                          f"{layer.name}_sum")
    total = graph.node("Mul", [mean, window], f"{layer.name}_sum", shape, f"{layer.name}_sum")
    return graph.node("Round", [total], f"{layer.name}_out", shape, f"{layer.name}_round")


def _avgpool(graph: _GraphBuilder, layer: AvgPool | GlobalAvgPool, x: str, shape):
    oh, ow, c = layer.out_shape
    out_shape = (shape[0], c, oh, ow)
    if isinstance(layer, GlobalAvgPool):
        mean = graph.node("GlobalAveragePool", [x], f"{layer.name}_mean", out_shape,
                          layer.name)
    else:
        k, stride = layer.kernel, layer.stride
        mean = graph.node("AveragePool", [x], f"{layer.name}_mean", out_shape, layer.name,
                          kernel_shape=[k, k], strides=[stride, stride])
    return _window_sum(graph, layer, mean, out_shape), out_shape


def _add(graph: _GraphBuilder, layer: Add, a: str, b: str, shape):
    """``scales[0] * a + scales[1] * b``, then its thresholds or the clip to its encoding."""
    terms = []
    for index, (operand, scale) in enumerate(zip((a, b), layer.scales, strict=True)):
        if scale != 1:
            factor = graph.constant(f"{layer.name}_scale{index}", float(scale))
            operand = graph.node("Mul", [operand, factor], f"{layer.name}_in{index}", shape,
                                 f"{layer.name}_scale{index}")
        terms.append(operand)
    acc = graph.node("Add", terms, f"{layer.name}_acc", shape, layer.name)
    if layer.thresholds is not None:
        return _threshold(graph, layer, acc, shape)
    lo, hi = encoding_range(layer.out_encoding)
    bounds = [graph.constant(f"{layer.name}_min", float(lo)),
              graph.constant(f"{layer.name}_max", float(hi))]
    return graph.node("Clip", [acc, *bounds], f"{layer.name}_out", shape, f"{layer.name}_clip")


def _layer(graph: _GraphBuilder, layer, inputs: list[tuple[str, tuple]], is_last: bool):
    """The nodes of one layer reading ``inputs`` (tensor name, shape): its output and shape."""
    if isinstance(layer, Add):
        (a, shape), (b, _) = inputs
        return _add(graph, layer, a, b, shape), shape
    ((x, shape),) = inputs
    if isinstance(layer, MaxPool):
        return _maxpool(graph, layer, x, shape)
    if isinstance(layer, AvgPool | GlobalAvgPool):
        return _avgpool(graph, layer, x, shape)
    if isinstance(layer, Threshold):
        return _threshold(graph, layer, x, shape), shape
    build = _conv if isinstance(layer, Conv) else _matvec
    return build(graph, layer, x, shape, is_last)


def _layer_hint(layer) -> dict:
    """What QONNX cannot say about a layer: its name, folding, weight kind (a residual layer
    whose weights all use one plane reads like binary), and whether it names its inputs."""
    hint = {"name": layer.name, "pe": getattr(layer, "pe", None),
            "simd": getattr(layer, "simd", None),
            "weight_kind": layer.weights.kind if hasattr(layer, "weights") else None}
    if layer.inputs is not None:
        hint["named_inputs"] = True
    return hint


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
    net.validate()
    if not isinstance(batch, int) or batch < 1:
        raise HwbnnError(f"batch must be a positive integer, not {batch!r}")
    graph = _GraphBuilder(onnx)
    shape = input_shape(net, batch)
    outputs = {-1: (_quantize_input(graph, net.input_encoding, INPUT_NAME, shape,
                                    "input_quant"), shape)}
    for index, (layer, sources) in enumerate(zip(net.layers, net.sources(), strict=True)):
        _check_layer_ranges(f"layer {index} ({layer.name})", layer)
        outputs[index] = _layer(graph, layer, [outputs[source] for source in sources],
                                index == len(net.layers) - 1)
    shape = outputs[len(net.layers) - 1][1]
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
    if is_signed_int(net.input_encoding):
        # The graph input's datatype: a signed Quant alone reads as uintN counted from its
        # lowest value (Brevitas' signed inputs), the chain hardware's form.
        bits = encoding_bits(net.input_encoding)
        model.graph.quantization_annotation.append(onnx.TensorAnnotation(
            tensor_name=INPUT_NAME, quant_parameter_tensor_names=[
                onnx.StringStringEntryProto(key="finn_datatype", value=f"INT{bits}")]))
    layers = [_layer_hint(layer) for layer in net.layers]
    helper.set_model_props(model, {
        META_NAME: net.name,
        META_METADATA: json.dumps(net.metadata, sort_keys=True),
        META_LAYERS: json.dumps(layers),
    })
    return model
