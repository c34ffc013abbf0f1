"""Opening generated designs for verification: the model found by digest, clear errors."""

import json
import shutil
from pathlib import Path

import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.verify import generate_design, open_design
from hwbnn.verify.design import ir_digest
from hwbnn.verify.flow import bench_config

RTL = Path(__file__).resolve().parents[1] / "rtl"


@pytest.fixture
def design_copy(tmp_path):
    target = tmp_path / "design"
    shutil.copytree(RTL / "digits_mlp_w1a1", target)
    return target


def edit_manifest(folder, **changes):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        manifest[key] = value
    path.write_text(json.dumps(manifest))
    return manifest


def test_the_zoo_model_is_found_by_its_digest():
    design = open_design(RTL / "digits_cnn_w1a1")
    assert design.net.name == "digits_cnn_w1a1"
    assert ir_digest(design.net) == design.manifest["ir_sha256"]
    assert design.verilog.is_file()


def test_another_model_is_refused(design_copy):
    with pytest.raises(HwbnnError, match="not the one .* was generated from"):
        open_design(design_copy, model="zoo:digits_mlp_w2")


def test_an_unknown_model_asks_for_model(design_copy):
    edit_manifest(design_copy, ir_sha256="0" * 64)
    with pytest.raises(HwbnnError, match="cannot find the model .* pass --model"):
        open_design(design_copy)


def test_a_model_file_beside_the_verilog_is_used(design_copy):
    from hwbnn.ir import fileformat

    net = zoo.load("zoo:digits_mlp_w1a1")
    edit_manifest(design_copy, model="renamed")
    fileformat.save(net, design_copy / "model.hwbnn")
    assert open_design(design_copy).net.name == net.name


def test_a_manifest_without_top_is_refused(design_copy):
    manifest = json.loads((design_copy / "manifest.json").read_text())
    del manifest["top"]
    (design_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HwbnnError, match="field 'top' is missing"):
        open_design(design_copy)


def test_a_bad_packing_field_is_named(design_copy):
    manifest = json.loads((design_copy / "manifest.json").read_text())
    manifest["packing"]["input"]["bits"] = 0
    (design_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HwbnnError, match="packing.input.bits must be a positive integer"):
        open_design(design_copy)


def test_packing_that_does_not_fit_the_model_is_refused(design_copy):
    manifest = json.loads((design_copy / "manifest.json").read_text())
    manifest["packing"]["input"]["beats_per_frame"] += 1
    (design_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HwbnnError, match="input beats of .* do not hold a 8x8x1 frame"):
        open_design(design_copy)


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(HwbnnError, match="is not a folder"):
        open_design(tmp_path / "absent")
    with pytest.raises(HwbnnError, match="manifest.json not found"):
        open_design(tmp_path)


def test_generate_design_writes_a_verifiable_folder(tmp_path):
    folding = {"dense0": {"pe": 2, "simd": 8}}
    design = generate_design("zoo:digits_mlp_ternary", tmp_path / "rtl", folding=folding)
    assert (design.folding["dense0"].pe, design.folding["dense0"].simd) == (2, 8)
    assert design.net.name == "digits_mlp_ternary"
    assert (tmp_path / "rtl" / "digits_mlp_ternary.hwbnn").is_file()
    assert [tap.per_beat for tap in design.taps()][0] == 2


def test_bench_config_window_and_patience():
    design = open_design(RTL / "digits_mlp_w1a1")
    quiet = bench_config(design, [[1, 2]], [[3]], gap=0.0, backpressure=0.0, seed=0)
    busy = bench_config(design, [[1, 2]], [[3]], gap=0.5, backpressure=0.5, seed=0)
    latency, cycles = design.latency_cycles, design.cycles_per_frame
    assert quiet["window"] == max(2, -(-latency // cycles))
    assert quiet["max_wait_cycles"] >= 4 * (latency + cycles)
    assert busy["max_wait_cycles"] >= 4 * quiet["max_wait_cycles"] - 4000
    assert quiet["frames"] == [["1", "2"]] and quiet["expected"] == [["3"]]
