"""Network estimates: structure, totals, folding, FINN-R column, energy, and the CLI."""

import csv
import io
import json

import pytest

from hwbnn import zoo
from hwbnn.cli import main
from hwbnn.cost import asic
from hwbnn.cost.estimate import ENERGY_PARTS, estimate, finn_r
from hwbnn.hw.plan import LayerPlan


@pytest.mark.parametrize("family", ["ice40", "ecp5", "xc7"])
def test_fpga_totals_are_sums_of_layers(family):
    net = zoo.load("zoo:digits_cnn_w1a1")
    report = estimate(net, family, "4x9,8x32,1x16")
    rows, totals = report.layer_rows(), report.totals()
    # In pipeline order; every block is priced (converters and FIFOs under their layer).
    assert [row["layer"] for row in rows] == ["conv0", "pool1", "conv1", "pool3", "dense2"]
    for column in ("lut", "ff", "bram"):
        assert totals[column] == pytest.approx(sum(row[column] for row in rows))
        # xc7 keeps this design's small ROMs in LUT6s (synth_xilinx's ROM logic cost).
        assert totals[column] > 0 or (family, column) == ("xc7", "bram")
    assert totals["cycles_per_frame"] == max(row.get("cycles_per_frame", 0) for row in rows)
    assert totals["frames_per_s"] == pytest.approx(100e6 / totals["cycles_per_frame"])


def test_unfolding_costs_more_luts_and_fewer_cycles():
    net = zoo.load("zoo:digits_mlp_w1a1")
    slow = estimate(net, "ice40", "1x1,1x1,1x1").totals()
    fast = estimate(net, "ice40", "8x16,8x16,2x16").totals()
    assert fast["cycles_per_frame"] < slow["cycles_per_frame"]
    assert fast["lut"] > slow["lut"]


def test_finn_r_column_follows_its_formula():
    layer = zoo.load("zoo:digits_mlp_w1a1").layers[1]  # 32 x 32 binary x binary
    profile = LayerPlan(layer, 4, 8)
    figures = finn_r(profile)
    # Binary lanes: 1 LUT each, popcount tree SIMD + log2(SIMD), accumulator 1+1+log2(32),
    # one threshold level: comparator acc_bits and threshold storage acc_bits * ceil(NF/64).
    acc_bits = 1 + 1 + 5
    per_pe = 8 * 1 + (8 + 3) + acc_bits + acc_bits + acc_bits
    assert figures["lut"] == round(300 + 1.1 * 4 * per_pe)
    # 8 bits wide (SIMD x 1 bit) -> 2K x 9 RAMB18 configuration, depth NF*SF = 32: one per PE.
    assert figures["bram18"] == 4


def test_asic_energy_breakdown_and_node_scaling():
    net = zoo.load("zoo:digits_mlp_mix14")
    at45 = estimate(net, "asic").totals()
    at7 = estimate(net, "asic", node=7).totals()
    parts = [at45[f"energy_{part}_pj"] for part in ENERGY_PARTS]
    assert all(part > 0 for part in parts)
    assert at45["energy_pj_per_frame"] == pytest.approx(sum(parts))
    assert at7["energy_pj_per_frame"] == pytest.approx(
        at45["energy_pj_per_frame"] * asic.node_scale(7))
    assert at45["ops_per_joule"] == pytest.approx(
        2 * at45["macs_per_frame"] / (at45["energy_pj_per_frame"] * 1e-12))
    assert at45["ge"] == pytest.approx(at45["area_um2"] / asic.GE_UM2)


