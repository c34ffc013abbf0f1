"""Graph IR (format version 2): layer inputs, add, average pools, strided convs, integer
weights and signed activations, through the file format, golden (against loop oracles) and
the packed engine (== golden on every layer)."""

import itertools

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.ir import fileformat
from hwbnn.ir.encoding import encoding_range
from hwbnn.ir.network import (
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
    Weights,
    accumulator_range,
    accumulator_width,
)
from hwbnn.ref import golden, packed
from hwbnn.zoo.recipes import RECIPES

from .test_ref_packed import (
    assert_packed_equals_golden,
    random_frames,
    random_thresholds,
    random_weights,
)


def weights_of(rng, kind, rows, cols):
    """Random weights; ``intB`` gives B-bit two's-complement integers over their whole range."""
    if kind.startswith("int"):
        bits = int(kind[3:])
        values = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(rows, cols))
        return Weights.integer(values, bits)
    return random_weights(rng, kind, rows, cols)


def weight_layer(rng, cls, name, in_encoding, kind, rows, cols, out_encoding, **fields):
    weights = weights_of(rng, kind, rows, cols)
    acc_range = accumulator_range(weights.values(), in_encoding)
    thresholds = None
    if out_encoding is not None:
        thresholds = random_thresholds(rng, acc_range, rows, out_encoding)
    return cls(name, in_encoding, weights, thresholds, out_encoding, acc_range,
               accumulator_width(acc_range, thresholds), **fields)


def conv(rng, name, in_shape, in_encoding, kind, rows, out_encoding, kernel=3, padding=1,
         stride=1, inputs=None):
    cols = kernel * kernel * in_shape[2]
    return weight_layer(rng, Conv, name, in_encoding, kind, rows, cols, out_encoding,
                        in_shape=in_shape, kernel=kernel, padding=padding, stride=stride,
                        inputs=inputs)


def dense(rng, name, in_encoding, kind, rows, cols, out_encoding=None, inputs=None):
    return weight_layer(rng, MatVec, name, in_encoding, kind, rows, cols, out_encoding,
                        inputs=inputs)


def add(rng, name, inputs, shape, in_encodings, scales, out_encoding, thresholded=True):
    layer = Add(name, tuple(inputs), shape, tuple(in_encodings), tuple(scales), None,
                out_encoding)
    if thresholded:
        layer.thresholds = random_thresholds(rng, layer.acc_range, shape[-1], out_encoding)
    return layer


def residual_block(rng):
    """8-bit signed first conv on uint8 pixels -> conv -> conv -> add with the block input ->
    8-bit signed last layer."""
    layers = [
        conv(rng, "conv0", (6, 6, 3), "uint8", "int8", 8, "binary"),
        conv(rng, "conv1", (6, 6, 8), "binary", "binary", 8, "binary"),
        conv(rng, "conv2", (6, 6, 8), "binary", "residual", 8, "int4"),
        add(rng, "add", ("conv2", "conv0"), (6, 6, 8), ("int4", "binary"), (1, 3), "binary"),
        dense(rng, "fc", "binary", "int8", 10, 6 * 6 * 8),
    ]
    return NetworkIR("residual", (6, 6, 3), "uint8", layers)


def strided_conv(rng):
    """A stride-2 conv with padding 1, then a dense readout."""
    layers = [conv(rng, "conv_s2", (7, 7, 8), "binary", "binary", 16, "ternary", stride=2),
              dense(rng, "fc", "ternary", "ternary", 10, 4 * 4 * 16)]
    return NetworkIR("strided", (7, 7, 8), "binary", layers)


