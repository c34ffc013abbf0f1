import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.simulate import simulate_network
from hwbnn.ref import golden

MLP_FOLD = {"dense0": {"pe": 4, "simd": 16}, "dense1": {"pe": 4, "simd": 8},
            "dense2": {"pe": 2, "simd": 8}}
CNN_FOLD = {"conv0": {"pe": 8, "simd": 9}, "conv1": {"pe": 16, "simd": 32},
            "dense2": {"pe": 5, "simd": 32}}
FOLDINGS = {"digits_mlp_w1a1": MLP_FOLD, "digits_mlp_ternary": MLP_FOLD,
            "digits_mlp_w2": MLP_FOLD, "digits_mlp_mix14": MLP_FOLD,
            "digits_cnn_w1a1": CNN_FOLD}
FRAMES = 20


@pytest.fixture(scope="module")
def images():
    return data.load("digits").test_x[:FRAMES]


@pytest.mark.parametrize("model", list(FOLDINGS))
def test_network_scores_equal_golden(model, images):
    """Whole network in simulation, random input gaps and output backpressure."""
    net = zoo.load(f"zoo:{model}")
    top = NetworkTop(net, FOLDINGS[model])
    rtl_scores = simulate_network(top, images, seed=len(model))
    assert (rtl_scores == golden.scores(net, images)).all()


def test_network_label_mode(images):
    net = zoo.load("zoo:digits_mlp_mix14")
    top = NetworkTop(net, MLP_FOLD, output="label")
    assert top.packing()["output"]["beats_per_frame"] == 1
    assert (simulate_network(top, images, seed=5) == golden.predict(net, images)).all()


@pytest.mark.parametrize("model, folding", [
    ("digits_mlp_w1a1", MLP_FOLD),
    ("digits_mlp_w1a1", {"dense0": {"pe": 2, "simd": 8}, "dense1": {"pe": 4, "simd": 8},
                         "dense2": {"pe": 2, "simd": 4}}),
    ("digits_mlp_mix14", {"dense0": {"pe": 8, "simd": 32}, "dense1": {"pe": 4, "simd": 16},
                          "dense2": {"pe": 1, "simd": 8}}),
    ("digits_cnn_w1a1", CNN_FOLD),
])
def test_steady_state_cycles_per_frame(model, folding, images):
    """Measured frame interval without gaps equals the slowest stage (<= model + 5%)."""
    net = zoo.load(f"zoo:{model}")
    top = NetworkTop(net, folding)
    frames = 6 if model.startswith("digits_mlp") else 4
    times = []
    simulate_network(top, images[:frames], seed=None, times=times)
    beats = top.output_beats_per_frame
    intervals = np.diff(times[beats - 1::beats])
    model_cycles = top.cycle_model()["cycles_per_frame"]
    steady = intervals[-1]
    assert (intervals[1:] == steady).all()
    assert steady <= model_cycles * 1.05
    assert steady == max(top.cycle_model()["stages"].values())


def test_cycle_model_names_bottleneck():
    net = zoo.load("zoo:digits_cnn_w1a1")
    top = NetworkTop(net, CNN_FOLD)
    Fragment.get(top, None)
    model = top.cycle_model()
    assert model["bottleneck"] == "conv0_window" and model["cycles_per_frame"] == 8 * 8 * 9
    assert model["stages"]["conv1"] == 4 * 4 * (64 // 16) * (288 // 32)


@pytest.mark.parametrize("kwargs, message", [
    ({"folding": {"dense0": {"pe": 3, "simd": 16}}}, "pe=3 does not divide MH"),
    ({"folding": {"dense9": {"pe": 1}}}, "unknown layer"),
    ({"output": "probabilities"}, "output must be 'scores' or 'label'"),
    ({"fifo_depth": 0}, "fifo_depth must be a positive integer"),
])
def test_network_errors(kwargs, message):
    with pytest.raises(HwbnnError, match=message):
        NetworkTop(zoo.load("zoo:digits_mlp_w1a1"), **kwargs)
