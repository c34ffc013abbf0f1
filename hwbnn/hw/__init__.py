"""Streaming hardware generator: Amaranth components for every IR layer and the network top.

One component per file: :class:`~.popcount.AdderTree` / :class:`~.popcount.Popcount`,
:class:`~.mvtu.MatrixVectorThresholdUnit`, :class:`~.sliding_window.SlidingWindow`,
:class:`~.maxpool.MaxPool`, :class:`~.label_select.LabelSelect`, stream width converters and
FIFOs (:mod:`.stream_utils`) and :class:`~.network.NetworkTop`. Nothing here imports torch.
"""
