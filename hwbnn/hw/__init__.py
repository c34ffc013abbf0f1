"""Streaming hardware generator: Amaranth components for every IR layer and the network top.

One component per file: :class:`~.popcount.AdderTree` / :class:`~.popcount.Popcount`,
:class:`~.mvtu.MatrixVectorThresholdUnit`, :class:`~.sliding_window.SlidingWindow`,
:class:`~.maxpool.MaxPool`, :class:`~.avgpool.AvgPool`, :class:`~.global_pool.GlobalAvgPool`,
:class:`~.threshold.ThresholdUnit`, :class:`~.add.AddUnit`, :class:`~.fork.StreamFork`,
:class:`~.label_select.LabelSelect`, stream width converters and FIFOs (:mod:`.stream_utils`)
and :class:`~.network.NetworkTop`;
:func:`~.convert.convert_verilog` turns a design into Verilog. Nothing here imports torch.
"""

import functools

from ..errors import HwbnnError

# How a network is generated: folded units (PE/SIMD, weights in memories) or unrolled ones
# (a whole vector per clock, weights as wires).
MODES = ("folded", "unrolled")


def validated(init):
    """Decorate a component's ``__init__``: a constructor that rejects its arguments
    (HwbnnError) marks the half-built object used, so Amaranth does not later warn that an
    elaboratable was created but never elaborated."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except HwbnnError:
            self._MustUse__used = True
            raise

    return wrapper
