"""Elementwise per-channel multi-threshold unit (the IR's ``threshold`` layer, FINN's
MultiThreshold) and the threshold logic it shares with the add unit and the MVTU.

A stream carries ``lanes`` elements per beat of a channels-last tensor with ``channels``
channels (``lanes`` divides ``channels``), so beat ``n`` holds channels
``(n mod G) * lanes ..`` with ``G = channels / lanes``: a channel-group counter selects the row
of a threshold ROM (one row per group, every lane's thresholds). The output code of a
passed-threshold count is :func:`count_code`.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import (
    MAX_SUM_BITS,
    encoding_bits,
    encoding_levels,
    encoding_range,
    is_signed_int,
    signed_width,
    validate_encoding,
)
from . import validated
from .plan import twos_complement_bits


def count_code(count, encoding: str):
    """Stored code (docs/design.md section 2) of a passed-threshold count: binary and uintN
    as the count, ternary 0/1/2 -> -1/0/+1 as (nonzero, sign), intN as the two's complement
    of ``count - 2^(N-1)``, i.e. the count (offset binary) with its top bit flipped."""
    if encoding == "ternary":
        return (count != 1) | ((count == 0) << 1)
    bits = encoding_bits(encoding)
    code = count[:bits]
    if is_signed_int(encoding):
        return code ^ (1 << (bits - 1))
    return code


def check_lanes(lanes, channels: int, what: str) -> int:
    """``lanes`` as an int if it is a positive divisor of ``channels``, else HwbnnError."""
    if isinstance(lanes, bool) or not isinstance(lanes, int | np.integer) or lanes < 1:
        raise HwbnnError(f"{what} lanes must be a positive integer, not {lanes!r}")
    if channels % lanes:
        raise HwbnnError(f"{what} lanes={lanes} does not divide the {channels} channels")
    return int(lanes)


def integer_input(encoding, what: str) -> str:
    """An integer (uintN/intN, up to 16 bits) stream encoding, else HwbnnError."""
    validate_encoding(encoding, what, max_bits=MAX_SUM_BITS)
    if encoding in ("binary", "ternary"):
        raise HwbnnError(f"{what} must be an integer encoding (uintN/intN), not {encoding!r}")
    return encoding


def lane_value(payload, lane: int, encoding: str):
    """Element ``lane`` of a beat as a signed or unsigned Amaranth value."""
    bits = encoding_bits(encoding)
    field = payload[lane * bits:(lane + 1) * bits]
    return field.as_signed() if is_signed_int(encoding) else field.as_unsigned()


class ChannelGroup:
    """The channel-group counter of a stream of ``lanes`` elements per beat."""

    def __init__(self, m, channels: int, lanes: int, advance):
        self.groups = channels // lanes
        self.index = Signal(range(max(self.groups, 2)), name="group")
        if self.groups > 1:
            with m.If(advance):
                m.d.sync += self.index.eq(Mux(self.index == self.groups - 1, 0, self.index + 1))


class ThresholdTable:
    """Per-channel sorted thresholds ``(C, levels)`` for values in ``[lo, hi]``, as a ROM of one
    row per channel group, read combinationally by :meth:`counts`.

    Thresholds are clamped into ``[lo, hi + 1]`` (same results), so ``width`` bits signed
    hold them and every input value.
    """

    def __init__(self, thresholds, lanes: int, value_range: tuple[int, int], what: str):
        table = np.asarray(thresholds)
        if table.ndim != 2 or table.shape[1] < 1 or table.shape[0] % lanes:
            raise HwbnnError(f"{what} thresholds must have shape (channels, levels), "
                             f"not {table.shape}")
        if not np.issubdtype(table.dtype, np.integer):
            raise HwbnnError(f"{what} thresholds must be integers, not {table.dtype}")
        if (np.diff(table, axis=1) < 0).any():
            raise HwbnnError(f"{what} thresholds must be sorted per channel")
        lo, hi = value_range
        self.table = np.clip(table.astype(np.int64), lo, hi + 1)
        self.levels = table.shape[1]
        self.lanes = lanes
        self.width = signed_width(lo, hi + 1)

    @property
    def groups(self) -> int:
        """Rows of the ROM: channel groups of ``lanes`` channels."""
        return self.table.shape[0] // self.lanes

    def image(self) -> np.ndarray:
        """The ROM as a (groups, lanes * levels * width) bit matrix: per row, lane 0's
        thresholds lowest, each ``width`` bits two's complement."""
        rows = self.table.reshape(self.groups, self.lanes * self.levels)
        return twos_complement_bits(rows, self.width).reshape(self.groups, -1)

    def counts(self, m, group, values) -> list:
        """Per lane, how many of its channel's thresholds ``values[lane]`` reaches."""
        width, levels, lanes = self.width, self.levels, self.lanes
        rows = self.table.reshape(-1, lanes * levels)
        mask = (1 << width) - 1
        words = [sum((int(t) & mask) << (n * width) for n, t in enumerate(row)) for row in rows]
        m.submodules.thresholds = rom = Memory(shape=unsigned(lanes * levels * width),
                                               depth=len(words), init=words)
        port = rom.read_port(domain="comb")
        m.d.comb += port.addr.eq(group)
        counts = []
        for lane, value in enumerate(values):
            base = lane * levels * width
            passed = [(value >= port.data[base + n * width:base + (n + 1) * width].as_signed())
                      for n in range(levels)]
            counts.append(sum_bits(passed))
        return counts