def downsampling_block(rng):
    """Main path: stride-2 conv; shortcut: avgpool 2x2/2 then 1x1 conv; joined by add; global
    average pool; 8-bit signed last layer."""
    layers = [
        conv(rng, "conv0", (8, 8, 2), "int8", "int8", 8, "binary"),
        conv(rng, "main", (8, 8, 8), "binary", "binary", 16, "int8", stride=2),
        AvgPool("pool", (8, 8, 8), 2, 2, "binary", inputs=("conv0",)),
        conv(rng, "short", (4, 4, 8), "int4", "ternary", 16, "int8", kernel=1, padding=0),
        add(rng, "join", ("main", "short"), (4, 4, 16), ("int8", "int8"), (2, 1), "binary"),
        GlobalAvgPool("gap", (4, 4, 16), "binary"),
        dense(rng, "fc", "int6", "int8", 10, 16),
    ]
    return NetworkIR("downsample", (8, 8, 2), "int8", layers)


def signed_activations(rng):
    """int8 activations through a max pool, an add clipped to int8, and wide sums (uint10 after
    a pool of uint8, int12 after a global pool of int8) into weight layers."""
    layers = [
        conv(rng, "conv0", (6, 6, 4), "uint8", "ternary", 8, "int8"),
        MaxPool("max", (6, 6, 8), 2, "int8"),
        conv(rng, "conv1", (3, 3, 8), "int8", "int3", 8, "int8"),
        add(rng, "clip", ("conv1", "max"), (3, 3, 8), ("int8", "int8"), (4, 2), "int8",
            thresholded=False),
        GlobalAvgPool("gap", (3, 3, 8), "int8"),
        dense(rng, "fc0", "int12", "binary", 12, 8, "uint8"),
        dense(rng, "fc1", "uint8", "int2", 5, 12),
    ]
    return NetworkIR("signed", (6, 6, 4), "uint8", layers)


def wide_pool_conv(rng):
    """avgpool of uint8 gives uint10 sums, read by a residual-weight conv (two 8-bit digits)."""
    layers = [AvgPool("pool", (6, 6, 3), 2, 2, "uint8"),
              conv(rng, "conv", (3, 3, 3), "uint10", "residual", 4, "uint2", padding=2),
              dense(rng, "fc", "uint2", "int5", 3, 5 * 5 * 4)]
    return NetworkIR("wide", (6, 6, 3), "uint8", layers)


def threshold_of(rng, name, inputs, shape, in_encoding, out_encoding):
    lo, hi = encoding_range(in_encoding)
    thresholds = random_thresholds(rng, (lo, hi), shape[-1], out_encoding)
    return Threshold(name, shape, in_encoding, thresholds, out_encoding, inputs=inputs)


def bireal_block(rng):
    """The residual digits model's shape: an int8 stream that feeds its shortcut as it is and
    the binary conv through a threshold layer (its sign), a wide-sum threshold to int4, and
    an add of two int8 tensors clipped to int8."""
    layers = [
        conv(rng, "stem", (5, 5, 2), "uint5", "int8", 6, "int8"),
        threshold_of(rng, "sign", ("stem",), (5, 5, 6), "int8", "binary"),
        conv(rng, "conv", (5, 5, 6), "binary", "binary", 6, "int8", inputs=("sign",)),
        add(rng, "add", ("conv", "stem"), (5, 5, 6), ("int8", "int8"), (1, 1), "int8",
            thresholded=False),
        GlobalAvgPool("gap", (5, 5, 6), "int8"),
        threshold_of(rng, "requant", None, (1, 1, 6), "int13", "int4"),
        dense(rng, "fc", "int4", "int8", 10, 6),
    ]
    return NetworkIR("bireal", (5, 5, 2), "uint5", layers)


GRAPHS = {"residual": residual_block, "bireal": bireal_block, "strided": strided_conv,
          "downsample": downsampling_block, "signed": signed_activations,
          "wide": wide_pool_conv}


@pytest.mark.parametrize("build", GRAPHS.values(), ids=GRAPHS.keys())
@pytest.mark.parametrize("seed", range(3))
def test_packed_equals_golden_on_every_layer(build, seed):
    rng = np.random.default_rng(seed)
    net = build(rng).validate()
    assert_packed_equals_golden(net, random_frames(rng, net, 5))


