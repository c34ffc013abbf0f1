"""The simulated board top as a byte transport for :class:`hwbnn.boards.Client`.

The same client that talks to a board over a serial port talks here to an Amaranth
simulation of :class:`~hwbnn.boards.top.BoardTop` through its UART pins: bytes written are
serialized onto ``rx`` bit by bit, and ``tx`` is decoded back into bytes, each at the
board's divisor (clock cycles per bit). The simulation advances only while the client
waits for bytes.
"""

from __future__ import annotations

from collections import deque

from amaranth import Signal
from amaranth.sim import Simulator

from ..errors import HwbnnError
from .top import BoardTop

CLOCK_PERIOD = 1e-6  # simulated seconds per clock cycle; only cycle counts matter


class SimulationTransport:
    """Byte transport into an Amaranth simulation of ``top``.

    Parameters
    ----------
    top : BoardTop
    timeout_cycles : int
        A read returns what has arrived when this many cycles pass without a new byte.
    """

    def __init__(self, top: BoardTop, timeout_cycles: int = 200_000):
        if not isinstance(top, BoardTop):
            raise HwbnnError(f"top must be a BoardTop, not {type(top).__name__}")
        self._top = top
        self._divisor = top.divisor
        self._timeout = timeout_cycles
        self._to_board: deque[int] = deque()
        self._from_board: deque[int] = deque()
        self._cycles = 0
        self._closing = False
        self._stop = Signal()  # raised on close: lets the tx watcher leave its wait
        self._sim = Simulator(top)
        self._sim.add_clock(CLOCK_PERIOD)
        self._sim.add_testbench(self._drive_rx, background=True)
        self._sim.add_testbench(self._watch_tx, background=True)
        self.outputs = dict.fromkeys(("label", "passed", "failed", "busy"), 0)
        self._sim.add_testbench(self._watch_outputs, background=True)

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return self._cycles

    def write(self, data: bytes) -> None:
        self._to_board.extend(bytes(data))

    def read(self, count: int) -> bytes:
        idle = 0
        step = 10 * self._divisor  # one character time
        while len(self._from_board) < count and idle < self._timeout:
            before = len(self._from_board)
            self._cycles += step
            self._sim.run_until(self._cycles * CLOCK_PERIOD)
            idle = 0 if len(self._from_board) != before else idle + step
        return bytes(self._from_board.popleft()
                     for _ in range(min(count, len(self._from_board))))

    def close(self) -> None:
        """End the simulation's testbenches (they stop within a character time)."""
        self._to_board.clear()
        self._closing = True
        self.run(20 * self._divisor)

    def run(self, cycles: int) -> None:
        """Let the board run ``cycles`` clock cycles (for example, through its self-test)."""
        self._cycles += cycles
        self._sim.run_until(self._cycles * CLOCK_PERIOD)

    async def _watch_outputs(self, ctx):
        """Keep :attr:`outputs` (label, passed, failed, busy) a character time fresh."""
        while not self._closing:
            for name in self.outputs:
                self.outputs[name] = ctx.get(getattr(self._top, name))
            await ctx.tick().repeat(10 * self._divisor)

    async def _drive_rx(self, ctx):
        rx = self._top.rx
        ctx.set(rx, 1)
        while not self._closing:
            if not self._to_board:
                await ctx.tick().repeat(self._divisor)
                continue
            byte = self._to_board.popleft()
            for bit in [0, *((byte >> n) & 1 for n in range(8)), 1]:
                ctx.set(rx, bit)
                await ctx.tick().repeat(self._divisor)
        ctx.set(self._stop, 1)

    async def _watch_tx(self, ctx):
        tx = self._top.tx
        half = self._divisor // 2
        while True:
            *_, stopped = await ctx.tick().sample(self._stop).until((tx == 0) | self._stop)
            if stopped:
                return
            await ctx.tick().repeat(half)
            byte = 0
            for n in range(8):
                await ctx.tick().repeat(self._divisor)
                byte |= ctx.get(tx) << n
            await ctx.tick().repeat(self._divisor)
            if ctx.get(tx) != 1:
                raise AssertionError(f"board sent a byte without its stop bit after cycle "
                                     f"{self._cycles}")
            self._from_board.append(byte)
