"""Join of two streams: the IR's ``add`` layer (a residual shortcut meeting its block)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import (
    MAX_SUM_BITS,
    encoding_bits,
    encoding_levels,
    encoding_range,
    validate_encoding,
)
from ..ir.network import MAX_ADD_SCALE
from . import validated
from .threshold import (
    ChannelGroup,
    ThresholdTable,
    check_lanes,
    count_code,
    integer_input,
    lane_value,
)


class AddUnit(wiring.Component):
    """Elementwise ``s0 * a + s1 * b`` of two streams of equal beat layout, then per-channel
    thresholds (to ``out_encoding``) or a clip to the range of ``out_encoding``.

    A beat leaves only when both inputs have one (a join): ``i0.ready`` and ``i1.ready`` are
    high together, in the cycle both beats are taken. One output register; one beat per cycle.

    Parameters
    ----------
    channels, lanes : int
        Channels of the tensor and elements per beat (``lanes`` divides ``channels``).
    in_encodings : (str, str)
        Integer encodings (uintN/intN up to 16 bits) of ``i0`` and ``i1``.
    scales : (int, int)
        Integer multipliers, 1..255.
    out_encoding : str
    thresholds : ndarray, optional
        ``(channels, levels)`` sorted; without, the sum is clipped.

    Ports: ``i0``, ``i1`` (In streams of lanes * their bits), ``o`` (Out stream).
    """

    @validated
    def __init__(self, channels: int, lanes: int, in_encodings, scales, out_encoding: str,
                 thresholds=None):
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise HwbnnError(f"channels must be a positive integer, not {channels!r}")
        self._channels = channels
        self._lanes = check_lanes(lanes, channels, "add unit")
        if not isinstance(in_encodings, tuple | list) or len(in_encodings) != 2:
            raise HwbnnError(f"an add unit needs two input encodings, not {in_encodings!r}")
        self._in = tuple(integer_input(e, "add input encoding") for e in in_encodings)
        if (not isinstance(scales, tuple | list) or len(scales) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool)
                           and 1 <= s <= MAX_ADD_SCALE for s in scales)):
            raise HwbnnError(f"add scales must be two integers in 1..{MAX_ADD_SCALE}, "
                             f"not {scales!r}")
        self._scales = tuple(scales)
        ranges = [[s * v for v in encoding_range(e)] for s, e in zip(scales, self._in,
                                                                    strict=True)]
        self._acc_range = (sum(min(r) for r in ranges), sum(max(r) for r in ranges))
        if thresholds is None:
            self._out = validate_encoding(out_encoding, "add output encoding",
                                          max_bits=MAX_SUM_BITS)
            self._table = None
        else:
            self._out = validate_encoding(out_encoding, "add output encoding")
            self._table = ThresholdTable(thresholds, self._lanes, self._acc_range, "add unit")
            if self._table.table.shape[0] != channels:
                raise HwbnnError(f"add unit thresholds must have {channels} rows, not "
                                 f"{self._table.table.shape[0]}")
            if self._table.levels != encoding_levels(out_encoding):
                raise HwbnnError(f"{out_encoding} needs {encoding_levels(out_encoding)} "
                                 f"thresholds per channel, not {self._table.levels}")
        super().__init__({
            "i0": In(stream.Signature(unsigned(self._lanes * encoding_bits(self._in[0])))),
            "i1": In(stream.Signature(unsigned(self._lanes * encoding_bits(self._in[1])))),
            "o": Out(stream.Signature(unsigned(self._lanes * encoding_bits(self._out)))),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def table(self) -> ThresholdTable | None:
        """The thresholds, or None where the sum is clipped."""
        return self._table

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        en, accept = Signal(), Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            accept.eq(en & self.i0.valid & self.i1.valid),
            self.i0.ready.eq(accept),
            self.i1.ready.eq(accept),
        ]
        group = ChannelGroup(m, self._channels, self._lanes, accept)
        sums = []
        for n in range(self._lanes):
            a = lane_value(self.i0.payload, n, self._in[0])
            b = lane_value(self.i1.payload, n, self._in[1])
            sums.append(a * self._scales[0] + b * self._scales[1])
        bits = encoding_bits(self._out)
        if self._table is not None:
            results = [count_code(c, self._out) for c in self._table.counts(m, group.index, sums)]
        else:
            lo, hi = encoding_range(self._out)
            results = [Mux(s < lo, lo, Mux(s > hi, hi, s))[:bits] for s in sums]
        with m.If(en):
            m.d.sync += self.o.valid.eq(accept)
            for n, result in enumerate(results):
                m.d.sync += self.o.payload[n * bits:(n + 1) * bits].eq(result)
        return m
