import numpy as np
import pytest
from amaranth import Module
from amaranth.sim import Simulator

from hwbnn.boards.uart import UARTReceiver, UARTTransmitter, uart_divisor
from hwbnn.errors import HwbnnError


def ref_serialize(byte: int, stop: int = 1) -> list[int]:
    """Line levels of one 8N1 character: start bit, data LSB first, stop bit."""
    return [0, *((byte >> n) & 1 for n in range(8)), stop]


def simulate(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in testbenches:
        sim.add_testbench(bench)
    sim.run()


async def drive_line(ctx, pin, levels, divisor):
    for level in levels:
        ctx.set(pin, level)
        await ctx.tick().repeat(divisor)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_transmitter_matches_reference_waveform(divisor):
    data = [0x00, 0xFF, 0xA5, 0x3C]
    dut = UARTTransmitter(divisor)
    line = []

    async def source(ctx):
        for byte in data:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def probe(ctx):
        for _ in range(divisor * 10 * len(data) + 4 * divisor):
            line.append(ctx.get(dut.tx))
            await ctx.tick()

    simulate(dut, source, probe)
    # The line idles high until the first byte; then the characters follow back to back.
    start = line.index(0)
    assert all(line[:start])
    expected = [level for byte in data for level in ref_serialize(byte) for _ in range(divisor)]
    assert line[start:start + len(expected)] == expected
    assert all(line[start + len(expected):])


@pytest.mark.parametrize("divisor", [4, 5, 12])
def test_loopback_random_bytes(divisor):
    rng = np.random.default_rng(divisor)
    data = [int(b) for b in rng.integers(0, 256, size=12)]
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor)
    m.submodules.rx = rx = UARTReceiver(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    received, errors = [], []

    async def source(ctx):
        for byte in data:
            for _ in range(int(rng.integers(0, 3)) * divisor):
                await ctx.tick()
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)

    async def sink(ctx):
        ctx.set(rx.o.ready, 1)
        while len(received) < len(data):
            _, _, valid, payload, framing = await ctx.tick().sample(
                rx.o.valid, rx.o.payload, rx.framing_error)
            if valid:
                received.append(payload)
            if framing:
                errors.append(len(received))

    simulate(m, source, sink)
    assert received == data
    assert errors == []


def test_receiver_framing_error_drops_byte_and_recovers():
    divisor = 6
    dut = UARTReceiver(divisor)
    received, errors = [], []
    levels = [1] * 10 + ref_serialize(0x5A, stop=0) + [0] * 20 + [1] * 15 + ref_serialize(0xC3)

    async def line(ctx):
        await drive_line(ctx, dut.rx, levels + [1] * 30, divisor)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        for _ in range(divisor * (len(levels) + 30)):
            _, _, valid, payload, framing = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.framing_error)
            if valid:
                received.append(payload)
            if framing:
                errors.append(len(received))

    simulate(dut, line, sink)
    assert received == [0xC3]
    assert errors == [0]


def test_receiver_ignores_glitch_shorter_than_half_a_bit():
    divisor = 8
    dut = UARTReceiver(divisor)
    received = []

    async def line(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(5)
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await drive_line(ctx, dut.rx, ref_serialize(0x81) + [1] * 3, divisor)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        for _ in range(16 * divisor):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                received.append(payload)

    simulate(dut, line, sink)
    assert received == [0x81]


def test_receiver_overrun_when_byte_not_taken():
    divisor = 4
    dut = UARTReceiver(divisor)
    overruns = []

    async def line(ctx):
        await drive_line(ctx, dut.rx, [1, 1] + ref_serialize(1) + ref_serialize(2) + [1] * 4,
                         divisor)

    async def sink(ctx):
        ctx.set(dut.o.ready, 0)
        for _ in range(26 * divisor):
            *_, overrun = await ctx.tick().sample(dut.overrun)
            overruns.append(overrun)
        ctx.set(dut.o.ready, 1)
        *_, payload = await ctx.tick().sample(dut.o.payload)
        assert payload == 2

    simulate(dut, line, sink)
    assert sum(overruns) == 1


@pytest.mark.parametrize("clock, baud, divisor", [
    (12e6, 115200, 104), (25e6, 115200, 217), (48e6, 1_000_000, 48), (12e6, 3_000_000, 4)])
def test_uart_divisor(clock, baud, divisor):
    assert uart_divisor(clock, baud) == divisor


@pytest.mark.parametrize("call, message", [
    (lambda: uart_divisor(12e6, 4_000_000), "too fast"),
    (lambda: uart_divisor(12e6, 2_600_000), r"off at 12 MHz"),
    (lambda: uart_divisor(12e6, 0), "baud rate must be a positive integer"),
    (lambda: UARTTransmitter(3), "UART divisor must be an integer of at least 4"),
    (lambda: UARTReceiver(8.0), "UART divisor must be an integer")])
def test_errors(call, message):
    with pytest.raises(HwbnnError, match=message):
        call()
