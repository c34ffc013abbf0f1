"""Reading a generated design's manifest: top name, stream widths, Verilog files."""

import json

import pytest

from hwbnn.errors import HwbnnError
from hwbnn.synth.design import Design, read_design


def write(folder, manifest, files=("top.v",)):
    folder.mkdir(exist_ok=True)
    for name in files:
        (folder / name).write_text("module top(); endmodule\n")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("manifest,in_width,out_width", [
    ({"top": "top", "ports": {"s_axis_tdata": 16, "m_axis_tdata": 80}}, 16, 80),
    ({"top": {"name": "top"}, "ports": [{"name": "s_axis_tdata", "width": 8},
                                        {"name": "m_axis_tdata", "width": 24}]}, 8, 24),
    ({"top": "top", "ports": {"s_axis_tdata": {"width": 40}, "m_axis_tdata": {"width": 8}}},
     40, 8),
    ({"top": "top", "input": {"tdata_width": 32}, "output": {"beat_bits": 16}}, 32, 16),
])
def test_manifest_forms(tmp_path, manifest, in_width, out_width):
    design = read_design(write(tmp_path / "rtl", manifest))
    assert (design.top, design.in_width, design.out_width) == ("top", in_width, out_width)
    assert design.verilog_files == [tmp_path / "rtl" / "top.v"]


def test_listed_verilog_files_in_order(tmp_path):
    manifest = {"top": "top", "verilog": ["b.v", "a.v"],
                "ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}}
    design = read_design(write(tmp_path / "rtl", manifest, files=("a.v", "b.v", "c.v")))
    assert [path.name for path in design.verilog_files] == ["b.v", "a.v"]


@pytest.mark.parametrize("manifest,files,message", [
    ({"ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}}, ("top.v",), "field 'top'"),
    ({"top": "top", "ports": {"m_axis_tdata": 8}}, ("top.v",), "port s_axis_tdata"),
    ({"top": "top", "ports": {"s_axis_tdata": 8, "m_axis_tdata": 0}}, ("top.v",),
     "port m_axis_tdata"),
    ({"top": "top", "ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}}, (), "no Verilog"),
    ({"top": "top", "verilog": "gone.v", "ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}},
     ("top.v",), "gone.v does not exist"),
    ([1, 2], ("top.v",), "must hold a JSON object"),
])
def test_bad_manifests(tmp_path, manifest, files, message):
    folder = write(tmp_path / "rtl", manifest, files)
    with pytest.raises(HwbnnError, match=message):
        read_design(folder)


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(HwbnnError, match="not a folder"):
        read_design(tmp_path / "absent")
    with pytest.raises(HwbnnError, match="manifest.json not found"):
        read_design(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(HwbnnError, match="not valid JSON"):
        read_design(tmp_path)


def test_design_validates_its_fields(tmp_path):
    with pytest.raises(HwbnnError, match="in_width must be a positive integer, not True"):
        Design("top", [tmp_path / "top.v"], True, 8)
    with pytest.raises(HwbnnError, match="has no Verilog files"):
        Design("top", [], 8, 8)
