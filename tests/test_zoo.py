"""The shipped zoo: accuracy claims, every shipped model is what the code builds (digits:
retrained byte for byte; Fashion-MNIST: its recipe's fingerprint), the Fashion-MNIST loader."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hwbnn import cli, data, zoo
from hwbnn.errors import HwbnnError
from hwbnn.ref import golden
from hwbnn.zoo.build import (
    build,
    fingerprint,
    read_record,
    rebuild_estimate,
    recipe,
    recipe_digest,
    recorded_run,
    table_rows,
    with_baselines,
    zoo_table,
)
from hwbnn.zoo.recipes import RECIPES, dataset_of

# Acceptance floors on the digits test split (issue: foundation).
FLOORS = {"digits_mlp_w1a1": 0.92, "digits_cnn_w1a1": 0.93,
          "digits_resnet_w1a1": 0.97}  # issue 18: residual, 98.33% at seed 0


def _accuracy(name, digits):
    return float(np.mean(golden.predict(zoo.load(f"zoo:{name}"), digits.test_x) == digits.test_y))


DIGITS = [name for name in zoo.trained_names() if dataset_of(RECIPES[name]) == "digits"]


def test_shipped_models_meet_their_floors(digits):
    accuracy = {name: _accuracy(name, digits) for name in DIGITS}
    for name, floor in FLOORS.items():
        assert accuracy[name] >= floor, (name, accuracy[name])
    assert accuracy["digits_mlp_ternary"] >= accuracy["digits_mlp_w1a1"]
    for name in DIGITS:  # the metadata reports what golden measures
        recorded = zoo.load(f"zoo:{name}").metadata["training"]["integer_accuracy"]
        assert recorded == accuracy[name]


def test_digits_record_and_files_rebuild_exactly(tmp_path):
    """`hwbnn zoo build --dataset digits --seeds 3` from an empty record: every shipped digits
    file byte for byte, every recorded accuracy equal (so the README's digits table is what the
    build prints), and the seeds' claims on the record."""
    record = tmp_path / "runs.json"
    rows = build(with_baselines(DIGITS, 3), seeds=3, zoo_dir=tmp_path, record_path=record)
    for name in DIGITS:
        for suffix in (".hwbnn", ".pt"):
            rebuilt = (tmp_path / f"{name}{suffix}").read_bytes()
            assert rebuilt == (zoo.ZOO_DIR / f"{name}{suffix}").read_bytes(), (name, suffix)
    shipped, rebuilt = read_record(), read_record(record)
    for name, seeds in rebuilt.items():
        for seed, run in seeds.items():
            for key in ("recipe", "float_accuracy", "integer_accuracy", "epochs"):
                assert run.get(key) == shipped[name][seed].get(key), (name, seed, key)
    mean = {row["model"]: row["mean_accuracy"] for row in rows}
    assert mean["digits_mlp_float"] >= 0.96
    assert mean["digits_mlp_w2"] - mean["digits_mlp_w1a1"] >= 0.01, mean  # bits matter here
    assert abs(mean["digits_mlp_mix14"] - mean["digits_mlp_w2"]) <= 0.01, mean  # Fromm et al.


def test_record_matches_the_shipped_files():
    """Seed 0 of the run record is the shipped file (its metadata's accuracies and epochs)."""
    record = read_record()
    for name in zoo.trained_names():
        run = recorded_run(record, name, 0)
        assert run is not None, f"{name}: no seed-0 run recorded for today's recipe"
        training = zoo.load(f"zoo:{name}").metadata["training"]
        for key in ("float_accuracy", "integer_accuracy", "epochs", "dataset"):
            assert run[key] == training[key], (name, key)


def _of(dataset):
    return [name for name in zoo.trained_names() if dataset_of(RECIPES[name]) == dataset]


# The Fashion-MNIST models behind the 3-seed claims, with their float baselines.
FASHION_CLAIMS = ["fmnist_sfc_w1a1", "fmnist_sfc_w2", "fmnist_sfc_mix14", "fmnist_sfc_ternary",
                  "fmnist_sfc_float", "fmnist_lfc_w1a1", "fmnist_mlp32_w1a1", "fmnist_mlp32_w2",
                  "fmnist_mlp32_mix14", "fmnist_mlp32_float"]
# Each README accuracy table: the names and seeds `hwbnn zoo table NAMES --seeds N` prints.
README_TABLES = {"digits": (with_baselines(_of("digits"), 3), 3),
                 "fashion-mnist": (_of("fashion-mnist"), 1),
                 "fashion-mnist 3 seeds": (with_baselines(_of("fashion-mnist"), 3), 3)}


