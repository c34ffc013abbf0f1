"""Bit mixes: whole counts that hit a requested mix exactly; the shared residual binarization."""

import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.ir.mix import mix_counts, residual_binarize, weight_mix


@pytest.mark.parametrize("mix,total,expected", [
    ((0.6, 0.3, 0.1), 10, [6, 3, 1]),
    ((0.7, 0.2, 0.1), 64 * 32, [1433, 410, 205]),
    ((1 / 3, 1 / 3, 1 / 3), 100, [34, 33, 33]),
    ((0.0, 1.0, 0.0), 7, [0, 7, 0]),
])
def test_mix_counts(mix, total, expected):
    assert mix_counts(mix, total) == expected
    assert sum(mix_counts(mix, total)) == total


@pytest.mark.parametrize("mix", [(0.5, 0.6, 0.1), (1.0, 0.0), (-0.1, 0.6, 0.5), "abc"])
def test_bad_mixes(mix):
    with pytest.raises(HwbnnError, match="bit mix must be three"):
        weight_mix(mix)


def test_residual_binarize_reconstructs_with_integer_planes():
    w = np.random.default_rng(5).normal(size=(8, 24)).astype(np.float32)
    signs, bitwidth, scales, alpha = residual_binarize(w, (0.7, 0.2, 0.1))
    assert signs.dtype == np.int8 and set(np.unique(signs)) <= {-1, 1}
    assert [int((bitwidth == b).sum()) for b in (1, 2, 3)] == mix_counts((0.7, 0.2, 0.1), 192)
    assert scales[0] == 4 and all(isinstance(s, int) and s >= 1 for s in scales)
    used = np.arange(3)[:, None, None] < bitwidth[None]
    values = (np.array(scales)[:, None, None] * signs * used).sum(0)
    # Three planes fit better than one: the mean error falls below plain sign binarization's.
    one_plane = np.abs(w).mean() * np.sign(w)
    assert np.abs(alpha * values - w).mean() < np.abs(one_plane - w).mean()


@pytest.mark.parametrize("group", [1, "column"])
def test_exact_zero_residuals_alternate_signs(group):
    # +-1 weights leave exact-zero residuals after the first plane: their second plane
    # alternates along every row, so it adds no bias to any row's sum (column grouping too).
    w = np.where(np.arange(16) % 3 == 0, -1.0, 1.0)[None, :].repeat(3, axis=0)
    signs, _, _, _ = residual_binarize(w, (0.0, 1.0, 0.0), group)
    assert signs[1].tolist() == [[1, -1] * 8] * 3
    assert (signs[1].sum(axis=1) == 0).all()


def test_smallest_is_the_stable_sort_prefix():
    """The partition-based selection picks the set a stable argsort's first k give, ties to the
    lower index (so the residual binarization of every shipped mix model is unchanged)."""
    from hwbnn.ir.mix import _smallest

    rng = np.random.default_rng(1)
    for _ in range(2000):
        n = int(rng.integers(1, 60))
        values = rng.integers(0, 5, n).astype(float)
        values[rng.random(n) < 0.2] = np.inf
        k = int(rng.integers(1, n + 1))
        expected = np.sort(np.argsort(values, kind="stable")[:k])
        np.testing.assert_array_equal(np.sort(_smallest(values, k)), expected)


@pytest.mark.parametrize("group,tile", [("4x8", (4, 8)), ("2x16", (2, 16)), ("3x8", (1, 8))])
def test_tile_groups_share_one_bitwidth(group, tile):
    """``PExSIMD``: every tile of a folded unit has one bitwidth (PE reduced to its greatest
    common divisor with the rows: 3 and 32 rows give 1), and the mix is hit over the tiles."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 64))
    signs, bitwidth, scales, alpha = residual_binarize(w, (0.6, 0.3, 0.1), group)
    pe, simd = tile
    tiles = bitwidth.reshape(32 // pe, pe, 64 // simd, simd)
    assert (tiles == tiles[:, :1, :, :1]).all()
    counts = np.bincount(tiles[:, 0, :, 0].ravel(), minlength=4)[1:]
    assert counts.tolist() == mix_counts((0.6, 0.3, 0.1), tiles[:, 0, :, 0].size)


@pytest.mark.parametrize("group", ["4x", "x8", "0x8", "4x8x2", "tile", 0, -1, True, 2.5])
def test_bad_groups_are_refused(group):
    from hwbnn.ir.mix import parse_group

    with pytest.raises(HwbnnError, match="bitwidth group must be"):
        parse_group(group)
