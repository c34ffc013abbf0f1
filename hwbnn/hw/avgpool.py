"""Average pooling as integer window sums (the IR's ``avgpool``: the division by K*K is the
next layer's, folded into its thresholds), on the max pool's structure."""

from __future__ import annotations

from amaranth import Cat, Const, signed

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_range, integer_encoding, is_signed_int
from . import validated
from .maxpool import KernelPool
from .threshold import integer_input


class AvgPool(KernelPool):
    """KxK window sums at stride K of an integer (uintN/intN) frame; the output encoding is
    the IR's: the smallest holding K*K times the input range. See :class:`KernelPool`."""

    @validated
    def __init__(self, in_shape, kernel: int, stride: int, encoding: str):
        integer_input(encoding, "average-pool encoding")
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1:
            raise HwbnnError(f"pool kernel must be a positive integer, not {kernel!r}")
        if stride != kernel:
            # The row-of-running-results structure needs windows that tile the frame.
            raise HwbnnError(f"the average-pool unit needs stride = kernel, not kernel "
                             f"{kernel!r} and stride {stride!r}")
        lo, hi = encoding_range(encoding)
        self._encoding = encoding
        self._out_encoding = integer_encoding(kernel * kernel * lo, kernel * kernel * hi)
        super().__init__(in_shape, kernel, encoding_bits(encoding),
                         encoding_bits(self._out_encoding), "average-pool")

    @property
    def out_encoding(self) -> str:
        return self._out_encoding

    def _value(self, element):
        return element.as_signed() if is_signed_int(self._encoding) else element.as_unsigned()

    def start(self, pixel):
        bits, out_bits = encoding_bits(self._encoding), encoding_bits(self._out_encoding)
        lanes = len(pixel) // bits
        # + a zero of the output width: sign- (or zero-) extends each element to it
        zero = Const(0, signed(out_bits))
        return Cat((self._value(pixel[n * bits:(n + 1) * bits]) + zero)[:out_bits]
                   for n in range(lanes))

    def merge(self, acc, element):
        total = (acc.as_signed() if is_signed_int(self._out_encoding) else acc)
        return total + self._value(element)