@pytest.mark.parametrize("table", README_TABLES)
def test_readme_tables_are_what_zoo_table_prints(table, capsys):
    """Each README accuracy table is `hwbnn zoo table`'s output from the shipped record."""
    names, seeds = README_TABLES[table]
    printed = zoo_table(table_rows(names, seeds))
    if table == "fashion-mnist":  # printed with --jobs 2: the seed-0 rebuild's time
        assert cli.main(["zoo", "table", "--dataset", "fashion-mnist", "--jobs", "2"]) == 0
        printed = capsys.readouterr().out.rstrip("\n")
        assert "seed-0 rebuild (hwbnn zoo build --jobs 2): 19 jobs" in printed
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert printed in readme, printed


def test_fashion_mnist_claims_over_three_seeds():
    """The issue's accuracy floors that hold (3-seed means on the 10,000 test images), Fromm
    et al.'s claim at a shape where weight bits matter, and at SFC. (SFC W1A1's 3-seed mean is
    88.75%, below the issue's 89%, and the CNN's 90.95% below its 91%; the README says so.)"""
    mean = {row["model"]: row["mean_accuracy"] for row in table_rows(FASHION_CLAIMS, 3)}
    assert mean["fmnist_lfc_w1a1"] >= 0.895, mean
    assert mean["fmnist_mlp32_w2"] - mean["fmnist_mlp32_w1a1"] >= 0.01, mean  # bits matter
    assert abs(mean["fmnist_mlp32_mix14"] - mean["fmnist_mlp32_w2"]) <= 0.005, mean
    assert abs(mean["fmnist_sfc_mix14"] - mean["fmnist_sfc_w2"]) <= 0.005, mean
    assert mean["fmnist_sfc_ternary"] >= mean["fmnist_sfc_w2"], mean  # FATNN: ternary pays


def test_rebuild_estimate_schedules_the_recorded_times_longest_first(capsys):
    """Jobs in the build's order (largest expected work first), each to the first free
    worker: LFC (600 s) on one, TFC (100 s) then SFC... no: SFC (300 s) before TFC."""
    times = {"fmnist_lfc_w1a1": 600.0, "fmnist_sfc_w1a1": 300.0, "fmnist_tfc_w1a1": 100.0,
             "fmnist_tfc_w1a2": 250.0}
    record = {name: {0: {"recipe": recipe_digest(name), "train_s": seconds}}
              for name, seconds in times.items()}
    # order: lfc 600 -> worker 0; sfc 300 -> worker 1; tfc_w1a1 / tfc_w1a2 (same work, stable
    # order) 100 -> worker 1 (400), 250 -> worker 1 (650)
    assert rebuild_estimate(list(times), 2, record) == {
        "jobs": 4, "workers": 2, "train_s": 1250.0, "makespan_s": 650.0}
    assert rebuild_estimate(list(times), 1, record)["makespan_s"] == 1250.0
    with pytest.raises(HwbnnError, match="lacks seed 0 of fmnist_sfc_w2$"):
        rebuild_estimate(["fmnist_sfc_w2"], 2, record)


@pytest.mark.parametrize("name", zoo.trained_names())
def test_shipped_model_carries_its_recipes_fingerprint(name):
    """The first steps of the recipe, trained and exported with today's code, give the digest
    recorded at build: dataset, recipe and code path are those the file was made with
    (`hwbnn zoo build` retrains in full)."""
    recorded = zoo.load(f"zoo:{name}").metadata["training"]["fingerprint"]
    assert fingerprint(name) == recorded


def test_fashion_mnist_loader_reads_the_installed_files():
    dataset = data.load("fashion-mnist")
    assert dataset.train_x.shape == (60000, 28, 28, 1) and dataset.test_x.shape == (
        10000, 28, 28, 1)
    assert dataset.input_encoding == "uint8"
    assert np.bincount(dataset.train_y).tolist() == [6000] * 10
    assert np.bincount(dataset.test_y).tolist() == [1000] * 10
    # The first test image, an ankle boot (class 9), by its digest.
    assert hashlib.sha256(dataset.test_x[0].tobytes()).hexdigest()[:16] == "ffc7351ed0f8bae5"
    assert dataset.test_y[0] == 9


def test_a_fashion_mnist_model_scores_its_readme_figure_on_the_whole_split():
    dataset = data.load("fashion-mnist")
    net = zoo.load("zoo:fmnist_sfc_w1a1")
    accuracy = float(np.mean(golden.predict(net, dataset.test_x) == dataset.test_y))
    assert accuracy == net.metadata["training"]["integer_accuracy"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| fmnist_sfc_w1a1 |"))
    assert f"{100 * accuracy:.2f}%" in row


def test_unknown_references():
    with pytest.raises(HwbnnError, match="no zoo model"):
        zoo.load("zoo:digits_mlp_w9")
    with pytest.raises(HwbnnError, match="no recipe"):
        recipe("nothing")
