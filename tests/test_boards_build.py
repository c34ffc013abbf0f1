"""Bitstream builds of the digits W1A1 MLP for iCEBreaker and ULX3S-85F (one build each,
shared by the tests), the Arty synthesis-only path, and the clear error of a model that
does not fit."""

import contextlib
import io
import json

import pytest

from hwbnn import zoo
from hwbnn.boards import build as board_build
from hwbnn.boards import targets
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.schema import versioned

MODEL = "zoo:digits_mlp_w1a1"
# Sync words that start the configuration: iCE40 (TN1248) and ECP5 (ecppack preamble).
ICE40_PREAMBLE = bytes.fromhex("7eaa997e")
ECP5_PREAMBLE = bytes.fromhex("ffffbdb3")


@pytest.fixture(scope="module")
def icebreaker_result(tmp_path_factory):
    """Built through the CLI (``hwbnn build ... --json``), with the self-test ROM."""
    out = tmp_path_factory.mktemp("icebreaker")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["build", MODEL, "--board", "icebreaker", "--selftest",
                     "--selftest-frames", "12", "--out", str(out), "--json"]) == 0
    return out, json.loads(text.getvalue())


@pytest.fixture(scope="module")
def ulx3s_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("ulx3s")
    return out, versioned(board_build.build(MODEL, "ulx3s-85f", out).as_dict())


@pytest.mark.parametrize("fixture, suffix, preamble, clock", [
    ("icebreaker_result", ".bin", ICE40_PREAMBLE, 24.0),
    ("ulx3s_result", ".bit", ECP5_PREAMBLE, 50.0)])
def test_bitstream_fmax_and_utilization(request, fixture, suffix, preamble, clock):
    out, result = request.getfixturevalue(fixture)
    board = targets.board(result["board"])
    bitstream = out / f"digits_mlp_w1a1_{board.name}{suffix}"
    assert result["bitstream_path"] == str(bitstream)
    assert preamble in bitstream.read_bytes()[:4096]
    # Acceptance: the reported Fmax meets the board clock (nextpnr's own report).
    assert result["clock_mhz"] == clock
    assert result["timing_met"] and result["fmax_mhz"] >= clock
    report = json.loads((out / "build" / "report.json").read_text())
    assert min(c["achieved"] for c in report["fmax"].values()) == result["fmax_mhz"]
    assert 0 < result["counts"]["lut"] <= board.resources["lut"]
    assert 0 < result["counts"]["ff"] <= board.resources["ff"]
    assert json.loads((out / "build.json").read_text()) == result
    # Fully folded (PE = SIMD = 1): the first layer's 32 x 64 steps set the frame time.
    assert result["cycles_per_frame"] == 32 * 64
    assert result["frames_per_s"] == clock * 1e6 / (32 * 64)


def test_icebreaker_has_pll_and_selftest(icebreaker_result):
    out, result = icebreaker_result
    assert result["pll"] == {"parameters": {"DIVR": 0, "DIVF": 63, "DIVQ": 5,
                                            "FILTER_RANGE": 1}, "vco_mhz": 768.0}
    assert result["selftest_frames"] == 12
    report = json.loads((out / "build" / "report.json").read_text())
    assert report["utilization"]["ICESTORM_PLL"]["used"] == 1
    pcf = (out / "build" / "top.pcf").read_text()
    assert "set_io uart_0__rx__io 6" in pcf and "set_io uart_0__tx__io 9" in pcf


def test_arty_gives_verilog_constraints_and_counts_only(tmp_path):
    result = board_build.build(MODEL, "arty-a7-35", tmp_path)
    assert result.bitstream_path is None and result.fmax_mhz is None
    assert "no open place and route" in result.notes[0]
    assert (tmp_path / "build" / "top.v").is_file()
    xdc = (tmp_path / "build" / "top.xdc").read_text()
    assert 'set_property LOC A9 [get_ports "uart_0__rx__io"]' in xdc
    assert 0 < result.counts["lut"] < targets.board("arty-a7-35").resources["lut"]


