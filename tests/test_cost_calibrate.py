"""Calibration: the shipped constants reproduce the committed validation reports, the fit is
reproducible from the stored synthesis counts, block RAM is predicted exactly, and one small
config re-synthesizes to the stored counts (the generator has not drifted)."""

import json

import pytest

from hwbnn.cost import calibrate
from hwbnn.cost.estimate import constants
from hwbnn.cost.features import GROUPS
from hwbnn.cost.profile import LEVELS_PER_STAGE

from .tooling import require_yowasp

CALIBRATED = [family for family in calibrate.FAMILIES
              if (calibrate.CALIBRATION_DIR / f"report_{family}.json").is_file()]
CONFIGS = {config.name: config for config in calibrate.calibration_set()}


def stored(family):
    raw = json.loads((calibrate.CALIBRATION_DIR / f"synth_{family}.json").read_text())
    report = json.loads((calibrate.CALIBRATION_DIR / f"report_{family}.json").read_text())
    return raw["measured"], report


def test_acceptance_families_are_calibrated():
    assert {"ice40", "ecp5", "asic"} <= set(CALIBRATED)


def test_generator_pipeline_depth_matches():
    from hwbnn.hw import popcount

    assert LEVELS_PER_STAGE == popcount.LEVELS_PER_STAGE


@pytest.mark.parametrize("family", CALIBRATED)
def test_constants_reproduce_the_report(family):
    measured, report = stored(family)
    coefficients = constants(family)
    for row in report["rows"][:4]:
        estimate = calibrate.estimate_config(CONFIGS[row["config"]], family, coefficients)
        for target, figures in row.items():
            if target == "config":
                continue
            assert round(estimate[target], 1) == figures["estimate"]
            assert measured[row["config"]][target] == figures["synthesis"]


@pytest.mark.parametrize("family", CALIBRATED)
def test_fit_is_reproducible_from_stored_counts(family):
    measured, _ = stored(family)
    refit = calibrate.fit(calibrate.family_configs(family), measured, family)
    assert set(refit) == set(constants(family))
    for target, coefficients in refit.items():
        assert set(coefficients) <= set(GROUPS[target])
        assert coefficients == pytest.approx(constants(family)[target], rel=1e-4)


@pytest.mark.parametrize("family", [f for f in CALIBRATED if f in ("ice40", "ecp5")])
def test_block_ram_predicted_exactly(family):
    measured, _ = stored(family)
    for config in calibrate.family_configs(family):
        _, bram = calibrate.config_features(config, family)
        assert bram == measured[config.name]["bram"], config.name


@pytest.mark.parametrize("family", CALIBRATED)
def test_heldout_report_statistics(family):
    _, report = stored(family)
    rows = report["rows"]
    assert len(rows) >= 20
    assert all(CONFIGS[row["config"]].split == "heldout" for row in rows)
    for target, stats in report["stats"].items():
        errors = sorted(abs(row[target]["error"]) for row in rows)
        assert stats["max_abs_error"] == errors[-1]
        assert stats["configs"] == len(rows)


@pytest.fixture(scope="module")
def yosys():
    require_yowasp()


# The stored counts must still describe the generator: Yosys is deterministic, so a FIFO
# (stable code) re-synthesizes exactly; an MVTU may move by a few cells when the generator
# is touched, and beyond CALIBRATION_DRIFT the calibration is stale.
CALIBRATION_DRIFT = 0.03


@pytest.mark.parametrize("family, name, drift", [
    ("ice40", "c35_fifo_8x2", 0.0),
    ("ice40", "c29_binary_uint4_binary_8x32_p4s8", CALIBRATION_DRIFT),
])
def test_resynthesis_matches_stored_counts(yosys, family, name, drift):
    measured, _ = stored(family)
    counts = calibrate.synthesize_config(CONFIGS[name], family)
    for key in calibrate.TARGETS[family] + ("bram",):
        assert abs(counts[key] - measured[name][key]) <= drift * measured[name][key], (
            f"{key}: {counts[key]} now, {measured[name][key]} calibrated: the generator "
            f"changed; run `hwbnn cost calibrate --family {family} --jobs 2`")
