"""KxK pooling at stride K on a pixel stream: the shared structure (:class:`KernelPool`) and
max pooling (OR for binary, max otherwise); average pooling's sums are :mod:`.avgpool`."""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, validate_encoding
from . import validated


def element_max(a, b, encoding: str):
    """Larger of two stored codes: OR for binary (1 = +1); ternary via its (nz, sign) code."""
    if encoding == "binary":
        return a | b
    if encoding == "ternary":
        # order of codes -1 (0b11) < 0 (0b00) < +1 (0b01): compare value + 1 = 0, 1, 2
        def rank(x):
            return Mux(x[1], 0, Mux(x[0], 2, 1))
        return Mux(rank(a) >= rank(b), a, b)
    return Mux(a >= b, a, b)


class KernelPool(wiring.Component):
    """KxK windows at stride K of a channels-last frame ``(H, W, C)``, merged elementwise by
    :meth:`merge` (a subclass's max or sum) into ``out_bits``-bit elements.

    One pixel per beat in, one pooled pixel per beat out; rows and columns beyond
    ``(H // K) * K`` are consumed and dropped. The running results of one row of output pixels
    are kept in registers (``W // K`` pixels).

    Ports: ``i`` (In stream of C * in_bits), ``o`` (Out stream of C * out_bits).
    """

    def __init__(self, in_shape, kernel: int, in_bits: int, out_bits: int, what: str):
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise HwbnnError(f"{what} input shape must be (H, W, C), not {in_shape!r}")
        if not isinstance(kernel, int) or not 1 <= kernel <= min(in_shape[:2]):
            raise HwbnnError(f"pool kernel must be in 1..{min(in_shape[:2])}, not {kernel!r}")
        self._shape, self._kernel = tuple(int(v) for v in in_shape), kernel
        self._in_bits, self._out_bits = in_bits, out_bits
        c = self._shape[2]
        super().__init__({
            "i": In(stream.Signature(unsigned(c * in_bits))),
            "o": Out(stream.Signature(unsigned(c * out_bits))),
        })

    def start(self, pixel):
        """The running results (``C * out_bits``) of windows whose first pixel is ``pixel``."""
        raise NotImplementedError

    def merge(self, acc, element):
        """A running result after one more ``element`` of its window."""
        raise NotImplementedError

    @property
    def cycles_per_frame(self) -> int:
        """Input beats per frame: H * W."""
        return self._shape[0] * self._shape[1]

    @property
    def buffer_elements(self) -> int:
        """Input elements held before an output must leave: K rows (the row of running
        results and the output register)."""
        return self._kernel * self._shape[1] * self._shape[2]

    def elaborate(self, platform):
        m = Module()
        h, w, c = self._shape
        k = self._kernel
        bits, out_bits = self._in_bits, self._out_bits
        oh, ow = h // k, w // k
        acc = Array(Signal(c * out_bits, name=f"row{n}") for n in range(ow))
        y, x = Signal(range(h)), Signal(range(w))
        ky, kx = Signal(range(k)), Signal(range(k))
        px = Signal(range(w // k + 1))
        pixel = self.i.payload
        merged = Signal(c * out_bits)
        m.d.comb += merged.eq(self.start(pixel))
        with m.If((ky != 0) | (kx != 0)):
            for n in range(c):
                lane = slice(n * out_bits, (n + 1) * out_bits)
                m.d.comb += merged[lane].eq(self.merge(acc[px][lane],
                                                       pixel[n * bits:(n + 1) * bits]))
        inside = (y < oh * k) & (x < ow * k)
        accept = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     accept.eq(self.i.valid & self.i.ready)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept & inside):
            with m.If((ky == k - 1) & (kx == k - 1)):
                m.d.sync += [self.o.payload.eq(merged), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += acc[px].eq(merged)
        with m.If(accept):
            with m.If(x == w - 1):
                m.d.sync += [x.eq(0), kx.eq(0), px.eq(0)]
                with m.If(y == h - 1):
                    m.d.sync += [y.eq(0), ky.eq(0)]
                with m.Else():
                    m.d.sync += [y.eq(y + 1), ky.eq(Mux(ky == k - 1, 0, ky + 1))]
            with m.Else():
                m.d.sync += [x.eq(x + 1), kx.eq(Mux(kx == k - 1, 0, kx + 1)),
                             px.eq(Mux(kx == k - 1, px + 1, px))]
        return m


class MaxPool(KernelPool):
    """Max pooling, KxK at stride K (OR for binary, max for the other encodings); see
    :class:`KernelPool`."""

    @validated
    def __init__(self, in_shape, kernel: int, encoding: str):
        validate_encoding(encoding, "max-pool encoding")
        self._encoding = encoding
        bits = encoding_bits(encoding)
        super().__init__(in_shape, kernel, bits, bits, "max-pool")

    def start(self, pixel):
        return pixel

    def merge(self, acc, element):
        return element_max(acc, element, self._encoding)
