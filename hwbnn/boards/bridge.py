"""Gateware of the host protocol (:mod:`hwbnn.boards.protocol`): request parser, response
sender, and the byte/beat adapters between the UART and the network's streams.

The parser forwards a classify request's payload to the network while it arrives (no frame
buffer: a whole image never sits in the bridge), so the checksum is known only after the
network has the frame; a bad checksum therefore still classifies and the result is dropped
with status ``01``. A payload of the wrong length is never forwarded.
"""

from __future__ import annotations

import functools
import operator

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import protocol

# What the parser tells the response side once a request frame has ended.
RequestLayout = data.StructLayout({
    "command": 8,
    "status": 2,
    "classified": 1,  # the payload went to the network: one result will come back
})


def crc8_next(crc, byte):
    """Amaranth expression of :func:`protocol.crc8_update`.

    The update is linear over GF(2) in ``crc ^ byte``, so each output bit is the XOR of the
    input bits whose unit vector sets it: one small XOR per bit instead of 8 shift steps.
    """
    value = crc ^ byte
    out = []
    for bit in range(8):
        taps = [j for j in range(8) if protocol.crc8_update(0, 1 << j) >> bit & 1]
        out.append(functools.reduce(operator.xor, (value[j] for j in taps)))
    return Cat(*out)


