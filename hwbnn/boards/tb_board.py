"""cocotb bench of the whole board top: the host :class:`~hwbnn.boards.Client` talks to the
simulated design through its UART pins (the Glasgow way: one driver, simulation and board).

Loaded by the simulator (``COCOTB_TEST_MODULES=hwbnn.boards.tb_board``). The client is
ordinary blocking code, so it runs in a cocotb *bridge* thread; each transport read
*resumes* the simulation until the bytes have come out of ``tx``. The design is
:class:`~hwbnn.boards.top.BoardTop` written as Verilog (ports ``clk``, ``rst``, ``rx``,
``tx``, ``label``, ``passed``, ``failed``, ``busy``).

Config (JSON, path in ``HWBNN_BENCH_CONFIG``): ``images`` (input frames), ``divisor``
(clock cycles per UART bit), ``result`` (path of the JSON result: ``info``, ``labels``,
``led_label``, ``cycles``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge

from hwbnn.boards import Client
from hwbnn.verify.bench import read_config

CLOCK_NS = 10


class CocotbUartTransport:
    """Byte transport over the UART pins of a cocotb design (``rx`` in, ``tx`` out).

    ``write`` queues bytes that a coroutine serializes onto ``rx``; ``read`` runs the
    simulation until ``count`` bytes have been decoded from ``tx``, or until
    ``timeout_cycles`` pass without a new one.
    """

    def __init__(self, dut, divisor: int, timeout_cycles: int = 200_000):
        self._dut = dut
        self._divisor = divisor
        self._timeout = timeout_cycles
        self._to_board: deque[int] = deque()
        self._from_board: deque[int] = deque()
        self.cycles = 0

    def start(self) -> None:
        cocotb.start_soon(self._drive_rx())
        cocotb.start_soon(self._watch_tx())

    def write(self, data: bytes) -> None:
        self._to_board.extend(bytes(data))

    def read(self, count: int) -> bytes:
        resume(self._wait_for)(count)
        return bytes(self._from_board.popleft()
                     for _ in range(min(count, len(self._from_board))))

    def close(self) -> None:
        self._to_board.clear()

    async def _wait_for(self, count: int) -> None:
        step = 10 * self._divisor  # one character time
        idle = 0
        while len(self._from_board) < count and idle < self._timeout:
            before = len(self._from_board)
            await ClockCycles(self._dut.clk, step)
            self.cycles += step
            idle = 0 if len(self._from_board) != before else idle + step

    async def _drive_rx(self) -> None:
        rx, clk = self._dut.rx, self._dut.clk
        rx.value = 1
        while True:
            if not self._to_board:
                await ClockCycles(clk, self._divisor)
                continue
            byte = self._to_board.popleft()
            for bit in [0, *((byte >> n) & 1 for n in range(8)), 1]:
                rx.value = bit
                await ClockCycles(clk, self._divisor)

    async def _watch_tx(self) -> None:
        tx, clk = self._dut.tx, self._dut.clk
        while True:
            await FallingEdge(tx)
            await ClockCycles(clk, self._divisor // 2)
            byte = 0
            for n in range(8):
                await ClockCycles(clk, self._divisor)
                byte |= int(tx.value) << n
            await ClockCycles(clk, self._divisor)
            assert int(tx.value) == 1, "the board sent a byte without its stop bit"
            self._from_board.append(byte)


@cocotb.test()
async def client_through_uart_pins(dut):
    """Classify the configured images with the host client over the simulated UART."""
    config = read_config()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    transport = CocotbUartTransport(dut, config["divisor"])
    transport.start()
    images = np.array(config["images"])

    def classify():
        client = Client(transport)
        return client.info, client.classify(images)

    info, labels = await bridge(classify)()
    result = {"info": dataclasses.asdict(info), "labels": [int(label) for label in labels],
              "led_label": int(dut.label.value), "cycles": transport.cycles}
    Path(config["result"]).write_text(json.dumps(result))
