import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.hw import packing
from hwbnn.hw.label_select import LabelSelect, label_width
from hwbnn.hw.simulate import run_stream


@pytest.mark.parametrize("classes, per_beat, bits", [(10, 2, 7), (10, 10, 5), (6, 1, 4),
                                                     (300, 3, 4)])
def test_argmax_lowest_index_on_ties(classes, per_beat, bits):
    rng = np.random.default_rng(classes + per_beat)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    scores = rng.integers(lo, hi, size=(8, classes))
    scores[0] = lo                      # all equal: label 0
    scores[1, [2, 4]] = hi - 1          # tie between two maxima: the lower index
    scores[2] = hi - 1
    dut = LabelSelect(classes, per_beat, bits)
    out = run_stream(dut, dut.i, dut.o, packing.pack(scores, bits, per_beat), len(scores),
                     seed=classes)
    assert out == list(np.argmax(scores, axis=1))
    assert len(dut.o.payload) == label_width(classes)


def test_errors():
    with pytest.raises(HwbnnError, match="per_beat=3 does not divide classes=10"):
        LabelSelect(10, 3, 8)
    with pytest.raises(HwbnnError, match="bits must be a positive integer"):
        LabelSelect(10, 2, 0)