# --- the file format ---------------------------------------------------------------------


@pytest.mark.parametrize("build", GRAPHS.values(), ids=GRAPHS.keys())
def test_every_new_kind_round_trips_through_format_version_2(build):
    rng = np.random.default_rng(7)
    net = build(rng).validate()
    data = fileformat.to_bytes(net)
    assert _header(data)["format_version"] == 2
    again = fileformat.from_bytes(data)
    assert fileformat.to_bytes(again) == data
    for a, b in zip(net.layers, again.layers, strict=True):
        assert type(a) is type(b) and a.name == b.name and a.inputs == b.inputs
        assert a.out_shape == b.out_shape and a.out_encoding == b.out_encoding
    frames = random_frames(rng, net, 3)
    for want, got in zip(golden.run(net, frames), golden.run(again, frames), strict=True):
        np.testing.assert_array_equal(want.out, got.out)


def _header(data: bytes) -> dict:
    import io
    import json
    import zipfile

    return json.loads(zipfile.ZipFile(io.BytesIO(data)).read("header.json"))


# The shipped chains (the residual zoo models are graphs: version 2 by design).
SHIPPED = [name for name in zoo.trained_names() if zoo.model_path(name).exists()
           and RECIPES[name]["config"]["arch"] != "resnet"]


def test_the_residual_zoo_model_is_a_version_2_graph():
    data = zoo.model_path("digits_resnet_w1a1").read_bytes()
    net = fileformat.from_bytes(data)
    assert _header(data)["format_version"] == 2 and fileformat.to_bytes(net) == data
    assert packed.PackedNetwork(net)._sources == net.sources()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_version_1_files_stay_version_1_chains(name):
    """Loaded and saved again byte for byte (also in test_ir_fileformat), still version 1,
    and the packed engine keeps its all-packed chain path for them."""
    original = zoo.model_path(name).read_bytes()
    net = fileformat.from_bytes(original)
    assert net.v2_features() == [] and _header(original)["format_version"] == 1
    assert fileformat.to_bytes(net) == original
    assert net.sources() == [(index - 1,) for index in range(len(net.layers))]
    assert packed.PackedNetwork(net)._sources is None


def test_a_version_1_file_cannot_hold_a_stride():
    rng = np.random.default_rng(1)
    data = fileformat.to_bytes(strided_conv(rng).validate())
    header = _header(data)
    header["format_version"] = 1
    with pytest.raises(HwbnnError, match="format_version 1 cannot hold conv stride 2") as error:
        fileformat.from_bytes(_with_header(data, header))
    assert "\n" not in str(error.value)


def test_a_version_1_file_cannot_hold_an_add():
    rng = np.random.default_rng(1)
    data = fileformat.to_bytes(residual_block(rng).validate())
    header = _header(data)
    header["format_version"] = 1
    with pytest.raises(HwbnnError, match="layer 3: unsupported layer kind 'add'"):
        fileformat.from_bytes(_with_header(data, header))


@pytest.mark.parametrize("edit,message", [
    (lambda h: h["layers"][3].update(inputs=["conv2", "nowhere"]), "input 'nowhere' names no"),
    (lambda h: h["layers"][3].update(inputs="conv2"), "'inputs' must be a list of layer names"),
    (lambda h: h["layers"][3].update(scales=[1, 0]), "scales must be two integers in 1..255"),
    (lambda h: h["layers"][3].update(thresholded=1), "'thresholded' has the wrong type"),
    (lambda h: h["layers"][0].update(stride=0), "stride must be a positive integer, not 0"),
    (lambda h: h["layers"][0].update(stride=True), "field 'stride' has the wrong type"),
    (lambda h: h["layers"][3].update(out_encoding="int9"), "'int2'..'int8', not 'int9'"),
])
def test_bad_version_2_fields_are_one_line_errors(edit, message):
    data = fileformat.to_bytes(residual_block(np.random.default_rng(2)).validate())
    header = _header(data)
    edit(header)
    with pytest.raises(HwbnnError, match=message) as error:
        fileformat.from_bytes(_with_header(data, header))
    assert "\n" not in str(error.value)


