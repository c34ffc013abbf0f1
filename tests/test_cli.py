"""The CLI: figures, JSON, and one-line errors with exit code 2 for bad input."""

import errno
import json
import os
import resource
import subprocess
import sys
import tempfile

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
        "version": (_rewrite(w1a1, lambda h, a: h.update(format_version=3)),
                    "format_version 3 is not supported"),
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
    assert "positive integer, 'column' or PExSIMD" in capsys.readouterr().err


# --- issue 17: bad numbers and file-system problems are one line, exit 2, nothing written ---


def _one_error_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwbnn: error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]


@pytest.mark.parametrize("argv", [
    ["gen", "zoo:digits_mlp_w1a1", "--target-fps", "nan", "--out", "rtl"],
    ["gen", "zoo:digits_mlp_w1a1", "--clock-mhz", "nan", "--out", "rtl"],
    ["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--target-fps", "inf"],
    ["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--clock-mhz", "-1"],
    ["bench", "cpu", "zoo:digits_mlp_w1a1", "--min-time", "nan"],
    ["train", "--lr", "nan", "--out", "m"],
    ["train", "--epochs", "0", "--out", "m"],
    ["train", "--seed", "-1", "--out", "m"],
])
def test_non_finite_and_non_positive_numbers_are_refused_at_parse_time(argv, capsys, tmp_path,
                                                                      monkeypatch):
    """11: --target-fps nan / --clock-mhz nan were ValueError tracebacks."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    option = next(a for a, value in zip(argv, argv[1:], strict=False)
                  if value in ("nan", "inf", "-1", "0"))
    _one_error_line(capsys, f"argument {option}: must be a")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    ('{"dense0": {"pe": null}}', "layer dense0: pe must be a positive integer, not None"),
    ('{"dense0": {"pe": true}}', "layer dense0: pe must be a positive integer, not True"),
    ('{"dense0": {"simd": NaN}}', "is not valid JSON"),
])
@pytest.mark.parametrize("command", ["gen", "cost"])
def test_bad_folding_files(tmp_path, capsys, content, message, command):
    """11: a --fold file with {"pe": null} was a TypeError in gen (and accepted by cost)."""
    fold = tmp_path / "fold.json"
    fold.write_text(content)
    extra = ["--out", str(tmp_path / "rtl")] if command == "gen" else ["--family", "ice40"]
    assert main([command, "zoo:digits_mlp_w1a1", "--fold", str(fold), *extra]) == 2
    _one_error_line(capsys, message)
    assert not (tmp_path / "rtl").exists()


def _refuse(*args, **kwargs):
    """Stands in for os.open or tempfile.mkstemp where permission is refused."""
    path = kwargs["dir"] if "dir" in kwargs else args[0]
    raise PermissionError(errno.EACCES, "Permission denied", str(path))


def test_unreadable_files(tmp_path, capsys, monkeypatch):
    """11: an unreadable --fold file was a PermissionError traceback (simulated, as root may
    read anything)."""
    fold = tmp_path / "fold.json"
    fold.write_text("{}")
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args: _refuse(path) if str(path) == str(
        fold) else real_open(path, *args))
    assert main(["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--fold", str(fold)]) == 2
    _one_error_line(capsys, f"cannot read folding file {str(fold)!r}: Permission denied")
    assert main(["summary", str(fold)]) == 2
    _one_error_line(capsys, f"cannot read model file {str(fold)!r}: Permission denied")


def test_gen_out_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    """11: gen --out naming an existing file or a read-only place: FileExistsError /
    PermissionError tracebacks; now one line naming the folder, before any conversion."""
    (tmp_path / "existing").write_text("x")
    for out, message in ((tmp_path / "existing", "a file is in the way"),
                         (tmp_path / "existing" / "sub", "a file is in the way")):
        assert main(["gen", "zoo:digits_mlp_w1a1", "--out", str(out)]) == 2
        _one_error_line(capsys, f"cannot create folder {str(out)!r}: {message}")
    monkeypatch.setattr(os, "access", lambda *args: False)
    assert main(["gen", "zoo:digits_mlp_w1a1", "--out", str(tmp_path / "rtl")]) == 2
    _one_error_line(capsys, "cannot create folder", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_outputs_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    """11: a read-only place or a folder in the way of an output file: one line, nothing
    left behind (not even the temporary file)."""
    (tmp_path / "x.hwbnn").mkdir()
    onnx = tmp_path / "m.onnx"
    assert main(["export", "zoo:digits_mlp_w1a1", "--to", "qonnx", "-o", str(onnx)]) == 0
    capsys.readouterr()
    assert main(["import", str(onnx), "-o", str(tmp_path / "x")]) == 2
    _one_error_line(capsys, f"cannot write {str(tmp_path / 'x.hwbnn')!r}: Is a directory")
    for out in ("", "/"):
        assert main(["import", str(onnx), "-o", out]) == 2
        _one_error_line(capsys, "must name a file")
    monkeypatch.setattr(tempfile, "mkstemp", _refuse)
    assert main(["import", str(onnx), "-o", str(tmp_path / "y")]) == 2
    _one_error_line(capsys, f"cannot write {str(tmp_path / 'y.hwbnn')!r}: Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "x.hwbnn"]


def test_file_system_errors_in_a_real_process(tmp_path):
    """11, end to end: exit code 2 and one line."""
    (tmp_path / "existing").write_text("x")
    assert_clean_error(hwbnn("gen", "zoo:digits_mlp_w1a1", "--out", tmp_path / "existing"),
                       "a file is in the way")
    assert_clean_error(hwbnn("summary", tmp_path), "Is a directory")
    assert_clean_error(hwbnn("gen", "zoo:digits_mlp_w1a1", "--clock-mhz", "nan", "--out",
                             tmp_path / "rtl"), "--clock-mhz", "positive number")


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_gen_under_an_address_space_limit(tmp_path):
    """12: under ulimit -v 4 GB the WebAssembly Yosys cannot reserve its memory: one line
    naming how much address space it needs, and no output folder."""
    env = dict(os.environ, AMARANTH_USE_YOSYS="builtin")  # not a native yosys on PATH
    result = subprocess.run([sys.executable, "-m", "hwbnn.cli", "gen", "zoo:digits_mlp_w1a1",
                             "--out", str(tmp_path / "rtl")], capture_output=True, text=True,
                            env=env, preexec_fn=_limit_address_space, timeout=300)
    assert_clean_error(result, "Yosys", "needs about 4.5 GiB of address space",
                       "ulimit -v: 4.0 GiB")
    assert not (tmp_path / "rtl").exists()


@pytest.mark.parametrize("module, hint", [
    ("cocotb", "needs the 'sim' extra (module cocotb is missing): pip install 'hwbnn[sim]'"),
    ("amaranth_boards.icebreaker", "needs the 'hw' extra (module amaranth_boards is missing)"),
    ("torch", "needs PyTorch: pip install torch"),
])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, capsys, module, hint):
    import hwbnn.commands

    def needs(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(hwbnn.commands, "cmd_summary", needs)
    assert main(["summary", "zoo:digits_mlp_w1a1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwbnn: error: this command") and hint in err
    assert len(err.splitlines()) == 1


def test_a_missing_module_that_is_no_extra_keeps_its_trace(monkeypatch):
    import hwbnn.commands

    def broken(args):
        raise ModuleNotFoundError("No module named 'hwbnn.nothing'", name="hwbnn.nothing")

    monkeypatch.setattr(hwbnn.commands, "cmd_summary", broken)
    with pytest.raises(ModuleNotFoundError):
        main(["summary", "zoo:digits_mlp_w1a1"])
