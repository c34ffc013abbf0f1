"""Hardware profiles of a folded network: what the generated hardware holds, counted from the IR.

Each matvec/conv layer is described by its :class:`hwbnn.hw.plan.LayerPlan`, the one plan the
generator builds from (docs/design.md section 4); this module adds the shapes the estimators
need beyond it: the adder trees of hw/popcount.py (:func:`layer_tree`), and the sliding
windows, pools and inter-layer FIFOs of hw/network.py. Estimators (:mod:`.features`,
:mod:`.asic`) turn them into LUTs, flip-flops, area and energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hw.fold import Folding
from ..hw.plan import LEVELS_PER_STAGE, LayerPlan, MemoryShape
from ..ir.encoding import encoding_bits
from ..ir.network import Conv, MaxPool, NetworkIR


@dataclass(frozen=True)
class TreeShape:
    """Adder bits and pipeline-register bits of a balanced adder tree (hw/popcount.py)."""

    adder_bits: int
    register_bits: int
    out_width: int
    stages: int
    # Every adder as (output width, operand widths, carry-in, operands are lanes): FPGA flows
    # map narrow adders to LUTs and wide ones to carry chains.
    adders: tuple[Adder, ...] = ()

    def adder_bits_up_to(self, width: int) -> int:
        """Adder bits of the adders at most ``width`` bits wide."""
        return sum(adder.width for adder in self.adders if adder.width <= width)


@dataclass(frozen=True)
class Adder:
    """One adder of a tree: ``width`` output bits from operands of ``a`` and ``b`` bits plus
    ``carry_in``; ``on_lanes`` when its operands are the tree's input lanes."""

    width: int
    a: int
    b: int
    carry_in: int = 0
    on_lanes: bool = False

    def inputs(self, bit: int) -> int:
        """Operand bits output bit ``bit`` depends on (the top bit on every operand bit)."""
        if bit == self.width - 1:
            return self.a + self.b + self.carry_in
        return min(bit + 1, self.a) + min(bit + 1, self.b) + self.carry_in


def adder_tree(count: int, width: int, levels_per_stage: int = LEVELS_PER_STAGE) -> TreeShape:
    """Shape of a tree summing ``count`` values of ``width`` bits, as ``AdderTree`` builds it.

    Each two-input add produces one bit more than its wider operand; a register stage follows
    every ``levels_per_stage`` levels and the output is always registered.
    """
    widths = [width] * count
    adder_bits = register_bits = stages = 0
    adders = []
    level = 0
    while len(widths) > 1:
        pairs = [max(widths[n], widths[n + 1]) + 1 for n in range(0, len(widths) - 1, 2)]
        adder_bits += sum(pairs)
        adders += [Adder(out, widths[n], widths[n + 1], 0, level == 0)
                   for out, n in zip(pairs, range(0, len(widths) - 1, 2), strict=False)]
        if len(widths) % 2:
            pairs.append(widths[-1])
        widths = pairs
        level += 1
        if level % levels_per_stage == 0 and len(widths) > 1:
            register_bits += sum(widths)
            stages += 1
    out_width = width + max(count - 1, 0).bit_length()
    return TreeShape(adder_bits, register_bits + out_width, out_width, stages + 1,
                     tuple(adders))


def _carry_split(count: int) -> tuple[int, int]:
    left = (count - 1) // 2
    return left, count - 1 - left


def popcount_tree(width: int, carry: bool = False,
                  levels_per_stage: int = LEVELS_PER_STAGE) -> TreeShape:
    """Shape of hw/popcount.py's carry-in popcount over ``width`` lanes.

    A node over ``n`` lanes adds the counts of ``(n - 1) / 2`` lanes each and takes the
    remaining lane as carry-in; its result is ``n.bit_length()`` bits. A node is registered
    when its level is a multiple of ``levels_per_stage``; shallower operands are delayed by
    registers to line up; the output is registered. With ``carry`` the last lane skips the
    tree (delayed to line up) and enters the accumulator as its carry-in.
    """
    counted = width - int(carry)

    def node(count: int) -> tuple[tuple[Adder, ...], int, int, int]:
        """(adders, register bits, level, stages) of the unregistered sum of ``count``."""
        if count == 1:
            return (), 0, 0, 0
        parts = []
        for n in _carry_split(count):
            if not n:
                continue
            adders, registers, level, stages = node(n)
            level += 1 if n > 1 else 0
            if n > 1 and level % levels_per_stage == 0:
                registers += n.bit_length()
                stages += 1
            parts.append((adders, registers, level, stages, n.bit_length()))
        stages = max(part[3] for part in parts)
        operands = [part[4] for part in parts] + [0]
        adder = Adder(count.bit_length(), operands[0], operands[1], 1,
                      all(n <= 1 for n in _carry_split(count)))
        adders = tuple(a for part in parts for a in part[0]) + (adder,)
        # The carry lane and shallower operands are delayed to line up.
        registers = sum(part[1] + (stages - part[3]) * part[4] for part in parts) + stages
        level = max(part[2] for part in parts)
        return adders, registers, level, stages

    adders, registers, _, stages = node(counted)
    out_width = counted.bit_length()
    registers += out_width
    if carry:
        registers += stages + 1
    return TreeShape(sum(adder.width for adder in adders), registers, out_width, stages + 1,
                     adders)


