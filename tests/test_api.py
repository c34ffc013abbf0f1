"""The Python API: a model object and a design object, differential against the parts they
wrap."""

from pathlib import Path

import numpy as np
import pytest

import hwbnn
from hwbnn.cost.estimate import estimate
from hwbnn.errors import HwbnnError
from hwbnn.hw.fold import Folding
from hwbnn.ref import golden, packed

from .tooling import require_simulator

CACHE = Path(__file__).resolve().parents[1] / "build" / "sim" / "cache"


@pytest.fixture(scope="module")
def model():
    return hwbnn.load("zoo:digits_mlp_w1a1")


def test_load_sources(model, tmp_path):
    assert model.name == "digits_mlp_w1a1" and model.source == "zoo:digits_mlp_w1a1"
    assert hwbnn.load(model) is model
    assert hwbnn.load(model.net).net is model.net
    path = model.save(tmp_path / "copy")
    assert path.suffix == ".hwbnn" and hwbnn.load(path).net.name == model.name
    with pytest.raises(HwbnnError, match="a model source is a path"):
        hwbnn.load(3)


def test_qonnx_round_trip_loads_as_a_model(model, tmp_path):
    from hwbnn.interop.qonnx import save_qonnx

    path = tmp_path / "m.onnx"
    save_qonnx(model.net, path)
    frames = model.frames("digits", count=50)
    assert (hwbnn.load(path).scores(frames) == model.scores(frames)).all()


def test_running_equals_the_engines(model, digits):
    frames = model.frames("digits")
    assert (model.scores(frames) == golden.scores(model.net, digits.test_x)).all()
    assert (model.predict(frames, engine="packed") == packed.predict(model.net, frames)).all()
    assert model.accuracy() == float(np.mean(golden.predict(model.net, frames)
                                             == digits.test_y))
    assert [t.name for t in model.trace(frames[:2])] == [layer.name for layer in model.net.layers]
    with pytest.raises(HwbnnError, match="engine must be 'golden' or 'packed'"):
        model.predict(frames, engine="fpga")
    with pytest.raises(HwbnnError, match="synthetic frames have no labels"):
        model.accuracy("synthetic")


def test_cost_and_folding_are_the_estimators(model):
    folding = model.folding(target_fps=1e5)
    assert folding == Folding.auto(model.net, 1e5)
    report = model.cost("ice40", target_fps=1e5, clock_mhz=100)
    assert report.totals() == estimate(model.net, "ice40", folding).totals()
    # Without a clock: the family's predicted Fmax, and a folding that reaches the rate
    # at it (hwbnn.cost.clock.estimate_at_clock).
    predicted = model.cost("ice40", target_fps=1e5).totals()
    assert predicted["clock_source"] == "predicted"
    assert predicted["frames_per_s"] >= 1e5
    assert predicted["clock_mhz"] < 100
    assert model.cost("asic", "1x1,1x1,1x1").totals()["cycles_per_frame"] == \
        Folding.parse("1x1,1x1,1x1", model.net).cycles_per_frame


def test_generate_then_verify_in_verilator(model, tmp_path):
    require_simulator("verilator")
    design = model.generate(tmp_path / "rtl", target_fps=1e6)
    assert (tmp_path / "rtl" / "digits_mlp_w1a1.hwbnn").is_file()
    assert design.folding == Folding.auto(model.net, 1e6)
    assert hwbnn.Design.open(tmp_path / "rtl").model.net.name == model.name
    report = design.verify(count=40, gap=0.1, backpressure=0.2, work=tmp_path / "work",
                           cache=CACHE)
    assert report.passed and report.frames == 40
    with pytest.raises(HwbnnError, match="--fold is for --mode folded"):
        model.generate(tmp_path / "unrolled", "1x1,1x1,1x1", mode="unrolled")


def test_the_worked_example_runs(tmp_path):
    """examples/digits_api.py (the README's API example) end to end."""
    import subprocess
    import sys

    require_simulator("verilator")
    example = Path(__file__).resolve().parents[1] / "examples" / "digits_api.py"
    done = subprocess.run([sys.executable, str(example), str(tmp_path)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bit-exact: True" in done.stdout and "ice40 synthesis:" in done.stdout
