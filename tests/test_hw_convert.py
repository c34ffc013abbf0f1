import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, signed
from amaranth.back import rtlil, verilog
from amaranth.lib.memory import Memory

from hwbnn.hw.convert import convert_rtlil, convert_verilog
from hwbnn.hw.mvtu import MatrixVectorThresholdUnit
from hwbnn.hw.stream_utils import StreamFifo

from .hw_layers import random_layer


class Rom(Elaboratable):
    def __init__(self, shape, depth, init):
        self.memory = Memory(shape=shape, depth=depth, init=init)
        self.addr = Signal(2)
        self.data = Signal(shape)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = self.memory
        port = self.memory.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m


def signed_rom():
    """Negative words are written two's complement."""
    rom = Rom(signed(5), 4, [-1, 3, -16, 0])
    return rom, [rom.addr, rom.data]


def empty_rom():
    """No bits of contents: an empty concatenation rather than a constant."""
    rom = Rom(8, 0, [])
    return rom, [rom.addr, rom.data]


def streams(component):
    return component, [component.i.payload, component.i.valid, component.i.ready,
                       component.o.payload, component.o.valid, component.o.ready]


def mvtu():
    """Weight, input-buffer and threshold memories of several words each."""
    layer = random_layer(np.random.default_rng(3), "residual", "binary", "uint2", 6, 12)
    return streams(MatrixVectorThresholdUnit(layer, pe=2, simd=3))


def fifo():
    """A FIFO's memory has no initial contents (all zero)."""
    return streams(StreamFifo(8, 5))


@pytest.mark.parametrize("build", [signed_rom, empty_rom, mvtu, fifo])
def test_same_rtlil_as_amaranth(build):
    """Byte for byte the text of Amaranth's own conversion (each conversion elaborates anew)."""
    design, ports = build()
    ours = convert_rtlil(design, name="top", ports=ports)
    design, ports = build()
    assert ours == rtlil.convert(design, name="top", ports=ports, emit_src=False)


def test_same_verilog_as_amaranth():
    design, ports = mvtu()
    ours = convert_verilog(design, name="top", ports=ports)
    design, ports = mvtu()
    assert ours == verilog.convert(design, name="top", ports=ports, emit_src=False)
