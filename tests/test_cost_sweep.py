"""Mix sweeps: rows, Pareto fronts, CSV / Markdown / PNG outputs and the CLI."""

import csv

import pytest

from hwbnn.cli import main
from hwbnn.cost.sweep import SweepSettings, pareto_front, run_sweep, write_outputs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pareto_front():
    rows = [{"mix": "a", "lut": 10, "accuracy": 0.5}, {"mix": "b", "lut": 20, "accuracy": 0.4},
            {"mix": "c", "lut": 30, "accuracy": 0.9}, {"mix": "d", "lut": 5, "accuracy": 0.5}]
    assert [row["mix"] for row in pareto_front(rows, "lut")] == ["d", "c"]


def test_sweep_rows_and_outputs(tmp_path):
    settings = SweepSettings("zoo:digits_mlp_w2")
    rows = run_sweep(settings, ["1", "1.4", "2"])
    assert [row["mix"] for row in rows] == ["1", "1.4", "2"]
    by_mix = {row["mix"]: row for row in rows}
    # Weight bits follow the mix exactly (every weight of the MLP is re-quantized).
    params = by_mix["1"]["weight_bits"]
    assert by_mix["2"]["weight_bits"] == 2 * params
    assert by_mix["1.4"]["weight_bits"] == pytest.approx(1.4 * params, abs=3)
    assert by_mix["1"]["cycles_per_frame"] < by_mix["1.4"]["cycles_per_frame"] \
        < by_mix["2"]["cycles_per_frame"]
    assert all(0 <= row["accuracy"] <= 1 for row in rows)
    paths = write_outputs(rows, settings, tmp_path)
    assert {p.name for p in paths} == {"sweep.csv", "sweep.md", "pareto_lut.png",
                                        "pareto_energy.png"}
    assert rows[0]["folding"] == {name: {"pe": 1, "simd": 1}
                                  for name in ("dense0", "dense1", "dense2")}
    with open(tmp_path / "sweep.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [row["mix"] for row in table] == ["1", "1.4", "2"]
    assert table[0]["folding"] == "1x1,1x1,1x1"
    assert "Pareto front (accuracy vs LUTs)" in (tmp_path / "sweep.md").read_text()
    for name in ("pareto_lut.png", "pareto_energy.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


def test_sweep_cli_parallel(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "zoo:digits_mlp_mix14", "--mixes", "1.4,ternary", "--jobs", "2",
                 "--target-fps", "100000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 1.4 |" in text and "| ternary |" in text
    assert (out / "pareto_energy.png").is_file()


def test_sweep_unrolled(tmp_path, capsys):
    """``--mode unrolled``: every mix a frame per clock, priced from its unrolled units;
    more weight planes cost more adders; no FINN-R column (it prices folded units)."""
    out = tmp_path / "sweep"
    assert main(["sweep", "zoo:digits_mlp_w2", "--mixes", "1,2,3", "--mode", "unrolled",
                 "--out", str(out), "--json"]) == 0
    import json

    rows = {row["mix"]: row for row in json.loads(capsys.readouterr().out)["mixes"]}
    assert {row["cycles_per_frame"] for row in rows.values()} == {1}
    assert rows["1"]["lut"] < rows["2"]["lut"] < rows["3"]["lut"]
    assert rows["1"]["energy_pj_per_frame"] < rows["3"]["energy_pj_per_frame"]
    assert rows["2"]["energy_weight_memory_pj"] == 0 and rows["2"]["finn_r_lut"] is None
    assert rows["2"]["folding"]["dense0"] == {"pe": 32, "simd": 64}
    assert "unrolled (a frame per clock" in (out / "sweep.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["sweep", "zoo:digits_mlp_w2", "--mixes", "0.5"], "average bitwidth"),
    (["sweep", "zoo:digits_mlp_w2", "--train", "--mixes", "1"], "architecture"),
    (["sweep", "zoo:nothing"], "nothing"),
    (["sweep", "zoo:digits_mlp_w2", "--mode", "unrolled", "--target-fps", "1e5"],
     "--fold is for --mode folded"),
    (["sweep", "mlp:32", "--train", "--mode", "unrolled", "--fold", "1x1,1x1"],
     "--fold is for --mode folded"),
    (["sweep", "zoo:digits_resnet_w1a1", "--mode", "unrolled"], "graph"),
])
def test_sweep_errors(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_compare_table_takes_every_rows_keys():
    """A zoo model has a seed mean, a model file has none: the table has the column, and
    "-" where a row has no value (or None: the unrolled mode's estimate)."""
    from hwbnn.cost.sweep import compare_table

    rows = [{"model": "a", "accuracy": 0.5, "mean_accuracy": 0.75, "lut": None},
            {"model": "b", "accuracy": 0.25, "lut": 7}]
    assert compare_table(rows).splitlines() == [
        "| model | accuracy | mean_accuracy | lut |", "|---|---|---|---|",
        "| a | 50.00% | 75.00% | - |", "| b | 25.00% | - | 7 |"]
