"""The CLI: figures, JSON, and one-line errors with exit code 2 for bad input."""

import json
import subprocess
import sys

import pytest

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.ir.fileformat import load

from .test_ir_fileformat import _rewrite


def hwbnn(*args, cwd=None):
    """Run the CLI in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "hwbnn.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwbnn: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def _bad_files(tmp_path):
    w1a1 = zoo.model_path("digits_mlp_w1a1").read_bytes()
    mix = zoo.model_path("digits_mlp_mix14").read_bytes()

    def unsorted(header, arrays):
        thresholds = arrays["layers/0/thresholds.npy"]
        header["layers"][0]["out_encoding"] = "uint2"
        arrays["layers/0/thresholds.npy"] = thresholds.repeat(3, axis=1)[:, ::-1] + [[2, 1, 0]]

    def bitwidth4(header, arrays):
        arrays["layers/1/bitwidth.npy"][3, 3] = 4

    def shape(header, arrays):
        arrays["layers/1/planes.npy"] = arrays["layers/1/planes.npy"][:, :5]

    cases = {
        "truncated": (w1a1[:1000], "truncated"),
        "version": (_rewrite(w1a1, lambda h, a: h.update(format_version=2)),
                    "format_version 2 is not supported"),
        "unsorted": (_rewrite(w1a1, unsorted), "not sorted ascending"),
        "bitwidth4": (_rewrite(mix, bitwidth4), "bitwidth must be 1, 2 or 3, found 4"),
        "shape": (_rewrite(w1a1, shape), "thresholds must have shape"),
    }
    paths = {}
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.hwbnn"
        path.write_bytes(content)
        paths[name] = (path, message)
    return paths


@pytest.mark.parametrize("case", ["truncated", "version", "unsorted", "bitwidth4", "shape"])
@pytest.mark.parametrize("command", ["summary", "run"])
def test_bad_model_files(tmp_path, case, command, capsys):
    path, message = _bad_files(tmp_path)[case]
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]


def test_errors_in_a_real_process(tmp_path):
    path, message = _bad_files(tmp_path)["truncated"]
    assert_clean_error(hwbnn("summary", path), message)
    assert_clean_error(hwbnn("run", "zoo:digits_mlp_w1a1", "--dataset", "mnist",
                             "--data-path", tmp_path / "missing"), "does not exist")
    assert_clean_error(hwbnn("summary", "zoo:nope"), "no zoo model 'nope'")
    assert_clean_error(hwbnn("summary", tmp_path / "absent.hwbnn"), "does not exist")
    assert_clean_error(hwbnn("export", path, "-o", tmp_path / "x"), "not a hwbnn checkpoint")
    assert_clean_error(hwbnn("train", "--weights", "w4", "--out", tmp_path / "m"),
                       "weight spec")
    assert_clean_error(hwbnn("frobnicate"), "invalid choice")
    assert not (tmp_path / "x.hwbnn").exists() and not (tmp_path / "m.hwbnn").exists()


def test_summary_json(capsys):
    assert main(["summary", "zoo:digits_mlp_mix14", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    first = summary["layers"][0]
    assert first["in_encoding"] == "uint5" and first["params"] == 64 * 32
    assert summary["totals"]["params"] == 64 * 32 + 32 * 32 + 32 * 10
    assert 1.35 < summary["totals"]["weight_bits"] / summary["totals"]["params"] < 1.45


def test_summary_table(capsys):
    assert main(["summary", "zoo:digits_cnn_w1a1"]) == 0
    out = capsys.readouterr().out
    assert "conv0" in out and "maxpool" in out and "compression vs float32" in out


def test_run_with_checkpoint_checks_exactness(capsys):
    checkpoint = zoo.checkpoint_path("digits_mlp_ternary")
    assert main(["run", "zoo:digits_mlp_ternary", "--checkpoint", str(checkpoint),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exact"] is True and result["frames"] == 360
    assert result["float_agreement"] >= 0.99


def test_train_then_export_then_run(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--dense", "16", "--weights", "ternary", "--epochs", "2",
                 "--out", str(out), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "m.hwbnn").is_file()
    assert main(["export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again.hwbnn").read_bytes() != b""
    capsys.readouterr()
    assert main(["run", str(tmp_path / "again.hwbnn"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == trained["integer_accuracy"]


def test_train_column_grouped_mix(tmp_path, capsys):
    """``--group column``: every input keeps one bitwidth across all outputs, exact mix."""
    out = tmp_path / "col"
    assert main(["train", "--dense", "16", "--weights", "mix:0.7,0.2,0.1", "--group", "column",
                 "--epochs", "1", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    for layer in load(tmp_path / "col.hwbnn").weight_layers:
        bitwidth = layer.weights.bitwidths()
        assert (bitwidth == bitwidth[:1]).all(), layer.name
    assert main(["train", "--weights", "mix:1.4", "--group", "rows", "--out", str(out)]) == 2
    assert "positive integer or 'column'" in capsys.readouterr().err
