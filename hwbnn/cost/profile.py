"""Hardware profiles of IR layers: what the generated hardware holds, counted from the IR alone.

A :class:`LayerProfile` describes one folded matvec/conv layer the way the generator builds it
(DESIGN.md section 4, :mod:`hwbnn.hw.plan`, :mod:`hwbnn.hw.mvtu`): its step schedule (tiles x
weight planes, absent planes skipped), its memories (weight ROM, input buffer, threshold ROM)
and its datapath (per-PE adder trees, accumulators, comparators). The schedule is counted with
numpy over the whole weight tensor at once, so profiling a large conv layer stays fast.
Estimators (:mod:`.fpga`, :mod:`.asic`) turn profiles into LUTs, flip-flops, area and energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_levels, encoding_range, signed_width
from ..ir.network import Conv, MatVec, MaxPool, NetworkIR

# Adder-tree levels between pipeline registers in the generated MVTU: hw/popcount.py
# registers every level (LEVELS_PER_STAGE = 1); a test keeps the two equal.
LEVELS_PER_STAGE = 1


@dataclass(frozen=True)
class MemoryShape:
    """A memory of ``depth`` words of ``width`` bits; ``rom`` when its contents are constants."""

    name: str
    depth: int
    width: int
    rom: bool
    # For a ROM: how many of its bit columns (one output bit over all words) are distinct and
    # not constant. Synthesis shares equal columns and drops constant ones, so this, not the
    # width, sets the logic of a small ROM. None: unknown (taken as the width).
    distinct_columns: int | None = None

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def logic_columns(self) -> int:
        return self.width if self.distinct_columns is None else self.distinct_columns


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


def distinct_columns(image: np.ndarray) -> int:
    """Distinct non-constant columns of a (depth, width) bit matrix."""
    if image.size == 0:
        return 0
    varying = image[:, (image != image[:1]).any(axis=0)]
    return int(np.unique(varying, axis=1).shape[1]) if varying.size else 0


def _bits(values: np.ndarray, width: int) -> np.ndarray:
    """Two's-complement bits (LSB first) of an integer array, as a trailing axis."""
    return ((values[..., None].astype(np.int64) >> np.arange(width)) & 1).astype(np.uint8)


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


