"""The integer-only network description (NetworkIR), its encodings and its model file.

Torch-free: export from torch lives in :mod:`hwbnn.ir.export` and is imported explicitly.
"""

from .encoding import encoding_bits, encoding_levels, encoding_range, pad_value
from .fileformat import FORMAT_VERSION, FORMAT_VERSIONS, from_bytes, load, save, sha256, to_bytes
from .network import (
    INPUT,
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
    Weights,
    accumulator_range,
)

__all__ = [
    "FORMAT_VERSION", "FORMAT_VERSIONS", "INPUT", "Add", "AvgPool", "Conv", "GlobalAvgPool",
    "MatVec", "MaxPool", "NetworkIR", "Threshold", "Weights",
    "accumulator_range", "encoding_bits", "encoding_levels", "encoding_range", "from_bytes",
    "load", "pad_value", "save", "sha256", "to_bytes",
]
