import pytest

from hwbnn.boards import targets
from hwbnn.errors import HwbnnError


@pytest.mark.parametrize("want", [16e6, 24e6, 30e6, 48e6, 100e6])
def test_ice40_pll_within_documented_ranges(want):
    pll = targets.ice40_pll(12e6, want)
    p = pll.params
    pfd = 12e6 / (p["DIVR"] + 1)
    vco = pfd * (p["DIVF"] + 1)
    assert pll.out_hz == vco / 2 ** p["DIVQ"]
    assert targets.ICE40_PFD[0] <= pfd <= targets.ICE40_PFD[1]
    assert targets.ICE40_VCO[0] <= vco <= targets.ICE40_VCO[1]
    assert 1 <= p["DIVQ"] <= 6 and 0 <= p["DIVR"] <= 15 and 0 <= p["DIVF"] <= 127
    assert abs(pll.out_hz - want) <= 0.01 * want


def test_ice40_pll_24mhz_on_icebreaker():
    # icepll -i 12 -o 24 gives these dividers (Project IceStorm).
    assert targets.ice40_pll(12e6, 24e6).params == {
        "DIVR": 0, "DIVF": 63, "DIVQ": 5, "FILTER_RANGE": 1}


@pytest.mark.parametrize("want", [10e6, 50e6, 75e6, 100e6, 133e6])
def test_ecp5_pll_within_documented_ranges(want):
    pll = targets.ecp5_pll(25e6, want)
    p = pll.params
    out = 25e6 * p["CLKFB_DIV"] / p["CLKI_DIV"]
    assert pll.out_hz == out
    assert targets.ECP5_VCO[0] <= out * p["CLKOP_DIV"] <= targets.ECP5_VCO[1]
    assert all(1 <= p[key] <= 128 for key in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV"))
    assert abs(out - want) <= 0.01 * want


def test_board_clocks():
    assert targets.board("icebreaker").pll(12e6) is None
    assert targets.board("ulx3s-85f").pll(50e6).out_hz == 50e6
    with pytest.raises(HwbnnError, match="no PLL support for xc7"):
        targets.board("arty-a7-35").pll(50e6)


@pytest.mark.parametrize("call, message", [
    (lambda: targets.board("de10"), "board must be one of icebreaker, ulx3s-85f, arty-a7-35"),
    (lambda: targets.ice40_pll(1e6, 24e6),
     "no iCE40 PLL setting gives 24 MHz from 1 MHz")])
def test_errors(call, message):
    with pytest.raises(HwbnnError, match=message):
        call()
