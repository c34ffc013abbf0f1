"""Residual graphs in hardware: forks, joins, shortcut FIFO sizing (Amaranth simulation)."""

import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.simulate import simulate_network
from hwbnn.ref import golden

from .hw_layers import random_values, tiny_resnet

FRAMES = 4


@pytest.fixture(scope="module")
def net():
    return tiny_resnet()


@pytest.fixture(scope="module")
def images(net):
    return random_values(np.random.default_rng(1), net.input_encoding, (FRAMES, 4, 4, 1))


@pytest.mark.parametrize("folding", [None, "2x3,1x2,2x6,4x2,3x4", "1x9,2x18,4x1,1x1,1x4"])
def test_graph_scores_equal_golden(net, images, folding):
    """Default folding (PE = SIMD = 1) and inline foldings, random gaps and backpressure."""
    top = NetworkTop(net, folding)
    assert (simulate_network(top, images, seed=7) == golden.scores(net, images)).all()


def test_graph_structure(net):
    top = NetworkTop(net)
    readers = top.consumers()
    assert readers["stem"] == [("b0_sign", 0), ("b0_add", 1)]
    assert readers["b0_add"] == [("b1_sign", 0), ("b1_pool", 0)]
    assert [s.sources for s in top.stages if s.layer == "b1_add"] == [("b1_conv", "b1_short")]


def test_shortcut_depth_model(net):
    """b0's shortcut skips a sliding window (two frames of 32 elements at PE = 1), so its
    FIFO holds more than two frames; b1's shortcut has a window of its own (the 1x1 conv)
    and the average pool, so there the conv path gets the (smaller) FIFO."""
    depths = NetworkTop(net).shortcut_depths
    assert depths["b0_add"][0] == 2 and depths["b0_add"][1] > 2 * 32
    assert depths["b1_add"][1] == 2 and 2 < depths["b1_add"][0] < 2 * 16


def test_computed_depths_keep_full_rate(net, images):
    """Without gaps the frame interval equals the cycle model's slowest stage (the join
    never holds the pipeline back)."""
    top = NetworkTop(net)
    times = []
    simulate_network(top, images, seed=None, times=times)
    beats = top.output_beats_per_frame
    steady = np.diff(times[beats - 1::beats])[-1]
    assert steady <= top.cycle_model()["cycles_per_frame"] * 1.05


def test_small_shortcut_fifo_deadlocks(net, images):
    """A shortcut FIFO of a quarter frame (8 beats, against the computed 83) deadlocks: the
    conv's sliding window needs the whole frame before its first output, the fork cannot
    hand it on while the shortcut is full, and the join waits for the conv."""
    computed = NetworkTop(net).shortcut_depths["b0_add"]
    top = NetworkTop(net, shortcut_depths={"b0_add": (computed[0], 8)})
    with pytest.raises(AssertionError, match="only 0 of"):
        simulate_network(top, images[:1], seed=3, max_cycles=5000)


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "unrolled"}, "the unrolled mode does not support a graph"),
    ({"shortcut_depths": {"b0_conv": (2, 2)}}, "names 'b0_conv', which is no add layer"),
    ({"shortcut_depths": {"b0_add": (2, 0)}}, "must be two positive integers"),
    ({"folding": "1x1"}, "--fold needs 5 PExSIMD pairs")])
def test_graph_errors(net, kwargs, message):
    with pytest.raises(HwbnnError, match=message):
        NetworkTop(net, **kwargs)
