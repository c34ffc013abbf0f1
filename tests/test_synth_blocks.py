"""Per-block synthesis beside the estimate, and throughput closure after place and route, on a
real generated network (the digits MLP at PE = SIMD = 1: a few seconds of Yosys)."""

import json

import pytest

from hwbnn import load
from hwbnn.cli import main
from hwbnn.cost.clock import throughput_closure
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import Folding
from hwbnn.synth.flow import block_modules

from .tooling import require_yowasp


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtl")
    return load("zoo:digits_mlp_w1a1").generate(folder / "mlp", "1x1,1x1,1x1",
                                                target_fps=1e3)


def test_block_modules_are_the_instances_under_the_network():
    modules = ["top", "top.network", "top.network.dense0", "top.network.dense0.tree0",
               "top.network.dense1_fifo", "top.network.dense1_fifo.fifo", "top.label",
               "other.network.x"]
    assert block_modules("top", modules) == ["top.label", "top.network",
                                             "top.network.dense0", "top.network.dense1_fifo"]


def test_per_block_synthesis_names_every_estimated_block(design, tmp_path, capsys):
    require_yowasp()
    plot = tmp_path / "blocks.png"
    assert main(["synth", str(design.directory), "--family", "ice40", "--seeds", "0",
                 "--blocks", "--plot", str(plot), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["block"]: row for row in report["block_comparison"]}
    estimate = design.model.cost("ice40", design.folding)
    # Every block the estimate prices was synthesized as a block of its own...
    assert [row["block"] for row in estimate.block_rows()] == [
        name for name in rows if name != "(top)"]
    assert all(rows[name]["lut"]["synthesis"] is not None for name in rows)
    # ... and the blocks hold every cell of the design but the top's glue; keeping them
    # apart only stops optimization across them, so they add up to at least as much.
    kept = sum(row["ff"]["synthesis"] for row in rows.values())
    assert kept >= report["counts"]["ff"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_blocks_need_a_network_design(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "top": "x", "verilog": "x.v", "ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}}))
    (tmp_path / "x.v").write_text("module x(); endmodule\n")
    assert main(["synth", str(tmp_path), "--family", "ice40", "--blocks"]) == 2
    assert "--blocks needs a network design" in capsys.readouterr().err
    assert main(["synth", str(tmp_path), "--family", "ice40", "--plot", "x.png"]) == 2
    assert "add --blocks" in capsys.readouterr().err


def test_closure_reports_the_achieved_rate_and_the_folding_that_meets_it():
    net = load("zoo:digits_mlp_w1a1").net
    folding = Folding.parse("1x1,1x1,1x1", net, target_fps=2e4)
    cycles = folding.cycles_per_frame
    met = throughput_closure(folding, cycles, 40.0, 1e3)
    assert met["met"] and met["achieved_frames_per_s"] == pytest.approx(40e6 / cycles)
    short = throughput_closure(folding, cycles, 40.0, 2e4)
    assert short["met"] is False
    better = Folding.parse(short["suggested_folding"], net)
    assert better == Folding.auto(net, 2e4, 40.0)
    assert 40e6 / short["suggested_cycles_per_frame"] >= 2e4
    # A rate beyond the fully unfolded design: says so instead of a folding.
    beyond = throughput_closure(folding, cycles, 40.0, 1e9)
    assert beyond["suggested_folding"] is None and "no folding reaches it" in beyond["note"]


def test_synth_prints_requested_against_achieved(design, capsys):
    require_yowasp()
    assert main(["synth", str(design.directory), "--family", "ice40", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "throughput:" in out and "frames/s at" in out
    assert ("meets the requested 1,000" in out) or ("short of the requested 1,000" in out)


def test_closure_needs_an_fmax(design):
    from hwbnn.synth.flow import SynthResult

    result = SynthResult("t", "xc7", "xc7", {}, {}, {}, 0)
    with pytest.raises(HwbnnError, match="closure needs one"):
        design.closure(result)
