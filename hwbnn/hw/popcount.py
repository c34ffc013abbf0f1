"""Pipelined adder trees: the popcount of binary lanes and the signed sum of wider lanes."""

from __future__ import annotations

from amaranth import Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import validated
from .plan import LEVELS_PER_STAGE

ONE_BIT = unsigned(1)


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
        trees = TreeBuilder(m, self.en, self._levels_per_stage)
        _, total = trees.adder_sum([(n, self.i[n]) for n in range(self._count)])
        with m.If(self.en):
            m.d.sync += self.o.eq(total)
        return m


def _bits(value) -> int:
    """Bits of an Amaranth value, 0 for None."""
    return 0 if value is None else len(Value.cast(value))


def _carry_split(count: int) -> tuple[int, int]:
    """Lanes of the two sub-counts of a :class:`Popcount` node over ``count`` lanes (the
    remaining lane is the node's carry-in)."""
    left = (count - 1) // 2
    return left, count - 1 - left


def _popcount_shape(count: int, levels_per_stage: int) -> tuple[int, int]:
    """(adder level, register stages up to and including it) of an inner node of a
    :class:`Popcount` over ``count`` lanes.

    A lone lane is a wire (level 0, no register); a node's level is one more than its
    deeper child's, and it is registered when its level is a multiple of ``levels_per_stage``.
    """
    if count == 1:
        return 0, 0
    level, stages = max(_popcount_shape(n, levels_per_stage) for n in _carry_split(count) if n)
    level += 1
    return level, stages + (level % levels_per_stage == 0)


def popcount_latency(width: int, levels_per_stage: int = LEVELS_PER_STAGE) -> int:
    """Register stages of a :class:`Popcount` over ``width`` lanes: those of the root's
    children plus the output register. Never more than :func:`tree_latency` of ``width``
    (the carry-in tree has floor(log2(width)) levels)."""
    if width == 1:
        return 1
    return max(_popcount_shape(n, levels_per_stage)[1] for n in _carry_split(width) if n) + 1


class Popcount(wiring.Component):
    """Number of set bits of a ``width``-bit input, pipelined.

    A carry-in tree: the count of ``n`` lanes is the sum of two counts over ``(n - 1) / 2``
    lanes each plus the one remaining lane as the carry-in of that adder. On an FPGA the
    carry-in of a ripple adder is free (iCE40 ``SB_CARRY``: CO = maj(I1, I2, CI)), so a lane
    costs one adder bit less than in a tree of two-input adders, and a tree over
    ``2**k - 1`` lanes has every adder output exactly full (two ``j``-bit counts of at most
    ``2**j - 1`` plus one make at most ``2**(j+1) - 1``). The XNOR in front of the first
    level folds into the same LUT4s (its lanes are pairs of 2-input functions). Measured with
    Yosys ``synth_ice40`` for XNOR + 64 lanes + 10-bit accumulator: 143 LUT4 versus 174 for
    the balanced two-input tree (see :mod:`hwbnn.hw.area`).

    A register stage follows every ``levels_per_stage`` adder levels and the last one; lanes
    and counts that join a deeper node are delayed to line up. The registers load only while
    ``en`` is high, so the enclosing pipeline stalls as a whole. ``o`` follows ``i`` by
    :attr:`latency` enabled cycles.

    With ``carry=True`` the last lane is left out of ``o`` and comes out on ``carry``, lined
    up with ``o``, to be the carry-in of the consumer's own adder (the MVTU's accumulator):
    then a ``2**k``-lane count is a full ``2**k - 1``-lane tree and its output is one bit
    narrower.

    Ports: ``en`` (In 1), ``i`` (In, array of ``width`` bits), ``o`` (Out, the count),
    ``carry`` (Out 1, only with ``carry=True``).
    """

    @validated
    def __init__(self, width: int, *, levels_per_stage: int = LEVELS_PER_STAGE,
                 carry: bool = False):
        if not isinstance(width, int) or width < 1:
            raise HwbnnError(f"popcount width must be a positive integer, not {width!r}")
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise HwbnnError(f"levels_per_stage must be a positive integer, "
                             f"not {levels_per_stage!r}")
        if carry and width < 2:
            raise HwbnnError(f"a popcount with a carry lane needs at least 2 lanes, "
                             f"not {width!r}")
        self._width = width
        self._levels_per_stage = levels_per_stage
        self._carry = bool(carry)
        ports = {"en": In(1), "i": In(data.ArrayLayout(ONE_BIT, width)),
                 "o": Out(range(self.counted + 1))}
        if self._carry:
            ports["carry"] = Out(1)
        super().__init__(ports)

    @property
    def counted(self) -> int:
        """Lanes summed into ``o`` (all, or all but the carry lane)."""
        return self._width - self._carry

    @property
    def latency(self) -> int:
        """Enabled clock cycles from ``i`` to ``o`` (at least one: the output is registered)."""
        return popcount_latency(self.counted, self._levels_per_stage)

    def elaborate(self, platform):
        m = Module()
        trees = TreeBuilder(m, self.en, self._levels_per_stage)
        lanes = [(n, self.i[n]) for n in range(self._width)]
        spare = lanes.pop() if self._carry else None
        total, stages = trees.count(lanes)
        with m.If(self.en):
            m.d.sync += self.o.eq(total)
            if spare is not None:
                m.d.sync += self.carry.eq(trees.delay(*spare, stages))
        return m


