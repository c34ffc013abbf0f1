import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.add import AddUnit
from hwbnn.hw.simulate import get_beats, put_beats
from hwbnn.ir.encoding import encoding_bits, encoding_levels
from hwbnn.ir.network import Add
from hwbnn.ref import golden

from .hw_layers import random_values


def rtl_add(dut, a, b, encodings, lanes, count, seed):
    """Stream ``a`` into i0 and ``b`` into i1 with independent gaps; drain with stalls."""
    result = []

    def source(port, values, encoding, n):
        async def run(ctx):
            await put_beats(ctx, port, packing.pack_values(values, encoding, lanes),
                            np.random.default_rng(seed + n), 0.2 + 0.4 * n)
        return run

    async def sink(ctx):
        result.extend(await get_beats(ctx, dut.o, count, np.random.default_rng(seed + 5), 0.3))

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(source(dut.i0, a, encodings[0], 0))
    sim.add_testbench(source(dut.i1, b, encodings[1], 1))
    sim.add_testbench(sink)
    sim.run()
    return result


@pytest.mark.parametrize("encodings, scales, out_encoding, thresholded, channels, lanes", [
    (("int8", "int8"), (1, 1), "int8", False, 4, 2),
    (("int8", "int4"), (1, 16), "int8", False, 3, 3),
    (("uint4", "int8"), (3, 2), "int10", False, 2, 1),
    (("int8", "int8"), (1, 1), "binary", True, 4, 4),
    (("uint3", "int6"), (5, 1), "int4", True, 6, 2)])
def test_add_unit_equals_golden(encodings, scales, out_encoding, thresholded, channels, lanes):
    rng = np.random.default_rng(channels + lanes)
    shape = (3, 2, channels)
    a, b = (random_values(rng, e, (2, *shape)) for e in encodings)
    thresholds = None
    layer = Add("add", ("a", "b"), shape, encodings, scales, None, out_encoding)
    if thresholded:
        lo, hi = layer.acc_range
        levels = encoding_levels(out_encoding)
        thresholds = np.sort(rng.integers(lo - 2, hi + 3, size=(channels, levels)), axis=1)
        layer.thresholds = thresholds
    ref = golden.add(layer, a, b).out
    dut = AddUnit(channels, lanes, encodings, scales, out_encoding, thresholds)
    out = rtl_add(dut, a, b, encodings, lanes, a.size // lanes, seed=channels)
    bits = encoding_bits(out_encoding)
    rtl = packing.from_codes(packing.unpack(out, bits, lanes), out_encoding).reshape(ref.shape)
    assert (rtl == ref).all()


@pytest.mark.parametrize("args, message", [
    ((4, 3, ("int8", "int8"), (1, 1), "int8"), "lanes=3 does not divide"),
    ((4, 2, ("int8",), (1, 1), "int8"), "needs two input encodings"),
    ((4, 2, ("int8", "binary"), (1, 1), "int8"), "must be an integer encoding"),
    ((4, 2, ("int8", "int8"), (0, 1), "int8"), "scales must be two integers in 1..255"),
    ((4, 2, ("int8", "int8"), (1, 1), "int17"), "add output encoding must be"),
    ((4, 2, ("int8", "int8"), (1, 1), "binary", np.zeros((4, 2), int)), "binary needs 1")])
def test_add_unit_errors(args, message):
    with pytest.raises(HwbnnError, match=message):
        AddUnit(*args)
