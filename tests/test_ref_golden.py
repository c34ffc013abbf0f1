"""Golden model against hand-computed cases."""

import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.ir.network import Conv, MatVec, MaxPool, NetworkIR, Weights, accumulator_range
from hwbnn.ref import golden


def test_matvec_and_thresholds_by_hand(tiny_net):
    x = np.array([[0, 1, 2, 3]])
    w0 = tiny_net.layers[0].weights.values()
    acc0 = w0 @ x[0]
    hidden = np.where(acc0 >= np.array([0, -2, 3]), 1, -1)
    scores = tiny_net.layers[1].weights.values() @ hidden
    trace = golden.run(tiny_net, x)
    assert trace[0].acc.tolist() == [acc0.tolist()]
    assert trace[0].out.tolist() == [hidden.tolist()]
    assert trace[1].out.tolist() == [scores.tolist()]


@pytest.mark.parametrize("encoding,counts,expected", [
    ("binary", [0, 1], [-1, 1]),
    ("ternary", [0, 1, 2], [-1, 0, 1]),
    ("uint2", [0, 1, 2, 3], [0, 1, 2, 3]),
])
def test_threshold_counts_map_to_encoding(encoding, counts, expected):
    levels = len(counts) - 1
    thresholds = np.arange(levels)[None, :]  # t_k = k: acc = k passes k+1 thresholds
    acc = np.arange(-1, levels)[:, None].repeat(1, axis=1)
    out = golden.threshold(acc, thresholds, encoding)
    assert out[:, 0].tolist() == expected


def test_binary_conv_pads_with_minus_one():
    # 1x1 input, 3x3 kernel of all +1, padding 1: the 8 padded pixels count -1 each.
    weights = Weights.binary(np.ones((1, 9), dtype=np.int64))
    acc_range = accumulator_range(weights.values(), "binary")
    conv = Conv("conv0", "binary", weights, None, None, acc_range, 5, in_shape=(1, 1, 1),
                kernel=3, padding=1)
    net = NetworkIR("pad", (1, 1, 1), "binary", [conv]).validate()
    assert golden.scores(net, np.array([[[[1]]]])).tolist() == [[[[1 - 8]]]]


def test_unsigned_conv_pads_with_zero():
    weights = Weights.binary(np.ones((1, 9), dtype=np.int64))
    acc_range = accumulator_range(weights.values(), "uint2")
    conv = Conv("conv0", "uint2", weights, None, None, acc_range, 6, in_shape=(1, 1, 1),
                kernel=3, padding=1)
    net = NetworkIR("pad", (1, 1, 1), "uint2", [conv]).validate()
    assert golden.scores(net, np.array([[[[3]]]])).tolist() == [[[[3]]]]


def test_maxpool_is_or_on_binary_and_drops_remainder():
    x = np.array([-1, -1, -1, 1, -1, -1, -1, -1, -1]).reshape(1, 3, 3, 1)
    assert golden.maxpool(x, 2).tolist() == [[[[1]]]]
    layer = MaxPool("pool", (3, 3, 1), 2, "binary")
    assert layer.out_shape == (1, 1, 1)


def test_im2col_patch_order_is_row_col_channel():
    x = np.arange(2 * 2 * 2).reshape(1, 2, 2, 2)
    patches = golden.im2col(x, 2, 0, fill=0)
    assert patches[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


def test_predict_ties_go_to_lowest_index(tiny_net, monkeypatch):
    monkeypatch.setattr(golden, "scores", lambda net, images: np.array([[3, 3], [1, 5]]))
    assert golden.predict(tiny_net, None).tolist() == [0, 1]


def test_input_out_of_range_is_an_error(tiny_net):
    with pytest.raises(HwbnnError, match="input values must lie in 0..3"):
        golden.run(tiny_net, np.array([[0, 1, 2, 4]]))
    with pytest.raises(HwbnnError, match="shape"):
        golden.run(tiny_net, np.zeros((1, 5), dtype=np.int64))


def test_binary_input_rejects_zero():
    weights = Weights.binary(np.ones((1, 2), dtype=np.int64))
    acc_range = accumulator_range(weights.values(), "binary")
    layer = MatVec("dense0", "binary", weights, None, None, acc_range, 3)
    net = NetworkIR("bin", (2,), "binary", [layer]).validate()
    assert golden.scores(net, np.array([[1, -1]])).tolist() == [[0]]
    with pytest.raises(HwbnnError, match="binary input values must be -1 or \\+1"):
        golden.run(net, np.array([[1, 0]]))


def test_im2col_stride_two_takes_every_other_window():
    x = np.arange(5 * 5).reshape(1, 5, 5, 1)
    patches = golden.im2col(x, 3, 1, fill=-9, stride=2)
    assert patches.shape == (1, 3, 3, 9)
    assert patches[0, 0, 0].tolist() == [-9, -9, -9, -9, 0, 1, -9, 5, 6]
    assert patches[0, 2, 2].tolist() == [18, 19, -9, 23, 24, -9, -9, -9, -9]
