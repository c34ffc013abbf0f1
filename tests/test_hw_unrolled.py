import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.simulate import run_stream, simulate_network
from hwbnn.hw.unrolled import UnrolledMatrixVectorUnit
from hwbnn.ref import golden

from .hw_layers import random_layer, random_values


@pytest.mark.parametrize("kind, in_encoding, out_encoding", [
    ("binary", "binary", "binary"), ("ternary", "ternary", "ternary"),
    ("residual", "uint3", None), ("grouped", "binary", "uint2"), ("residual", "ternary", "binary"),
    ("ternary", "binary", None)])
def test_unrolled_equals_golden(kind, in_encoding, out_encoding):
    rng = np.random.default_rng(len(kind) + len(in_encoding))
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=4, mw=8)
    x = random_values(rng, in_encoding, (6, 8))
    dut = UnrolledMatrixVectorUnit(layer)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(x, in_encoding, 8), 6, seed=1)
    codes = packing.unpack(out, dut.out_bits, 4).reshape(6, 4)
    rtl = (packing.from_signed(codes, dut.out_bits) if out_encoding is None
           else packing.from_codes(codes, out_encoding))
    assert (rtl == golden.run_layer(layer, x).out).all()


def test_unrolled_weight_bits_follow_the_mix():
    net = zoo.load("zoo:digits_mlp_mix14")
    layer = net.layers[1]
    unit = UnrolledMatrixVectorUnit(layer)
    assert unit.weight_bits == int(layer.weights.bitwidth.sum())
    Fragment.get(unit, None)


def test_unrolled_network_equals_golden():
    net = zoo.load("zoo:digits_mlp_mix14")
    images = data.load("digits").test_x[:8]
    top = NetworkTop(net, mode="unrolled")
    assert top.cycle_model()["cycles_per_frame"] == 1
    assert (simulate_network(top, images, seed=9) == golden.scores(net, images)).all()


def test_unrolled_too_large(monkeypatch):
    import hwbnn.hw.unrolled as unrolled

    monkeypatch.setattr(unrolled, "MAX_UNROLLED_WEIGHT_BITS", 1000)
    with pytest.raises(HwbnnError, match="design too large for unrolled mode"):
        UnrolledMatrixVectorUnit(zoo.load("zoo:digits_mlp_w1a1").layers[0])
