"""Packed CPU engine == golden model, on every layer of the trace."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.ir.encoding import encoding_levels, encoding_range
from hwbnn.ir.network import (
    Conv,
    MatVec,
    MaxPool,
    NetworkIR,
    Weights,
    accumulator_range,
    accumulator_width,
)
from hwbnn.ref import golden, packed
from hwbnn.ref.compare import first_mismatch
from hwbnn.zoo.synthetic import SYNTHETIC

from .conftest import zoo_test_split

ENCODINGS = ["binary", "ternary"] + [f"uint{n}" for n in range(2, 9)]
# residual_col: one bitwidth per input column (the chain kernel's weighed binary stream).
WEIGHT_KINDS = ["binary", "ternary", "residual", "residual_col"]
# Frames of each synthetic model: a whole tile of the chain kernel and a remainder.
SYNTHETIC_FRAMES = 5

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def random_weights(rng, kind, rows, cols):
    if kind == "binary":
        return Weights.binary(rng.choice([-1, 1], size=(rows, cols)))
    if kind == "ternary":
        return Weights.ternary(rng.integers(-1, 2, size=(rows, cols)))
    if kind == "residual_col":
        bitwidth = np.broadcast_to(rng.integers(1, 4, size=cols), (rows, cols)).copy()
    else:
        bitwidth = rng.integers(1, 4, size=(rows, cols))
    planes = int(bitwidth.max())
    scales = rng.integers(1, 9, size=planes)
    return Weights.residual(rng.choice([-1, 1], size=(planes, rows, cols)), bitwidth, scales)


def random_thresholds(rng, acc_range, rows, encoding):
    """Sorted integer thresholds spread over the middle of the accumulator range."""
    lo, hi = acc_range
    span = max(1, (hi - lo) // 4)
    t = rng.integers(-span, span + 1, size=(rows, encoding_levels(encoding)))
    return np.sort(t, axis=1)


def weight_layer(rng, cls, name, in_encoding, kind, rows, cols, out_encoding, **geometry):
    weights = random_weights(rng, kind, rows, cols)
    acc_range = accumulator_range(weights.values(), in_encoding)
    thresholds = None
    if out_encoding is not None:
        thresholds = random_thresholds(rng, acc_range, rows, out_encoding)
    return cls(name, in_encoding, weights, thresholds, out_encoding, acc_range,
               accumulator_width(acc_range, thresholds), **geometry)


def random_frames(rng, net, frames):
    return data.random_frames(rng, tuple(net.input_shape), net.input_encoding, frames)


def assert_packed_equals_golden(net, images, threads=1):
    expected = golden.run(net, images)
    actual = packed.run(net, images, threads=threads)
    assert [t.name for t in actual] == [t.name for t in expected]
    mismatch = first_mismatch(expected, actual)
    assert mismatch is None, str(mismatch)
    for want, got in zip(expected, actual, strict=True):
        assert got.out.shape == want.out.shape
        assert (got.acc is None) == (want.acc is None)
    np.testing.assert_array_equal(packed.scores(net, images, threads=threads), expected[-1].out)
    np.testing.assert_array_equal(packed.predict(net, images, threads=threads),
                                  golden.predict(net, images))


@pytest.mark.parametrize("name", zoo.trained_names())
def test_trained_zoo_models_match_golden_on_every_layer(name):
    assert_packed_equals_golden(zoo.load(f"zoo:{name}"), zoo_test_split(name)[0])


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_zoo_models_match_golden_on_every_layer(name):
    net = zoo.load(f"zoo:{name}")
    images = random_frames(np.random.default_rng(7), net, SYNTHETIC_FRAMES)
    assert_packed_equals_golden(net, images)


@st.composite
def dense_networks(draw):
    """1..3 dense layers: any input encoding, weight kind and hidden encoding."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    encoding = draw(st.sampled_from(ENCODINGS))
    widths = draw(st.lists(st.integers(1, 200), min_size=2, max_size=4))
    layers = []
    in_encoding = encoding
    for i, (cols, rows) in enumerate(zip(widths, widths[1:], strict=False)):
        last = i == len(widths) - 2
        out_encoding = None if last else draw(st.sampled_from(ENCODINGS))
        kind = draw(st.sampled_from(WEIGHT_KINDS))
        layers.append(weight_layer(rng, MatVec, f"dense{i}", in_encoding, kind, rows, cols,
                                   out_encoding))
        in_encoding = out_encoding
    net = NetworkIR("dense", (widths[0],), encoding, layers).validate()
    return net, random_frames(rng, net, draw(st.integers(1, 9)))


