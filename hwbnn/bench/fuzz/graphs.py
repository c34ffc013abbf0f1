"""Mutated QONNX graphs: values, attributes, nodes and the graph around them."""

from __future__ import annotations

import numpy as np

from .cases import ZOO_FILES, Case

QONNX_DOMAIN = "qonnx.custom_op.general"


def brevitas_mlp(onnx):
    """A Brevitas-style graph beside hwbnn's own exports: a uint5 ``Quant`` input, bipolar
    weights with a scale, a bias ``Add``, ``BatchNormalization`` (some negative scales),
    ``Gemm`` with 2-bit weights and a ``Mul`` on the scores."""
    helper, to_tensor = onnx.helper, onnx.numpy_helper.from_array
    rng = np.random.default_rng(0)
    initializers, nodes = [], []

    def const(name, value):
        initializers.append(to_tensor(np.asarray(value, np.float32), name))
        return name

    def node(op, inputs, output, domain="", **attributes):
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain,
                                      **attributes))
        return output

    x = node("Quant", ["inp", const("in_s", 1.0), const("in_z", 0.0), const("in_b", 5.0)],
             "inq", QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    x = node("Flatten", [x], "flat", axis=1)
    w = node("BipolarQuant", [const("w0", rng.normal(size=(64, 16))), const("w0_s", 0.1)],
             "w0q", QONNX_DOMAIN)
    x = node("Add", [node("MatMul", [x, w], "mm0"), const("b0", rng.normal(0, 0.1, 16))],
             "add0")
    x = node("BatchNormalization", [
        x, const("gamma", rng.uniform(0.5, 1.5, 16) * rng.choice([-1, 1], 16)),
        const("beta", rng.normal(0, 0.1, 16)), const("mean", rng.normal(0, 2, 16)),
        const("var", rng.uniform(1, 4, 16))], "bn0")
    x = node("BipolarQuant", [x, const("a0_s", 0.5)], "act0", QONNX_DOMAIN)
    w = node("Quant", [const("w1", rng.normal(0, 0.3, (10, 16))), const("w1_s", 0.25),
                       const("w1_z", 0.0), const("w1_b", 2.0)], "w1q", QONNX_DOMAIN,
             signed=1, narrow=1, rounding_mode="ROUND")
    node("Mul", [node("Gemm", [x, w], "gemm1", transB=1), const("out_s", 0.5)], "scores")
    floats = onnx.TensorProto.FLOAT
    graph = helper.make_graph(nodes, "brevitas_mlp",
                              [helper.make_tensor_value_info("inp", floats, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("scores", floats, [1, 10])],
                              initializer=initializers)
    return helper.make_model(graph, producer_name="fuzz", ir_version=8,
                             opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(QONNX_DOMAIN, 1)])


def _qonnx_bases() -> dict:
    """The unmutated graphs: hwbnn's export of every zoo model, with and without the
    hints hwbnn records in ``metadata_props``, and a Brevitas-style MLP."""
    from ... import zoo
    from ...interop.qonnx_export import _onnx, export_qonnx

    onnx = _onnx()
    bases = {}
    for name in ZOO_FILES:
        model = export_qonnx(zoo.load(f"zoo:{name}"))
        bases[name] = model
        plain = onnx.ModelProto()
        plain.CopyFrom(model)
        del plain.metadata_props[:]
        bases[f"{name} (no hints)"] = plain
    bases["brevitas_mlp"] = brevitas_mlp(onnx)
    return bases


def _consumers(graph) -> dict[str, tuple]:
    """Initializer name -> (node, input index) of its first reader."""
    names = {tensor.name for tensor in graph.initializer}
    roles = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in names and name not in roles:
                roles[name] = (node, index)
    return roles


def _set_initializer(onnx, graph, name: str, value) -> None:
    tensor = next(t for t in graph.initializer if t.name == name)
    tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(value, np.float32), name))