def _with_header(data: bytes, header: dict) -> bytes:
    import io
    import json
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("header.json", json.dumps(header))
        for name in source.namelist():
            if name != "header.json":
                target.writestr(name, source.read(name))
    return out.getvalue()


# --- golden against loop oracles ----------------------------------------------------------


def oracle_conv(x, w, kernel, padding, stride, fill):
    """Direct loops: (N, H, W, C) x (rows, K*K*C) columns in (ky, kx, c) order."""
    n, h, wd, c = x.shape
    oh, ow = (h + 2 * padding - kernel) // stride + 1, (wd + 2 * padding - kernel) // stride + 1
    out = np.zeros((n, oh, ow, len(w)), dtype=np.int64)
    for f, oy, ox, r in itertools.product(range(n), range(oh), range(ow), range(len(w))):
        total = 0
        for ky, kx, ch in itertools.product(range(kernel), range(kernel), range(c)):
            y, xx = oy * stride + ky - padding, ox * stride + kx - padding
            value = x[f, y, xx, ch] if 0 <= y < h and 0 <= xx < wd else fill
            total += value * w[r, (ky * kernel + kx) * c + ch]
        out[f, oy, ox, r] = total
    return out


@pytest.mark.parametrize("encoding,kind,kernel,padding,stride", [
    ("binary", "binary", 3, 1, 2), ("int4", "int8", 3, 2, 1), ("uint8", "int3", 2, 0, 2),
    ("ternary", "residual", 1, 3, 3), ("int8", "ternary", 3, 1, 2),
])
def test_strided_padded_conv_matches_loops(encoding, kind, kernel, padding, stride):
    rng = np.random.default_rng(3)
    layer = conv(rng, "c", (5, 6, 3), encoding, kind, 4, None, kernel=kernel, padding=padding,
                 stride=stride)
    net = NetworkIR("c", (5, 6, 3), encoding, [layer]).validate()
    frames = random_frames(rng, net, 2)
    fill = -1 if encoding == "binary" else 0
    expected = oracle_conv(frames, layer.weights.values(), kernel, padding, stride, fill)
    np.testing.assert_array_equal(golden.run(net, frames)[0].acc, expected)
    assert_packed_equals_golden(net, frames)


def test_integer_weights_hold_every_value_of_their_bits():
    for bits in range(2, 9):
        values = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1)).reshape(1, -1)
        weights = Weights.integer(values, bits)
        assert weights.planes.shape == (bits, 1, 2 ** bits)
        np.testing.assert_array_equal(weights.values(), values)
        assert weights.bitwidths().tolist() == [[bits] * 2 ** bits]
    with pytest.raises(HwbnnError, match="4-bit integer weights must lie in -8..7"):
        Weights.integer([[8]], 4)


@pytest.mark.parametrize("encoding,counts,values", [
    ("int2", [0, 1, 2, 3], [-2, -1, 0, 1]), ("int8", [0, 128, 255], [-128, 0, 127]),
])
def test_signed_thresholds_count_from_the_lowest_value(encoding, counts, values):
    thresholds = np.arange(2 ** int(encoding[3:]) - 1)[None]
    acc = np.array(counts) - 1  # passes exactly `count` thresholds 0..count-1
    assert golden.threshold(acc[:, None], thresholds, encoding)[:, 0].tolist() == values
    assert encoding_range(encoding) == (values[0] if encoding == "int8" else -2,
                                        values[-1] if encoding == "int8" else 1)


