"""Stream packing of activations and scores (docs/design.md section 4).

Element ``i`` of a beat sits in bits ``[i*b, (i+1)*b)``. Stored codes: binary 1 = +1,
0 = -1; ternary bit 0 = nonzero, bit 1 = sign (0 -> 0b00, +1 -> 0b01, -1 -> 0b11);
unsigned as is; intN and scores as ``b``-bit two's complement.
"""

from __future__ import annotations

import numpy as np

from ..ir.encoding import encoding_bits, is_signed_int


def to_codes(values: np.ndarray, encoding: str) -> np.ndarray:
    """Activation values -> stored codes (int64)."""
    values = np.asarray(values, dtype=np.int64)
    if encoding == "binary":
        return (values > 0).astype(np.int64)
    if encoding == "ternary":
        return (values != 0).astype(np.int64) | ((values < 0).astype(np.int64) << 1)
    return values


def from_codes(codes: np.ndarray, encoding: str) -> np.ndarray:
    """Stored codes -> activation values (int64)."""
    codes = np.asarray(codes, dtype=np.int64)
    if encoding == "binary":
        return 2 * codes - 1
    if encoding == "ternary":
        return (codes & 1) * (1 - 2 * ((codes >> 1) & 1))
    if is_signed_int(encoding):
        return from_signed(codes, encoding_bits(encoding))
    return codes


def from_signed(codes: np.ndarray, bits: int) -> np.ndarray:
    """``bits``-bit two's-complement fields -> signed integers."""
    codes = np.asarray(codes, dtype=np.int64) & ((1 << bits) - 1)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes)


def pack(codes: np.ndarray, bits: int, per_beat: int) -> list[int]:
    """A flat sequence of codes -> beats of ``per_beat`` elements (length must divide)."""
    codes = [int(c) & ((1 << bits) - 1) for c in np.asarray(codes).reshape(-1)]
    beats = []
    for start in range(0, len(codes), per_beat):
        word = 0
        for n, code in enumerate(codes[start:start + per_beat]):
            word |= code << (n * bits)
        beats.append(word)
    return beats


def unpack(beats, bits: int, per_beat: int) -> np.ndarray:
    """Beats -> the flat sequence of codes they hold."""
    mask = (1 << bits) - 1
    return np.array([(int(word) >> (n * bits)) & mask for word in beats
                     for n in range(per_beat)], dtype=np.int64)


def pack_values(values: np.ndarray, encoding: str, per_beat: int) -> list[int]:
    """Activation values (any shape, flattened in C order) -> beats."""
    return pack(to_codes(values, encoding), encoding_bits(encoding), per_beat)
