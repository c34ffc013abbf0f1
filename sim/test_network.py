"""Whole-network benches: the shipped generated designs (rtl/) against the golden model.

Every design runs the whole digits test split in Verilator's compiled stream harness with
random input gaps and output backpressure; Icarus, through cocotb and about a thousand
times slower, runs the whole split on the W1A1 MLP and the first frames of every other
design. Also: a reset in the middle of a frame, a 10,000-frame soak, and one flipped weight
bit that verification must pin on its layer (the harness finds the difference, the cocotb
bench's per-layer taps name the layer).
"""

import numpy as np
import pytest
from runner import (
    RTL,
    flip_weight_bit,
    require_simulator,
    rom_bit_of_weight,
    zoo_designs,
)

from hwbnn.data import random_frames
from hwbnn.ir.network import MatVec, NetworkIR, Weights
from hwbnn.ref import golden
from hwbnn.ref.compare import first_mismatch
from hwbnn.ref.golden import LayerTrace
from hwbnn.verify import harness, open_design, verify
from hwbnn.verify.check import expected_output, input_beats
from hwbnn.verify.flow import bench_config, stall_limit
from hwbnn.verify.runner import build, run

ICARUS_CYCLES = 3000  # Icarus runs ~5k cycles/s: frames of the other designs it runs


def test_every_digits_zoo_model_has_a_design():
    """Every digits chain model has its design under rtl/ (the Fashion-MNIST models are
    generated and verified on the whole split by tests/test_verify_fashion.py and the README's
    commands; rtl/ designs are auto-folded, which graphs do not support yet, so the residual
    model is generated and verified at its default folding by tests/test_verify_graph.py)."""
    from hwbnn import zoo
    from hwbnn.zoo.recipes import RECIPES, dataset_of

    digits = {name for name in zoo.trained_names() if dataset_of(RECIPES[name]) == "digits"
              and not zoo.load(f"zoo:{name}").v2_features()}
    assert digits <= set(zoo_designs())


@pytest.mark.parametrize("name", zoo_designs())
def test_whole_split_verilator(name, digits, sim_cache, tmp_path):
    require_simulator("verilator")
    design = open_design(RTL / name)
    report = verify(design, digits.test_x, sim="verilator", gap=0.2, backpressure=0.3,
                    seed=len(name), work=tmp_path, cache=sim_cache)
    assert report.passed, report.difference
    assert report.frames == len(digits.test_x) == 360
    assert (tmp_path / "verilator-harness" / harness.RESULT).is_file()
    # Gaps and backpressure can only slow the design below its model rate.
    assert report.measured_cycles_per_frame >= design.cycles_per_frame


def test_whole_split_icarus_w1a1(digits, sim_cache, tmp_path):
    require_simulator("icarus")
    report = verify(open_design(RTL / "digits_mlp_w1a1"), digits.test_x, sim="icarus",
                    gap=0.2, backpressure=0.3, seed=5, work=tmp_path, cache=sim_cache)
    assert report.passed, report.difference
    assert report.frames == 360


