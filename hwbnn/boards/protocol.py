"""The framing protocol between a host and a board top, over a UART (8N1).

Every message is a frame: a sync byte, a type byte, a 16-bit little-endian payload length,
the payload, and a CRC-8 over the type, length and payload bytes (polynomial 0x07, initial
value 0, no reflection: CRC-8/SMBUS). The host sends *requests*, the board answers each
with one *response*::

    request   A5  CMD     LEN_LO LEN_HI  PAYLOAD...  CRC
    response  5A  STATUS  LEN_LO LEN_HI  PAYLOAD...  CRC

Requests (``CMD``):

* ``01`` classify: the payload is one input frame as the network's input beats (each beat
  ``in_beat_bytes`` bytes, little-endian; elements packed LSB first as in docs/design.md section 4).
  The response payload is the label (1 byte).
* ``02`` classify with scores: as ``01``; the response payload is the label followed by the
  score beats (``score_beat_bytes`` each, signed ``score_bits``-bit fields, class order).
  Only boards built with scores answer it; others answer status ``03``.
* ``03`` info: empty payload; the response payload is :class:`DesignInfo` (what the host
  needs to pack frames and read scores).

Response ``STATUS``: ``00`` ok; ``01`` the request's CRC was wrong (the frame was still
classified, its result is discarded); ``02`` the payload length does not match the command
(the payload is skipped, nothing is classified); ``03`` unknown or unsupported command.
Error responses carry an empty payload. Bytes outside a frame (before a sync byte) are
ignored, so a host resynchronizes by waiting for the board to answer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import HwbnnError

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A

CMD_CLASSIFY = 0x01
CMD_CLASSIFY_SCORES = 0x02
CMD_INFO = 0x03

STATUS_OK = 0x00
STATUS_BAD_CRC = 0x01
STATUS_BAD_LENGTH = 0x02
STATUS_BAD_COMMAND = 0x03
STATUS_TEXT = {
    STATUS_OK: "ok",
    STATUS_BAD_CRC: "the board received a request with a bad checksum",
    STATUS_BAD_LENGTH: "the board expected a different payload length",
    STATUS_BAD_COMMAND: "the board does not support this command",
}

# Input element encodings in DesignInfo.
ENCODING_CODES = {"unsigned": 0, "binary": 1, "ternary": 2}

CRC8_POLY = 0x07
INFO_MAGIC = b"HWBN"
PROTOCOL_VERSION = 1


def crc8_update(crc: int, byte: int) -> int:
    """CRC-8/SMBUS of one more byte (MSB first, polynomial x^8 + x^2 + x + 1)."""
    crc ^= byte
    for _ in range(8):
        crc = ((crc << 1) ^ CRC8_POLY if crc & 0x80 else crc << 1) & 0xFF
    return crc


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = crc8_update(crc, byte)
    return crc


def encode_frame(sync: int, kind: int, payload: bytes = b"") -> bytes:
    """One frame: sync, type, length, payload, CRC-8 over type/length/payload."""
    if len(payload) > 0xFFFF:
        raise HwbnnError(f"a frame payload holds at most 65535 bytes, not {len(payload)}")
    body = bytes([kind]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([sync]) + body + bytes([crc8(body)])


def encode_request(command: int, payload: bytes = b"") -> bytes:
    return encode_frame(REQUEST_SYNC, command, payload)


def encode_response(status: int, payload: bytes = b"") -> bytes:
    return encode_frame(RESPONSE_SYNC, status, payload)


@dataclass(frozen=True)
class Frame:
    """A decoded frame: type byte (command or status), payload, and whether its CRC held."""

    kind: int
    payload: bytes
    crc_ok: bool


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, get whole frames back.

    Bytes before a sync byte are skipped (and counted in ``skipped``).
    """

    def __init__(self, sync: int):
        self._sync = sync
        self._buffer = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(bytes([self._sync]))
            if start < 0:
                self.skipped += len(self._buffer)
                self._buffer.clear()
                return frames
            self.skipped += start
            del self._buffer[:start]
            if len(self._buffer) < 4:
                return frames
            length = self._buffer[2] | self._buffer[3] << 8
            if len(self._buffer) < 5 + length:
                return frames
            body = bytes(self._buffer[1:4 + length])
            frames.append(Frame(body[0], body[3:], crc8(body) == self._buffer[4 + length]))
            del self._buffer[:5 + length]

    @property
    def missing(self) -> int:
        """Bytes still needed to complete the frame begun (at least 1; 5 before any)."""
        if len(self._buffer) < 4:
            return 5 - len(self._buffer)
        length = self._buffer[2] | self._buffer[3] << 8
        return 5 + length - len(self._buffer)


def frame_length(payload_length: int) -> int:
    """Bytes on the wire of a frame with this payload."""
    return 5 + payload_length


