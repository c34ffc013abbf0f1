import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn import data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.mvtu import MatrixVectorThresholdUnit
from hwbnn.hw.simulate import run_stream
from hwbnn.ref import golden

from .hw_layers import random_layer, random_values


def rtl_layer(layer, x, pe, simd, seed=0):
    """Run vectors ``x`` (N, MW) through an MVTU in simulation; return (N, MH) outputs."""
    dut = MatrixVectorThresholdUnit(layer, pe=pe, simd=simd)
    beats = packing.pack_values(x, layer.in_encoding, simd)
    out = run_stream(dut, dut.i, dut.o, beats, len(x) * layer.mh // pe, seed=seed)
    codes = packing.unpack(out, dut.out_bits, pe).reshape(len(x), layer.mh)
    if layer.produces_scores:
        return packing.from_signed(codes, dut.out_bits)
    return packing.from_codes(codes, layer.out_encoding)


# (weight kind, input encoding, output encoding or None for scores, PE, SIMD): every kind and
# encoding meets PE=1 / SIMD=MW, full PE / SIMD=1 and a middle folding.
CASES = [
    ("binary", "binary", "binary", 2, 4),
    ("binary", "binary", None, 1, 12),
    ("binary", "binary", "uint2", 6, 1),
    ("binary", "uint3", "binary", 6, 1),
    ("binary", "ternary", "uint2", 3, 6),
    ("ternary", "binary", "ternary", 2, 3),
    ("ternary", "ternary", "ternary", 1, 12),
    ("ternary", "uint4", None, 3, 4),
    ("residual", "binary", "binary", 2, 6),
    ("residual", "uint5", "binary", 3, 2),
    ("residual", "ternary", None, 6, 4),
    # one weight a tile: a per-parameter mix's schedule, its tile ends read from the weights
    ("residual", "binary", "binary", 1, 1),
    ("residual", "uint3", None, 1, 1),
    ("grouped", "binary", None, 2, 2),
    ("grouped", "uint2", "uint3", 1, 4),
    ("grouped", "ternary", "binary", 6, 12),
    # 8-bit integer weights (8 planes, the top one with sign -1), intN and wide inputs/outputs
    ("integer", "uint5", "int8", 2, 3),
    ("integer", "int10", "int8", 1, 1),
    ("integer", "int12", None, 3, 4),
    ("integer", "binary", "int3", 6, 12),
    ("binary", "binary", "int8", 2, 4),
    ("binary", "int8", "uint2", 1, 6),
]


@pytest.mark.parametrize("kind, in_encoding, out_encoding, pe, simd", CASES)
def test_mvtu_equals_golden(kind, in_encoding, out_encoding, pe, simd):
    rng = np.random.default_rng(pe * 100 + simd)
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=6, mw=12)
    x = random_values(rng, in_encoding, (4, 12))
    ref = golden.run_layer(layer, x)
    assert (rtl_layer(layer, x, pe, simd, seed=pe + simd) == ref.out).all()


@pytest.mark.parametrize("model, index, pe, simd", [
    ("digits_mlp_w1a1", 0, 4, 16), ("digits_mlp_w1a1", 1, 8, 8),
    ("digits_mlp_mix14", 1, 4, 16)])
def test_mvtu_zoo_layers(model, index, pe, simd):
    net = zoo.load(f"zoo:{model}")
    trace = golden.run(net, data.load("digits").test_x[:4])
    layer = net.layers[index]
    x = (trace[index - 1].out if index else data.load("digits").test_x[:4]).reshape(4, -1)
    assert (rtl_layer(layer, x, pe, simd) == trace[index].out).all()


def test_mvtu_properties():
    layer = random_layer(np.random.default_rng(1), "grouped", "binary", "binary", 4, 16,
                         group=4)
    mvtu = MatrixVectorThresholdUnit(layer, pe=2, simd=4)
    Fragment.get(mvtu, None)
    assert mvtu.cycles_per_vector == mvtu.plan.cycles_per_vector
    assert len(mvtu.i.payload) == 4 and len(mvtu.o.payload) == 2
    assert mvtu.latency == mvtu.tree_latency + 3


@pytest.mark.parametrize("kwargs, message", [
    ({"pe": 4, "simd": 4}, "pe=4 does not divide MH"),
    ({"pe": 2, "simd": 5}, "simd=5 does not divide MW"),
    ({"mode": "fast"}, "mode must be"),
])
def test_mvtu_errors(kwargs, message):
    layer = random_layer(np.random.default_rng(0), "binary", "binary", "binary", 6, 12)
    with pytest.raises(HwbnnError, match=message):
        MatrixVectorThresholdUnit(layer, **kwargs)


def test_mvtu_rejects_maxpool():
    net = zoo.load("zoo:digits_cnn_w1a1")
    with pytest.raises(HwbnnError, match="needs a matvec or conv layer, not MaxPool"):
        MatrixVectorThresholdUnit(net.layers[1])