@pytest.mark.parametrize("name", [n for n in zoo_designs() if n != "digits_mlp_w1a1"])
def test_first_frames_icarus(name, digits, sim_cache, tmp_path):
    require_simulator("icarus")
    design = open_design(RTL / name)
    frames = max(4, min(24, ICARUS_CYCLES // design.cycles_per_frame))
    report = verify(design, digits.test_x[:frames], sim="icarus", gap=0.3, backpressure=0.3,
                    seed=7, work=tmp_path, cache=sim_cache)
    assert report.passed, report.difference


def _reset_case(design, digits):
    """One and a half frames of beats (the prelude), then eight frames and their output."""
    dirty = input_beats(design, digits.test_x[:2])
    clean = digits.test_x[2:10]
    return (dirty[0] + dirty[1][:len(dirty[1]) // 2], input_beats(design, clean),
            expected_output(design, golden.run(design.net, clean)))


def test_reset_in_the_middle_of_a_frame_verilator(digits, sim_cache, tmp_path):
    """One and a half frames go in, reset; the next frames come out clean and alone."""
    require_simulator("verilator")
    design = open_design(RTL / "digits_mlp_w1a1")
    prelude, beats, expected = _reset_case(design, digits)
    built = build(design.verilog, design.top, "verilator", sim_cache, harness=True,
                  widths=(design.packing["input"]["tdata_width"],
                          design.packing["output"]["tdata_width"]))
    outcome = harness.run(built, [beat for frame in beats for beat in frame], tmp_path,
                          in_width=design.packing["input"]["tdata_width"],
                          out_width=design.packing["output"]["tdata_width"],
                          out_beats=sum(map(len, expected)),
                          max_wait_cycles=stall_limit(design, 0.3, 0.3), gap=0.3,
                          backpressure=0.3, seed=3, prelude=prelude)
    assert outcome.violation is None and not outcome.stalled
    assert outcome.output == [beat for frame in expected for beat in frame]


def test_reset_in_the_middle_of_a_frame_icarus(digits, sim_cache, tmp_path):
    """The same in the cocotb bench."""
    require_simulator("icarus")
    design = open_design(RTL / "digits_mlp_w1a1")
    prelude, beats, expected = _reset_case(design, digits)
    config = bench_config(design, beats, expected, gap=0.3, backpressure=0.3, seed=3)
    config["prelude"] = [format(beat, "x") for beat in prelude]
    built = build(design.verilog, design.top, "icarus", sim_cache)
    outcome = run(built, config, tmp_path)
    assert outcome.result["output"] == [beat for frame in config["expected"] for beat in frame]
    assert outcome.passed


def test_soak_10000_frames(sim_cache, tmp_path):
    """No frame lost, duplicated or corrupted over 10,000 random frames in Verilator."""
    require_simulator("verilator")
    design = open_design(RTL / "digits_mlp_w1a1")
    frames = random_frames(np.random.default_rng(10_000), design.net.input_shape,
                           design.net.input_encoding, 10_000)
    report = verify(design, frames, sim="verilator", backpressure=0.2, seed=11,
                    work=tmp_path, cache=sim_cache)
    assert report.passed, report.difference
    assert report.frames == 10_000


def _flipped(net, layer_name, row, col):
    """The model with the sign of binary weight (row, col) of one layer flipped."""
    layers = []
    for layer in net.layers:
        if layer.name == layer_name:
            values = layer.weights.values().copy()
            values[row, col] = -values[row, col]
            layer = MatVec(layer.name, layer.in_encoding, Weights.binary(values),
                           layer.thresholds, layer.out_encoding, layer.acc_range,
                           layer.acc_width, layer.pe, layer.simd)
        layers.append(layer)
    return NetworkIR(net.name, net.input_shape, net.input_encoding, layers)


def _visible_flip(net, layer_name, images):
    """First weight of a layer whose flip changes the scores of ``images``, and the first
    element of that layer's output the flip changes."""
    want = golden.run(net, images)
    mh, mw = next(lay for lay in net.layers if lay.name == layer_name).weights.shape
    for row in range(mh):
        for col in range(mw):
            got = golden.run(_flipped(net, layer_name, row, col), images)
            if not np.array_equal(got[-1].out, want[-1].out):
                index = next(n for n, step in enumerate(want) if step.name == layer_name)
                mismatch = first_mismatch([LayerTrace(layer_name, None, want[index].out)],
                                          [LayerTrace(layer_name, None, got[index].out)])
                return row, col, mismatch
    raise AssertionError(f"no single weight flip of {layer_name} changes any score")


@pytest.mark.parametrize(("sim", "layer"), [("icarus", "dense1"), ("verilator", "dense0")])
def test_flipped_weight_bit_names_its_layer(sim, layer, digits, sim_cache, tmp_path):
    """Flip one weight bit in the generated Verilog: verification fails, names the layer
    and the first element the golden model of the flipped weights says differs."""
    require_simulator(sim)
    source = open_design(RTL / "digits_mlp_w1a1")
    images = digits.test_x[:12]
    row, col, mismatch = _visible_flip(source.net, layer, images)
    fold = source.folding[layer]
    net_layer = next(lay for lay in source.net.layers if lay.name == layer)
    word, bit = rom_bit_of_weight(net_layer, fold.pe, fold.simd, row, col)
    broken = tmp_path / "rtl"
    broken.mkdir()
    for path in (RTL / "digits_mlp_w1a1").iterdir():
        (broken / path.name).write_text(path.read_text())
    verilog = broken / source.verilog.name
    verilog.write_text(flip_weight_bit(verilog.read_text(), source.top, layer, word, bit))
    design = open_design(broken, model="zoo:digits_mlp_w1a1")
    report = verify(design, images, sim=sim, gap=0.2, backpressure=0.2, seed=2,
                    work=tmp_path / "work", cache=sim_cache)
    assert not report.passed
    assert report.layer == layer
    frame, *element = mismatch.index
    assert f"layer {layer} differs first at frame {frame}, element {element}" in (
        report.diagnosis)
    assert report.waveform_path is not None and report.waveform_path.endswith((".vcd", ".fst"))