@dataclass(frozen=True)
class DesignInfo:
    """What the host needs to talk to a board design; the payload of the info response."""

    in_encoding: str        # "unsigned", "binary" or "ternary"
    in_elem_bits: int
    in_elems_per_beat: int
    in_beat_bytes: int
    in_beats: int
    classes: int
    score_bits: int = 0     # 0: the board answers labels only
    scores_per_beat: int = 0
    score_beat_bytes: int = 0
    score_beats: int = 0

    _FORMAT = "<4sBBBBBHBBBBH"

    def __post_init__(self):
        if self.in_encoding not in ENCODING_CODES:
            raise HwbnnError(f"input encoding must be one of {', '.join(ENCODING_CODES)}, "
                             f"not {self.in_encoding!r}")
        if self.in_elems_per_beat * self.in_elem_bits > 8 * self.in_beat_bytes:
            raise HwbnnError(f"{self.in_elems_per_beat} elements of {self.in_elem_bits} bits do "
                             f"not fit a beat of {self.in_beat_bytes} bytes")
        if self.has_scores and self.scores_per_beat * self.score_bits > 8 * self.score_beat_bytes:
            raise HwbnnError(f"{self.scores_per_beat} scores of {self.score_bits} bits do not "
                             f"fit a beat of {self.score_beat_bytes} bytes")

    @property
    def has_scores(self) -> bool:
        return self.score_bits > 0

    @property
    def frame_bytes(self) -> int:
        """Payload bytes of a classify request."""
        return self.in_beats * self.in_beat_bytes

    @property
    def response_bytes(self) -> int:
        """Payload bytes of a classify-with-scores response (label only without scores)."""
        return 1 + self.score_beats * self.score_beat_bytes

    @property
    def frame_elements(self) -> int:
        return self.in_beats * self.in_elems_per_beat

    def to_bytes(self) -> bytes:
        return struct.pack(self._FORMAT, INFO_MAGIC, PROTOCOL_VERSION,
                           ENCODING_CODES[self.in_encoding], self.in_elem_bits,
                           self.in_elems_per_beat, self.in_beat_bytes, self.in_beats,
                           self.classes, self.score_bits, self.scores_per_beat,
                           self.score_beat_bytes, self.score_beats)

    @classmethod
    def from_bytes(cls, data: bytes) -> DesignInfo:
        if len(data) != struct.calcsize(cls._FORMAT):
            raise HwbnnError(f"board info has {len(data)} bytes, expected "
                             f"{struct.calcsize(cls._FORMAT)}: not an hwbnn board?")
        (magic, version, encoding, *fields) = struct.unpack(cls._FORMAT, data)
        if magic != INFO_MAGIC:
            raise HwbnnError(f"board info starts with {magic!r}, not {INFO_MAGIC!r}: "
                             "not an hwbnn board?")
        if version != PROTOCOL_VERSION:
            raise HwbnnError(f"the board speaks protocol version {version}, this host "
                             f"version {PROTOCOL_VERSION}")
        names = {code: name for name, code in ENCODING_CODES.items()}
        if encoding not in names:
            raise HwbnnError(f"board info names unknown input encoding {encoding}")
        return cls(names[encoding], *fields)

    @staticmethod
    def info_bytes() -> int:
        return struct.calcsize(DesignInfo._FORMAT)


def input_codes(image: np.ndarray, encoding: str) -> np.ndarray:
    """Input values -> stored codes: unsigned as is, binary 1 = +1, ternary bit 0 = nonzero
    and bit 1 = sign (docs/design.md section 2)."""
    values = np.asarray(image, dtype=np.int64).reshape(-1)
    if encoding == "binary":
        return (values > 0).astype(np.int64)
    if encoding == "ternary":
        return (values != 0).astype(np.int64) | (values < 0).astype(np.int64) << 1
    return values


def pack_beats(codes, bits: int, per_beat: int, beat_bytes: int) -> bytes:
    """Codes -> beats of ``per_beat`` fields of ``bits`` (LSB first) -> little-endian bytes.

    The last beat is zero-filled when ``len(codes)`` is not a multiple of ``per_beat``.
    """
    out = bytearray()
    codes = [int(code) for code in codes]
    for start in range(0, len(codes), per_beat):
        word = 0
        for n, code in enumerate(codes[start:start + per_beat]):
            word |= (code & ((1 << bits) - 1)) << (n * bits)
        out += word.to_bytes(beat_bytes, "little")
    return bytes(out)


def unpack_signed(data: bytes, bits: int, per_beat: int, beat_bytes: int,
                  count: int) -> list[int]:
    """Little-endian beats of signed ``bits``-bit fields -> the first ``count`` integers."""
    values = []
    for start in range(0, len(data), beat_bytes):
        word = int.from_bytes(data[start:start + beat_bytes], "little")
        for n in range(per_beat):
            field = (word >> (n * bits)) & ((1 << bits) - 1)
            values.append(field - (1 << bits) if field >> (bits - 1) else field)
    return values[:count]


def classify_payload(image: np.ndarray, info: DesignInfo) -> bytes:
    """The payload of a classify request for one input frame."""
    codes = input_codes(image, info.in_encoding)
    if len(codes) != info.frame_elements:
        raise HwbnnError(f"an input frame has {len(codes)} elements, the board expects "
                         f"{info.frame_elements}")
    lo, hi = (-1, 1) if info.in_encoding != "unsigned" else (0, (1 << info.in_elem_bits) - 1)
    values = np.asarray(image).reshape(-1)
    if values.size and (values.min() < lo or values.max() > hi):
        raise HwbnnError(f"input values must lie in {lo}..{hi}, found "
                         f"{int(values.min())}..{int(values.max())}")
    return pack_beats(codes, info.in_elem_bits, info.in_elems_per_beat, info.in_beat_bytes)


def parse_classify_response(payload: bytes, info: DesignInfo,
                            with_scores: bool) -> tuple[int, list[int] | None]:
    """(label, scores or None) from a classify response payload."""
    expected = info.response_bytes if with_scores else 1
    if len(payload) != expected:
        raise HwbnnError(f"classify response has {len(payload)} payload bytes, expected "
                         f"{expected}")
    if not with_scores:
        return payload[0], None
    return payload[0], unpack_signed(payload[1:], info.score_bits, info.scores_per_beat,
                                     info.score_beat_bytes, info.classes)
