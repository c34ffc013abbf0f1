"""The per-lane datapath of the binary MVTU: exact in simulation, and its iCE40 area."""


import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwbnn.errors import HwbnnError
from hwbnn.hw import area
from hwbnn.hw.mvtu import MatrixVectorThresholdUnit
from hwbnn.hw.simulate import run_stream

from .hw_layers import random_layer
from .tooling import require_yowasp


def beats_of(x, w, first):
    """Input beats: x bits, then w bits, then the ``first`` flag (LSB first)."""
    return [sum(int(b) << n for n, b in enumerate(np.concatenate([xk, wk, [fk]])))
            for xk, wk, fk in zip(x, w, first, strict=True)]


@pytest.mark.parametrize("simd", [2, 5, 16])
def test_lane_datapath_accumulates_xnor_popcounts(simd):
    rng = np.random.default_rng(simd)
    count = 14
    x, w = rng.integers(0, 2, size=(2, count, simd))
    x[-1], w[-1] = 1, 1  # every lane agrees: the full count, carry lane included
    first = rng.random(count) < 0.3
    first[0] = True
    unit = area.lane_datapath(simd, 4 * simd)
    out = run_stream(unit, unit.i, unit.o, beats_of(x, w, first), count, seed=simd)
    expected, acc = [], 0
    for k in range(count):
        acc = (0 if first[k] else acc) + int(np.sum(x[k] == w[k]))
        expected.append(acc)
    assert out == expected


@pytest.mark.parametrize("mw", [7, 8, 512])
def test_accumulator_is_the_mvtus(mw):
    """The datapath's accumulator is as wide as the MVTU's for an all-binary layer."""
    layer = random_layer(np.random.default_rng(mw), "binary", "binary", "binary", 2, mw)
    unit = MatrixVectorThresholdUnit(layer, pe=1, simd=mw)
    Fragment.get(unit, None)
    assert area.accumulator_bits(mw) == unit.acc_shape.width
    assert not unit.acc_shape.signed
    assert area.accumulator_bits(mw) == (mw + 1).bit_length()


@pytest.mark.parametrize("simd, mw, message", [
    (1, 8, "simd must be an integer >= 2"),
    (4, 6, "mw must be a multiple of simd=4"),
    (4, 0, "mw must be a multiple of simd=4")])
def test_lane_datapath_errors(simd, mw, message):
    with pytest.raises(HwbnnError, match=message):
        area.LaneDatapath(simd, mw)


@pytest.fixture(scope="module")
def yosys():
    require_yowasp()


def test_lane_datapath_area_on_ice40(yosys, tmp_path):
    """Issue 4: XNOR + popcount + accumulate of a SIMD=64 binary PE in <= 2.5 LUT4 per lane,
    and a slope over SIMD inside the same budget (so the figure is not the accumulator's)."""
    rows = area.measure([32, 64], work=tmp_path)
    at64 = rows[1]
    assert at64["simd"] == 64 and at64["lut"] / 64 <= area.LUTS_PER_LANE_TARGET
    slope = (rows[1]["lut"] - rows[0]["lut"]) / 32
    assert slope <= area.LUTS_PER_LANE_TARGET
    assert all(row["carry"] > 0 for row in rows)  # adders on the carry chain, not in LUTs
