import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.simulate import run_stream
from hwbnn.hw.sliding_window import SlidingWindow
from hwbnn.ir.encoding import encoding_bits, pad_value
from hwbnn.ref import golden

from .hw_layers import random_values


@pytest.mark.parametrize("shape, kernel, padding, encoding", [
    ((4, 4, 2), 3, 1, "binary"), ((5, 3, 1), 2, 0, "uint3"), ((3, 4, 3), 3, 2, "ternary"),
    ((2, 2, 1), 1, 0, "binary")])
def test_windows_equal_im2col(shape, kernel, padding, encoding):
    rng = np.random.default_rng(sum(shape) + kernel)
    frames = random_values(rng, encoding, (2, *shape))
    bits, c = encoding_bits(encoding), shape[2]
    dut = SlidingWindow(shape, kernel, padding, bits)
    ref = golden.im2col(frames, kernel, padding, pad_value(encoding))
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(frames, encoding, c),
                     ref.size // c, seed=kernel + padding)
    rtl = packing.from_codes(packing.unpack(out, bits, c), encoding).reshape(ref.shape)
    assert (rtl == ref).all()
    assert dut.cycles_per_frame == ref[0].size // c


@pytest.mark.parametrize("shape, kernel, padding, stride, encoding", [
    ((8, 8, 2), 3, 1, 2, "binary"), ((5, 6, 1), 3, 0, 2, "int8"), ((7, 7, 2), 2, 1, 3, "uint2"),
    ((4, 4, 3), 1, 0, 2, "int4")])
def test_strided_windows_equal_im2col(shape, kernel, padding, stride, encoding):
    rng = np.random.default_rng(sum(shape) + stride)
    frames = random_values(rng, encoding, (2, *shape))
    bits, c = encoding_bits(encoding), shape[2]
    dut = SlidingWindow(shape, kernel, padding, bits, stride=stride)
    ref = golden.im2col(frames, kernel, padding, pad_value(encoding), stride)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(frames, encoding, c),
                     ref.size // c, seed=stride)
    rtl = packing.from_codes(packing.unpack(out, bits, c), encoding).reshape(ref.shape)
    assert (rtl == ref).all()
    assert dut.cycles_per_frame == ref[0].size // c


@pytest.mark.parametrize("args, message", [
    (((4, 4), 3, 1, 1), "input shape must be"), (((4, 4, 1), 0, 0, 1), "kernel must be"),
    (((4, 4, 1), 3, 3, 1), "padding must be in 0..2"),
    (((2, 2, 1), 5, 1, 1), "kernel 5 does not fit"),
    (((4, 4, 1), 3, 1, 1, 0), "stride must be a positive integer")])
def test_errors(args, message):
    with pytest.raises(HwbnnError, match=message):
        SlidingWindow(*args)