def test_a_per_parameter_mix_reads_its_schedule_from_the_weight_memory():
    """At PE = SIMD = 1 the mix takes 0.70x the steps of 2-bit, but each step reads its sign
    and whether the next step ends its weight (docs/design.md section 4): 2 bits a step
    against 2-bit's one, so its weight memory costs more energy; its compute less."""
    mix_net, two_net = zoo.load("zoo:digits_mlp_mix14"), zoo.load("zoo:digits_mlp_w2")
    mix = estimate(mix_net, "asic").totals()
    two = estimate(two_net, "asic").totals()
    assert mix["cycles_per_frame"] < two["cycles_per_frame"]
    assert mix["energy_compute_pj"] < two["energy_compute_pj"]
    plans = [estimate(net, "asic").profile.layers for net in (mix_net, two_net)]
    assert [p.rom_width for p in plans[0]] == [2, 2, 2]
    assert [p.rom_width for p in plans[1]] == [1, 1, 1]
    assert mix["energy_weight_memory_pj"] > two["energy_weight_memory_pj"]


def test_sky130_cell_areas():
    # 0.46 um sites x 2.72 um rows: nand2_1 is 3 sites, dfxtp_1 16.
    assert asic.CELL_AREA_UM2["nand2_1"] == pytest.approx(3.7536)
    assert asic.CELL_AREA_UM2["dfxtp_1"] == pytest.approx(20.0192)
    assert asic.mapped_area({"$_NAND_": 2, "$_DFF_P_": 1, "$scopeinfo": 3}) == pytest.approx(
        2 * 3.7536 + 20.0192)
    with pytest.raises(Exception, match="no sky130 area"):
        asic.mapped_area({"$_AOI3_": 1})


def test_cli_table_json_csv(capsys):
    assert main(["cost", "zoo:digits_mlp_w2", "--family", "ice40", "--fold",
                 "4x16,4x8,2x8"]) == 0
    text = capsys.readouterr().out
    assert "dense0" in text and "finn_r_lut" in text and "cycles_per_frame" in text
    assert main(["cost", "zoo:digits_mlp_w2", "--family", "asic", "--node", "7",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["node_nm"] == 7 and len(data["layers"]) == 3
    assert main(["cost", "zoo:digits_mlp_w2", "--family", "ecp5", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["layer"] for row in rows] == ["dense0", "dense1", "dense2", "TOTAL"]


def test_cli_auto_fold_reaches_the_frame_rate(capsys):
    assert main(["cost", "zoo:digits_mlp_w1a1", "--family", "ice40", "--fold", "auto",
                 "--target-fps", "1e6", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["frames_per_s"] >= 1e6


@pytest.mark.parametrize("argv, message", [
    (["cost", "zoo:digits_mlp_w2"], "--family is required"),
    (["cost", "zoo:digits_mlp_w2", "--family", "ice40", "--fold", "4x16"], "needs 3"),
    (["cost", "zoo:digits_mlp_w2", "--family", "ice40", "--fold", "3x1,1x1,1x1"], "pe=3"),
    (["cost", "zoo:digits_mlp_w2", "--family", "ice40", "--fold", "auto"], "--target-fps"),
    (["cost", "zoo:nothing", "--family", "ice40"], "nothing"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_memory_energy_interpolates_horowitz_points():
    # At the table's sizes the figures themselves (pJ per bit of a 64-bit read).
    assert asic.sram_pj_per_bit(8 * 1024 * 8) == pytest.approx(10 / 64)
    assert asic.sram_pj_per_bit(32 * 1024 * 8) == pytest.approx(20 / 64)
    assert asic.sram_pj_per_bit(1 << 30) == pytest.approx(100 / 64)
    sizes = [16, 64, 1000, 4096, 65536, 100_000, 1 << 20, 1 << 23]
    energies = [asic.sram_pj_per_bit(size) for size in sizes]
    assert energies == sorted(energies)
    assert energies[0] == asic.REGISTER_PJ_PER_BIT


def test_cli_fold_file(tmp_path, capsys):
    path = tmp_path / "folding.json"
    path.write_text(json.dumps({"folding": {"dense0": {"pe": 2, "simd": 8}}}))
    assert main(["cost", "zoo:digits_mlp_w2", "--family", "ice40", "--fold", str(path),
                 "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [(row["pe"], row["simd"]) for row in layers] == [(2, 8), (1, 1), (1, 1)]