def layer_tree(plan: LayerPlan) -> TreeShape:
    """One PE's adder tree: the carry-in popcount of 1-bit lanes (binary and ternary inputs),
    or the signed sum of (bits + 1)-bit lanes (unsigned inputs)."""
    if plan.popcounts_per_pe:
        return popcount_tree(plan.simd, plan.carry_lane)
    return adder_tree(plan.simd, plan.in_bits + 1)


@dataclass(frozen=True)
class PoolProfile:
    """A max-pool layer: K x K window over channels-last pixels, stride K."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    bits: int
    out_pixels: int

    @property
    def row_bits(self) -> int:
        """Partial maxima of one output row: W/K words of C elements."""
        _, w, c = self.in_shape
        return (w // self.kernel) * c * self.bits

    @property
    def compares_per_frame(self) -> int:
        h, w, c = self.in_shape
        return (h // self.kernel) * (w // self.kernel) * c * (self.kernel ** 2 - 1)


@dataclass(frozen=True)
class WindowProfile:
    """The sliding window in front of a conv layer (hw/sliding_window.py): a double-buffered
    frame memory of H*W pixels per bank, read out as K*K pixels per output pixel."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    padding: int
    bits: int
    out_pixels: int

    @property
    def frame_memory(self) -> MemoryShape:
        h, w, c = self.in_shape
        return MemoryShape(f"{self.name}.window", 2 * h * w, c * self.bits, rom=False)

    @property
    def cycles_per_frame(self) -> int:
        return self.out_pixels * self.kernel ** 2

    @property
    def bits_read_per_frame(self) -> int:
        return self.cycles_per_frame * self.in_shape[2] * self.bits

    @property
    def bits_written_per_frame(self) -> int:
        h, w, c = self.in_shape
        return h * w * c * self.bits


@dataclass(frozen=True)
class StreamProfile:
    """The stream between two layers: a FIFO of ``depth`` beats of ``width`` bits."""

    name: str
    width: int
    depth: int
    bits_per_frame: int

    @property
    def memory(self) -> MemoryShape:
        return MemoryShape(f"{self.name}.fifo", self.depth, self.width, rom=False)


@dataclass
class NetworkProfile:
    """Profiles of every component of a folded network, in stream order."""

    net: NetworkIR
    folding: Folding
    layers: list[LayerPlan]
    windows: list[WindowProfile]
    pools: list[PoolProfile]
    streams: list[StreamProfile]

    @property
    def cycles_per_frame(self) -> int:
        """Initiation interval of the dataflow pipeline: its slowest layer."""
        return max(layer.cycles_per_frame for layer in self.layers)

    @property
    def latency_cycles(self) -> int:
        return sum(layer.cycles_per_frame for layer in self.layers)

    @property
    def macs_per_frame(self) -> int:
        return sum(layer.macs_per_frame for layer in self.layers)


def profile_network(net: NetworkIR, folding: Folding | None = None) -> NetworkProfile:
    """Profile every component of ``net`` at ``folding`` (default: the layers' own PE/SIMD)."""
    net.require_chain("the cost model")
    folding = Folding.parse(folding, net)
    plans = folding.plans()
    layers, windows, pools, streams = [], [], [], []
    for layer in net.layers:
        if isinstance(layer, MaxPool):
            pools.append(PoolProfile(layer.name, tuple(layer.in_shape), layer.kernel,
                                     encoding_bits(layer.encoding),
                                     int(np.prod(layer.out_shape[:2]))))
            continue
        plan = plans[layer.name]
        layers.append(plan)
        if isinstance(layer, Conv):
            windows.append(WindowProfile(f"{layer.name}_window", tuple(layer.in_shape),
                                         layer.kernel, layer.padding, plan.in_bits,
                                         layer.output_pixels))
    for producer, consumer in zip(layers[:-1], layers[1:], strict=True):
        width = consumer.simd * consumer.in_bits
        bits = producer.mh * producer.out_bits * producer.output_pixels
        streams.append(StreamProfile(consumer.name, width, consumer.input_fifo_depth, bits))
    return NetworkProfile(net, folding, layers, windows, pools, streams)