def _q_values(onnx, model, rng) -> str:
    """An initializer with non-finite values, or a parameter with a value its role forbids."""
    graph = model.graph
    roles = _consumers(graph)
    name = sorted(roles)[rng.integers(len(roles))]
    node, index = roles[name]
    current = onnx.numpy_helper.to_array(next(t for t in graph.initializer if t.name == name))
    if rng.integers(3) == 0 or index == 0:
        bad = current.astype(np.float32)
        if bad.size and rng.integers(2):
            bad.flat[rng.integers(bad.size)] = rng.choice([np.nan, np.inf, -np.inf])
        elif bad.size:
            bad[...] = rng.choice([np.nan, np.inf])
        else:
            bad = np.float32(np.nan)
        _set_initializer(onnx, graph, name, bad)
        return f"{node.op_type} input {index} {name!r} not finite"
    channels = current.shape[0] if current.ndim else 1
    pools = {
        ("Quant", 3): [1e30, 0.0, 9.0, 2.5, -3.0, np.zeros(0), [2.0, 2.0]],
        ("Quant", 1): [0.0, -1.0, np.zeros(0), np.ones(7)],
        ("BipolarQuant", 1): [0.0, -1.0, np.zeros(0), np.ones(7)],
        ("Quant", 2): [1.0, 0.5, np.zeros(0)],
        ("MultiThreshold", 1): [np.zeros((0, 1)), current.reshape(-1),
                                current[None], np.resize(current, (channels + 1,) +
                                                         current.shape[1:])],
        ("Pad", 1): [[0, 0, 1, 1, 0, 0, 1], np.full(8, 2.5), [0, 0, -1, -1, 0, 0, -1, -1],
                     [0, 0, 1, 2, 0, 0, 1, 2]],
        ("Pad", 2): [7.0, np.zeros(0)],
        ("Reshape", 1): [[1, 7], [2.5, 64], [1, -1, -1]],
        ("Div", 1): [0.0, np.zeros(0), np.ones((3, 5))],
        ("BatchNormalization", 4): [-1.0 * np.ones(channels), np.zeros(0)],
    }
    pool = pools.get((node.op_type, index), [np.zeros(0), np.ones((3, 5))])
    value = pool[rng.integers(len(pool))]
    _set_initializer(onnx, graph, name, value)
    return f"{node.op_type} input {index} {name!r} = {np.asarray(value).tolist()!r:.40}"


# Attribute values the importer must refuse, by attribute name.
_BAD_ATTRIBUTES = {
    "signed": [2, -1, 1.0], "narrow": [2, 0.5], "rounding_mode": ["SIDEWAYS", 3],
    "out_scale": [0.0, -1.0, float("nan"), float("inf")],
    "out_bias": [float("nan"), float("inf")], "kernel_shape": [[0, 0], [2, 3], []],
    "strides": [[3, 3]], "pads": [[-1, -1, -1, -1], [1, 2, 1, 2]],
    "perm": [[0, 0, 1, 2], [0, 5, 1, 2], [1, 0, 2, 3]], "axis": [9, 2.0],
    "transB": [2], "alpha": [float("nan"), float("inf")], "beta": [float("nan")],
    "epsilon": [-10.0, float("nan")], "group": [2], "data_layout": ["NHW"],
    "mode": ["reflect"], "auto_pad": ["SAME_UPPER"], "transA": [1],
}


def _q_attribute(onnx, model, rng) -> str:
    graph = model.graph
    node = graph.node[rng.integers(len(graph.node))]
    names = [a.name for a in node.attribute if a.name in _BAD_ATTRIBUTES]
    if not names or rng.integers(6) == 0:
        node.attribute.append(onnx.helper.make_attribute("fuzz_unknown", 1))
        return f"{node.op_type} gets an unknown attribute"
    name = names[rng.integers(len(names))]
    values = _BAD_ATTRIBUTES[name]
    value = values[rng.integers(len(values))]
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    kind = onnx.AttributeProto.INTS if value == [] else None  # not inferred from []
    node.attribute.extend(kept + [onnx.helper.make_attribute(name, value, attr_type=kind)])
    return f"{node.op_type} {name}={value!r}"


