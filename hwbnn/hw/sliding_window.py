"""Sliding-window (im2col) generator feeding the MVTU of a conv layer."""

from __future__ import annotations

from amaranth import Array, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated


class SlidingWindow(wiring.Component):
    """KxK windows at ``stride`` of a channels-last frame, with ``padding`` pixels of pad code 0.

    Stored code 0 is the pad value of every encoding: -1 for binary, 0 for ternary, uintN
    and intN (docs/design.md section 2). The input is one pixel (C elements) per beat in
    row-major order; the output is, for every output pixel in row-major order, its K*K
    window pixels in (kernel row, kernel column) order, one pixel per beat: the column order
    of the conv's weight matrix. Output pixel ``(y, x)`` reads the window at
    ``(y * stride, x * stride)`` of the padded frame (windows past its edge are not
    computed). A frame is written into one bank of a two-bank frame memory while the other
    bank is read, so consecutive frames overlap.

    Ports: ``i`` (In stream of C * elem_bits), ``o`` (Out stream of C * elem_bits).
    """

    @validated
    def __init__(self, in_shape, kernel: int, padding: int, elem_bits: int, stride: int = 1):
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise HwbnnError(f"sliding window input shape must be (H, W, C), not {in_shape!r}")
        if not isinstance(kernel, int) or kernel < 1:
            raise HwbnnError(f"kernel must be a positive integer, not {kernel!r}")
        if not isinstance(padding, int) or not 0 <= padding < kernel:
            raise HwbnnError(f"padding must be in 0..{kernel - 1}, not {padding!r}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise HwbnnError(f"stride must be a positive integer, not {stride!r}")
        h, w, c = (int(v) for v in in_shape)
        if min(h, w) + 2 * padding < kernel:
            raise HwbnnError(f"kernel {kernel} does not fit the {h}x{w} input")
        self._shape, self._kernel, self._padding, self._bits = (h, w, c), kernel, padding, \
            elem_bits
        self._stride = stride
        super().__init__({
            "i": In(stream.Signature(unsigned(c * elem_bits))),
            "o": Out(stream.Signature(unsigned(c * elem_bits))),
        })

    @property
    def out_pixels(self) -> tuple[int, int]:
        h, w, _ = self._shape
        span = 2 * self._padding - self._kernel
        return (h + span) // self._stride + 1, (w + span) // self._stride + 1

    @property
    def cycles_per_frame(self) -> int:
        """Output beats per frame: OH * OW * K * K."""
        oh, ow = self.out_pixels
        return oh * ow * self._kernel ** 2

    @property
    def buffer_elements(self) -> int:
        """Input elements held: two frames (the bank being read and the one being written)."""
        h, w, c = self._shape
        return 2 * h * w * c

    def elaborate(self, platform):
        m = Module()
        h, w, c = self._shape
        k, pad, stride = self._kernel, self._padding, self._stride
        oh, ow = self.out_pixels
        pixels = h * w
        m.submodules.frames = mem = Memory(shape=unsigned(c * self._bits), depth=2 * pixels,
                                           init=[])
        wr, rd = mem.write_port(), mem.read_port()
        full = Array(Signal(name=f"full{n}") for n in range(2))

        # Writer: fill bank `wbank` pixel by pixel, then hand it to the reader.
        wbank = Signal()
        waddr = Signal(range(pixels))
        m.d.comb += [
            self.i.ready.eq(~full[wbank]),
            wr.addr.eq(wbank * pixels + waddr),
            wr.data.eq(self.i.payload),
            wr.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(wr.en):
            with m.If(waddr == pixels - 1):
                m.d.sync += [waddr.eq(0), wbank.eq(~wbank), full[wbank].eq(1)]
            with m.Else():
                m.d.sync += waddr.eq(waddr + 1)

        # Reader, stage A: window position -> address (sync read); stage B: the output.
        en, fire, inside = Signal(), Signal(), Signal()
        rbank = Signal()
        oy, ox = Signal(range(oh)), Signal(range(ow))
        ky, kx = Signal(range(k)), Signal(range(k))
        iy = Signal(range(-pad, oh * stride + k))
        ix = Signal(range(-pad, ow * stride + k))
        out_valid, out_pad = Signal(), Signal()
        m.d.comb += [
            en.eq(~out_valid | self.o.ready),
            fire.eq(en & full[rbank]),
            iy.eq((oy if stride == 1 else oy * stride) + ky - pad),
            ix.eq((ox if stride == 1 else ox * stride) + kx - pad),
            inside.eq((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)),
            rd.addr.eq(rbank * pixels + iy * w + ix),
            rd.en.eq(en),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(rd.data & ~out_pad.replicate(len(rd.data))),
        ]
        with m.If(en):
            m.d.sync += [out_valid.eq(fire), out_pad.eq(~inside)]
        with m.If(fire):
            self._advance(m, [(kx, k), (ky, k), (ox, ow), (oy, oh)], full, rbank)
        return m

    @staticmethod
    def _advance(m, counters, full, rbank):
        """Increment nested counters (innermost first); release the bank after the last."""
        counter, extent = counters[0]
        with m.If(counter != extent - 1):
            m.d.sync += counter.eq(counter + 1)
        with m.Else():
            m.d.sync += counter.eq(0)
            if len(counters) > 1:
                SlidingWindow._advance(m, counters[1:], full, rbank)
            else:
                m.d.sync += [full[rbank].eq(0), rbank.eq(~rbank)]
