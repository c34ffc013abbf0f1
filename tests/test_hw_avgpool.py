import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.avgpool import AvgPool
from hwbnn.hw.global_pool import GlobalAvgPool
from hwbnn.hw.simulate import run_stream
from hwbnn.ir.encoding import encoding_bits
from hwbnn.ir.network import AvgPool as AvgPoolLayer
from hwbnn.ir.network import GlobalAvgPool as GlobalLayer
from hwbnn.ref import golden

from .hw_layers import random_values


@pytest.mark.parametrize("shape, kernel, encoding", [
    ((4, 4, 3), 2, "int8"), ((5, 7, 2), 2, "uint4"), ((6, 6, 2), 3, "int4"),
    ((3, 3, 1), 1, "uint2")])
def test_avgpool_sums_equal_golden(shape, kernel, encoding):
    rng = np.random.default_rng(sum(shape))
    frames = random_values(rng, encoding, (3, *shape))
    layer = AvgPoolLayer("pool", shape, kernel, kernel, encoding)
    ref = golden.run_layer(layer, frames).out
    dut = AvgPool(shape, kernel, kernel, encoding)
    assert dut.out_encoding == layer.out_encoding
    c, bits = shape[2], encoding_bits(layer.out_encoding)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(frames, encoding, c),
                     ref.size // c, seed=kernel)
    rtl = packing.from_codes(packing.unpack(out, bits, c), dut.out_encoding).reshape(ref.shape)
    assert (rtl == ref).all()


@pytest.mark.parametrize("shape, encoding", [
    ((4, 4, 3), "int8"), ((3, 5, 2), "uint4"), ((1, 1, 2), "int2")])
def test_global_pool_sums_equal_golden(shape, encoding):
    rng = np.random.default_rng(sum(shape))
    frames = random_values(rng, encoding, (4, *shape))
    layer = GlobalLayer("gap", shape, encoding)
    ref = golden.run_layer(layer, frames).out
    dut = GlobalAvgPool(shape, encoding)
    assert dut.out_encoding == layer.out_encoding
    c, bits = shape[2], encoding_bits(layer.out_encoding)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(frames, encoding, c),
                     ref.size // c, seed=len(shape), stall=0.7)
    rtl = packing.from_codes(packing.unpack(out, bits, c), dut.out_encoding).reshape(ref.shape)
    assert (rtl == ref).all()


@pytest.mark.parametrize("make, message", [
    (lambda: AvgPool((4, 4, 1), 2, 1, "int8"), "needs stride = kernel"),
    (lambda: AvgPool((4, 4, 1), 2, 2, "binary"), "must be an integer encoding"),
    (lambda: AvgPool((4, 4, 1), 5, 5, "int8"), "pool kernel must be in 1..4"),
    (lambda: GlobalAvgPool((4, 4), "int8"), "input shape must be"),
    (lambda: GlobalAvgPool((4, 4, 1), "ternary"), "must be an integer encoding")])
def test_pool_errors(make, message):
    with pytest.raises(HwbnnError, match=message):
        make()
