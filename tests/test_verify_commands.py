"""``hwbnn verify``: report, exit codes, the waveform of a mismatch, one-line errors."""

import json
import re
import shutil
from pathlib import Path

import pytest

from hwbnn import schema
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.verify import many
from hwbnn.verify.flow import VerifyReport

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
    (["zoo:digits_mlp_w1a1", "rtl/nothing_here/"], "rtl/nothing_here/ is neither a design"),
    ([str(RTL / "digits_mlp_w1a1"), "zoo:digits_mlp_w2", "--model", "zoo:digits_mlp_w1a1"],
     "zoo:digits_mlp_w2: --model is for a design folder"),
    ([str(RTL / "digits_mlp_w1a1"), "zoo:digits_mlp_w1a1", "--fold", "auto"],
     "digits_mlp_w1a1: --fold and --target-fps are for a MODEL target"),
    (["zoo:digits_mlp_w1a1", "zoo:digits_mlp_w2", "--fold", "3x3"],
     "zoo:digits_mlp_w1a1: --fold needs 3 PExSIMD pairs"),
    (["zoo:digits_mlp_w1a1", "zoo:digits_mlp_w2", "--jobs", "0"],
     "--jobs: must be a positive integer"),
    (["zoo:digits_mlp_w1a1", "zoo:digits_mlp_w2", "--cluster", "bogus"],
     "cannot reach the Dask scheduler at bogus"),
    (["zoo:digits_mlp_w1a1", "--cluster", "tcp://127.0.0.1:x"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:x"),
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


# --- several targets: one job each (hwbnn.verify.many) ------------------------------------------
TWO_MODELS = ["zoo:digits_mlp_w1a1", "zoo:digits_mlp_ternary"]


def test_two_models_verified_on_a_local_dask_cluster(verilator, tmp_path, capsys):
    pytest.importorskip("distributed")
    code, out = verify_json(capsys, *TWO_MODELS, "--frames", "20", "--jobs", "2", "--work",
                            str(tmp_path))
    assert code == 0
    schema.validate("verify (several targets)", out)
    assert list(out) == ["schema_version", "designs", "passed"] and out["passed"] is True
    designs = out["designs"]
    assert [d["model"] for d in designs] == ["digits_mlp_w1a1", "digits_mlp_ternary"]
    assert all(d["passed"] and d["frames"] == 20 and d["sim"] == "verilator"
               for d in designs)
    # Each target in a work folder of its own, its design generated there.
    for design in designs:
        work = tmp_path / design["model"]
        assert design["work_path"] == str(work)
        assert design["design_path"] == str(work / "rtl")
        assert (work / "rtl" / "manifest.json").is_file()
        assert (work / "verilator-harness" / "output.bin").stat().st_size > 0


def test_several_targets_print_each_report_then_a_count(verilator, tmp_path, capsys):
    folder = str(RTL / "digits_mlp_w1a1")
    code = main(["verify", folder, "zoo:digits_mlp_ternary", "zoo:digits_mlp_ternary",
                 "--frames", "5", "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    heads = [line for line in out.splitlines() if " on verilator: " in line]
    assert heads == [
        f"hwbnn_digits_mlp_w1a1 on verilator: 5 frames bit-exact with the golden model "
        f"(scores mode, {folder})",
        f"hwbnn_digits_mlp_ternary on verilator: 5 frames bit-exact with the golden model "
        f"(scores mode, {tmp_path / 'digits_mlp_ternary' / 'rtl'})",
        f"hwbnn_digits_mlp_ternary on verilator: 5 frames bit-exact with the golden model "
        f"(scores mode, {tmp_path / 'digits_mlp_ternary-2' / 'rtl'})"]
    assert out.endswith("\n3 of 3 designs bit-exact\n")
    # The same name twice: the second gets NAME-2, so no two targets share a work folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "digits_mlp_ternary", "digits_mlp_ternary-2", "hwbnn_digits_mlp_w1a1"]


@pytest.mark.parametrize("json_output", [False, True])
def test_one_design_that_differs_fails_the_command(verilator, json_output, capsys,
                                                   monkeypatch):
    def run_job(job):  # the ternary design "differs"; no simulation
        passed = job.name != "digits_mlp_ternary"
        return VerifyReport(job.name, job.name, str(job.directory), "verilator", 2, passed,
                            difference=None if passed else "output frame 0 beat 0")

    monkeypatch.setattr(many, "run_job", run_job)
    code = main(["verify", *TWO_MODELS, "--frames", "2"] + (["--json"] if json_output else []))
    out = capsys.readouterr().out
    assert code == 1
    if json_output:
        data = json.loads(out)
        schema.validate("verify (several targets)", data)
        assert data["passed"] is False
        assert [d["passed"] for d in data["designs"]] == [True, False]
    else:
        assert "digits_mlp_ternary on verilator: 2 frames DIFFER from the golden model" in out
        assert out.endswith("\n1 of 2 designs bit-exact\n")


def test_errors_before_any_job_leave_no_work_folder(tmp_path, capsys):
    assert main(["verify", "zoo:digits_mlp_w1a1", "zoo:lfc_w1a1", "--work",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "hwbnn: error: zoo:lfc_w1a1: dataset digits has 8x8x1 frames, model lfc_w1a1 takes "
        "28x28x1: use another dataset or --dataset synthetic\n")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_scheduler_file_is_one_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    bad = tmp_path / "scheduler.json"
    bad.write_text("{")
    assert main(["verify", *TWO_MODELS, "--cluster", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwbnn: error: {bad} is not a Dask scheduler file")
    assert err.count("\n") == 1


def test_model_applies_to_every_design_folder_and_work_folders_differ(tmp_path):
    folder = str(RTL / "digits_mlp_w1a1")
    options = many.VerifyOptions(model="zoo:digits_mlp_w1a1", frames=3)
    jobs = many.plan_targets([folder, folder], options)
    assert [job.work for job in jobs] == [Path("build/verify/hwbnn_digits_mlp_w1a1"),
                                          Path("build/verify/hwbnn_digits_mlp_w1a1-2")]
    assert all(job.design.net.name == "digits_mlp_w1a1" and len(job.images) == 3
               for job in jobs)
    # One target keeps --work as it is; several work in WORK/NAME.
    options = many.VerifyOptions(work=str(tmp_path))
    assert many.plan_targets([folder], options)[0].work == tmp_path
    assert [job.work for job in many.plan_targets(["zoo:digits_mlp_w2", folder], options)] \
        == [tmp_path / "digits_mlp_w2", tmp_path / "hwbnn_digits_mlp_w1a1"]
    with pytest.raises(HwbnnError, match="one or more targets"):
        many.plan_targets([], options)
