"""Middle-out residual binarization: exact counts, falling error, integer scales."""

import numpy as np
import pytest
import torch

from hwbnn.errors import HwbnnError
from hwbnn.quant import ResidualWeight, mix_counts, residual_binarize


@pytest.mark.parametrize("mix", [(0.6, 0.3, 0.1), (0.7, 0.2, 0.1), (0.2, 0.0, 0.8), (0, 0, 1)])
@pytest.mark.parametrize("group", [1, 4])
def test_middle_out_hits_requested_counts(mix, group):
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(1))
    signs, bitwidth, scales, alpha = residual_binarize(w, mix, group)
    counts = [int((bitwidth == b).sum()) for b in (1, 2, 3)]
    assert counts == [c * group for c in mix_counts(mix, w.numel() // group)]
    assert signs.shape[0] == int(bitwidth.max()) == len(scales)
    assert all(isinstance(s, int) and s >= 1 for s in scales)
    if group > 1:  # a group of consecutive inputs shares one bitwidth
        grouped = bitwidth.view(16, -1, group)
        assert (grouped == grouped[..., :1]).all()


def test_middle_out_keeps_weights_near_the_scale_at_one_bit():
    # Magnitudes near the mean are represented well by one plane; outliers get more bits.
    w = torch.tensor([[1.0, 1.05, 0.95, 0.02, 3.0, 1.0, 0.98, 1.02]])
    _, bitwidth, _, _ = residual_binarize(w, (0.75, 0.25, 0.0))
    assert bitwidth[0, 3] == 2 and bitwidth[0, 4] == 2
    assert int((bitwidth == 1).sum()) == 6


def _error(w, mix):
    q = ResidualWeight(mix).quantize(w)
    return float(((q.scale * q.values - w) ** 2).mean())


def test_residual_error_falls_with_more_bits():
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    homogeneous = [_error(w, mix) for mix in [(1, 0, 0), (0, 1, 0), (0, 0, 1)]]
    assert homogeneous == sorted(homogeneous, reverse=True)
    mixes = [_error(w, mix) for mix in [(1, 0, 0), (0.7, 0.2, 0.1), (0.6, 0.3, 0.1),
                                        (0.3, 0.4, 0.3)]]
    assert mixes == sorted(mixes, reverse=True)
    # Fromm et al.'s observation: middle-out 1.4 bits fits better than homogeneous 2 bits,
    # because the extra planes go to the weights one plane fits worst.
    assert _error(w, (0.7, 0.2, 0.1)) < homogeneous[1]


def test_column_granularity_shares_bitwidth_down_each_input():
    w = torch.randn(12, 20, generator=torch.Generator().manual_seed(4))
    mix = (0.7, 0.2, 0.1)
    signs, bitwidth, scales, alpha = residual_binarize(w, mix, "column")
    assert (bitwidth == bitwidth[:1]).all()
    assert [int((bitwidth[0] == b).sum()) for b in (1, 2, 3)] == mix_counts(mix, 20)
    assert signs.shape == (3, 12, 20)
    # The same selection as grouping the transposed matrix by rows.
    t_signs, t_bitwidth, t_scales, _ = residual_binarize(w.t(), mix, 12)
    assert torch.equal(bitwidth, t_bitwidth.t()) and scales == t_scales
    assert torch.equal(signs, t_signs.transpose(1, 2))


def test_group_must_divide_fan_in():
    with pytest.raises(HwbnnError, match="group 3 must divide the fan-in 8"):
        residual_binarize(torch.randn(2, 8), (0.5, 0.5, 0.0), group=3)


def test_values_are_sum_of_integer_planes():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    q = ResidualWeight((0.5, 0.25, 0.25)).quantize(w)
    used = np.arange(3)[:, None, None] < q.bitwidth.numpy()[None]
    expected = (np.array(q.plane_scales)[:, None, None] * q.signs.numpy() * used).sum(0)
    assert np.array_equal(q.values.numpy(), expected)
