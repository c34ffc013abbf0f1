"""The whole-network calibration: the network set, its stored synthesis, and the shipped
held-out report (docs/design.md section 6, "Whole networks")."""

import json

import pytest

from hwbnn.cost import calibrate as cal
from hwbnn.cost import networks as nw
from hwbnn.cost.clock import CLOCK_FAMILIES, clock_coefficients, fit_clock
from hwbnn.cost.estimate import constants

FAMILIES = ("ice40", "ecp5", "xc7", "asic")


def test_the_set_alternates_training_and_held_out_networks():
    names = [config.name for config in nw.NETWORKS]
    assert len(set(names)) == len(names)
    held_out = [c for c in nw.NETWORKS if c.split == "heldout"]
    assert len(held_out) >= 15
    assert [c.split for c in nw.NETWORKS[:4]] == ["train", "heldout", "train", "heldout"]
    # What the issue asks the held-out set to span.
    kinds = {c.weights for c in held_out} | {c.source for c in held_out}
    assert {"binary", "ternary", "w2", "w3", "mix631", "mix14"} <= kinds
    assert any(c.conv for c in held_out) and any(c.input_encoding == "uint8" for c in held_out)
    assert any(c.activations.startswith("uint") for c in held_out)


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_network_report_is_the_stored_counts_against_the_constants(family):
    """`hwbnn cost calibrate --refit` would write the shipped clock model and report."""
    networks = nw.load_measured(family)
    coefficients = constants(family)  # the fit itself: test_cost_calibrate
    report = json.loads((cal.CALIBRATION_DIR / f"report_networks_{family}.json").read_text())
    clock = clock_coefficients(family)
    assert (clock is not None) == (family in CLOCK_FAMILIES)
    if clock is not None:
        assert fit_clock(nw.clock_rows(family, networks, coefficients)) == clock
    again = nw.validate_networks(family, networks, coefficients, clock)
    assert json.loads(json.dumps(again)) == report
    unrolled = nw.validate_networks(family, networks, coefficients,
                                    configs=nw.UNROLLED_NETWORKS)
    path = cal.CALIBRATION_DIR / f"report_unrolled_{family}.json"
    assert path.is_file() == bool(unrolled["rows"])
    if unrolled["rows"]:
        assert json.loads(json.dumps(unrolled)) == json.loads(path.read_text())


# Held-out unrolled networks (every weight layer an unrolled unit, features.unrolled_features),
# (median, max) per target.
UNROLLED_TARGETS = {
    "ice40": {"lut": (0.05, 0.10), "ff": (0.02, 0.10), "bram": (0.0, 0.0)},
    "ecp5": {"lut": (0.05, 0.10), "ff": (0.02, 0.10), "bram": (0.0, 0.0)},
    "xc7": {"lut": (0.07, 0.12), "ff": (0.02, 0.10), "bram": (0.0, 0.0)},
    "asic": {"area_um2": (0.03, 0.07)},
}


@pytest.mark.parametrize("family", sorted(UNROLLED_TARGETS))
def test_held_out_unrolled_networks_meet_the_bounds(family):
    report = json.loads((cal.CALIBRATION_DIR / f"report_unrolled_{family}.json").read_text())
    assert len(report["rows"]) == len(nw.UNROLLED_NETWORKS) // 2
    for target, (median, worst) in UNROLLED_TARGETS[family].items():
        stats = report["stats"][target]
        assert stats["median_abs_error"] <= median, target
        assert stats["max_abs_error"] <= worst, target


def test_unrolled_networks_alternate_and_are_unrolled():
    names = [config.name for config in nw.ALL_NETWORKS]
    assert len(set(names)) == len(names)
    assert [c.split for c in nw.UNROLLED_NETWORKS[:2]] == ["train", "heldout"]
    assert {c.mode for c in nw.UNROLLED_NETWORKS} == {"unrolled"}
    assert {c.mode for c in nw.NETWORKS} == {"folded"}


def test_stored_network_counts_are_of_todays_verilog():
    """A sample of stored digests against the generator (the whole set: calibrate)."""
    for name in ("n00_mlp_bin_64", "n24_cnn_ter"):
        config = next(c for c in nw.NETWORKS if c.name == name)
        digest = nw.verilog_digest(config)
        for family in FAMILIES:
            assert nw.load_measured(family)[name]["verilog"] == digest, family


# The targets on held-out whole networks, as (median, max) bounds per target; where a
# target is not met the bound is the shipped figure, marked, so a regression still fails.
NETWORK_TARGETS = {
    # LUT max, iCE40 and ECP5: the 15% target is missed since the mixes' plane schedule moved
    # into the weight memory (issue 22) and the refit: iCE40 by n21_mlp_wide_pe2 at 16.5%
    # (14.1% before), ECP5 by n03_mlp_bin_wide2 at 15.2% (14.8%); neither has a mix.
    "ice40": {"lut": (0.07, 0.166), "ff": (0.05, 0.10), "bram": (0.0, 0.0),
              "fmax_mhz": (0.15, None)},
    "ecp5": {"lut": (0.07, 0.153), "ff": (0.05, 0.10), "bram": (0.0, 0.0),
             "fmax_mhz": (0.15, None)},
    "xc7": {"lut": (0.10, 0.19),  # no max target: 18.2% measured (17.6% before that refit)
            "bram": (0.0, 0.0)},
    "asic": {"area_um2": (0.05, 0.10)},
}


@pytest.mark.parametrize("family", sorted(NETWORK_TARGETS))
def test_held_out_networks_meet_the_bounds(family):
    report = json.loads((cal.CALIBRATION_DIR / f"report_networks_{family}.json").read_text())
    assert len(report["rows"]) >= 15
    for target, (median, worst) in NETWORK_TARGETS[family].items():
        stats = report["stats"][target]
        assert stats["median_abs_error"] <= median, target
        if worst is not None:
            assert stats["max_abs_error"] <= worst, target


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_the_residual_network_meets_the_whole_network_targets(family):
    """Issue 18: the residual model's blocks (int8 MVTUs with 255 thresholds, adds, forks,
    shortcut FIFOs, the stride-2 window, average and global average pools), estimated as a
    held-out network, within the whole-network targets: LUT <= 15%, FF <= 10%, block RAM
    exact."""
    report = json.loads((cal.CALIBRATION_DIR / f"report_networks_{family}.json").read_text())
    row = next(r for r in report["rows"] if r["network"] == "n35_digits_resnet_pe2")
    assert abs(row["lut"]["error"]) <= 0.15
    assert abs(row["ff"]["error"]) <= 0.10
    assert row["bram"]["estimate"] == row["bram"]["synthesis"]
    kinds = {c.source for c in nw.NETWORKS if c.split == "train"}
    assert "zoo:digits_resnet_w1a1" in kinds  # one residual network trains, one is held out


def test_ecp5_dsp_blocks_are_predicted_on_every_network():
    """features.dsp_blocks: the multiplications by constants that synth_ecp5 maps to
    MULT18X18D (window row addresses, multi-element converters of odd-width elements, plane
    scales that are no power of two), against every network's flattened count."""
    from hwbnn.cost.features import dsp_blocks

    measured = nw.load_measured("ecp5")
    used = 0
    for config in nw.NETWORKS:
        estimate = sum(dsp_blocks(block.kind, block.profile, "ecp5")
                       for block in nw.network_profile(config).blocks)
        assert estimate == measured[config.name]["counts"]["dsp"], config.name
        used += estimate > 0
    assert used >= 9  # CNN windows, the mix's scales, the residual model's converters