def _q_structure(onnx, model, rng) -> str:
    from ...interop.qonnx_import import ARITY

    graph = model.graph
    nodes = list(graph.node)
    index = int(rng.integers(len(nodes)))
    node = nodes[index]
    choice = rng.integers(8)
    low, high = ARITY.get(node.op_type, (0, 99))
    if choice == 0 and len(node.input) == low and low:
        del node.input[-1]
        return f"{node.op_type} loses an input"
    if choice == 1 and len(node.input) == high:
        node.input.append(graph.initializer[0].name if graph.initializer else node.input[0])
        return f"{node.op_type} gets an extra input"
    if choice == 2:
        del graph.node[index]
        return f"{node.op_type} removed"
    if choice == 3 and index + 1 < len(nodes):
        first, second = onnx.NodeProto(), onnx.NodeProto()
        first.CopyFrom(nodes[index])
        second.CopyFrom(nodes[index + 1])
        graph.node[index].CopyFrom(second)
        graph.node[index + 1].CopyFrom(first)
        return f"{node.op_type} swapped with the next node"
    if choice == 4:
        graph.node.insert(index, node)
        return f"{node.op_type} twice"
    if choice == 5:
        node.op_type = str(rng.choice(["Relu", "Softmax", "", "MatMulInteger"]))
        return f"op_type {node.op_type!r}"
    if choice == 6:
        node.domain = "fuzz.bogus"
        return "unknown domain"
    node.name = f"renamed{index}"
    return "node renamed"


def _q_graph(onnx, model, rng) -> str:
    graph = model.graph
    choice = rng.integers(6)
    if choice == 0:
        dims = graph.input[0].type.tensor_type.shape.dim
        dim = dims[1 + int(rng.integers(len(dims) - 1))]
        value = rng.choice([0, -5, 10 ** 9, -1])
        if value == -1:
            dim.dim_param = "N"
        else:
            dim.dim_value = int(value)
        return f"input dimension {value}"
    if choice == 1:
        del graph.output[:]
        return "no output"
    if choice == 2:
        graph.output.append(onnx.helper.make_tensor_value_info(
            graph.node[0].output[0], onnx.TensorProto.FLOAT, None))
        return "two outputs"
    if choice == 3:
        value = rng.choice([0.5, np.nan])
        graph.initializer.append(onnx.numpy_helper.from_array(
            np.full(3, value, np.float32), "fuzz_unused"))
        return f"unused initializer {value}"
    hints = [prop for prop in model.metadata_props if prop.key != "hwbnn.name"]  # any name is
    if choice == 4 and hints:
        prop = hints[rng.integers(len(hints))]
        prop.value = str(rng.choice(["[", "[NaN]", "[" * 5000 + "]" * 5000, "7",
                                     '{"a": 1}' if prop.key == "hwbnn.layers" else "[]"]))
        return f"hint {prop.key} = {prop.value[:12]!r}"
    model.doc_string = "fuzzed"
    graph.doc_string = "fuzzed"
    return "doc strings"


def qonnx_cases(count: int, seed: int) -> list[Case]:
    """``count`` mutated QONNX graphs (after the references), each run by ``import``."""
    from ...interop.qonnx_export import _onnx

    onnx = _onnx()
    bases = _qonnx_bases()
    argv = ["import", "graph.onnx", "-o", "out.hwbnn"]
    cases = [Case("qonnx", "unmutated", argv, {"graph.onnx": model.SerializeToString()},
                  key=name, reference=True, product="out.hwbnn")
             for name, model in bases.items()]
    mutators = [_q_values, _q_values, _q_attribute, _q_structure, _q_graph]
    names = sorted(bases)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        name = names[rng.integers(len(names))]
        model = onnx.ModelProto()
        model.CopyFrom(bases[name])
        mutation = mutators[rng.integers(len(mutators))](onnx, model, rng)
        cases.append(Case("qonnx", f"{name}: {mutation}", argv,
                          {"graph.onnx": model.SerializeToString()}, key=name,
                          product="out.hwbnn"))
    return cases
