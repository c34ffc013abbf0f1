"""Stimulus, expectations and tap comparison of hwbnn.verify.check (no simulator needed)."""

from pathlib import Path

import numpy as np
import pytest

from hwbnn.hw.packing import from_signed, pack, pack_values, to_codes, unpack
from hwbnn.ref import golden
from hwbnn.verify import open_design
from hwbnn.verify.check import (
    compare_output,
    compare_taps,
    decode_tap,
    expected_output,
    input_beats,
    to_hex,
)

RTL = Path(__file__).resolve().parents[1] / "rtl"


@pytest.fixture(scope="module")
def mlp():
    return open_design(RTL / "digits_mlp_w1a1")


@pytest.fixture(scope="module")
def cnn():
    return open_design(RTL / "digits_cnn_w1a1")


def tap_recording(design, trace):
    """What the taps of a correct design record: every layer's output, packed per beat."""
    recorded = {}
    for tap in design.taps():
        out = next(step.out for step in trace if step.name == tap.layer)
        codes = out.reshape(-1) if tap.encoding == "signed" else to_codes(out.reshape(-1),
                                                                          tap.encoding)
        recorded[tap.layer] = to_hex(pack(codes, tap.bits, tap.per_beat))
    return recorded


def test_input_beats_hold_the_frames_in_channels_last_order(cnn, digits):
    frames = digits.test_x[:3]
    beats = input_beats(cnn, frames)
    spec = cnn.packing["input"]
    assert [len(frame) for frame in beats] == [spec["beats_per_frame"]] * 3
    for frame, frame_beats in zip(frames, beats, strict=True):
        codes = unpack(frame_beats, spec["bits"], spec["elements_per_beat"])
        assert np.array_equal(codes, frame.reshape(-1))


def test_expected_output_is_the_golden_scores(mlp, digits):
    trace = golden.run(mlp.net, digits.test_x[:5])
    spec = mlp.packing["output"]
    for want, beats in zip(trace[-1].out, expected_output(mlp, trace), strict=True):
        assert len(beats) == spec["beats_per_frame"]
        got = from_signed(unpack(beats, spec["bits"], spec["elements_per_beat"]), spec["bits"])
        assert np.array_equal(got, want)


def test_expected_output_in_label_mode_is_the_argmax(digits):
    design = open_design(RTL / "digits_mlp_w1a1_label")
    trace = golden.run(design.net, digits.test_x[:6])
    assert expected_output(design, trace) == [[int(label)] for label in
                                              golden.predict(design.net, digits.test_x[:6])]


def test_taps_follow_the_folding(cnn):
    taps = {tap.layer: tap for tap in cnn.taps()}
    assert list(taps) == [layer.name for layer in cnn.net.layers]
    for name, fold in cnn.folding.items():
        assert taps[name].per_beat == fold.pe
    assert taps["pool1"].per_beat == cnn.net.layers[1].in_shape[2]
    assert taps["dense2"].encoding == "signed"
    assert all(tap.path == ("network", tap.layer) for tap in taps.values())


def test_correct_taps_have_no_difference(cnn, digits):
    trace = golden.run(cnn.net, digits.test_x[:4])
    assert compare_taps(cnn, cnn.taps(), tap_recording(cnn, trace), trace) is None


def test_a_corrupt_element_is_named_by_layer_frame_and_element(cnn, digits):
    trace = golden.run(cnn.net, digits.test_x[:4])
    recorded = tap_recording(cnn, trace)
    tap = next(t for t in cnn.taps() if t.layer == "conv1")
    beats = [int(b, 16) for b in recorded["conv1"]]
    shape = trace[2].out.shape[1:]
    element = 2 * int(np.prod(shape)) + np.ravel_multi_index((1, 2, 5), shape)
    beat, lane = divmod(element, tap.per_beat)
    beats[beat] ^= 1 << (lane * tap.bits)
    recorded["conv1"] = to_hex(beats)
    # Later layers differ too; the first layer in network order is the one named.
    recorded["dense2"] = recorded["dense2"][::-1]
    difference = compare_taps(cnn, cnn.taps(), recorded, trace, frame_offset=10)
    assert difference.layer == "conv1"
    assert difference.frame == 12
    assert "layer conv1 differs first at frame 12, element [1, 2, 5]" in str(difference)


def test_a_layer_that_falls_short_is_named(mlp, digits):
    trace = golden.run(mlp.net, digits.test_x[:3])
    recorded = tap_recording(mlp, trace)
    recorded["dense1"] = recorded["dense1"][:-1]
    difference = compare_taps(mlp, mlp.taps(), recorded, trace)
    assert difference.layer == "dense1"
    assert difference.frame == 2
    assert "produced 2 whole frames" in str(difference)


def test_decode_tap_keeps_partial_frames_apart(mlp):
    tap = mlp.taps()[0]
    beats = pack_values(np.array([1, -1] * 40), "binary", tap.per_beat)
    values, extra = decode_tap(tap, beats, (32,))
    assert values.shape == (2, 32) and extra == 16
    assert np.array_equal(values.reshape(-1), np.array([1, -1] * 32))


def test_compare_output_names_frame_and_score(mlp, digits):
    trace = golden.run(mlp.net, digits.test_x[:4])
    expected = expected_output(mlp, trace)
    output = to_hex(beat for frame in expected for beat in frame)
    assert compare_output(mlp, expected, output) is None
    spec = mlp.packing["output"]
    per_frame = spec["beats_per_frame"]
    bad = list(output)
    bad[2 * per_frame + 1] = format(int(bad[2 * per_frame + 1], 16) ^ 1, "x")
    difference = compare_output(mlp, expected, bad)
    score = spec["elements_per_beat"]  # first element of beat 1
    assert difference.frame == 2
    assert str(difference).startswith(f"output frame 2, score {score}: expected "
                                      f"{trace[-1].out[2, score]}")
    short = compare_output(mlp, expected, output[:-1])
    assert short.frame == 3 and "3 whole frames of 4" in str(short)