def _positive(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HwbnnError(f"{what} must be a positive integer, not {value!r}")
    return value


class RequestParser(wiring.Component):
    """Parses request frames from a byte stream.

    Parameters
    ----------
    frame_bytes : int
        Payload length of a classify request (the network's input frame in bytes).
    scores : bool
        Whether the board answers classify-with-scores requests.

    Ports: ``i`` (In stream of bytes), ``payload`` (Out stream of bytes: classify payloads,
    to the network), ``request`` (Out stream of :data:`RequestLayout`, one per frame).
    """

    def __init__(self, frame_bytes: int, scores: bool = False):
        self._frame_bytes = _positive(frame_bytes, "frame_bytes")
        if frame_bytes > 0xFFFF:
            raise HwbnnError(f"frame_bytes must be at most 65535, not {frame_bytes}")
        self._scores = bool(scores)
        super().__init__({
            "i": In(stream.Signature(8)),
            "payload": Out(stream.Signature(8)),
            "request": Out(stream.Signature(RequestLayout)),
        })

    def elaborate(self, platform):
        m = Module()
        byte = self.i.payload
        crc = Signal(8)
        command = Signal(8)
        length = Signal(16)
        left = Signal(16)
        forward = Signal()      # payload goes to the network
        status = Signal(2)      # status decided from command and length
        got = Signal()
        m.d.comb += got.eq(self.i.valid & self.i.ready)
        with m.If(got):
            m.d.sync += crc.eq(crc8_next(crc, byte))

        is_classify = (command == protocol.CMD_CLASSIFY) | (
            (command == protocol.CMD_CLASSIFY_SCORES) if self._scores else Const(0))
        full = Signal(16)
        m.d.comb += full.eq(Cat(length[:8], byte))

        with m.FSM():
            with m.State("sync"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got & (byte == protocol.REQUEST_SYNC)):
                    m.d.sync += crc.eq(0)
                    m.next = "command"
            with m.State("command"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += command.eq(byte)
                    m.next = "length_low"
            with m.State("length_low"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += length.eq(byte)
                    m.next = "length_high"
            with m.State("length_high"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    expected = Mux(is_classify, self._frame_bytes, 0)
                    known = is_classify | (command == protocol.CMD_INFO)
                    m.d.sync += [
                        left.eq(full),
                        forward.eq(is_classify & (full == self._frame_bytes)),
                        status.eq(Mux(~known, protocol.STATUS_BAD_COMMAND,
                                      Mux(full != expected, protocol.STATUS_BAD_LENGTH,
                                          protocol.STATUS_OK))),
                    ]
                    with m.If(full == 0):
                        m.next = "check"
                    with m.Else():
                        m.next = "payload"
            with m.State("payload"):
                with m.If(forward):
                    m.d.comb += [self.payload.payload.eq(byte),
                                 self.payload.valid.eq(self.i.valid),
                                 self.i.ready.eq(self.payload.ready)]
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "check"
            with m.State("check"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(got):
                    with m.If((status == protocol.STATUS_OK) & (byte != crc)):
                        m.d.sync += status.eq(protocol.STATUS_BAD_CRC)
                    m.next = "report"
            with m.State("report"):
                m.d.comb += [
                    self.request.valid.eq(1),
                    self.request.payload.command.eq(command),
                    self.request.payload.status.eq(status),
                    self.request.payload.classified.eq(forward),
                ]
                with m.If(self.request.ready):
                    m.next = "sync"
        return m


class ResponseSender(wiring.Component):
    """Answers each request with one response frame.

    For a request that reached the network it first takes that frame's result from
    ``result`` (label in bits 0..7, then the score beats' bytes). Payload: the label for
    classify, label and scores for classify-with-scores, ``info`` for info; empty on errors.

    Parameters
    ----------
    info : bytes
        The info response payload (:meth:`DesignInfo.to_bytes`).
    score_bytes : int
        Bytes of score beats in ``result`` (0: labels only).

    Ports: ``request`` (In stream of :data:`RequestLayout`), ``result`` (In stream of
    ``8 * (1 + score_bytes)`` bits), ``o`` (Out stream of bytes, to the UART).
    """

    def __init__(self, info: bytes, score_bytes: int = 0):
        if not isinstance(score_bytes, int) or score_bytes < 0:
            raise HwbnnError(f"score_bytes must be a non-negative integer, not {score_bytes!r}")
        self._info = bytes(info)
        self._score_bytes = score_bytes
        super().__init__({
            "request": In(stream.Signature(RequestLayout)),
            "result": In(stream.Signature(unsigned(8 * (1 + score_bytes)))),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        size = max(len(self._info), 1 + self._score_bytes)
        buf = Signal(8 * size)
        length = Signal(range(size + 1))
        status = Signal(8)
        request = Signal(RequestLayout)
        crc = Signal(8)
        index = Signal(range(size + 1))
        out_byte = Signal(8)
        sent = Signal()
        m.d.comb += [self.o.payload.eq(out_byte), sent.eq(self.o.valid & self.o.ready)]
        with m.If(sent):
            m.d.sync += crc.eq(crc8_next(crc, out_byte))
        info = Const(int.from_bytes(self._info, "little"), 8 * len(self._info))
        ok = request.status == protocol.STATUS_OK
        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += request.eq(self.request.payload)
                    with m.If(self.request.payload.classified):
                        m.next = "result"
                    with m.Else():
                        m.next = "prepare"
            with m.State("result"):
                m.d.comb += self.result.ready.eq(1)
                with m.If(self.result.valid):
                    m.d.sync += buf.eq(self.result.payload)
                    m.next = "prepare"
            with m.State("prepare"):
                with m.If(~ok):
                    m.d.sync += length.eq(0)
                with m.Elif(request.command == protocol.CMD_INFO):
                    m.d.sync += [buf.eq(info), length.eq(len(self._info))]
                with m.Elif(request.command == protocol.CMD_CLASSIFY_SCORES):
                    m.d.sync += length.eq(1 + self._score_bytes)
                with m.Else():
                    m.d.sync += length.eq(1)
                m.d.sync += status.eq(request.status)
                m.next = "sync"
            with m.State("sync"):
                m.d.comb += [out_byte.eq(protocol.RESPONSE_SYNC), self.o.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += crc.eq(0)
                    m.next = "status"
            with m.State("status"):
                m.d.comb += [out_byte.eq(status), self.o.valid.eq(1)]
                with m.If(sent):
                    m.next = "length_low"
            with m.State("length_low"):
                m.d.comb += [out_byte.eq(length), self.o.valid.eq(1)]
                with m.If(sent):
                    m.next = "length_high"
            with m.State("length_high"):
                m.d.comb += [out_byte.eq(0), self.o.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += index.eq(0)
                    with m.If(length == 0):
                        m.next = "crc"
                    with m.Else():
                        m.next = "payload"
            with m.State("payload"):
                buf_bytes = Array(buf[8 * n:8 * n + 8] for n in range(size))
                m.d.comb += [out_byte.eq(buf_bytes[index]), self.o.valid.eq(1)]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == length - 1):
                        m.next = "crc"
            with m.State("crc"):
                m.d.comb += [out_byte.eq(crc), self.o.valid.eq(1)]
                with m.If(sent):
                    m.next = "idle"
        return m


class BytesToBeats(wiring.Component):
    """Collects ``beat_bytes`` bytes (first byte lowest) into one beat.

    Ports: ``i`` (In stream of bytes), ``o`` (Out stream of ``8 * beat_bytes`` bits).
    """

    def __init__(self, beat_bytes: int):
        self._beat_bytes = _positive(beat_bytes, "beat_bytes")
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(unsigned(8 * beat_bytes))),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._beat_bytes
        if n == 1:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        count = Signal(range(n))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            # Shift in from the top: after n bytes the first one sits in the low bits.
            m.d.sync += self.o.payload.eq(self.i.payload << (8 * (n - 1))
                                          | self.o.payload >> 8)
            m.d.sync += count.eq(Mux(count == n - 1, 0, count + 1))
            with m.If(count == n - 1):
                m.d.sync += self.o.valid.eq(1)
        return m


class LabelResult(wiring.Component):
    """Result of a network in ``label`` mode: its one output beat per frame holds the label.

    Ports: ``i`` (In stream of ``out_width`` bits, label in the low bits), ``o`` (Out stream
    of 8 bits: the label).
    """

    def __init__(self, out_width: int):
        self._out_width = _positive(out_width, "out_width")
        super().__init__({
            "i": In(stream.Signature(unsigned(out_width))),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.o.payload.eq(self.i.payload[:8]),
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        return m


class ScoreCollector(wiring.Component):
    """Result of a network in ``scores`` mode: collects a frame's score beats and picks the
    label (argmax, ties to the lowest class, as ``ref.golden.predict``) as they pass.

    Parameters
    ----------
    score_bits, scores_per_beat, beat_bytes, classes : int
        Packing of the network's output (signed fields, element 0 lowest).

    Ports: ``i`` (In stream of ``8 * beat_bytes`` bits), ``o`` (Out stream: label in bits
    0..7, then the frame's beats, first beat lowest).
    """

    def __init__(self, score_bits: int, scores_per_beat: int, beat_bytes: int, classes: int):
        self._bits = _positive(score_bits, "score_bits")
        self._per_beat = _positive(scores_per_beat, "scores_per_beat")
        self._beat_bytes = _positive(beat_bytes, "beat_bytes")
        self._classes = _positive(classes, "classes")
        if classes > 256:
            raise HwbnnError(f"a label byte holds at most 256 classes, not {classes}")
        if score_bits * scores_per_beat > 8 * beat_bytes:
            raise HwbnnError(f"{scores_per_beat} scores of {score_bits} bits do not fit a beat "
                             f"of {beat_bytes} bytes")
        self._beats = -(-classes // scores_per_beat)
        super().__init__({
            "i": In(stream.Signature(unsigned(8 * beat_bytes))),
            "o": Out(stream.Signature(unsigned(8 + 8 * beat_bytes * self._beats))),
        })

    @property
    def beats(self) -> int:
        return self._beats

    def elaborate(self, platform):
        m = Module()
        bits, per_beat, beats = self._bits, self._per_beat, self._beats
        width = 8 * self._beat_bytes
        beat = Signal(range(beats))
        best = Signal(signed(bits))
        best_index = Signal(8)
        scores = Signal(width * beats)
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        # Walk the beat's elements in class order; a later class wins only if strictly larger.
        value, index = best, best_index
        for n in range(per_beat):
            element = self.i.payload[n * bits:(n + 1) * bits].as_signed()
            klass = beat * per_beat + n
            real = klass < self._classes
            take = real & ((element > value) | ((beat == 0) if n == 0 else Const(0)))
            value = Mux(take, element, value)
            index = Mux(take, klass, index)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [best.eq(value), best_index.eq(index),
                         scores.eq(self.i.payload << (width * (beats - 1)) | scores >> width)]
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        m.d.comb += self.o.payload.eq(Cat(best_index, scores))
        return m