def test_add_avgpool_and_global_pool_match_loops():
    rng = np.random.default_rng(4)
    net = downsampling_block(rng).validate()
    frames = random_frames(rng, net, 2)
    trace = {t.name: t for t in golden.run(net, frames)}
    x = trace["conv0"].out
    pool = np.zeros((2, 4, 4, 8), dtype=np.int64)
    for f, y, xx, c, dy, dx in itertools.product(range(2), range(4), range(4), range(8),
                                                 range(2), range(2)):
        pool[f, y, xx, c] += x[f, 2 * y + dy, 2 * xx + dx, c]
    np.testing.assert_array_equal(trace["pool"].out, pool)
    join = net.layers[4]
    acc = 2 * trace["main"].out + trace["short"].out
    np.testing.assert_array_equal(trace["join"].acc, acc)
    expected = np.array([[[[2 * int(v >= join.thresholds[c, 0]) - 1
                            for c, v in enumerate(pixel)] for pixel in row] for row in frame]
                         for frame in acc])
    np.testing.assert_array_equal(trace["join"].out, expected)
    gap = np.array([[sum(trace["join"].out[f, y, xx, c] for y in range(4) for xx in range(4))
                     for c in range(16)] for f in range(2)])
    np.testing.assert_array_equal(trace["gap"].out.reshape(2, 16), gap)
    assert net.layers[2].out_encoding == "int4" and net.layers[5].out_encoding == "int6"


def test_threshold_layer_counts_per_channel():
    rng = np.random.default_rng(11)
    net = bireal_block(rng).validate()
    frames = random_frames(rng, net, 3)
    trace = {t.name: t for t in golden.run(net, frames)}
    x, layer = trace["stem"].out, net.layers[1]
    expected = np.where(x >= layer.thresholds[:, 0], 1, -1)
    np.testing.assert_array_equal(trace["sign"].out, expected)
    assert (expected == 1).any() and (expected == -1).any()
    wide, requant = trace["gap"].out, net.layers[5]
    counts = (wide[..., None] >= requant.thresholds).sum(-1)
    np.testing.assert_array_equal(trace["requant"].out, counts - 8)
    assert trace["sign"].acc is None and net.layers[5].in_encoding == "int13"


def test_add_without_thresholds_clips_to_its_encoding():
    rng = np.random.default_rng(5)
    net = signed_activations(rng).validate()
    frames = random_frames(rng, net, 4)
    trace = {t.name: t for t in golden.run(net, frames)}
    total = 4 * trace["conv1"].out + 2 * trace["max"].out
    np.testing.assert_array_equal(trace["clip"].out, np.clip(total, -128, 127))
    assert (np.abs(total) > 127).any()  # the clip is exercised


# --- validation ----------------------------------------------------------------------------


def _residual_with(edit):
    net = residual_block(np.random.default_rng(6))
    edit(net)
    return net


