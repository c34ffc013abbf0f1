"""Bit mixes: whole counts that hit a requested mix exactly."""

import pytest

from hwbnn.errors import HwbnnError
from hwbnn.ir.mix import mix_counts, weight_mix


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
