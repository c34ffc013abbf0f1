"""Pipelined adder trees: the popcount of binary lanes and the signed sum of wider lanes."""

from __future__ import annotations

from amaranth import Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated

ONE_BIT = unsigned(1)
# A register after every adder level: on iCE40 this measured 176 LUT4 for XNOR + 64-lane
# popcount + 12-bit accumulator versus 216 with a register every second level (Yosys
# synth_ice40), as each level then maps to plain carry chains; it also shortens the path.
LEVELS_PER_STAGE = 1


def tree_latency(count: int, levels_per_stage: int = LEVELS_PER_STAGE) -> int:
    """Register stages of an :class:`AdderTree` over ``count`` inputs."""
    return max(1, -(-(count - 1).bit_length() // levels_per_stage))


def _sum_shape(shape: Shape, count: int) -> Shape:
    """Shape that holds the sum of ``count`` values of ``shape``."""
    grow = max(count - 1, 0).bit_length()
    return signed(shape.width + grow) if shape.signed else unsigned(shape.width + grow)


class AdderTree(wiring.Component):
    """Sum of ``count`` values of ``shape``, a balanced tree of two-input adders.

    Pairs are added level by level; a register stage follows every ``levels_per_stage``
    levels (default 1) and the last level, so the critical path stays a few short carry chains
    whatever the fan-in. The registers load only while ``en`` is high, which lets the
    enclosing pipeline stall as a whole. ``o`` follows ``i`` by :attr:`latency` enabled
    cycles.

    Ports: ``en`` (In 1), ``i`` (In, array of ``count`` values), ``o`` (Out, the sum).
    """

    @validated
    def __init__(self, count: int, shape: Shape = ONE_BIT, *,
                 levels_per_stage: int = LEVELS_PER_STAGE):
        if not isinstance(count, int) or count < 1:
            raise HwbnnError(f"adder tree input count must be a positive integer, not {count!r}")
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise HwbnnError(f"levels_per_stage must be a positive integer, "
                             f"not {levels_per_stage!r}")
        self._count = count
        self._shape = Shape.cast(shape)
        self._levels_per_stage = levels_per_stage
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(self._shape, count)),
            "o": Out(_sum_shape(self._shape, count)),
        })

    @property
    def levels(self) -> int:
        """Adder levels: ceil(log2(count))."""
        return (self._count - 1).bit_length()

    @property
    def latency(self) -> int:
        """Enabled clock cycles from ``i`` to ``o`` (at least one: the output is registered)."""
        return tree_latency(self._count, self._levels_per_stage)

    def elaborate(self, platform):
        m = Module()
        values = [self.i[n] for n in range(self._count)]
        level = 0
        while len(values) > 1:
            pairs = [values[n] + values[n + 1] for n in range(0, len(values) - 1, 2)]
            if len(values) % 2:
                pairs.append(values[-1])
            values = pairs
            level += 1
            if level % self._levels_per_stage == 0 and len(values) > 1:
                values = self._register(m, values, f"l{level}")
        with m.If(self.en):
            m.d.sync += self.o.eq(values[0])
        return m

    def _register(self, m, values, name):
        registered = []
        for n, value in enumerate(values):
            reg = Signal(Value.cast(value).shape(), name=f"{name}_{n}")
            with m.If(self.en):
                m.d.sync += reg.eq(value)
            registered.append(reg)
        return registered


class Popcount(AdderTree):
    """Number of set bits of a ``width``-bit input, pipelined (see :class:`AdderTree`).

    ``i`` is an array of ``width`` one-bit values; the first level adds bit pairs, so an
    XNOR in front of it folds into the same LUTs.
    """

    @validated
    def __init__(self, width: int, *, levels_per_stage: int = LEVELS_PER_STAGE):
        if not isinstance(width, int) or width < 1:
            raise HwbnnError(f"popcount width must be a positive integer, not {width!r}")
        super().__init__(width, unsigned(1), levels_per_stage=levels_per_stage)
