"""How a float model input becomes the network's integer input (docs/design.md, "Brevitas in").

A network imported from a graph that quantizes its own float input (Brevitas' bnn_pynq models
compute ``2x - 1`` and then a sign or an n-bit quantizer) takes that quantizer's integer
levels as its input. :class:`InputQuantizer` records the quantizer in the network's metadata
(``input_quantizer``), so that datasets and tests feed the network exactly the numbers the
graph would have seen::

    y = gain * x + bias                      (float64)
    count = [y >= 0]                         rounding "SIGN" (binary)
    count = round(clip(y, lo, hi)) - lo      otherwise (QONNX ``Quant`` rounding modes)

and the network's input is ``values_from_threshold_count(encoding, count)``: -1/+1 for binary,
-1..1 for ternary, the count itself for unsigned encodings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import HwbnnError
from .encoding import encoding_levels, encoding_range, values_from_threshold_count

SIGN = "SIGN"
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


def quant_round(values: np.ndarray, mode: str) -> np.ndarray:
    """QONNX ``Quant`` rounding (``ROUND`` is half to even, as torch.round); HwbnnError for an
    unknown mode."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(values)
    if mode == "FLOOR":
        return np.floor(values)
    if mode == "CEIL":
        return np.ceil(values)
    if mode == "UP":
        return np.sign(values) * np.ceil(np.abs(values))
    if mode == "DOWN":
        return np.trunc(values)
    if mode == "HALF_UP":
        return np.sign(values) * np.floor(np.abs(values) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(values) * np.ceil(np.abs(values) - 0.5)
    raise HwbnnError(f"rounding_mode {mode!r} is not supported")


@dataclass(frozen=True)
class InputQuantizer:
    """The float input's quantizer: see the module docstring."""

    gain: float
    bias: float
    lo: int
    hi: int
    rounding: str

    def counts(self, x) -> np.ndarray:
        """Levels passed (0 .. hi - lo) for float inputs ``x``."""
        y = self.gain * np.asarray(x, dtype=np.float64) + self.bias
        if self.rounding == SIGN:
            return (y >= 0).astype(np.int64)
        return (quant_round(np.clip(y, self.lo, self.hi), self.rounding) - self.lo).astype(
            np.int64)

    def values(self, x, encoding: str) -> np.ndarray:
        """The network's integer input for float inputs ``x``."""
        return values_from_threshold_count(encoding, self.counts(x))

    def is_identity(self, encoding: str) -> bool:
        """Is the float input the integer frame itself (hwbnn's own QONNX export quantizes
        its integer input that way)? Then there is nothing to record."""
        lo, hi = encoding_range(encoding)
        values = np.array([-1, 1]) if encoding == "binary" else np.arange(lo, hi + 1)
        return (self.gain, self.bias) == (1.0, 0.0) and bool(
            np.array_equal(self.values(values, encoding), values))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data, encoding: str) -> InputQuantizer:
        """Read and check a recorded quantizer against the network's input ``encoding``."""
        what = "metadata 'input_quantizer'"
        if not isinstance(data, dict) or set(data) != {"gain", "bias", "lo", "hi", "rounding"}:
            raise HwbnnError(f"{what} must be an object with gain, bias, lo, hi, rounding")
        gain, bias, lo, hi = (data[key] for key in ("gain", "bias", "lo", "hi"))
        if not all(type(v) in (int, float) and math.isfinite(v) for v in (gain, bias)):
            raise HwbnnError(f"{what}: gain and bias must be finite numbers")
        if type(lo) is not int or type(hi) is not int or lo >= hi:
            raise HwbnnError(f"{what}: lo and hi must be integers with lo < hi")
        rounding = data["rounding"]
        if rounding not in (SIGN, *ROUNDING_MODES):
            raise HwbnnError(f"{what}: rounding must be SIGN or a QONNX rounding mode, "
                             f"not {rounding!r}")
        levels = 1 if rounding == SIGN else hi - lo
        if (rounding == SIGN) != (encoding == "binary") or levels > encoding_levels(encoding):
            raise HwbnnError(f"{what}: {levels} levels ({rounding}) do not give "
                             f"{encoding} inputs")
        return cls(float(gain), float(bias), lo, hi, rounding)
