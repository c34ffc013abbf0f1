import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.maxpool import MaxPool
from hwbnn.hw.simulate import run_stream
from hwbnn.ir.encoding import encoding_bits
from hwbnn.ref import golden

from .hw_layers import random_values


@pytest.mark.parametrize("shape, kernel, encoding", [
    ((4, 4, 3), 2, "binary"), ((5, 7, 2), 2, "uint4"), ((6, 6, 2), 3, "ternary"),
    ((3, 3, 1), 1, "uint2")])
def test_maxpool_equals_golden(shape, kernel, encoding):
    rng = np.random.default_rng(sum(shape))
    frames = random_values(rng, encoding, (3, *shape))
    bits, c = encoding_bits(encoding), shape[2]
    dut = MaxPool(shape, kernel, encoding)
    ref = golden.maxpool(frames, kernel)
    out = run_stream(dut, dut.i, dut.o, packing.pack_values(frames, encoding, c),
                     ref.size // c, seed=kernel)
    rtl = packing.from_codes(packing.unpack(out, bits, c), encoding).reshape(ref.shape)
    assert (rtl == ref).all()


@pytest.mark.parametrize("args, message", [
    (((4, 4, 1), 5, "binary"), "pool kernel must be in 1..4"),
    (((4, 4, 1), 2, "uint9"), "max-pool encoding must be"),
    (((4, 4), 2, "binary"), "input shape must be")])
def test_errors(args, message):
    with pytest.raises(HwbnnError, match=message):
        MaxPool(*args)
