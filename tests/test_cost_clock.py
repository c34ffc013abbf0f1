"""The clock model: predicted Fmax, auto-folding for it, and designs that cannot be built."""

import json

import pytest

from hwbnn import load
from hwbnn.cli import main
from hwbnn.cost.clock import (
    CLOCK_TERMS,
    clock_coefficients,
    clock_terms,
    fit_clock,
    folding_for,
    predict_mhz,
)
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import DEFAULT_CLOCK_MHZ, Folding


@pytest.fixture(scope="module")
def model():
    return load("zoo:digits_mlp_w1a1")


def test_the_fit_recovers_a_period_model_and_its_margin():
    truth = {"const": 10.0, "log2_fanout": 0.5, "log2_luts": 1.0, "log2_levels": 2.0,
             "log2_window": 0.7}
    rows = []
    for n in range(12):
        terms = {"const": 1.0, "log2_fanout": 4 + n % 5, "log2_luts": 8 + n % 3,
                 "log2_levels": (n % 4) / 2, "log2_window": float(n % 7)}
        rows.append((terms, predict_mhz(terms, truth)))
    fitted = fit_clock(rows)
    assert set(fitted) == {*CLOCK_TERMS, "margin"}
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=1e-4)
    assert fitted["margin"] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_cost_reports_the_predicted_clock(model, family):
    report = model.cost(family, "1x1,1x1,1x1")
    totals = report.totals()
    assert totals["clock_source"] == "predicted"
    terms = clock_terms(report.profile, totals["lut"])
    assert totals["clock_mhz"] == pytest.approx(predict_mhz(terms,
                                                            clock_coefficients(family)))
    assert totals["frames_per_s"] == pytest.approx(
        totals["clock_mhz"] * 1e6 / totals["cycles_per_frame"])
    # A given clock wins; a family without a model assumes 100 MHz and says so.
    assert model.cost(family, "1x1,1x1,1x1", clock_mhz=33).totals()["clock_source"] == "given"
    xc7 = model.cost("xc7", "1x1,1x1,1x1").totals()
    assert (xc7["clock_source"], xc7["clock_mhz"]) == ("assumed", DEFAULT_CLOCK_MHZ)


def test_auto_folding_aims_at_the_prediction_less_the_margin(model):
    folding = folding_for(model.net, "ice40", "auto", target_fps=3e5)
    report = model.cost("ice40", folding)
    margin = clock_coefficients("ice40")["margin"]
    assert folding.clock_source == "predicted"
    assert folding.clock_mhz <= report.totals()["clock_mhz"] * (1 - margin) + 1e-6
    assert folding.clock_mhz * 1e6 / folding.cycles_per_frame >= 3e5
    # The same folding as auto-folding at that clock, and slower than at 100 MHz needs.
    assert folding == Folding.auto(model.net, 3e5, folding.clock_mhz)
    assert folding.cycles_per_frame < Folding.auto(model.net, 3e5, 100.0).cycles_per_frame


def test_a_design_above_what_the_open_flow_routes_says_so_beforehand():
    """The Fashion-MNIST TFC folded for 1e6 frames/s on ECP5 (about 42,000 LUTs estimated,
    50,382 synthesized) fits the 85k but nextpnr did not route it: the folding carries a
    note, which gen writes into the manifest; smaller designs carry none."""
    from hwbnn.synth.flow import ROUTE_MAX_LUTS

    model = load("zoo:fmnist_tfc_w1a1")
    big = folding_for(model.net, "ecp5", "auto", target_fps=1e6)
    assert big.route_note.startswith("the estimate, ")
    assert f"above the {ROUTE_MAX_LUTS:,}" in big.route_note
    # `hwbnn cost` says the same of the same design (text and JSON).
    report = model.cost("ecp5", big)
    assert report.route_note == big.route_note == report.as_dict()["route_note"]
    assert model.cost("xc7", big).route_note is None  # no place and route there
    small = folding_for(load("zoo:fmnist_tfc_w1a1").net, "ecp5", "auto", target_fps=1e5)
    assert small.route_note is None


def test_a_design_too_big_for_the_family_is_refused_before_it_is_built(model, tmp_path,
                                                                       capsys):
    with pytest.raises(HwbnnError, match=r"does not fit the ice40 up5k: the estimate needs "
                                         r"[\d,]+ logic cells of its 5,280"):
        folding_for(model.net, "ice40", "auto", target_fps=1e7)
    assert main(["gen", "zoo:digits_mlp_w1a1", "--family", "ice40", "--target-fps", "1e7",
                 "--out", str(tmp_path / "rtl")]) == 2
    assert "does not fit the ice40 up5k" in capsys.readouterr().err
    assert not (tmp_path / "rtl").exists()


def test_gen_records_the_clock_it_folded_for(tmp_path, capsys):
    assert main(["gen", "zoo:digits_mlp_w1a1", "--family", "ecp5", "--target-fps", "1e6",
                 "--out", str(tmp_path / "rtl")]) == 0
    assert "(predicted)" in capsys.readouterr().out
    design = load("zoo:digits_mlp_w1a1").net
    made_for = json.loads((tmp_path / "rtl" / "manifest.json").read_text())["folded_for"]
    assert made_for["clock_source"] == "predicted" and made_for["target_frames_per_s"] == 1e6
    folding = Folding.parse(tmp_path / "rtl", design)
    assert made_for["clock_mhz"] * 1e6 / folding.cycles_per_frame >= 1e6


def test_an_explicit_folding_is_checked_at_the_predicted_clock(model):
    """`gen --family F --fold P1xS1,... --target-fps R`: the rate is checked at the clock
    the family will reach (less the margin) and recorded for closure after synthesis."""
    folding = folding_for(model.net, "ice40", "4x16,2x32,1x8", target_fps=1e5)
    assert (str(folding), folding.target_fps, folding.clock_source) == (
        "4x16,2x32,1x8", 1e5, "predicted")
    with pytest.raises(HwbnnError, match="cannot be met"):
        folding_for(model.net, "ice40", "1x1,1x1,1x1", target_fps=1e6)