def _tile_usage(masks: np.ndarray, pe: int, simd: int) -> tuple[np.ndarray, np.ndarray]:
    """Per plane and tile: is the plane used, and is it used by every weight of the tile.

    ``masks`` is ``(P, MH, MW)``; returns two bool arrays ``(P, NF, SF)``.
    """
    planes, mh, mw = masks.shape
    tiles = masks.reshape(planes, mh // pe, pe, mw // simd, simd)
    return tiles.any(axis=(2, 4)), tiles.all(axis=(2, 4))


def weight_masks(weights) -> tuple[np.ndarray, np.ndarray]:
    """(usage masks ``(P, MH, MW)`` bool, integer plane scales ``(P,)``) of any weight kind.

    Binary: one full plane; ternary: one plane used where the weight is nonzero; residual:
    plane ``p`` used by the weights whose bitwidth exceeds ``p`` (the planes of hw/plan.py).
    """
    if weights.kind == "binary":
        return np.ones((1, *weights.shape), dtype=bool), np.array([1])
    if weights.kind == "ternary":
        return weights.planes[0][None].astype(bool), np.array([1])
    used = np.arange(weights.planes.shape[0])[:, None, None] < weights.bitwidth[None]
    return used, np.asarray(weights.scales, dtype=np.int64)


class LayerProfile:
    """Counts of one matvec/conv layer's generated hardware for a folding (PE, SIMD).

    Parameters
    ----------
    layer : MatVec | Conv
    pe, simd : int
        Output and input lanes (default: the layer's own ``pe``/``simd``, else 1).
    """

    def __init__(self, layer, pe: int | None = None, simd: int | None = None):
        if not isinstance(layer, MatVec | Conv):
            raise HwbnnError(f"a layer profile needs a matvec or conv layer, "
                             f"not {type(layer).__name__}")
        pe = pe if pe is not None else (layer.pe or 1)
        simd = simd if simd is not None else (layer.simd or 1)
        for name, value, extent in (("pe", pe, layer.mh), ("simd", simd, layer.mw)):
            if not isinstance(value, int | np.integer) or value < 1 or extent % value:
                raise HwbnnError(f"layer {layer.name}: {name}={value!r} must be a positive "
                                 f"divisor of {extent}")
        self.layer = layer
        self.name = layer.name
        self.kind = layer.kind
        self.pe, self.simd = int(pe), int(simd)
        self.mh, self.mw = layer.mh, layer.mw
        self.nf, self.sf = self.mh // self.pe, self.mw // self.simd
        self.in_encoding = layer.in_encoding
        self.in_bits = encoding_bits(layer.in_encoding)
        self.weight_kind = layer.weights.kind
        masks, self.scales = weight_masks(layer.weights)
        self._masks = masks
        used, full = _tile_usage(masks, self.pe, self.simd)
        # A tile with no used plane still takes one all-zero step on plane 0 (hw/plan.py), and
        # that step needs the mask bits like any partly used one.
        empty = ~used.any(axis=0)
        used[0] |= empty
        self.steps = int(used.sum())
        self._used = used
        self.needs_mask = bool((used & ~full).any())
        self.irregular = bool((used != used[:, :1, :1]).any())
        self.output_pixels = layer.output_pixels
        self.produces_scores = layer.produces_scores
        self.levels = 0 if self.produces_scores else encoding_levels(layer.out_encoding)
        self.acc_width = self._hw_acc_width(masks)
        self.out_bits = (layer.acc_width if self.produces_scores
                         else encoding_bits(layer.out_encoding))
        self.weight_bits_stored = int(layer.weights.bitwidths().sum())
        self.nonzero_weights = int(np.count_nonzero(layer.weights.values()))
        self.plane_macs = int(masks.sum())
        self._weight_image = None

    def _sign_bits(self) -> np.ndarray:
        """Sign bits (1 = +1) per plane, ``(P, MH, MW)``, as hw/plan.py stores them."""
        planes = self.layer.weights.planes.astype(np.uint8)
        if self.weight_kind == "ternary":
            return (1 - planes[1])[None]
        return planes

    def _acc_bounds(self, masks: np.ndarray) -> tuple[int, int]:
        """Range of any partial accumulation of any row (hw/plan.py ``acc_bounds``)."""
        if self.in_encoding == "binary":
            return 0, int(self._offsets(masks).max())
        lo, hi = encoding_range(self.in_encoding)
        signs = 2 * self._sign_bits().astype(np.int64) - 1
        contrib = self.scales[:, None, None] * masks * signs
        low = np.minimum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        high = np.maximum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        return int(low.min()), int(high.max())

    def _offsets(self, masks: np.ndarray) -> np.ndarray:
        return np.einsum("p,prc->r", self.scales, masks.astype(np.int64))

    def _hw_acc_width(self, masks: np.ndarray) -> int:
        """Width of the hardware accumulator: popcount domain for binary inputs (hw/plan.py)."""
        lo, hi = self._acc_bounds(masks)
        return signed_width(lo, hi + 1)

    def weight_image(self) -> np.ndarray:
        """The weight ROM as a (steps, width) bit matrix: per step, the PE x SIMD sign bits of
        its tile and plane, then the mask bits where needed (hw/plan.py ``rom_words``)."""
        if self._weight_image is None:
            self._weight_image = self._build_weight_image()
        return self._weight_image

    def _build_weight_image(self) -> np.ndarray:
        used = self._used.transpose(1, 2, 0)  # (NF, SF, P), step order nf, sf, plane
        shape = (-1, self.nf, self.pe, self.sf, self.simd)
        order = (1, 3, 0, 2, 4)  # -> (NF, SF, P, PE, SIMD)
        signs = self._sign_bits().reshape(shape).transpose(order)[used]
        image = signs.reshape(self.steps, -1)
        if self.needs_mask:
            masks = self._masks.astype(np.uint8).reshape(shape).transpose(order)[used]
            image = np.concatenate([image, masks.reshape(self.steps, -1)], axis=1)
        return image

    def varying_sign_lanes(self) -> int:
        """Lanes whose weight sign changes between steps; the others see a constant sign, which
        synthesis folds into the lane when the weight table is in logic."""
        signs = self.weight_image()[:, :self.pe * self.simd]
        return int((signs != signs[:1]).any(axis=0).sum())

    def _changing_lanes(self) -> np.ndarray:
        """Per lane (PE x SIMD), whether its sign or mask changes between steps."""
        lanes = self.pe * self.simd
        image = self.weight_image()
        varying = (image != image[:1]).any(axis=0)
        return varying[:lanes] | (varying[lanes:] if self.needs_mask else False)

    def lane_weights(self) -> tuple[int, int, int]:
        """Lanes (PE x SIMD) by their weight over the steps: (varying, constant and used,
        constant zero): what synthesis sees of a weight table in logic."""
        lanes = self.pe * self.simd
        changes = self._changing_lanes()
        dead = (~self.weight_image()[:, lanes:].any(axis=0) if self.needs_mask
                else np.zeros(lanes, dtype=bool))
        return int(changes.sum()), int((~changes & ~dead).sum()), int(dead.sum())

    def negative_constant_lanes(self) -> int:
        """Lanes whose weight never changes and is used with sign -1 (see
        :meth:`lane_weights`)."""
        lanes = self.pe * self.simd
        first = self.weight_image()[0]
        used = first[lanes:].astype(bool) if self.needs_mask else np.ones(lanes, bool)
        return int((~self._changing_lanes() & used & (first[:lanes] == 0)).sum())

    def threshold_table(self) -> np.ndarray | None:
        """Per row, the values the threshold ROM holds (hw/plan.py ``hw_thresholds``, or the
        popcount offsets of a scores layer), ``(MH, fields)``."""
        offsets = self._offsets(self._masks)
        if self.produces_scores:
            return offsets[:, None] if self.popcounts_per_pe == 1 else None
        t = self.layer.thresholds.astype(np.int64)
        if self.in_encoding == "binary":
            return np.clip(-((-(t + offsets[:, None])) // 2), 0, offsets[:, None] + 1)
        lo, hi = self._acc_bounds(self._masks)
        return np.clip(t, lo, hi + 1)

    def threshold_image(self) -> np.ndarray | None:
        table = self.threshold_table()
        if table is None:
            return None
        return _bits(table.reshape(self.nf, -1), self.acc_width).reshape(self.nf, -1)

    # --- derived counts -------------------------------------------------------------------
    @property
    def cycles_per_vector(self) -> int:
        """Steps per input vector: NF * SF plus the extra plane steps (II = 1)."""
        return self.steps

    @property
    def cycles_per_frame(self) -> int:
        return self.steps * self.output_pixels

    @property
    def popcounts_per_pe(self) -> int:
        """Popcount trees per PE: 1 for binary inputs, 2 for ternary, 0 for unsigned inputs."""
        return {"binary": 1, "ternary": 2}.get(self.in_encoding, 0)

    @property
    def adder_trees(self) -> int:
        """Distinct adder trees of all PEs. Ternary inputs without a weight mask count the
        nonzero inputs with the same popcount in every PE, which synthesis shares: PE
        ``agree`` trees and one ``used`` tree."""
        if self.in_encoding == "ternary" and not self.needs_mask:
            return self.pe + 1
        return self.pe * max(self.popcounts_per_pe, 1)

    @property
    def max_slots(self) -> int:
        """Most weight-plane steps of one tile (the sequencer's slot counter counts them)."""
        return int(self._used.sum(axis=0).max())

    @property
    def carry_lane(self) -> bool:
        """Binary inputs with one plane of scale 1: the popcount's last lane enters the
        accumulator as carry-in (hw/mvtu.py ``_carry_lane``)."""
        return (self.in_encoding == "binary" and self.simd > 1
                and [int(a) for a in self.scales] == [1])

    @property
    def acc_bits(self) -> int:
        """Width of each PE's accumulator register: unsigned and one bit narrower in the
        popcount domain (hw/mvtu.py ``acc_shape``)."""
        return self.acc_width - 1 if self.in_encoding == "binary" else self.acc_width

    @property
    def tree(self) -> TreeShape:
        """One PE's adder tree (carry-in popcount of 1-bit lanes, or signed sum of
        (bits+1)-bit lanes)."""
        if self.popcounts_per_pe:
            return popcount_tree(self.simd, self.carry_lane)
        return adder_tree(self.simd, self.in_bits + 1)

    @property
    def weight_rom(self) -> MemoryShape:
        return MemoryShape(f"{self.name}.weights", self.steps,
                           self.pe * self.simd * (2 if self.needs_mask else 1), rom=True,
                           distinct_columns=distinct_columns(self.weight_image()))

    @property
    def input_buffer(self) -> MemoryShape:
        return MemoryShape(f"{self.name}.inbuf", self.sf, self.simd * self.in_bits, rom=False)

    @property
    def threshold_rom(self) -> MemoryShape | None:
        fields = self.levels if not self.produces_scores else int(self.popcounts_per_pe == 1)
        if fields == 0:
            return None
        return MemoryShape(f"{self.name}.thresholds", self.nf,
                           self.pe * fields * self.acc_width, rom=True,
                           distinct_columns=distinct_columns(self.threshold_image()))

    @property
    def memories(self) -> list[MemoryShape]:
        return [m for m in (self.weight_rom, self.input_buffer, self.threshold_rom)
                if m is not None]

    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of the IR layer per frame (every weight, zero or not)."""
        return self.mh * self.mw * self.output_pixels

    @property
    def fan_in_bits(self) -> int:
        """Input bits entering the datapath per step: SIMD elements of in_bits."""
        return self.simd * self.in_bits


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


# FIFO depth in front of an MVTU as hw/network.py sizes it: one input vector (SF beats) plus
# two, at most 512.
MAX_FIFO_DEPTH = 512


@dataclass
class NetworkProfile:
    """Profiles of every component of a folded network, in stream order."""

    net: NetworkIR
    layers: list[LayerProfile]
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


def parse_fold(text: str, net: NetworkIR) -> list[tuple[int, int]]:
    """``"PExSIMD,PExSIMD,..."`` (one pair per weight layer) -> list of (pe, simd)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    count = len(net.weight_layers)
    if len(parts) != count:
        raise HwbnnError(f"--fold needs {count} PExSIMD pairs (one per matvec/conv layer), "
                         f"not {len(parts)}")
    folds = []
    for part in parts:
        pe, sep, simd = part.lower().partition("x")
        if not sep or not pe.isdigit() or not simd.isdigit():
            raise HwbnnError(f"--fold entries look like 4x16 (PE x SIMD), not {part!r}")
        folds.append((int(pe), int(simd)))
    return folds


def auto_folds(net: NetworkIR, target_fps: float, clock_mhz: float) -> list[tuple[int, int]]:
    """(PE, SIMD) per weight layer from the generator's own ``--fold auto``.

    One folding policy for ``hwbnn gen`` and ``hwbnn cost``, so an estimate describes the
    design that would be generated; an unreachable target is the generator's error.
    """
    from ..hw.fold import auto_folding

    folding, _ = auto_folding(net, target_fps, clock_mhz * 1e6)
    return [(folding[layer.name]["pe"], folding[layer.name]["simd"])
            for layer in net.weight_layers]


def profile_network(net: NetworkIR, folds: list[tuple[int, int]] | None = None
                    ) -> NetworkProfile:
    """Profile every component of ``net`` with ``folds`` (default: the layers' own pe/simd)."""
    weight_layers = net.weight_layers
    if folds is not None and len(folds) != len(weight_layers):
        raise HwbnnError(f"folding has {len(folds)} entries but the network has "
                         f"{len(weight_layers)} matvec/conv layers")
    layers, windows, pools, streams = [], [], [], []
    index = 0
    for layer in net.layers:
        if isinstance(layer, MaxPool):
            pools.append(PoolProfile(layer.name, tuple(layer.in_shape), layer.kernel,
                                     encoding_bits(layer.encoding),
                                     int(np.prod(layer.out_shape[:2]))))
            continue
        pe, simd = folds[index] if folds is not None else (None, None)
        index += 1
        profile = LayerProfile(layer, pe, simd)
        layers.append(profile)
        if isinstance(layer, Conv):
            windows.append(WindowProfile(f"{layer.name}_window", tuple(layer.in_shape),
                                         layer.kernel, layer.padding, profile.in_bits,
                                         layer.output_pixels))
    for producer, consumer in zip(layers[:-1], layers[1:], strict=True):
        width = consumer.simd * consumer.in_bits
        bits = producer.mh * producer.out_bits * producer.output_pixels
        streams.append(StreamProfile(consumer.name, width, min(consumer.sf + 2, MAX_FIFO_DEPTH),
                                     bits))
    return NetworkProfile(net, layers, windows, pools, streams)