def test_model_too_big_for_icebreaker(tmp_path):
    """Acceptance: one clear error with what it needs, what the board has, what to try."""
    with pytest.raises(HwbnnError) as error:
        board_build.build("zoo:lfc_w1a1", "icebreaker", tmp_path)
    message = str(error.value)
    net = zoo.load("zoo:lfc_w1a1")
    bits = sum(layer.mh * layer.mw for layer in net.weight_layers)  # binary: 1 bit each
    assert bits > 30 * 4096
    assert message.startswith("zoo:lfc_w1a1 does not fit the iCEBreaker (iCE40UP5K)")
    assert f"its weights need at least {bits:,} bits" in message
    assert "the board has 122,880 bits of block RAM (30 blocks)" in message
    assert "try: a smaller model (fewer or lower-bit weights), or a board with more block " \
           "RAM (ulx3s-85f: 3,833,856 bits)" in message
    assert main(["build", "zoo:lfc_w1a1", "--board", "icebreaker", "--out",
                 str(tmp_path)]) == 2


def test_logic_over_capacity_names_every_resource_over():
    board = targets.board("icebreaker")
    with pytest.raises(HwbnnError, match=r"it needs 6,000 LUT4, 31 block RAMs, the board has "
                                         r"5,280 LUT4, 30 block RAMs; try: fold more"):
        board_build.check_fit({"lut": 6000, "ff": 10, "bram": 31, "dsp": 0}, board, "m")
    board_build.check_fit({"lut": 5280, "ff": 5280, "bram": 30, "dsp": 8}, board, "m")


@pytest.mark.parametrize("kwargs, message", [
    ({"board_name": "nexys"}, "board must be one of"),
    ({"board_name": "icebreaker", "fold": "1x1,1x1,1x1", "target_fps": 1e6},
     "target 1e\\+06 frames/s at 24 MHz cannot be met"),
    ({"board_name": "icebreaker", "fold": "auto"}, "--fold auto needs --target-fps"),
    ({"board_name": "icebreaker", "baud": 12_000_000}, "too fast"),
    ({"board_name": "icebreaker", "selftest_frames": 0}, "--selftest-frames must lie in"),
    ({"board_name": "arty-a7-35", "clock_mhz": 50.0}, "no PLL support")])
def test_argument_errors(tmp_path, kwargs, message):
    with pytest.raises(HwbnnError, match=message):
        board_build.build(MODEL, out_dir=tmp_path, **kwargs)


def test_folding_from_a_design_that_gen_wrote(tmp_path):
    """`build --fold DESIGN` takes the folding `gen` wrote (read from its manifest)."""
    from hwbnn.hw.fold import Folding
    from hwbnn.hw.gen import generate

    net = zoo.load(MODEL)
    generate(net, "2x4,2x4,1x2", tmp_path / "rtl")
    assert Folding.parse(str(tmp_path / "rtl"), net).pairs() == [(2, 4), (2, 4), (1, 2)]


def test_a_design_folder_builds_with_the_folding_it_was_verified_at(tmp_path, monkeypatch):
    """`hwbnn build DESIGN --board B`: the design's model at the design's folding (the one
    `gen` wrote, verified and synthesized), not the model file's PE = SIMD = 1."""
    from hwbnn.api import load
    from hwbnn.boards import top

    load(MODEL).generate(tmp_path / "rtl", "2x4,2x4,1x2")
    seen = {}

    class Stop(Exception):
        pass

    def record(net, folding, scores):
        seen.update(model=net.name, folding=folding.pairs())
        raise Stop

    monkeypatch.setattr(top, "network_core", record)
    with pytest.raises(Stop):
        board_build.build(str(tmp_path / "rtl"), "icebreaker", tmp_path / "out")
    assert seen == {"model": zoo.load(MODEL).name, "folding": [(2, 4), (2, 4), (1, 2)]}
    # An explicit --fold still wins.
    with pytest.raises(Stop):
        board_build.build(str(tmp_path / "rtl"), "icebreaker", tmp_path / "out",
                          fold="1x1,1x1,1x1")
    assert seen["folding"] == [(1, 1), (1, 1), (1, 1)]