# Comparator counts up to this many are summed as a chain (what the shipped designs under
# rtl/ were generated with, so their Verilog stays the same); more (an 8-bit output has 255
# thresholds) as a balanced tree, which is also shallower in logic and keeps Amaranth's
# recursive shape inference within Python's recursion limit.
CHAIN_SUM_MAX = 16


def sum_bits(bits):
    """Sum of one-bit values (a popcount of the comparator outputs)."""
    values = [b.as_unsigned() for b in bits]
    if len(values) <= CHAIN_SUM_MAX:
        return sum(values)
    while len(values) > 1:
        values = [values[n] + values[n + 1] if n + 1 < len(values) else values[n]
                  for n in range(0, len(values), 2)]
    return values[0]


class ThresholdUnit(wiring.Component):
    """Elementwise multi-threshold of a stream: per lane, the count of its channel's thresholds
    ``t`` with ``x >= t``, as the code of ``out_encoding``; one beat per cycle, one register.

    Parameters
    ----------
    channels : int
        Channels of the tensor (its last axis); beats run through them in order.
    lanes : int
        Elements per beat (divides ``channels``).
    in_encoding : str
        ``uintN`` / ``intN``, up to 16 bits.
    thresholds : ndarray
        ``(channels, levels)`` sorted integers; ``levels`` must match ``out_encoding``.
    out_encoding : str

    Ports: ``i`` (In stream of lanes * in bits), ``o`` (Out stream of lanes * out bits).
    """

    @validated
    def __init__(self, channels: int, lanes: int, in_encoding: str, thresholds,
                 out_encoding: str):
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise HwbnnError(f"channels must be a positive integer, not {channels!r}")
        self._lanes = check_lanes(lanes, channels, "threshold unit")
        self._channels = channels
        self._in = integer_input(in_encoding, "threshold input encoding")
        self._out = validate_encoding(out_encoding, "threshold output encoding")
        self._table = ThresholdTable(thresholds, self._lanes, encoding_range(in_encoding),
                                     "threshold unit")
        if self._table.table.shape[0] != channels:
            raise HwbnnError(f"threshold unit thresholds must have {channels} rows, not "
                             f"{self._table.table.shape[0]}")
        if self._table.levels != encoding_levels(out_encoding):
            raise HwbnnError(f"{out_encoding} needs {encoding_levels(out_encoding)} "
                             f"thresholds per channel, not {self._table.levels}")
        super().__init__({
            "i": In(stream.Signature(unsigned(self._lanes * encoding_bits(in_encoding)))),
            "o": Out(stream.Signature(unsigned(self._lanes * encoding_bits(out_encoding)))),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def table(self) -> ThresholdTable:
        return self._table

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        accept = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     accept.eq(self.i.valid & self.i.ready)]
        group = ChannelGroup(m, self._channels, self._lanes, accept)
        values = [lane_value(self.i.payload, n, self._in) for n in range(self._lanes)]
        counts = self._table.counts(m, group.index, values)
        bits = encoding_bits(self._out)
        with m.If(self.i.ready):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for n, count in enumerate(counts):
                m.d.sync += self.o.payload[n * bits:(n + 1) * bits].eq(count_code(count,
                                                                                  self._out))
        return m
