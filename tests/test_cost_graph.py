# amaranth: UnusedElaboratable=no
# (A NetworkTop built for its structure and cycle model is not elaborated.)
"""The cost model, auto-folding and the summary on residual graphs (format version 2)."""

import pytest
from amaranth.hdl import Fragment

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.cost.estimate import estimate
from hwbnn.cost.profile import profile_network
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import Folding
from hwbnn.hw.network import NetworkTop
from hwbnn.summary import format_table, summarize

from .hw_layers import tiny_resnet

# The verification folding of README / docs/design.md section 5 (576 cycles per frame).
FOLD = "16x9,16x16,16x16,8x16,16x32,5x8"


@pytest.fixture(scope="module")
def resnet():
    return zoo.load("zoo:digits_resnet_w1a1")


def hierarchy(top: NetworkTop) -> list[str]:
    """Instance names of the elaborated top (what synthesis reports per block)."""
    return [name for _, name, _ in Fragment.get(top, None).subfragments]


def test_one_row_per_generated_block(resnet):
    net = tiny_resnet()
    report = estimate(net, "ice40")
    rows = report.rows()
    assert sorted(row["block"] for row in rows) == sorted(hierarchy(NetworkTop(net)))
    kinds = {row["kind"] for row in rows}
    assert kinds == {"mvtu", "window", "threshold", "add", "pool", "globalpool", "fifo",
                     "width", "fork"}
    assert all(row["lut"] > 0 and row["ff"] > 0 for row in rows if row["kind"] != "fork")


def test_graph_blocks_at_the_verification_folding(resnet):
    folding = Folding.parse(FOLD, resnet)
    top = NetworkTop(resnet, folding)
    profile = profile_network(resnet, folding)
    blocks = {block.name: block for block in profile.blocks}
    # The shortcut FIFOs have the depths the generator sizes (docs/design.md section 4).
    for add, depths in top.shortcut_depths.items():
        assert (blocks[f"{add}_fifo"].profile.depth, blocks[f"{add}_fifo1"].profile.depth) \
            == depths
    assert blocks["block0_add_fifo1"].profile.depth == 138
    assert {"stem_fork", "block0_add_fork", "block1_add_fork"} <= set(blocks)
    assert blocks["block1_conv_window"].cycles_per_frame == 4 * 4 * 9  # stride 2
    stem = blocks["stem"].profile
    assert (stem.weight_kind, stem.planes, stem.pe, stem.simd) == ("integer", 8, 16, 9)
    assert blocks["block1_pool"].profile.merge == "sum"
    assert profile.per_block


@pytest.mark.parametrize("fold, cycles", [(FOLD, 576), (None, 147_456)])
def test_cycles_equal_the_hardware_cycle_model(resnet, fold, cycles):
    folding = Folding.parse(fold, resnet)
    model = NetworkTop(resnet, folding).cycle_model()
    totals = estimate(resnet, "ecp5", folding).totals()
    assert totals["cycles_per_frame"] == model["cycles_per_frame"] == cycles
    assert folding.cycles_per_frame == cycles


def test_asic_energy_of_a_graph():
    report = estimate(tiny_resnet(), "asic")
    totals = report.totals()
    assert totals["energy_pj_per_frame"] > 0 and totals["area_um2"] > 0
    assert set(report.energy) == {layer.name for layer in tiny_resnet().layers}


@pytest.mark.parametrize("fps", [1e4, 1e5])
def test_auto_folding_of_a_graph_meets_the_target(resnet, fps):
    folding = Folding.parse("auto", resnet, target_fps=fps, clock_mhz=100)
    budget = 100e6 // fps
    assert max(folding.stage_cycles().values()) <= budget
    assert NetworkTop(resnet, folding).cycle_model()["cycles_per_frame"] <= budget


def test_auto_folding_raises_pe_for_lane_limited_units(resnet):
    """An add or threshold unit takes a beat of its producer's PE lanes per cycle: a budget
    below its element count needs a larger PE (block0_add: 1024 elements on the stem's
    lanes; 588 cycles at 170,000 frames/s, near the stem window's 576)."""
    folding = Folding.parse("auto", resnet, target_fps=170_000, clock_mhz=100)
    assert folding.cycles_per_frame == 576 and folding["stem"].pe >= 2
    with pytest.raises(HwbnnError, match="cannot be met: .* limited by stem_window"):
        Folding.parse("auto", resnet, target_fps=100e6 / 500, clock_mhz=100)


def test_auto_folded_graph_elaborates():
    net = tiny_resnet()
    folding = Folding.parse("auto", net, target_fps=690_000, clock_mhz=100)
    top = NetworkTop(net, folding)
    assert top.cycle_model()["cycles_per_frame"] == 144  # the stem's window
    assert folding != Folding(net) and "b0_add_fifo1" in hierarchy(top)


def test_summary_of_a_graph(resnet):
    table = format_table(summarize(resnet))
    assert "block0_conv,stem" in table and "block1_conv,block1_short" in table
    layers = summarize(resnet).as_dict()["layers"]
    assert [row["inputs"] for row in layers if row["kind"] == "add"][0] == ("block0_conv",
                                                                             "stem")
    assert "inputs" not in summarize(zoo.load("zoo:digits_mlp_w1a1")).as_dict()["layers"][0]


def test_cost_command_prints_blocks(resnet, capsys):
    assert main(["cost", "zoo:digits_resnet_w1a1", "--family", "ice40", "--fold", FOLD]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["block", "layer", "kind", "cycles_per_frame"]
    for name in ("block0_add_fifo1", "stem_fork", "block1_pool", "gap", "block2_sign"):
        assert f"\n{name} " in out
    assert "cycles_per_frame: 576" in out