@st.composite
def conv_networks(draw):
    """conv (any padding, channels across word edges) [-> maxpool] [-> conv] -> dense."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    encoding = draw(st.sampled_from(ENCODINGS))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    c = draw(st.sampled_from([1, 2, 3, 17, 63, 64, 65, 70, 130]))
    shape = (h, w, c)
    layers = []
    in_encoding = encoding
    for i in range(draw(st.integers(1, 2))):
        kernel = draw(st.integers(1, min(3, shape[0], shape[1]) + 1))
        padding = draw(st.integers(0, kernel - 1))
        if min(shape[:2]) + 2 * padding < kernel:
            padding = kernel - 1
        channels = draw(st.integers(1, 70))
        out_encoding = draw(st.sampled_from(ENCODINGS))
        kind = draw(st.sampled_from(WEIGHT_KINDS))
        conv = weight_layer(rng, Conv, f"conv{i}", in_encoding, kind, channels,
                            kernel * kernel * shape[2], out_encoding, in_shape=shape,
                            kernel=kernel, padding=padding)
        layers.append(conv)
        shape, in_encoding = conv.out_shape, out_encoding
        pool = draw(st.integers(1, 3))
        if draw(st.booleans()) and pool <= min(shape[:2]):
            layers.append(MaxPool(f"pool{i}", shape, pool, in_encoding))
            shape = layers[-1].out_shape
    kind = draw(st.sampled_from(WEIGHT_KINDS))
    layers.append(weight_layer(rng, MatVec, "dense", in_encoding, kind, draw(st.integers(1, 12)),
                               int(np.prod(shape)), None))
    net = NetworkIR("conv", (h, w, c), encoding, layers).validate()
    return net, random_frames(rng, net, draw(st.integers(1, 9)))


@PROPERTY
@given(dense_networks())
def test_dense_networks_match_golden(case):
    net, images = case
    assert_packed_equals_golden(net, images)


@PROPERTY
@given(conv_networks())
def test_conv_and_pool_networks_match_golden(case):
    net, images = case
    assert_packed_equals_golden(net, images)


@pytest.mark.parametrize("name", zoo.trained_names())
def test_parallel_kernels_match_golden_on_zoo_models(name):
    assert_packed_equals_golden(zoo.load(f"zoo:{name}"), zoo_test_split(name)[0][:50],
                                threads=packed.max_threads())


@settings(max_examples=10, deadline=None)
@given(conv_networks())
def test_parallel_kernels_match_golden(case):
    net, images = case
    assert_packed_equals_golden(net, images, threads=packed.max_threads())


@pytest.mark.parametrize("encoding", ENCODINGS + ["int2", "int8"])  # intN: the graph path
def test_maxpool_of_every_encoding_by_hand(encoding):
    """2x2 pool of known values, then a 1x1 identity-like readout of its channels."""
    lo, hi = encoding_range(encoding)
    values = np.array([[lo, hi], [lo, lo]])  # max is hi
    channels = np.stack([values, np.full((2, 2), lo), values.T], axis=-1)  # (2, 2, 3)
    pool = MaxPool("pool", (2, 2, 3), 2, encoding)
    weights = Weights.binary(np.ones((3, 3), dtype=np.int64))
    acc_range = accumulator_range(weights.values(), encoding)
    dense = MatVec("dense", encoding, weights, None, None, acc_range,
                   accumulator_width(acc_range, None))
    net = NetworkIR("pool", (2, 2, 3), encoding, [pool, dense]).validate()
    trace = packed.run(net, channels[None])
    assert trace[0].out[0, 0, 0].tolist() == [hi, lo, hi]
    assert trace[1].out[0].tolist() == [2 * hi + lo] * 3


def test_first_conv_on_small_channels_packs_whole_patches():
    """A first layer on 3 channels of ternary pixels: one word per patch and plane."""
    rng = np.random.default_rng(3)
    conv = weight_layer(rng, Conv, "conv0", "ternary", "binary", 4, 27, "binary",
                        in_shape=(5, 5, 3), kernel=3, padding=1)
    dense = weight_layer(rng, MatVec, "dense", "binary", "binary", 2, 100, None)
    net = NetworkIR("cnv0", (5, 5, 3), "ternary", [conv, dense]).validate()
    engine = packed.PackedNetwork(net)
    # 27 patch bits -> 1 word per row; the dense layer reads 5x5 pixels of 4 channels, 1 word each
    assert engine.weight_bytes == 4 * 8 + 2 * 25 * 8
    assert_packed_equals_golden(engine.net, random_frames(rng, net, 4))


@pytest.mark.parametrize("encoding,kind,direct", [
    ("uint8", "binary", True), ("uint3", "ternary", True), ("uint8", "residual", True),
    ("binary", "binary", False), ("ternary", "binary", False)])
def test_first_conv_on_pixels_runs_on_their_integers(encoding, kind, direct):
    """A first conv on multi-bit pixels multiplies the frame's integers (no bit planes): 7
    output columns are a group of four pixels and a partial group; padding reads zeros."""
    from hwbnn.ref import chain

    rng = np.random.default_rng(5)
    conv = weight_layer(rng, Conv, "conv0", encoding, kind, 9, 27, "binary",
                        in_shape=(6, 7, 3), kernel=3, padding=1)
    dense = weight_layer(rng, MatVec, "dense", "binary", "binary", 2, 6 * 7 * 9, None)
    net = NetworkIR("first", (6, 7, 3), encoding, [conv, dense]).validate()
    engine = packed.PackedNetwork(net)
    assert (engine._program.steps[0, chain.KIND] == chain.KIND_DIRECT) == direct
    assert_packed_equals_golden(engine.net, random_frames(rng, net, 6))


@pytest.mark.parametrize("kind,stream", [("residual_col", 1), ("residual", 0)])
def test_column_bitwidths_run_as_a_weighed_stream(kind, stream):
    """A bitwidth per input column: each plane reads only the words of its columns (gathered
    per window), all planes in one weighed stream. Convs of 4-pixel tiles and a remainder,
    130 channels across word edges, a tile of frames and a remainder; the outputs threshold
    to binary (fused), to ternary and to scores. A bitwidth per weight keeps the masked
    pairs."""
    from hwbnn.ref import chain

    rng = np.random.default_rng(8)
    conv = weight_layer(rng, Conv, "conv0", "binary", kind, 70, 9 * 130, "binary",
                        in_shape=(7, 7, 130), kernel=3, padding=1)
    conv1 = weight_layer(rng, Conv, "conv1", "binary", kind, 20, 9 * 70, "ternary",
                         in_shape=(7, 7, 70), kernel=3, padding=0)
    dense = weight_layer(rng, MatVec, "dense0", "ternary", "binary", 100, 5 * 5 * 20, "binary")
    dense1 = weight_layer(rng, MatVec, "dense1", "binary", kind, 300, 100, "binary")
    dense2 = weight_layer(rng, MatVec, "dense2", "binary", kind, 10, 300, None)
    net = NetworkIR("col", (7, 7, 130), "binary", [conv, conv1, dense, dense1, dense2]
                    ).validate()
    engine = packed.PackedNetwork(net)
    assert engine._program.steps[:, chain.STREAM].tolist() == [stream, stream, 0, stream,
                                                               stream]
    frames = random_frames(rng, net, 6)
    assert_packed_equals_golden(engine.net, frames)
    assert np.array_equal(engine.scores(frames), golden.run(net, frames)[-1].out)


def test_pext_without_bmi2_matches_the_instruction():
    """The bit loop a CPU without BMI2 gets gathers the same bits as ``pext`` (where this CPU
    has the instruction; else both sides are the loop and the reference is numpy)."""
    from numba import njit

    from hwbnn.ref import popcount

    @njit
    def both(words, masks, out):
        for i in range(words.shape[0]):
            out[i, 0] = popcount.pext(words[i], masks[i])
            out[i, 1] = popcount._pext_loop(words[i], masks[i])

    rng = np.random.default_rng(9)
    words = rng.integers(0, 2**64, size=200, dtype=np.uint64)
    masks = rng.integers(0, 2**64, size=200, dtype=np.uint64)
    masks[:3] = [0, 2**64 - 1, 1 << 63]
    out = np.zeros((200, 2), dtype=np.uint64)
    both(words, masks, out)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").reshape(200, 64)
    keep = np.unpackbits(masks.view(np.uint8), bitorder="little").reshape(200, 64).astype(bool)
    expected = [sum(int(b) << k for k, b in enumerate(row[m])) for row, m in zip(bits, keep,
                                                                                  strict=True)]
    assert out[:, 0].tolist() == expected and out[:, 1].tolist() == expected


def test_weight_bytes_of_a_binary_mlp_are_a_32nd_of_float32():
    rng = np.random.default_rng(4)
    layers = [weight_layer(rng, MatVec, "dense0", "binary", "binary", 128, 256, "binary"),
              weight_layer(rng, MatVec, "dense1", "binary", "binary", 10, 128, None)]
    net = NetworkIR("mlp", (256,), "binary", layers).validate()
    params = 128 * 256 + 10 * 128
    assert packed.PackedNetwork(net).weight_bytes * 32 == 4 * params


def test_large_batches_run_in_micro_batches(digits):
    engine = packed.PackedNetwork(zoo.load("zoo:digits_cnn_w1a1"))
    # the largest accumulators: 8x8 pixels x 32 channels x 8 bytes per frame
    assert engine.micro_batch == packed.MICRO_BATCH_BYTES // (8 * 8 * 32 * 8) < 100
    frames = digits.test_x[:100]
    np.testing.assert_array_equal(engine.scores(frames), golden.scores(engine.net, frames))


def test_empty_batch_gives_empty_scores(tiny_net):
    assert packed.scores(tiny_net, np.zeros((0, 4), dtype=np.int64)).shape == (0, 2)


def test_model_it_cannot_run_is_an_error(tiny_net):
    class Threshold:  # a layer kind the engine (and the IR) does not know
        name = "thr"
        in_encoding = "binary"

    net = NetworkIR("odd", (4,), "uint2", [tiny_net.layers[0], Threshold(), tiny_net.layers[1]])
    with pytest.raises(HwbnnError, match="unsupported layer type Threshold"):
        packed.run(net, np.zeros((1, 4), dtype=np.int64))


def test_unsorted_thresholds_are_an_error_not_a_wrong_answer(tiny_net):
    layer = tiny_net.layers[0]
    layer.thresholds = np.array([[0, 1], [3, 2], [1, 1]])
    layer.out_encoding = "ternary"
    with pytest.raises(HwbnnError, match="not sorted"):
        packed.scores(tiny_net, np.zeros((1, 4), dtype=np.int64))


@pytest.mark.parametrize("images,message", [
    (np.zeros((1, 5), dtype=np.int64), "shape"),
    (np.full((1, 4), 4), "0..3"),
    (np.full((1, 4), 1.5), "integers"),
])
def test_bad_frames_are_an_error(tiny_net, images, message):
    with pytest.raises(HwbnnError, match=message):
        packed.scores(tiny_net, images)


def test_zero_is_not_a_binary_input():
    rng = np.random.default_rng(5)
    dense = weight_layer(rng, MatVec, "dense", "binary", "binary", 2, 3, None)
    net = NetworkIR("bin", (3,), "binary", [dense]).validate()
    with pytest.raises(HwbnnError, match="-1 or \\+1"):
        packed.scores(net, np.array([[1, 0, -1]]))


@pytest.mark.parametrize("threads", [0, 10**6, 1.5])
def test_bad_thread_count_is_an_error(tiny_net, threads):
    with pytest.raises(HwbnnError, match="threads"):
        packed.scores(tiny_net, np.zeros((1, 4), dtype=np.int64), threads=threads)
