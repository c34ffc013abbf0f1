"""``hwbnn explore``: the search space, trials, Pareto front, outputs and errors (in process;
the cluster and the killed worker are in test_dist.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.exploration import ExploreSettings, evaluate_point, pareto_front, resolve
from hwbnn.quant.models import QuantNet
from hwbnn.ref import golden

SMALL = ["mlp:16", "--board", "icebreaker", "--target-fps", "1000", "--weights",
         "binary,ternary,w2", "--activations", "binary,uint2", "--epochs", "2", "--jobs", "1"]


def test_a_trial_is_the_model_it_claims(tmp_path):
    """The trial's model file holds the per-layer specs of its point, its accuracy is the
    golden model's on the test split, and its costs are what `hwbnn cost` says."""
    from hwbnn import data
    from hwbnn.api import load

    settings = resolve(ExploreSettings("mlp:16,16", board="icebreaker", target_fps=2000.0,
                                       epochs=2))
    point = {"w0": "w2", "w1": "ternary", "w2": "binary", "a0": "uint2", "a1": "ternary"}
    outcome = evaluate_point(settings, point, "t")
    path = tmp_path / "t.hwbnn"
    path.write_bytes(outcome["model"])
    net = zoo.load(str(path))
    kinds = [layer.weights.kind for layer in net.weight_layers]
    assert kinds[1:] == ["ternary", "binary"] and kinds[0] in ("residual", "w2")
    assert [layer.out_encoding for layer in net.weight_layers[:2]] == ["uint2", "ternary"]
    digits = data.load("digits")
    assert outcome["metrics"]["accuracy"] == float(
        (golden.predict(net, digits.test_x) == digits.test_y).mean())
    report = load(str(path)).cost("ice40", "auto", target_fps=2000.0, clock_mhz=24.0)
    assert outcome["metrics"]["lut"] == round(report.totals()["lut"])
    assert outcome["metrics"]["frames_per_s"] >= 2000
    assert outcome["violations"]["frames_per_s"] <= 0


def test_per_layer_specs_build_the_layers_they_name():
    net = QuantNet({"arch": "mlp", "dense": [8, 8], "weights": ["binary", "ternary", "w3"],
                    "activations": ["uint2", "binary"]})
    quantizers = [m.weight_quantizer for m in net.body if hasattr(m, "weight_quantizer")]
    assert [type(q).__name__ for q in quantizers][:2] == ["BinaryWeight", "TernaryWeight"]
    with pytest.raises(HwbnnError, match="list of 3"):
        QuantNet({"arch": "mlp", "dense": [8, 8], "weights": ["binary", "ternary"]})


def test_pareto_front_keeps_the_non_dominated_feasible_rows():
    rows = [{"trial": 0, "accuracy": 0.9, "lut": 100, "feasible": True,
             "weights": ["binary"], "activations": []},
            {"trial": 1, "accuracy": 0.95, "lut": 200, "feasible": True,
             "weights": ["w2"], "activations": []},
            {"trial": 2, "accuracy": 0.92, "lut": 250, "feasible": True,
             "weights": ["ternary"], "activations": []},
            {"trial": 3, "accuracy": 0.99, "lut": 50, "feasible": False,
             "weights": ["w3"], "activations": []},
            {"trial": 4, "accuracy": 0.95, "lut": 200, "feasible": True,
             "weights": ["w2"], "activations": []}]
    assert [row["trial"] for row in pareto_front(rows, ("accuracy", "lut"))] == [1, 0]


def test_explore_command_writes_table_plot_models_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explore", *SMALL, "--trials", "3", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["trials"]) == 3 and result["clock_mhz"] == 24.0
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "explore.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    front = [row for row in result["trials"] if row["trial"] in result["pareto"]]
    assert front and all(row["feasible"] for row in front)
    for row in front:
        net = zoo.load(str(out / "pareto" / f"trial_{row['trial']}.hwbnn"))
        assert len(net.weight_layers) == 2
    text = (out / "explore.md").read_text()
    assert "Pareto front" in text and "digits_mlp_w1a1" in text
    # Running it again with more trials continues the same study.
    assert main(["explore", *SMALL, "--trials", "4", "--out", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [row["trial"] for row in again["trials"]][:3] == [0, 1, 2]
    assert len(again["trials"]) == 4
    assert again["trials"][:3] == result["trials"]


@pytest.mark.parametrize("argv, message", [
    (["explore", "mlp:x"], "not a positive width"),
    (["explore", "zoo:nope"], "explore starts from an architecture"),
    (["explore", "model.hwbnn"], "explore starts from an architecture"),
    (["explore", "mlp:16", "--objectives", "lut"], "objectives must include accuracy"),
    (["explore", "mlp:16", "--objectives", "accuracy,area"], "objectives must include"),
    (["explore", "mlp:16", "--weights", "float"], "float weights cannot"),
    (["explore", "mlp:16", "--weights", "w9"], "w9"),
    (["explore", "mlp:16", "--activations", "uint9"], "uint9"),
    (["explore", "mlp:16", "--fold", "1x1,1x1"], "--fold is not for explore"),
    (["explore", "mlp:16", "--widths", "0,8"], "positive widths"),
    (["explore", "mlp:16", "--storage", "nosuchdb://x"], "cannot open the study database"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out"), "--jobs", "1", "--trials", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_study_refuses_other_settings(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["explore", *SMALL, "--trials", "1", "--out", out]) == 0
    capsys.readouterr()
    assert main(["explore", *SMALL, "--trials", "1", "--out", out, "--study",
                 "explore-mlp:16-icebreaker-1000fps", "--epochs", "3"]) == 2
    assert "made with other settings (epochs differ)" in capsys.readouterr().err


def test_trials_are_reproducible_where_they_run():
    settings = resolve(ExploreSettings("mlp:16", target_fps=1000.0, epochs=2))
    point = {"w0": "ternary", "w1": "binary", "a0": "binary"}
    first, second = (evaluate_point(settings, point, "t") for _ in range(2))
    assert first["model"] == second["model"]
    assert np.isclose(first["metrics"]["accuracy"], second["metrics"]["accuracy"])


def test_synth_measures_the_front(tmp_path, capsys):
    """--synth puts Yosys's counts of every front design beside its estimate."""
    out = tmp_path / "out"
    assert main(["explore", *SMALL, "--trials", "1", "--synth", "--out", str(out),
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["trials"][0]
    assert row["measured_lut"] > 0 and row["measured_ff"] > 0 and "measured_bram" in row
    assert f"{row['lut']:,} / {row['measured_lut']:,}" in (out / "explore.md").read_text()


def test_python_api_explore(tmp_path):
    import hwbnn

    result = hwbnn.explore("mlp:16", trials=2, out=tmp_path, board="icebreaker",
                           target_fps=1e3, epochs=2, jobs=1, weights=("binary", "ternary"))
    assert len(result.trials) == 2 and result.front
    assert set(result.front[0]["weights"]) <= {"binary", "ternary"}
    assert result.best_reference["model"] == "digits_cnn_w1a1"
