import json
import re

import pytest
from amaranth.hdl import Fragment

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.hw.gen import MANIFEST, generate
from hwbnn.hw.network import NetworkTop
from hwbnn.hw.zoo_rtl import DESIGNS, RTL_DIR, command, generate_design
from hwbnn.ir import fileformat


@pytest.mark.parametrize("folder", list(DESIGNS))
def test_rtl_is_up_to_date(folder, tmp_path):
    """The committed rtl/FOLDER equals a fresh generation (run python -m hwbnn.hw.zoo_rtl)."""
    generate_design(folder, tmp_path)
    fresh = sorted(p.name for p in (tmp_path / folder).iterdir())
    committed = sorted(p.name for p in (RTL_DIR / folder).iterdir())
    assert fresh == committed
    for name in fresh:
        assert (tmp_path / folder / name).read_bytes() == (RTL_DIR / folder / name).read_bytes(), (
            f"rtl/{folder}/{name} is stale: regenerate with `{command(folder)}`")


def test_manifest_describes_the_design():
    manifest = json.loads((RTL_DIR / "digits_mlp_w1a1" / MANIFEST).read_text())
    net = zoo.load("zoo:digits_mlp_w1a1")
    assert manifest["ir_sha256"] == fileformat.sha256(zoo.model_path("digits_mlp_w1a1"))
    top = NetworkTop(net, manifest["folding"])
    Fragment.get(top, None)
    assert manifest["packing"] == top.packing()
    assert manifest["cycles_per_frame"] == top.cycle_model()["cycles_per_frame"]
    verilog = (RTL_DIR / "digits_mlp_w1a1" / manifest["verilog"]).read_text()
    header = re.search(r"module hwbnn_digits_mlp_w1a1\(([^)]*)\)", verilog).group(1)
    assert {p.strip() for p in header.split(",")} == set(manifest["ports"])
    for port, width in manifest["ports"].items():
        direction = "input" if port in ("clk", "rst") or port.endswith(
            ("s_axis_tdata", "s_axis_tvalid", "m_axis_tready")) else "output"
        decl = f"{direction} [{width - 1}:0] {port};" if width > 1 else f"{direction} {port};"
        assert decl in verilog
        assert width % 8 == 0 or width == 1


def test_cli_gen_with_fold_file(tmp_path, capsys):
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"dense0": {"pe": 2, "simd": 8}, "dense2": {"pe": 5}}))
    out = tmp_path / "design"
    assert main(["gen", "zoo:digits_mlp_w2", "--fold", str(fold), "--out", str(out),
                 "--output", "label", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["folding"]["dense0"] == {"pe": 2, "simd": 8}
    assert result["folding"]["dense1"] == {"pe": 1, "simd": 1}
    assert result["packing"]["output"]["tdata_width"] == 8
    assert json.loads((out / "folding.json").read_text()) == result["folding"]
    assert (out / "hwbnn_digits_mlp_w2.v").is_file()


def test_ram_style_reaches_the_verilog_and_the_manifest(tmp_path, capsys):
    out = tmp_path / "design"
    assert main(["gen", "zoo:digits_mlp_mix14", "--fold", "1x1,1x1,1x1:block", "--out",
                 str(out)]) == 0
    assert "dense2 pe=1 simd=1 ram_style=block" in capsys.readouterr().out
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["folding"]["dense2"] == {"pe": 1, "simd": 1, "ram_style": "block"}
    assert manifest["folding"]["dense1"] == {"pe": 1, "simd": 1}
    verilog = (out / manifest["verilog"]).read_text()
    # dense2's weight memory (the plane schedule rides in it) and its score offsets.
    assert verilog.count('(* ram_style = "block" *)') == 2
    # The design folder gives the folding back, style included.
    assert main(["gen", "zoo:digits_mlp_mix14", "--fold", str(out), "--out",
                 str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / manifest["verilog"]).read_text() == verilog


@pytest.mark.parametrize("fold, extra, message", [
    ({"dense0": {"pe": 3}}, [], "pe=3 does not divide MH"),
    ({"dense7": {"pe": 1}}, [], "unknown layer 'dense7'"),
    ({"dense0": {"pe": 1, "lanes": 2}}, [], "must be {\"pe\": P, \"simd\": S}"),
    ({"dense0": {"ram_style": "distributed"}}, [], "ram_style must be one of auto, block, logic"),
    (None, ["--fold", "auto", "--target-fps", "1e6", "--model", "cnn"],
     "cannot be met: at most 173611 frames/s, limited by conv0_window"),
    (None, ["--fold", "auto", "--target-fps", "1e9"], "more than one frame per clock cycle"),
])
def test_cli_gen_errors(fold, extra, message, tmp_path, capsys):
    model = "zoo:digits_cnn_w1a1" if "cnn" in extra else "zoo:digits_mlp_w1a1"
    extra = [arg for arg in extra if arg not in ("--model", "cnn")]
    args = ["gen", model, "--out", str(tmp_path / "x")]
    if fold is not None:
        (tmp_path / "f.json").write_text(json.dumps(fold))
        args += ["--fold", str(tmp_path / "f.json")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_design_too_large(tmp_path, monkeypatch):
    import hwbnn.hw.gen as gen

    monkeypatch.setattr(gen, "MAX_WEIGHT_BITS", 1000)
    with pytest.raises(HwbnnError, match="design too large for folded mode: 3392 weight bits"):
        generate(zoo.load("zoo:digits_mlp_w1a1"), None, tmp_path)