class TreeBuilder:
    """The nodes of :class:`Popcount` and :class:`AdderTree` trees, built into one module,
    each node once.

    Lanes come as ``(key, value)`` pairs; a node is named by the keys of the lanes it sums
    (in order), so trees over the same lanes share it, registers included. In a component
    every key is distinct and nothing is shared; an unrolled unit gives every tree of a
    layer one builder, so rows whose trees start with the same lanes (and inversions) build
    those low levels once, as Yosys's ``opt_merge`` would merge them after writing them
    once per row (docs/design.md, unrolled mode).
    """

    def __init__(self, m: Module, en, levels_per_stage: int = LEVELS_PER_STAGE):
        self._m, self._en, self._levels = m, en, levels_per_stage
        self._nodes: dict = {}
        self._names = 0
        # What was built, each node once, for the cost model (cost/profile.py): every adder
        # as key -> (output width, operand widths a and b, carry-in bits, operands are lanes)
        # and every register bit.
        self.adders: dict = {}
        self.register_bits = 0

    def record_adder(self, key, width: int, a, b=None, carry: int = 0,
                     on_lanes: bool = False) -> None:
        """Note an adder of ``width`` output bits over values ``a`` and ``b`` (either may
        be None) plus ``carry`` carry-in bits, once per ``key``."""
        self.adders.setdefault(key, (width, _bits(a), _bits(b), carry, on_lanes))

    def register(self, value, key, name: str):
        """``value`` registered (loads while ``en``), once per ``key``."""
        if key not in self._nodes:
            if name in ("sum", "delay"):
                self._names += 1
                name = f"{name}{self._names}"
            reg = Signal(Value.cast(value).shape(), name=name)
            self.register_bits += len(reg)
            with self._m.If(self._en):
                self._m.d.sync += reg.eq(value)
            self._nodes[key] = reg
        return self._nodes[key]

    def delay(self, key, value, stages: int):
        """``value`` (named ``key``) through ``stages`` registers."""
        for _ in range(stages):
            key = ("delay", key)
            value = self.register(value, key, "delay")
        return value

    # --- Popcount: carry-in trees of one-bit lanes ---------------------------------------
    def count(self, lanes: list) -> tuple:
        """Unregistered count of one-bit ``lanes`` and the register stages of its operands,
        as :class:`Popcount` sums them."""
        count = len(lanes)
        if count == 1:
            return lanes[0][1], 0
        left, right = _carry_split(count)
        # the first part takes the last ``left`` lanes, the second the ``right`` before them,
        # and the first lane is the carry-in
        parts = [self._count_node(part) for part in
                 ((lanes[count - left:] if left else []), lanes[1:1 + right]) if part]
        stages = max(at for _, at in parts)
        total = self.delay(lanes[0][0], lanes[0][1], stages)
        operands = []
        for value, at in parts:
            key, value = value
            operands.append(self.delay(key, value, stages - at))
            total = total + operands[-1]
        self.record_adder(("count", tuple(k for k, _ in lanes)), count.bit_length(),
                          *operands, *[None] * (2 - len(operands)), carry=1,
                          on_lanes=all(n <= 1 for n in _carry_split(count)))
        return total[:count.bit_length()], stages

    def aligned_count(self, lanes: list, block: int) -> tuple:
        """(registered count of one-bit ``lanes``, latency): carry-in counts of the runs
        ``[0, block)``, ``[block, 2 block)``, ... summed by a balanced adder tree. Two trees
        whose lanes agree on a run share its count whatever their lengths, where
        :meth:`count` splits by the length (``block`` a power of two: the latency stays
        within :func:`tree_latency` of the lanes)."""
        runs = [lanes[start:start + block] for start in range(0, len(lanes), block)]
        counts = []
        for run in runs:
            key = ("run", tuple(k for k, _ in run))
            total, stages = self.count(run)
            counts.append((key, self.output(key, total), stages + 1))
        latency = max(stages for _, _, stages in counts)
        values = [(("delayed", key, latency - stages), self.delay(key, value, latency - stages))
                  for key, value, stages in counts]
        if len(values) == 1:
            return values[0][1], latency
        key, total = self.adder_sum(values)
        return self.output(key, total), latency + tree_latency(len(values), self._levels)

    def _count_node(self, lanes: list) -> tuple:
        """An inner node: ((key, value), register stages), registered at its level."""
        key = ("count", tuple(k for k, _ in lanes))
        level, stages = _popcount_shape(len(lanes), self._levels)
        if key not in self._nodes:
            total, _ = self.count(lanes)
            if level and level % self._levels == 0:
                total = self.register(total, ("reg", key), "sum")
            self._nodes[key] = total
        return (key, self._nodes[key]), stages

    # --- AdderTree: balanced trees of two-input adders ---------------------------------
    def output(self, key, value):
        """A tree's output register (the components' ``o``), once per ``key``."""
        return self.register(value, ("out", key), "out")

    def adder_sum(self, lanes: list) -> tuple:
        """``(key, value)``: the unregistered sum of ``lanes`` as :class:`AdderTree` makes
        it, pairs level by level with a register stage every ``levels_per_stage`` levels;
        the output register is the caller's (:meth:`output`)."""
        values = list(lanes)
        level = 0
        while len(values) > 1:
            pairs = [(("add", a, b), va + vb) for (a, va), (b, vb) in zip(
                values[0::2], values[1::2], strict=False)]
            for (a, va), (b, vb) in zip(values[0::2], values[1::2], strict=False):
                self.record_adder(("add", a, b), max(_bits(va), _bits(vb)) + 1, va, vb,
                                  on_lanes=level == 0)
            if len(values) % 2:
                pairs.append(values[-1])
            values = pairs
            level += 1
            if level % self._levels == 0 and len(values) > 1:
                values = [(("reg", key), self.register(value, ("reg", key), f"l{level}_{n}"))
                          for n, (key, value) in enumerate(values)]
        return values[0]
