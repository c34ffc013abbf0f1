# amaranth: UnusedElaboratable=no
# (The pipeline is built for its structure and cycle model only; nothing is elaborated.)
"""Hardware profiles of a folded network: what the generated hardware holds, counted from the IR.

Each matvec/conv layer is described by its :class:`hwbnn.hw.plan.LayerPlan`, the one plan the
generator builds from (docs/design.md section 4); this module adds the shapes the estimators
need beyond it: the adder trees of hw/popcount.py (:func:`layer_tree`), and the other blocks
of hw/network.py. :func:`profile_network` reads them off the generator's own pipeline
(:class:`~hwbnn.hw.network.NetworkTop`: its stages, the width converters and FIFOs in front
of them, its forks), one :class:`Block` per instance, named as in the generated hierarchy.
Estimators (:mod:`.features`, :mod:`.asic`) turn them into LUTs, flip-flops, area and energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwbnnError
from ..hw.add import AddUnit
from ..hw.fold import Folding
from ..hw.global_pool import GlobalAvgPool as GlobalAvgPoolUnit
from ..hw.maxpool import KernelPool
from ..hw.mvtu import MatrixVectorThresholdUnit
from ..hw.network import NetworkTop
from ..hw.plan import LEVELS_PER_STAGE, LayerPlan, MemoryShape, rom_columns
from ..hw.sliding_window import SlidingWindow
from ..hw.threshold import ThresholdTable, ThresholdUnit
from ..hw.unrolled import UnrolledMatrixVectorUnit
from ..ir.encoding import signed_width
from ..ir.network import Add, AvgPool, NetworkIR


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
class UnrolledProfile:
    """An unrolled unit (hw/unrolled.py): a whole vector per clock, weights as wires. Its
    adders and registers are counted from the unit's own construction
    (:meth:`~hwbnn.hw.unrolled.UnrolledMatrixVectorUnit.structure`), shared nodes once:
    ``popcount`` the carry-in popcounts of one-bit lanes, ``adders`` the rest (adder trees
    of wider lanes, sums of run counts, plane scales)."""

    name: str
    mh: int
    mw: int
    levels: int  # thresholds per output (0: raw scores)
    output_pixels: int
    popcount: TreeShape
    adders: TreeShape
    register_bits: int
    compare_bits: int
    latency: int  # clocks from a vector in to its result out

    @property
    def pe(self) -> int:
        return self.mh

    @property
    def simd(self) -> int:
        return self.mw

    @property
    def cycles_per_frame(self) -> int:
        return self.output_pixels

    @property
    def macs_per_frame(self) -> int:
        return self.mh * self.mw * self.output_pixels


def unrolled_profile(name: str, unit: UnrolledMatrixVectorUnit, layer) -> UnrolledProfile:
    """The profile of one unrolled unit built for ``layer``."""
    built = unit.structure()

    def shape(adders) -> TreeShape:
        adders = tuple(Adder(*adder) for adder in adders)
        return TreeShape(sum(adder.width for adder in adders), 0, 0, 0, adders)

    return UnrolledProfile(
        name, layer.mh, layer.mw,
        0 if layer.produces_scores else int(layer.thresholds.shape[1]), layer.output_pixels,
        shape(built.popcount_adders), shape(built.other_adders), built.register_bits,
        built.compare_bits, unit.latency)


@dataclass(frozen=True)
class PoolProfile:
    """A K x K pool at stride K (hw/maxpool.py's :class:`~hwbnn.hw.maxpool.KernelPool`): the
    running results of one output row in registers, merged by a max (``merge`` "max") or a
    sum ("sum", the average pool's window sums, ``out_bits`` wide)."""

    name: str
    in_shape: tuple[int, int, int]
    kernel: int
    bits: int
    out_pixels: int
    merge: str = "max"
    sum_bits: int = 0  # bits of a window sum ("sum" only)

    @property
    def out_bits(self) -> int:
        return self.sum_bits if self.merge == "sum" else self.bits

    @property
    def row_bits(self) -> int:
        """Partial results of one output row: W/K words of C elements."""
        _, w, c = self.in_shape
        return (w // self.kernel) * c * self.out_bits

    @property
    def compares_per_frame(self) -> int:
        """Merges (compares or adds) per frame."""
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


@dataclass(frozen=True)
class ElementwiseProfile:
    """A threshold or add unit (hw/threshold.py, hw/add.py): ``lanes`` elements per beat, per
    lane ``adders`` additions of ``value_width`` bits (an add's scaled sum: the constant
    scales are shifts and adds), then ``levels`` comparisons against a ROM row per channel
    group (``thresholds``), or an add's clip (``levels`` 0: two comparisons with constants)."""

    name: str
    lanes: int
    adders: int
    value_width: int
    levels: int
    out_bits: int
    elements: int  # per frame
    thresholds: MemoryShape | None

    @property
    def groups(self) -> int:
        return self.thresholds.depth if self.thresholds is not None else 1


@dataclass(frozen=True)
class GlobalPoolProfile:
    """Per-channel running sums over a frame (hw/global_pool.py) and the output register."""

    name: str
    channels: int
    pixels: int
    out_bits: int


@dataclass(frozen=True)
class ConverterProfile:
    """A width converter (hw/stream_utils.py): a shift buffer of ``in_count + 2 * out_count``
    elements of ``elem_bits`` and its fill level."""

    name: str
    elem_bits: int
    in_count: int
    out_count: int
    bits_per_frame: int

    @property
    def capacity(self) -> int:
        return self.in_count + 2 * self.out_count


@dataclass(frozen=True)
class ForkProfile:
    """A stream fork (hw/fork.py): two ``taken`` bits, no storage."""

    name: str
    width: int


@dataclass(frozen=True)
class Block:
    """One instance of the generated pipeline: its name in the hierarchy, the IR layer it
    belongs to, its kind and profile, and its cycles per frame (0 for streams)."""

    name: str
    layer: str
    kind: str  # mvtu, unrolled, window, pool, globalpool, threshold, add, fifo, width, fork
    profile: object
    cycles_per_frame: int = 0


@dataclass
class NetworkProfile:
    """Profiles of every component of a folded network, in stream order.

    ``blocks`` is every instance the generator makes (:func:`pipeline_blocks`), each priced
    by the estimators: MVTUs, windows, pools, and the width converters, FIFOs and forks
    between them (docs/design.md, "Cost model").
    """

    net: NetworkIR
    folding: Folding
    layers: list[LayerPlan | UnrolledProfile]  # the weight layers' units
    windows: list[WindowProfile]
    pools: list[PoolProfile]
    streams: list[StreamProfile]
    blocks: list[Block]
    cycle_model: dict

    @property
    def per_block(self) -> bool:
        """Reports list blocks for a graph (format version 2; a layer there is several
        blocks: forks, shortcut FIFOs, width converters), layers for a chain."""
        return bool(self.net.v2_features())

    @property
    def cycles_per_frame(self) -> int:
        """Initiation interval of the dataflow pipeline: its slowest stage, as the hardware's
        cycle model (:meth:`~hwbnn.hw.network.NetworkTop.cycle_model`) counts it."""
        return self.cycle_model["cycles_per_frame"]

    @property
    def latency_cycles(self) -> int:
        # a folded unit's frame takes its cycles; an unrolled one's its pipeline latency
        return sum(layer.latency if isinstance(layer, UnrolledProfile)
                   else layer.cycles_per_frame for layer in self.layers)

    @property
    def macs_per_frame(self) -> int:
        return sum(layer.macs_per_frame for layer in self.layers)


def _unit_block(stage, layer) -> Block:
    """The block of one stage's unit, profiled from the component the generator built."""
    unit, cycles = stage.component, stage.cycles_per_frame
    if isinstance(unit, MatrixVectorThresholdUnit):
        return Block(stage.name, stage.layer, "mvtu", unit.plan, cycles)
    if isinstance(unit, UnrolledMatrixVectorUnit):
        return Block(stage.name, stage.layer, "unrolled",
                     unrolled_profile(stage.name, unit, layer), cycles)
    if isinstance(unit, SlidingWindow):
        return Block(stage.name, stage.layer, "window", WindowProfile(
            stage.name, tuple(layer.in_shape), layer.kernel, layer.padding, stage.elem_bits_in,
            layer.output_pixels), cycles)
    if isinstance(unit, KernelPool):
        merge = "sum" if isinstance(layer, AvgPool) else "max"
        return Block(stage.name, stage.layer, "pool", PoolProfile(
            stage.name, tuple(layer.in_shape), layer.kernel, stage.elem_bits_in,
            int(np.prod(layer.out_shape[:2])), merge,
            stage.elem_bits_out if merge == "sum" else 0), cycles)
    if isinstance(unit, GlobalAvgPoolUnit):
        h, w, c = layer.in_shape
        return Block(stage.name, stage.layer, "globalpool", GlobalPoolProfile(
            stage.name, c, h * w, stage.elem_bits_out), cycles)
    if isinstance(unit, ThresholdUnit | AddUnit):
        return Block(stage.name, stage.layer, layer.kind, _elementwise(stage, layer), cycles)
    raise HwbnnError(f"the cost model has no profile of {type(unit).__name__} "
                     f"({stage.name})")


def _elementwise(stage, layer) -> ElementwiseProfile:
    """The profile of a threshold or add stage (``layer`` its IR layer)."""
    lanes = stage.chunk_in
    if isinstance(layer, Add):
        # s * x is shifts and adds: popcount(s) - 1 adders per operand, one for the sum.
        adders = sum(bin(int(s)).count("1") - 1 for s in layer.scales) + 1
        value_range = layer.acc_range
    else:
        adders, value_range = 0, None
    table = stage.component.table
    if table is None:
        return ElementwiseProfile(stage.name, lanes, adders, signed_width(*value_range), 0,
                                  stage.elem_bits_out, stage.elements_in, None)
    return ElementwiseProfile(stage.name, lanes, adders, table.width, table.levels,
                              stage.elem_bits_out, stage.elements_in,
                              _threshold_memory(stage.name, table))


def _threshold_memory(name: str, table: ThresholdTable) -> MemoryShape:
    image = table.image()
    return MemoryShape(f"{name}.thresholds", table.groups, image.shape[1], rom=True,
                       **rom_columns(image))


def pipeline_blocks(top: NetworkTop) -> list[Block]:
    """Every instance of ``top`` in stage order: in front of each stage its width converters
    and FIFOs, then its unit, then the forks after it (the network input's forks first)."""
    layers = {layer.name: layer for layer in top.net.layers}
    links: dict[str, list] = {}
    for link in top.links():
        links.setdefault(link.stage.name, []).append(link)
    forks: dict[str, list] = {}
    for fork in top.forks():
        forks.setdefault(fork.producer, []).append(fork)
    blocks = [Block(f.name, "input", "fork", ForkProfile(f.name, f.width))
              for f in forks.get("input", [])]
    for stage in top.stages:
        for link in links.get(stage.name, []):
            bits = stage.elements_in * stage.elem_bits_in
            if link.converter is not None:
                blocks.append(Block(link.converter, stage.layer, "width", ConverterProfile(
                    link.converter, stage.elem_bits_in, link.chunk, stage.chunk_in, bits)))
            if link.fifo is not None:
                blocks.append(Block(link.fifo, stage.layer, "fifo", StreamProfile(
                    link.fifo, stage.chunk_in * stage.elem_bits_in, link.fifo_depth, bits)))
        blocks.append(_unit_block(stage, layers[stage.layer]))
        blocks += [Block(f.name, stage.layer, "fork", ForkProfile(f.name, f.width))
                   for f in forks.get(stage.name, [])]
    return blocks


def profile_network(net: NetworkIR, folding: Folding | None = None,
                    mode: str = "folded", adders: str = "trees") -> NetworkProfile:
    """Profile every component of ``net`` at ``folding`` (default: the layers' own PE/SIMD),
    or unrolled (``mode``, built with ``adders``; no folding)."""
    folding = Folding.parse(folding, net)
    top = NetworkTop(net, folding, mode=mode, adders=adders)
    blocks = pipeline_blocks(top)
    layers = [block.profile for block in blocks if block.kind in ("mvtu", "unrolled")]
    windows = [block.profile for block in blocks if block.kind == "window"]
    pools = [block.profile for block in blocks if block.kind == "pool"]
    streams = [block.profile for block in blocks if block.kind == "fifo"]
    return NetworkProfile(net, folding, layers, windows, pools, streams, blocks,
                          top.cycle_model())
