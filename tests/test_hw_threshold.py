import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.simulate import run_stream
from hwbnn.hw.threshold import ThresholdUnit
from hwbnn.ir.encoding import encoding_bits, encoding_levels, encoding_range
from hwbnn.ir.network import Threshold
from hwbnn.ref import golden

from .hw_layers import random_values


@pytest.mark.parametrize("in_encoding, out_encoding, channels, lanes", [
    ("int8", "binary", 6, 2), ("int8", "int8", 4, 4), ("int10", "uint2", 3, 1),
    ("uint5", "ternary", 4, 2), ("int12", "int3", 2, 2)])
def test_threshold_unit_equals_golden(in_encoding, out_encoding, channels, lanes):
    rng = np.random.default_rng(channels * 10 + lanes)
    lo, hi = encoding_range(in_encoding)
    levels = encoding_levels(out_encoding)
    thresholds = np.sort(rng.integers(lo - 3, hi + 4, size=(channels, levels)), axis=1)
    x = random_values(rng, in_encoding, (3, 2, 2, channels))
    layer = Threshold("t", (2, 2, channels), in_encoding, thresholds, out_encoding)
    ref = golden.run_layer(layer, x).out
    dut = ThresholdUnit(channels, lanes, in_encoding, thresholds, out_encoding)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(x, in_encoding, lanes),
                     x.size // lanes, seed=lanes)
    bits = encoding_bits(out_encoding)
    rtl = packing.from_codes(packing.unpack(out, bits, lanes), out_encoding).reshape(ref.shape)
    assert (rtl == ref).all()


@pytest.mark.parametrize("args, message", [
    ((4, 3, "int8", np.zeros((4, 1), int), "binary"), "lanes=3 does not divide the 4"),
    ((4, 2, "binary", np.zeros((4, 1), int), "binary"), "must be an integer encoding"),
    ((4, 2, "int8", np.zeros((4, 2), int), "binary"), "binary needs 1 thresholds"),
    ((4, 2, "int8", np.zeros((2, 1), int), "binary"), "must have 4 rows"),
    ((4, 2, "int8", np.array([[2, 1]] * 4), "ternary"), "sorted per channel"),
    ((0, 1, "int8", np.zeros((4, 1), int), "binary"), "channels must be a positive")])
def test_threshold_unit_errors(args, message):
    with pytest.raises(HwbnnError, match=message):
        ThresholdUnit(*args)
