"""A residual graph's generated Verilog against golden: compiled Verilator harness and Icarus
(cocotb), with random gaps and backpressure; 10,000 frames without deadlock or lost frame."""

import numpy as np
import pytest

from hwbnn.hw.packing import pack, to_codes
from hwbnn.ref import golden
from hwbnn.verify.check import compare_taps, to_hex
from hwbnn.verify.design import generate_design
from hwbnn.verify.flow import verify

from .hw_layers import random_values, tiny_resnet
from .tooling import require_simulator

FOLDING = "2x3,1x2,2x6,4x2,3x4"


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return generate_design(tiny_resnet(), tmp_path_factory.mktemp("rtl") / "tiny_resnet",
                           folding=FOLDING)


def frames(count, seed=0):
    return random_values(np.random.default_rng(seed), "uint3", (count, 4, 4, 1))


def test_graph_taps_name_every_layer(design):
    """The diagnosis taps: one per IR layer, at the unit computing it (no simulator)."""
    images = frames(3)
    trace = golden.run(design.net, images)
    taps = design.taps()
    assert [tap.layer for tap in taps] == [layer.name for layer in design.net.layers]
    recorded = {}
    for tap, step in zip(taps, trace, strict=True):
        codes = step.out.reshape(-1)
        codes = codes if tap.encoding == "signed" else to_codes(codes, tap.encoding)
        recorded[tap.layer] = to_hex(pack(codes, tap.bits, tap.per_beat))
    assert compare_taps(design, taps, recorded, trace) is None


def test_graph_verilator_10000_frames(design, tmp_path):
    """10,000 frames through the compiled harness with random gaps and backpressure: every
    output beat equal to golden, none missing, no stall, no broken stream rule."""
    require_simulator("verilator")
    report = verify(design, frames(10_000), sim="verilator", gap=0.2, backpressure=0.4,
                    seed=5, work=tmp_path, diagnose=False)
    assert report.passed, report.difference
    assert report.frames == 10_000


def test_graph_icarus_first_frames(design, tmp_path):
    require_simulator("icarus")
    report = verify(design, frames(4, seed=1), sim="icarus", gap=0.3, backpressure=0.3,
                    seed=2, work=tmp_path, diagnose=False)
    assert report.passed, report.difference


def test_digits_resnet_whole_split_in_verilator(digits, tmp_path):
    """The shipped residual BNN (default folding, PE = SIMD = 1) over the whole digits test
    split with random gaps and backpressure: every score equal to golden (about 2.5 min)."""
    from hwbnn import zoo

    require_simulator("verilator")
    net = zoo.load("zoo:digits_resnet_w1a1")
    design = generate_design(net, tmp_path / "rtl")
    report = verify(design, digits.test_x, sim="verilator", gap=0.1, backpressure=0.2, seed=0,
                    work=tmp_path, diagnose=False)
    assert report.passed, report.difference
    assert report.frames == len(digits.test_x)