@pytest.mark.parametrize("edit,message", [
    (lambda n: setattr(n.layers[3], "inputs", ("conv2", "conv9")), "input 'conv9' names no"),
    (lambda n: setattr(n.layers[1], "inputs", ("conv2",)), "'conv2' is not an earlier layer"),
    (lambda n: setattr(n.layers[1], "inputs", ("conv1",)), "'conv1' is not an earlier layer"),
    (lambda n: setattr(n.layers[3], "inputs", ("conv2", "input")),
     "in_encoding 'binary' does not match the network input's output 'uint8'"),
    (lambda n: setattr(n.layers[3], "inputs", ("conv2",)),
     "reads 2 input\\(s\\) but its inputs name 1"),
    (lambda n: setattr(n.layers[3], "in_shape", (6, 6, 4)), "in_shape \\(6, 6, 4\\) does not"),
    (lambda n: setattr(n.layers[3], "scales", (1, 256)), "scales must be two integers"),
    (lambda n: setattr(n.layers[2], "inputs", ("conv0",)),
     "layer 1 \\(conv1\\): its output feeds no layer"),
    (lambda n: setattr(n.layers[1], "name", "conv0"), "the name 'conv0' is used twice"),
    (lambda n: setattr(n.layers[0], "name", "input"), "the name 'input' is reserved"),
    (lambda n: setattr(n.layers[0], "weights", Weights.integer(np.zeros((8, 27)), 9)),
     "integer weights must have 2..8 bits, not 9"),
    (lambda n: setattr(n.layers[2], "out_encoding", "int9"), "'int2'..'int8', not 'int9'"),
    (lambda n: setattr(n.layers[1], "stride", 0), "stride must be a positive integer, not 0"),
    (lambda n: n.layers.insert(4, GlobalAvgPool("gap", (6, 6, 8), "binary")) or setattr(
        n.layers[5], "inputs", ("add",)), "layer 4 \\(gap\\): its output feeds no layer"),
])
def test_bad_graphs_are_one_line_errors(edit, message):
    with pytest.raises(HwbnnError, match=message) as error:
        _residual_with(edit).validate()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("edit,message", [
    (lambda t: setattr(t, "in_encoding", "int17"), "layer 1 \\(sign\\): in_encoding must be"),
    (lambda t: setattr(t, "in_encoding", "int4"),
     "in_encoding 'int4' does not match 'stem'.s output 'int8'"),
    (lambda t: setattr(t, "thresholds", np.zeros((5, 1), dtype=np.int64)),
     "thresholds must have shape \\(6, 1\\) for binary outputs"),
    (lambda t: setattr(t, "out_encoding", "uint9"), "out_encoding must be"),
    (lambda t: setattr(t, "in_shape", (5, 5, 7)), "in_shape \\(5, 5, 7\\) does not match"),
])
def test_bad_threshold_layers_are_one_line_errors(edit, message):
    net = bireal_block(np.random.default_rng(12))
    edit(net.layers[1])
    with pytest.raises(HwbnnError, match=message) as error:
        net.validate()
    assert "\n" not in str(error.value)


def test_an_add_cannot_be_the_last_layer():
    rng = np.random.default_rng(8)
    net = residual_block(rng)
    net.layers.pop()
    with pytest.raises(HwbnnError, match="the last layer must be a matvec or conv"):
        net.validate()


def test_a_pool_sum_wider_than_16_bits_is_refused():
    net = NetworkIR("wide", (600, 600, 1), "uint8",
                    [GlobalAvgPool("gap", (600, 600, 1), "uint8"),
                     dense(np.random.default_rng(0), "fc", "uint27", "binary", 2, 1)])
    with pytest.raises(HwbnnError, match="a sum of 360000 uint8 values needs uint27, more "
                                         "than 16 bits"):
        net.validate()


# --- consumers that walk a chain refuse a graph in one line ------------------------------


def _refusals():
    """The consumers that do not take graphs yet (hardware generation and folding do:
    tests/test_hw_network_graph.py; the cost model and the summary: tests/test_cost_graph.py;
    QONNX: tests/test_interop_qonnx_graph.py; the CPU benchmark: tests/test_bench_cpu.py)."""
    from hwbnn.cost.mixes import requantize

    yield "requantization", lambda net: requantize(net, "1.4")


@pytest.mark.parametrize("consumer,call", list(_refusals()), ids=lambda v: str(v)[:20])
def test_chain_consumers_refuse_a_residual_graph(consumer, call):
    net = residual_block(np.random.default_rng(9)).validate()
    with pytest.raises(HwbnnError) as error:
        call(net)
    assert str(error.value) == (f"{consumer} does not support integer weights "
                                f"(layer 'conv0') yet")


def test_chain_consumers_name_the_first_graph_feature():
    net = strided_conv(np.random.default_rng(10)).validate()
    with pytest.raises(HwbnnError, match="^the unrolled mode does not support conv stride 2 "
                                         "\\(layer 'conv_s2'\\) yet$"):
        net.require_chain("the unrolled mode")
