"""Activation encodings shared by torch, the IR, the CPU engines and the hardware.

An encoding is a short string:

==========  ================  =======================================
encoding    values            stored bits
==========  ================  =======================================
binary      -1, +1            1 bit: 1 = +1, 0 = -1
ternary     -1, 0, +1         2 bits (nonzero, sign): 00=0 10=+1 11=-1
uintN       0 .. 2^N - 1      N bits (N = 2..8)
intN        -2^(N-1) ..       N bits, two's complement (N = 2..8)
            2^(N-1) - 1
==========  ================  =======================================

Those are the *activation* encodings: what a threshold, an add or the network input produces
and a stream carries. Integer sums (average pooling, an add without thresholds) may be wider:
``uintN`` / ``intN`` with N up to :data:`MAX_SUM_BITS` (:func:`validate_encoding` with
``max_bits``). An ``intN`` activation from thresholds is the passed-threshold count minus
2^(N-1), so the count itself is the offset-binary code of the value.
"""

from __future__ import annotations

from ..errors import HwbnnError

UINT_BITS = range(2, 9)
INT_BITS = range(2, 9)
MAX_ACTIVATION_BITS = 8
# Widest integer sum (an average pool's window sum, an add clipped to a declared encoding).
MAX_SUM_BITS = 16
# Every spelling that is accepted, exactly: no "uint05", no full-width digits ("uint５").
ENCODINGS = ("binary", "ternary", *(f"uint{bits}" for bits in UINT_BITS),
             *(f"int{bits}" for bits in INT_BITS))
SUM_ENCODINGS = (*ENCODINGS, *(f"{sign}int{bits}" for sign in ("u", "")
                               for bits in range(MAX_ACTIVATION_BITS + 1, MAX_SUM_BITS + 1)))


def validate_encoding(encoding: str, what: str = "encoding",
                      max_bits: int = MAX_ACTIVATION_BITS) -> str:
    """Return ``encoding`` if it names a known encoding of at most ``max_bits`` bits (8: an
    activation, :data:`MAX_SUM_BITS`: an integer sum), else raise HwbnnError."""
    if isinstance(encoding, str) and encoding in SUM_ENCODINGS and (
            encoding_bits(encoding) <= max_bits):
        return encoding
    raise HwbnnError(
        f"{what} must be 'binary', 'ternary', 'uint2'..'uint{max_bits}' or "
        f"'int2'..'int{max_bits}', not {encoding!r}"
    )


def is_signed_int(encoding: str) -> bool:
    """True for the two's-complement encodings ``intN``."""
    return encoding.startswith("int")


def encoding_bits(encoding: str) -> int:
    """Bits that one element of this encoding occupies in memory and on a stream."""
    if encoding == "binary":
        return 1
    if encoding == "ternary":
        return 2
    return int(encoding[3:] if is_signed_int(encoding) else encoding[4:])


def encoding_range(encoding: str) -> tuple[int, int]:
    """Smallest and largest value of the encoding."""
    if encoding == "binary":
        return -1, 1
    if encoding == "ternary":
        return -1, 1
    bits = encoding_bits(encoding)
    if is_signed_int(encoding):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def encoding_levels(encoding: str) -> int:
    """Number of thresholds that produce this encoding from an accumulator."""
    if encoding == "binary":
        return 1
    if encoding == "ternary":
        return 2
    return 2 ** encoding_bits(encoding) - 1


def encoding_offset(encoding: str) -> int:
    """What to add to a value to get its unsigned (offset-binary) code: 2^(N-1) for intN,
    0 otherwise. The code of an intN value is also its passed-threshold count."""
    return 2 ** (encoding_bits(encoding) - 1) if is_signed_int(encoding) else 0


def integer_encoding(lo: int, hi: int) -> str:
    """Smallest ``uintN`` (lo >= 0) or ``intN`` holding every value in [lo, hi] (N >= 2)."""
    if lo >= 0:
        return f"uint{max(2, int(hi).bit_length())}"
    return f"int{max(2, signed_width(lo, hi))}"


def pad_value(encoding: str) -> int:
    """Value used for spatial padding: -1 for binary (stored 0), 0 otherwise (intN too)."""
    return -1 if encoding == "binary" else 0


def values_from_threshold_count(encoding: str, count):
    """Map the number of passed thresholds to activation values (works on numpy and torch)."""
    if encoding == "binary":
        return 2 * count - 1
    if encoding == "ternary":
        return count - 1
    return count - encoding_offset(encoding)


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
