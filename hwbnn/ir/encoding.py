"""Activation encodings shared by torch, the IR, the CPU engines and the hardware.

An encoding is a short string:

==========  ================  =======================================
encoding    values            stored bits
==========  ================  =======================================
binary      -1, +1            1 bit: 1 = +1, 0 = -1
ternary     -1, 0, +1         2 bits (nonzero, sign): 00=0 10=+1 11=-1
uintN       0 .. 2^N - 1      N bits (N = 2..8)
==========  ================  =======================================
"""

from __future__ import annotations

from ..errors import HwbnnError

UINT_BITS = range(2, 9)
# Every spelling that is accepted, exactly: no "uint05", no full-width digits ("uint５").
ENCODINGS = ("binary", "ternary", *(f"uint{bits}" for bits in UINT_BITS))


def validate_encoding(encoding: str, what: str = "encoding") -> str:
    """Return ``encoding`` if it names a known activation encoding, else raise HwbnnError."""
    if isinstance(encoding, str) and encoding in ENCODINGS:
        return encoding
    raise HwbnnError(
        f"{what} must be 'binary', 'ternary' or 'uint2'..'uint8', not {encoding!r}"
    )


def encoding_bits(encoding: str) -> int:
    """Bits that one element of this encoding occupies in memory and on a stream."""
    if encoding == "binary":
        return 1
    if encoding == "ternary":
        return 2
    return int(encoding[4:])


def encoding_range(encoding: str) -> tuple[int, int]:
    """Smallest and largest value of the encoding."""
    if encoding == "binary":
        return -1, 1
    if encoding == "ternary":
        return -1, 1
    return 0, 2 ** int(encoding[4:]) - 1


def encoding_levels(encoding: str) -> int:
    """Number of thresholds that produce this encoding from an accumulator."""
    if encoding == "binary":
        return 1
    if encoding == "ternary":
        return 2
    return 2 ** int(encoding[4:]) - 1


def pad_value(encoding: str) -> int:
    """Value used for spatial padding: -1 for binary (stored 0), 0 otherwise."""
    return -1 if encoding == "binary" else 0


def values_from_threshold_count(encoding: str, count):
    """Map the number of passed thresholds to activation values (works on numpy and torch)."""
    if encoding == "binary":
        return 2 * count - 1
    if encoding == "ternary":
        return count - 1
    return count


def uint_encoding_for(max_value: int) -> str:
    """Smallest unsigned encoding that holds 0..max_value (at least 2 bits)."""
    bits = max(2, int(max_value).bit_length())
    if bits > 8:
        raise HwbnnError(f"input values up to {max_value} need more than 8 bits")
    return f"uint{bits}"


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's-complement integer that holds every value in [lo, hi]."""
    width = 1
    while not (-(2 ** (width - 1)) <= lo and hi <= 2 ** (width - 1) - 1):
        width += 1
    return width
