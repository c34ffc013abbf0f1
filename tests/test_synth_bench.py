"""Helpers of the synthesis bench: layer builders, bitwidth maps, cycle measurement."""

import json
import types

import numpy as np
import pytest

from hwbnn.hw.plan import LayerPlan
from hwbnn.ir.mix import mix_counts
from hwbnn.synth import bench

from .tooling import require_yowasp


def test_mixed_bitwidths_hold_exact_counts():
    bitwidth = bench.mixed_bitwidths((16, 32), np.random.default_rng(1))
    counts = [int(np.count_nonzero(bitwidth == b)) for b in (1, 2, 3)]
    assert counts == mix_counts(bench.MIX_14, 512)


def test_column_bitwidths_are_constant_per_column():
    bitwidth = bench.column_bitwidths(8, 256, np.random.default_rng(3))
    assert (bitwidth == bitwidth[:1]).all()
    counts = [int(np.count_nonzero(bitwidth[0] == b)) for b in (1, 2, 3)]
    assert counts == mix_counts(bench.MIX_14, 256)


def test_grouped_bitwidths_are_constant_per_tile():
    pe, simd = 4, 8
    bitwidth = bench.grouped_bitwidths(16, 32, pe, simd, np.random.default_rng(2))
    tiles = bitwidth.reshape(16 // pe, pe, 32 // simd, simd)
    assert (tiles == tiles[:, :1, :, :1]).all()
    assert [int(np.count_nonzero(tiles[:, 0, :, 0] == b)) for b in (1, 2, 3)] == \
        mix_counts(bench.MIX_14, 16)


def test_grouped_mix_skips_planes_in_the_schedule():
    rng = np.random.default_rng(3)
    pe, simd = 2, 4
    layer = bench.residual_layer(bench.grouped_bitwidths(8, 16, pe, simd, rng),
                                 bench.MIX_SCALES, rng)
    plan = LayerPlan(layer, pe, simd)
    # One step per plane a tile uses; uniform tiles need no mask bits in the ROM, and each
    # step has one schedule bit (in a memory of its own beside the 8-bit words).
    assert plan.cycles_per_vector == int(layer.weights.bitwidth[::pe, ::simd].sum())
    assert not plan.needs_mask and plan.rom_width == pe * simd and plan.schedule_apart
    assert plan.weight_bits == plan.cycles_per_vector * (pe * simd + 1)


@pytest.mark.parametrize("grouped", [False, True])
def test_simulated_cycles_match_the_schedule(grouped):
    rng = np.random.default_rng(4)
    pe, simd = 2, 4
    bitwidth = (bench.grouped_bitwidths(4, 16, pe, simd, rng) if grouped
                else np.full((4, 16), 2, dtype=np.uint8))
    layer = bench.residual_layer(bitwidth, bench.MIX_SCALES, rng)
    cycles = bench.simulated_cycles_per_vector(layer, pe, simd, rng)
    assert cycles == LayerPlan(layer, pe, simd).cycles_per_vector


def test_layers_are_valid_ir():
    rng = np.random.default_rng(5)
    layer = bench.binary_layer(8, 32, rng)
    assert layer.weights.kind == "binary" and layer.weights.shape == (8, 32)
    lo, hi = layer.acc_range
    assert (layer.thresholds >= lo // 2).all() and (layer.thresholds <= hi // 2).all()
    residual = bench.residual_layer(np.full((4, 8), 2, dtype=np.uint8),
                                    bench.HOMOGENEOUS_SCALES, rng)
    assert residual.weights.scales.tolist() == list(bench.HOMOGENEOUS_SCALES)


def test_lanes_command_on_a_small_mvtu(capsys):
    require_yowasp()
    assert bench.main(["lanes", "--simd", "8,16", "--sf", "2", "--nf", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["lanes"]
    points = report["points"]
    assert [p["simd"] for p in points] == [8, 16]
    # The datapath alone is part of the MVTU, so it is never larger.
    assert all(0 < p["datapath_lut"] < p["lut"] for p in points)
    slope = (points[1]["lut"] - points[0]["lut"]) / 8
    assert report["luts_per_lane"] == pytest.approx(slope)
    assert report["meets"] == (slope <= bench.LUTS_PER_LANE_TARGET)


def test_closure_names_an_unknown_model(capsys):
    assert bench.main(["closure", "--models", "zoo:nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hwbnn bench: error: --models: zoo:nope is not a closure model")
    assert error.count("\n") == 1


def test_unrolled_cases_are_the_same_layers_whichever_are_synthesized(monkeypatch, tmp_path):
    """--cases picks what is synthesized, not what is drawn: the column mix synthesized
    alone (with 2-bit) is the layer it is among all four, on the family asked for."""
    seen = []

    class _Unit:
        def __init__(self, layer, adders, graph_levels):
            assert (adders, graph_levels) == ("trees", bench.GRAPH_LEVELS)
            self.layer, self.weight_bits = layer, int(layer.weights.bitwidth.sum())
            self.latency = 2

    def fake_synthesize(unit, family, seeds, work_dir):
        seen.append((family, unit.layer))
        return types.SimpleNamespace(counts={"lut": 100 + len(seen), "ff": 0, "carry": 0})

    monkeypatch.setattr("hwbnn.hw.unrolled.UnrolledMatrixVectorUnit", _Unit)
    monkeypatch.setattr(bench, "component_design", lambda unit, *args, **kwargs: unit)
    monkeypatch.setattr(bench, "synthesize", fake_synthesize)
    work = bench.Workspace(tmp_path)
    every = bench.measure_unrolled(8, 16, work)
    layers = dict(zip(bench.UNROLLED_CASES, (layer for _, layer in seen), strict=True))
    seen.clear()
    alone = bench.measure_unrolled(8, 16, work, family="ecp5", cases=("mix per column",))
    assert [family for family, _ in seen] == ["ecp5", "ecp5"]
    assert list(alone["cases"]) == ["homogeneous 2-bit", "mix per column"]
    assert list(every["cases"]) == list(bench.UNROLLED_CASES)
    for name, (_, layer) in zip(alone["cases"], seen, strict=True):
        assert np.array_equal(layer.weights.bitwidth, layers[name].weights.bitwidth)
        assert np.array_equal(layer.weights.planes, layers[name].weights.planes)
    assert alone["family"] == "ecp5" and "mix per column" in alone["lut_ratio"]


@pytest.mark.parametrize("argv, message", [
    (["hetero", "--cases", "w3"], "--cases: w3 is not an unrolled case"),
    (["hetero", "--families", "ice41"], "--families: ice41 is not a family"),
])
def test_hetero_refuses_unknown_cases_and_families(argv, message, capsys):
    assert bench.main(argv) == 2
    assert message in capsys.readouterr().err
