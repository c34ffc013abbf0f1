"""Global average pooling as per-channel sums over a whole frame (the IR's
``globalavgpool``: the division by H*W is folded into the next layer)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_range, integer_encoding, is_signed_int
from . import validated
from .threshold import integer_input, lane_value


class GlobalAvgPool(wiring.Component):
    """Per-channel sums of the H*W pixels of a channels-last frame: one pixel (C elements) per
    beat in, one beat of the C sums per frame out.

    The running sums are registers; the frame's last pixel adds into the output register, so
    the next frame accumulates while its result waits for the consumer (only a last pixel
    waits for the output register).

    Ports: ``i`` (In stream of C * in bits), ``o`` (Out stream of C * out bits).
    """

    @validated
    def __init__(self, in_shape, encoding: str):
        integer_input(encoding, "global-pool encoding")
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise HwbnnError(f"global-pool input shape must be (H, W, C), not {in_shape!r}")
        self._shape = tuple(int(v) for v in in_shape)
        self._encoding = encoding
        lo, hi = encoding_range(encoding)
        pixels = self._shape[0] * self._shape[1]
        self._out_encoding = integer_encoding(pixels * lo, pixels * hi)
        c = self._shape[2]
        super().__init__({
            "i": In(stream.Signature(unsigned(c * encoding_bits(encoding)))),
            "o": Out(stream.Signature(unsigned(c * encoding_bits(self._out_encoding)))),
        })

    @property
    def out_encoding(self) -> str:
        return self._out_encoding

    @property
    def cycles_per_frame(self) -> int:
        """Input beats per frame: H * W."""
        return self._shape[0] * self._shape[1]

    @property
    def buffer_elements(self) -> int:
        """A whole frame enters before its result leaves."""
        return self._shape[0] * self._shape[1] * self._shape[2]

    def elaborate(self, platform):
        m = Module()
        h, w, c = self._shape
        bits = encoding_bits(self._out_encoding)
        pixels = h * w
        count = Signal(range(max(pixels, 2)))
        last, accept = Signal(), Signal()
        m.d.comb += [
            last.eq(count == pixels - 1),
            self.i.ready.eq(~last | ~self.o.valid | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        sums = [Signal(bits, name=f"sum{n}") for n in range(c)]
        with m.If(accept):
            m.d.sync += count.eq(Mux(last, 0, count + 1))
            with m.If(last):
                m.d.sync += self.o.valid.eq(1)
            for n, total in enumerate(sums):
                value = lane_value(self.i.payload, n, self._encoding)
                running = total.as_signed() if is_signed_int(self._out_encoding) else total
                new = Signal(bits, name=f"new{n}")
                m.d.comb += new.eq(running + value if pixels > 1 else value)
                with m.If(last):
                    m.d.sync += [self.o.payload[n * bits:(n + 1) * bits].eq(new), total.eq(0)]
                with m.Else():
                    m.d.sync += total.eq(new)
        return m
