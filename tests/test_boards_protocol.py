import numpy as np
import pytest

from hwbnn.boards import protocol
from hwbnn.errors import HwbnnError

DIGITS_INFO = protocol.DesignInfo("unsigned", 5, 8, 5, 8, 10, 12, 2, 3, 5)


def ref_crc8(data: bytes) -> int:
    """CRC-8/SMBUS as polynomial division over GF(2): the message times x^8 mod 0x107."""
    value = int.from_bytes(data, "big") << 8
    for shift in range(8 * len(data) - 1, -1, -1):
        if value >> (shift + 8) & 1:
            value ^= 0x107 << shift
    return value


def test_crc8_check_value():
    # The catalogue's check value of CRC-8/SMBUS: the CRC of the ASCII string "123456789".
    assert protocol.crc8(b"123456789") == 0xF4


def test_crc8_matches_polynomial_division():
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 7, 64):
        data = bytes(rng.integers(0, 256, size=size, dtype=np.uint8))
        assert protocol.crc8(data) == ref_crc8(data)


def test_request_layout():
    frame = protocol.encode_request(protocol.CMD_CLASSIFY, b"\x01\x02\x03")
    assert frame[:4] == bytes([0xA5, 0x01, 0x03, 0x00])
    assert frame[4:7] == b"\x01\x02\x03"
    assert frame[7] == protocol.crc8(frame[1:7])
    assert len(frame) == protocol.frame_length(3)


def test_decoder_roundtrip_in_pieces_with_noise():
    frames = [protocol.encode_response(protocol.STATUS_OK, bytes(range(n))) for n in (0, 1, 20)]
    stream = b"\x00\x13" + frames[0] + frames[1] + b"\xff" + frames[2]
    decoder = protocol.FrameDecoder(protocol.RESPONSE_SYNC)
    got = []
    for start in range(0, len(stream), 3):
        got += decoder.feed(stream[start:start + 3])
    assert [(f.kind, f.payload, f.crc_ok) for f in got] == [
        (0, b"", True), (0, b"\x00", True), (0, bytes(range(20)), True)]
    assert decoder.skipped == 3
    assert decoder.missing == 5


def test_decoder_flags_bad_crc_and_counts_missing_bytes():
    frame = bytearray(protocol.encode_response(protocol.STATUS_OK, b"abc"))
    decoder = protocol.FrameDecoder(protocol.RESPONSE_SYNC)
    assert decoder.feed(bytes(frame[:5])) == []
    assert decoder.missing == 3
    frame[-1] ^= 1
    (got,) = decoder.feed(bytes(frame[5:]))
    assert got.payload == b"abc" and not got.crc_ok


def test_info_roundtrip_and_sizes():
    data = DIGITS_INFO.to_bytes()
    assert len(data) == protocol.DesignInfo.info_bytes()
    assert protocol.DesignInfo.from_bytes(data) == DIGITS_INFO
    assert DIGITS_INFO.frame_bytes == 40
    assert DIGITS_INFO.response_bytes == 1 + 15


def test_classify_payload_packs_elements_lsb_first():
    image = np.arange(64).reshape(8, 8, 1) % 32
    payload = protocol.classify_payload(image, DIGITS_INFO)
    assert len(payload) == 40
    first = int.from_bytes(payload[:5], "little")
    assert [(first >> (5 * n)) & 31 for n in range(8)] == list(range(8))


def test_input_codes_of_each_encoding():
    assert protocol.input_codes([-1, 1, 1], "binary").tolist() == [0, 1, 1]
    assert protocol.input_codes([0, 1, -1], "ternary").tolist() == [0, 1, 3]
    assert protocol.input_codes([0, 7], "unsigned").tolist() == [0, 7]


def test_scores_roundtrip():
    scores = [-2048, 2047, 0, -1, 5, 17, -300, 1000, 3, -7]
    beats = protocol.pack_beats(scores, 12, 2, 3)
    payload = bytes([7]) + beats
    label, values = protocol.parse_classify_response(payload, DIGITS_INFO, True)
    assert label == 7 and values == scores


@pytest.mark.parametrize("call, message", [
    (lambda: protocol.classify_payload(np.zeros(63), DIGITS_INFO), "has 63 elements"),
    (lambda: protocol.classify_payload(np.full(64, 32), DIGITS_INFO), r"must lie in 0\.\.31"),
    (lambda: protocol.DesignInfo.from_bytes(b"XXXX" + bytes(13)), "not an hwbnn board"),
    (lambda: protocol.DesignInfo.from_bytes(b"HWBN"), "has 4 bytes"),
    (lambda: protocol.DesignInfo("float", 5, 8, 5, 8, 10), "input encoding must be one of"),
    (lambda: protocol.DesignInfo("unsigned", 5, 8, 4, 8, 10), "do not fit a beat of 4 bytes"),
    (lambda: protocol.parse_classify_response(b"\x01\x02", DIGITS_INFO, False),
     "expected 1"),
    (lambda: protocol.encode_request(1, bytes(70000)), "at most 65535")])
def test_errors(call, message):
    with pytest.raises(HwbnnError, match=message):
        call()
