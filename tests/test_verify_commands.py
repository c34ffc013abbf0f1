"""``hwbnn verify``: report, exit codes, the waveform of a mismatch, one-line errors."""

import json
import re
import shutil
from pathlib import Path

import pytest

from hwbnn.cli import main

from .tooling import require_simulator

RTL = Path(__file__).resolve().parents[1] / "rtl"
CACHE = Path(__file__).resolve().parents[1] / "build" / "sim" / "cache"


@pytest.fixture
def icarus():
    require_simulator("icarus")


@pytest.fixture
def verilator():
    require_simulator("verilator")


def verify_json(capsys, *args):
    code = main(["verify", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_verify_a_design_folder_on_icarus(icarus, tmp_path, capsys):
    code, report = verify_json(capsys, str(RTL / "digits_mlp_w1a1"), "--sim", "icarus",
                               "--frames", "6", "--backpressure", "0.3", "--gap", "0.2",
                               "--work", str(tmp_path))
    assert code == 0
    assert report["passed"] and report["frames"] == 6 and report["sim"] == "icarus"
    assert report["sim_cycles"] >= 6 * report["cycles_per_frame"]
    assert report["sim_cycles_per_s"] > 0 and report["sim_frames_per_s"] > 0


def test_verify_a_design_folder_in_the_compiled_harness(verilator, tmp_path, capsys):
    code, report = verify_json(capsys, str(RTL / "digits_mlp_w1a1"), "--backpressure", "0.2",
                               "--gap", "0.1", "--work", str(tmp_path))
    assert code == 0
    assert report["passed"] and report["frames"] == 360 and report["sim"] == "verilator"
    assert (tmp_path / "verilator-harness" / "output.bin").stat().st_size == 360 * 10
    assert report["sim_cycles"] >= 360 * report["cycles_per_frame"]
    assert report["measured_cycles_per_frame"] >= report["cycles_per_frame"]
    assert report["sim_cycles_per_s"] > 0 and report["sim_frames_per_s"] > 0
    assert isinstance(report["build_cached"], bool) and report["build_s"] >= 0


def test_verify_synthetic_frames_of_the_model(verilator, tmp_path, capsys):
    code = main(["verify", str(RTL / "digits_mlp_w1a1"), "--dataset", "synthetic", "--frames",
                 "40", "--seed", "3", "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("hwbnn_digits_mlp_w1a1 on verilator: 40 frames bit-exact")


def test_a_dataset_that_does_not_fit_fails_before_generation(tmp_path, capsys):
    assert main(["verify", "zoo:lfc_w1a1", "--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == ("hwbnn: error: dataset digits has 8x8x1 frames, model lfc_w1a1 takes "
                   "28x28x1: use another dataset or --dataset synthetic\n")
    assert list(tmp_path.iterdir()) == []


def test_verify_in_the_amaranth_simulator(tmp_path, capsys):
    code = main(["verify", str(RTL / "digits_mlp_w1a1"), "--sim", "amaranth", "--frames", "2",
                 "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("hwbnn_digits_mlp_w1a1 on amaranth: 2 frames bit-exact")
    assert re.search(r"[\d,]+ cycles \(\d+ per frame, model 80\)", out)


def test_a_mismatch_exits_1_naming_layer_and_waveform(icarus, tmp_path, capsys):
    broken = tmp_path / "rtl"
    shutil.copytree(RTL / "digits_mlp_w1a1", broken)
    verilog = broken / "hwbnn_digits_mlp_w1a1.v"
    text = verilog.read_text()
    # Any flipped weight of the scores layer moves a score by 2 on every frame.
    start = text.index("module \\hwbnn_digits_mlp_w1a1.network.dense2 ")
    match = re.compile(r"weights\[0\] = (\d+)'([hd])([0-9a-f]+);").search(text, start)
    value = int(match.group(3), 16 if match.group(2) == "h" else 10) ^ 1
    verilog.write_text(text[:match.start()] + f"weights[0] = {match.group(1)}'h{value:x};"
                       + text[match.end():])
    code = main(["verify", str(broken), "--model", "zoo:digits_mlp_w1a1", "--sim", "icarus",
                 "--frames", "3", "--work", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert code == 1
    assert "DIFFER from the golden model" in out
    assert "first difference at the output: output frame 0" in out
    assert "per-layer taps: layer dense2 differs first at frame 0" in out
    waveform = re.search(r"^waveform: (.+)$", out, re.M).group(1)
    assert Path(waveform).is_file() and Path(waveform).stat().st_size > 0


@pytest.mark.parametrize(("args", "message"), [
    (["rtl/nothing_here/"], "is neither a design folder nor a model file"),
    (["zoo:nothing"], "no zoo model 'nothing'"),
    ([str(RTL / "digits_mlp_w1a1"), "--backpressure", "1.5"], "probability must be in"),
    ([str(RTL / "digits_mlp_w1a1"), "--frames", "0"], "--frames: must be a positive integer"),
    ([str(RTL / "digits_mlp_w1a1"), "--sim", "modelsim"], "invalid choice"),
    ([str(RTL / "digits_mlp_w1a1"), "--model", "zoo:digits_mlp_w2"], "ir_sha256 differs"),
    (["zoo:digits_mlp_w1a1", "--model", "zoo:digits_mlp_w2"], "--model is for a design"),
    ([str(RTL / "digits_mlp_w1a1"), "--dataset", "imagenet"], "dataset must be one of"),
])
def test_usage_errors_are_one_line(args, message, capsys):
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwbnn: error: ") and message in err
    assert err.count("\n") == 1
