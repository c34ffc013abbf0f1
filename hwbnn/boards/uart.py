"""UART transmitter and receiver (8 data bits, no parity, 1 stop bit) with stream ports.

The bit time is ``divisor`` clock cycles (``clock frequency / baud rate``, see
:func:`uart_divisor`). Both directions send the least significant bit first, framed by a
start bit (0) and a stop bit (1); the line idles high.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError

# The receiver samples each bit once, in its middle: with both ends off by up to 2% the
# sample point of the stop bit (9.5 bit times in) drifts by 0.38 bit times, inside the bit.
MAX_BAUD_ERROR = 0.02
MIN_DIVISOR = 4


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``; HwbnnError if the rate is off by
    more than 2% or the bit is shorter than 4 cycles."""
    if not isinstance(baud, int) or isinstance(baud, bool) or baud < 1:
        raise HwbnnError(f"baud rate must be a positive integer, not {baud!r}")
    if clock_hz <= 0:
        raise HwbnnError(f"clock frequency must be positive, not {clock_hz!r} Hz")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise HwbnnError(f"baud rate {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"(at least {MIN_DIVISOR} cycles per bit)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise HwbnnError(f"baud rate {baud} is {100 * error:.1f}% off at {clock_hz / 1e6:g} MHz "
                         f"(divisor {divisor}); choose a rate within 2%")
    return divisor


def _check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise HwbnnError(f"UART divisor must be an integer of at least {MIN_DIVISOR}, "
                         f"not {divisor!r}")
    return divisor


class UARTTransmitter(wiring.Component):
    """Sends each byte of stream ``i`` on ``tx``; accepts the next byte once the stop bit is out.

    Ports: ``i`` (In stream of 8 bits), ``tx`` (Out, idles high).
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        # Start bit, 8 data bits, stop bit; shifted out LSB first.
        shreg = Signal(10, init=0x3FF)
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        # Ready in the last cycle of the stop bit too, so characters can follow back to back.
        m.d.comb += [
            self.tx.eq(shreg[0]),
            self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0))),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                shreg.eq(self.i.payload << 1 | (1 << 9)),
                bits_left.eq(10),
                timer.eq(self._divisor - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [
                    shreg.eq(shreg >> 1 | (1 << 9)),
                    bits_left.eq(bits_left - 1),
                    timer.eq(self._divisor - 1),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTReceiver(wiring.Component):
    """Receives bytes on ``rx`` into stream ``o``.

    A byte whose stop bit reads 0 is dropped and pulses ``framing_error``; the receiver then
    waits for the line to return high (a break holds it low). A byte that completes while
    the previous one still waits on ``o`` replaces it and pulses ``overrun``.

    Ports: ``rx`` (In, synchronized here), ``o`` (Out stream of 8 bits),
    ``framing_error`` and ``overrun`` (Out, one-cycle pulses).
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        # rx comes from another clock domain (the host's): two flip-flops against metastability.
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(divisor))
        shreg = Signal(8)
        bit = Signal(range(8))
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                # Half a bit in: still low means a start bit, not a glitch.
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~rx):
                    m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                    m.next = "data"
                with m.Else():
                    m.next = "idle"
            with m.State("data"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(rx << 7 | shreg >> 1), timer.eq(divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1),
                                 self.overrun.eq(self.o.valid & ~self.o.ready)]
                    m.next = "idle"
                with m.Else():
                    m.d.sync += self.framing_error.eq(1)
                    m.next = "break"
            with m.State("break"):
                with m.If(rx):
                    m.next = "idle"
        return m
