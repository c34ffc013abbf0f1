import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw.plan import LayerPlan
from hwbnn.ir.network import Weights
from hwbnn.ref import golden

from .hw_layers import layer_with, random_layer, random_values

KINDS = ["binary", "ternary", "residual", "grouped"]
IN_ENCODINGS = ["binary", "ternary", "uint3"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("in_encoding", IN_ENCODINGS)
@pytest.mark.parametrize("out_encoding", ["binary", "ternary", "uint2", None])
def test_plan_reference_equals_golden(kind, in_encoding, out_encoding):
    rng = np.random.default_rng(len(kind) * 7 + len(in_encoding))
    layer = random_layer(rng, kind, in_encoding, out_encoding, mh=6, mw=12)
    plan = LayerPlan(layer, pe=3, simd=4)
    x = random_values(rng, in_encoding, (40, 12))
    ref = golden.run_layer(layer, x)
    assert (plan.reference_dot(x) == ref.acc).all()
    lo, hi = plan.acc_bounds()
    acc = plan.reference_acc(x)
    assert lo <= acc.min() and acc.max() <= hi
    assert -(1 << (plan.acc_width - 1)) <= lo and hi + 1 < 1 << (plan.acc_width - 1)
    if out_encoding is not None:
        count = (acc[..., None] >= plan.hw_thresholds()[None]).sum(-1)
        assert (golden.threshold(ref.acc, layer.thresholds, out_encoding)
                == golden.threshold(acc, plan.hw_thresholds(), out_encoding)).all()
        assert count.max() <= layer.thresholds.shape[1]


def test_grouped_bitwidths_skip_absent_planes():
    rng = np.random.default_rng(3)
    layer = random_layer(rng, "grouped", "binary", "binary", mh=4, mw=16, group=4)
    plan = LayerPlan(layer, pe=1, simd=4)
    bits = layer.weights.bitwidth
    expected = [int(bits[nf, sf * 4:(sf + 1) * 4].max())
                for nf in range(4) for sf in range(4)]
    assert [len(p) for p in plan.plane_schedule] == expected
    assert plan.cycles_per_vector == sum(expected)
    assert not plan.needs_mask
    # 4 sign bits a step, and the schedule's bit (tiles take a prefix of the planes) in a
    # one-bit memory beside the 4-bit words
    assert plan.schedule_in_rom and plan.schedule_apart and plan.rom_width == 4
    assert plan.weight_bits == sum(expected) * (4 + 1)
    ends = np.cumsum(expected) - 1
    assert np.flatnonzero(plan.last_steps()).tolist() == ends.tolist()
    assert plan.ends_ahead().tolist() == np.roll(plan.last_steps(), -1).astype(int).tolist()
    assert plan.schedule_rom.depth == sum(expected) and plan.schedule_rom.width == 1
    assert max(plan.rom_words()) < 16


def test_a_one_bit_weight_word_carries_the_schedule():
    rng = np.random.default_rng(4)
    plan = LayerPlan(random_layer(rng, "residual", "binary", "binary", mh=4, mw=6), pe=1, simd=1)
    assert plan.schedule_in_rom and not plan.schedule_apart and plan.schedule_rom is None
    assert plan.rom_width == 2
    assert [word >> 1 for word in plan.rom_words()] == plan.ends_ahead().tolist()
    assert [word & 1 for word in plan.rom_words()] == plan.weight_image[:, 0].tolist()


def test_step_order():
    rng = np.random.default_rng(0)
    plan = LayerPlan(random_layer(rng, "binary", "binary", "binary", mh=4, mw=6), pe=2, simd=3)
    assert [tuple(map(int, step)) for step in zip(*plan.step_tiles(), strict=True)] == [
        (0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    assert plan.steps == plan.cycles_per_vector == 4


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("in_encoding", ["binary", "ternary"])
def test_memory_images_read_step_by_step(kind, in_encoding):
    """The vectorized ROM images equal a plain reading of the definition: per step, the
    tile's sign bits of its plane (PE-major), then its mask bits; per neuron fold, the
    threshold fields of its PEs; with a per-tile schedule, the top bit tells whether the next
    step (step 0 after the last) is its tile's last."""
    rng = np.random.default_rng(len(kind))
    layer = random_layer(rng, kind, in_encoding, "uint2", mh=8, mw=12, group=3)
    plan = LayerPlan(layer, pe=2, simd=3)
    steps = list(zip(*plan.step_tiles(), strict=True))
    words, ends = [], []
    for k, (nf, sf, plane) in enumerate(steps):
        rows, cols = plan.tile_rows(nf), plan.tile_cols(sf)
        bits = list(plan.signs[plane][np.ix_(rows, cols)].reshape(-1))
        if plan.needs_mask:
            bits += list(plan.masks[plane][np.ix_(rows, cols)].reshape(-1))
        words.append(sum(int(bit) << n for n, bit in enumerate(bits)))
        n = (k + 1) % len(steps)
        ends.append(int(n == len(steps) - 1 or steps[n + 1][:2] != steps[n][:2]))
    assert plan.schedule_in_rom == (layer.weights.kind == "residual" and plan.irregular)
    if plan.schedule_in_rom:
        assert plan.schedule_apart  # 6 lanes a word
        assert plan.ends_ahead().tolist() == ends
        assert plan.schedule_rom.depth == len(ends)
    else:
        assert plan.schedule_rom is None
    assert plan.rom_words() == words
    assert plan.weight_rom.depth == len(words) and plan.weight_rom.width == plan.rom_width
    table = plan.hw_thresholds()
    fields = [[int(v) for r in plan.tile_rows(nf) for v in table[r]] for nf in range(plan.nf)]
    mask = (1 << plan.acc_width) - 1
    image = plan.threshold_image()
    for nf, row in enumerate(fields):
        packed = sum((v & mask) << (n * plan.acc_width) for n, v in enumerate(row))
        assert packed == sum(int(bit) << n for n, bit in enumerate(image[nf]))


def test_wide_rom_words_pack_beyond_64_bits():
    rng = np.random.default_rng(5)
    plan = LayerPlan(random_layer(rng, "binary", "binary", "binary", mh=8, mw=40), pe=4, simd=20)
    assert plan.rom_width == 80
    for word, row in zip(plan.rom_words(), plan.weight_image, strict=True):
        assert word == sum(int(bit) << n for n, bit in enumerate(row))


@pytest.mark.parametrize("pe, simd, message", [
    (3, 2, "pe=3 does not divide MH"), (2, 5, "simd=5 does not divide MW"),
    (0, 2, "pe must be a positive integer"), (True, 2, "pe must be a positive integer")])
def test_folding_errors(pe, simd, message):
    layer = random_layer(np.random.default_rng(0), "binary", "binary", "binary", mh=4, mw=6)
    with pytest.raises(HwbnnError, match=message):
        LayerPlan(layer, pe=pe, simd=simd)


def test_integer_weight_planes():
    """b-bit two's-complement weights: b planes (mask = bit, scale 2^p), the top plane with
    sign -1, so no scale is negative; the plan's accumulators equal W @ x on signed inputs."""
    rng = np.random.default_rng(3)
    values = rng.integers(-128, 128, size=(4, 6))
    values[0, :2] = [-128, 127]
    layer = layer_with(rng, Weights.integer(values, 8), "int10", None)
    plan = LayerPlan(layer, 2, 3)
    assert plan.scales.tolist() == [1, 2, 4, 8, 16, 32, 64, 128]
    assert plan.signs[:7].all() and not plan.signs[7].any()
    assert plan.planes == 8 and plan.signed_input
    x = rng.integers(-512, 512, size=(5, 6))
    assert (plan.reference_dot(x) == x @ values.T).all()
    lo, hi = plan.acc_bounds()  # every partial sum over steps, so at least the dot's range
    assert lo <= np.minimum(values * -512, values * 511).sum(1).min()
    assert hi >= np.maximum(values * -512, values * 511).sum(1).max()
