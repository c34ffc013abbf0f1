"""The one plan of a folded matvec/conv layer: weight planes, step schedule, memory images,
accumulator domain and cycles (docs/design.md section 4, "One layer plan").

Every weight kind becomes a list of *planes* ``p`` with an integer scale ``a_p``, sign bits
``s`` (1 = +1) and a usage mask ``m``: binary is one full plane; ternary is one plane whose
mask is the nonzero bit; residual (heterogeneous) weights have plane ``p`` used by the weights
whose bitwidth exceeds ``p``; b-bit two's-complement integer weights are b planes whose masks
are the weight's bits, scales ``2^p``, sign +1 except the top plane's -1 (its bit weighs
``-2^(b-1)``), so no plane needs a negative scale. So ``w = sum_p a_p * m_p * (2 s_p - 1)``
for all four.

The hardware walks *steps*: for each neuron fold ``nf`` and synapse fold ``sf`` (one *tile*
of PE x SIMD weights) one step per plane that some weight of the tile uses. Absent planes
are skipped at generation time (weights are constants), so cycles and weight-memory bits
follow the average bitwidth when bitwidths are grouped per tile. A tile no weight uses still
takes one all-zero step on plane 0.

Binary inputs use popcounts: ``sum_j m s' x' = 2 popcount(m & xnor(s, x)) - popcount(m)``;
the second term is a constant per row (``offset``), folded into the thresholds, so the
accumulator holds ``A = sum a_p popcount(...)`` and ``dot = 2 A - offset``.

Everything is computed with numpy over the whole weight tensor (no per-step Python loop), and
lazily: auto-folding asks only for cycles, the generator for images, the cost model for
memory shapes and lane statistics. The generator (:mod:`.mvtu`), the cost model
(:mod:`hwbnn.cost`), auto-folding and the cycle model (:mod:`.fold`) and verification all
read this one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import HwbnnError
from ..ir.encoding import (
    encoding_bits,
    encoding_levels,
    encoding_range,
    is_signed_int,
    signed_width,
)
from ..ir.network import Conv, MatVec

# A register after every adder level: on iCE40 this measured 176 LUT4 for XNOR + 64-lane
# popcount (two-input tree) + 12-bit accumulator versus 216 with a register every second
# level (Yosys synth_ice40), as each level then maps to plain carry chains; it also shortens
# the path. The generator's trees (hw/popcount.py) and the cost model's tree shapes use it.
LEVELS_PER_STAGE = 1
# FIFO in front of an MVTU: the MVTU takes its input only during its first neuron fold, so
# the FIFO holds one input vector (SF beats) plus two, so the producer can run a whole vector
# ahead and the pipeline reaches its slowest stage's rate; capped to bound memory.
MAX_FIFO_DEPTH = 512
# The most steps whose schedule bits sit apart from the weight word (LayerPlan.schedule_apart):
# the depth of an iCE40 block at 16 bits; a one-bit memory this deep costs about 30 LUT4.
SCHEDULE_APART_STEPS = 256


def ceil_div(a, b):
    """Integer ceiling division on numpy arrays or ints (b > 0)."""
    return -((-a) // b)


def weight_planes(weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signs, masks, scales) of any weight kind; signs/masks ``(P, MH, MW)`` uint8."""
    planes = weights.planes.astype(np.uint8)
    if weights.kind == "binary":
        return planes, np.ones_like(planes), np.array([1], dtype=np.int64)
    if weights.kind == "ternary":
        return (1 - planes[1])[None], planes[0][None], np.array([1], dtype=np.int64)
    if weights.kind == "integer":
        signs = np.ones_like(planes)
        signs[-1] = 0
        return signs, planes, 2 ** np.arange(len(planes), dtype=np.int64)
    used = (np.arange(planes.shape[0])[:, None, None] < weights.bitwidth[None]).astype(np.uint8)
    return planes, used, weights.scales.astype(np.int64)


# Where a layer's constant memories go (LayerFold.ram_style, MemoryShape.style).
RAM_STYLES = ("auto", "block", "logic")


def check_ram_style(style) -> None:
    """HwbnnError unless ``style`` is one of :data:`RAM_STYLES`."""
    if style not in RAM_STYLES:
        raise HwbnnError(f"ram_style must be one of {', '.join(RAM_STYLES)}, not {style!r}")


def check_folding(layer, pe, simd) -> None:
    """Raise HwbnnError unless ``pe`` divides MH and ``simd`` divides MW (the one wording of
    every folding error about a layer)."""
    for name, value, extent, what in (("pe", pe, layer.mh, "MH (output channels)"),
                                      ("simd", simd, layer.mw, "MW (fan-in)")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise HwbnnError(f"layer {layer.name}: {name} must be a positive integer, "
                             f"not {value!r}")
        if extent % value:
            raise HwbnnError(f"layer {layer.name}: {name}={value} does not divide "
                             f"{what} = {extent}")


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
    # For a ROM: how many bit columns are not constant (Yosys's opt_mem drops the constant
    # ones before mapping the memory, so these set its block-RAM mapping). None: the width.
    varying_columns: int | None = None
    # For a ROM: the binary entropy H(p) summed over those distinct non-constant columns (p: a
    # column's fraction of ones): the table's information is depth times this, and its gate
    # netlist about that over its log2 (cost.features.rom_gates; the counting argument of
    # Shannon 1949 for functions with a given number of ones), so sparse columns (a mix's
    # upper planes) cost less. None: unknown (taken as the distinct columns).
    column_entropy: float | None = None
    # For a RAM: its one read and one write port share the address (the matrix unit's input
    # buffer), so a single-port LUT RAM can hold it (xc7's RAM64X1S, RAM128X1S).
    shared_address: bool = False
    # Where synthesis is told to put it (a ``ram_style`` attribute): ``auto`` (its own
    # choice), ``block`` or ``logic`` (hwbnn.hw.fold.RAM_STYLES).
    style: str = "auto"

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def logic_columns(self) -> int:
        return self.width if self.distinct_columns is None else self.distinct_columns


def _distinct_varying(image: np.ndarray) -> np.ndarray:
    """The distinct non-constant columns of a (depth, width) bit matrix."""
    if image.size == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    varying = image[:, (image != image[:1]).any(axis=0)]
    return np.unique(varying, axis=1) if varying.size else varying


def distinct_columns(image: np.ndarray) -> int:
    """Distinct non-constant columns of a (depth, width) bit matrix."""
    return int(_distinct_varying(image).shape[1])


def rom_columns(image: np.ndarray) -> dict:
    """A ROM image's distinct and varying (non-constant) column counts and the distinct
    columns' summed entropy, as :class:`MemoryShape` keyword arguments."""
    varying = int((image != image[:1]).any(axis=0).sum()) if image.size else 0
    distinct = _distinct_varying(image)
    ones = distinct.mean(axis=0) if distinct.size else np.zeros(0)
    entropy = -(ones * np.log2(ones) + (1 - ones) * np.log2(1 - ones))
    return {"distinct_columns": int(distinct.shape[1]), "varying_columns": varying,
            "column_entropy": round(float(entropy.sum()), 6)}


def twos_complement_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Two's-complement bits (LSB first) of an integer array, as a trailing axis."""
    return ((values[..., None].astype(np.int64) >> np.arange(width)) & 1).astype(np.uint8)


def pack_rows(image: np.ndarray) -> list[int]:
    """Each row of a (depth, width) bit matrix as an int, column 0 in bit 0."""
    depth, width = image.shape
    if width <= 63:
        weights = np.left_shift(np.uint64(1), np.arange(width, dtype=np.uint64))
        return [int(v) for v in (image.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)]
    packed = np.packbits(image.astype(np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


class LayerPlan:
    """Folding, step schedule, memory images and datapath facts of one matvec/conv layer.

    Parameters
    ----------
    layer : MatVec | Conv
    pe, simd : int
        Output and input lanes; default to the layer's own ``pe``/``simd`` or 1.
    ram_style : str
        Where the constant memories (weights, schedule, thresholds) go: ``auto`` (synthesis
        chooses), ``block`` or ``logic`` (:class:`~hwbnn.hw.fold.LayerFold`).
    """

    def __init__(self, layer, pe: int | None = None, simd: int | None = None,
                 ram_style: str = "auto"):
        if not isinstance(layer, MatVec | Conv):
            raise HwbnnError(f"a layer plan needs a matvec or conv layer, "
                             f"not {type(layer).__name__}")
        pe = pe if pe is not None else (layer.pe or 1)
        simd = simd if simd is not None else (layer.simd or 1)
        check_folding(layer, pe, simd)
        check_ram_style(ram_style)
        self.layer = layer
        self.name, self.kind = layer.name, layer.kind
        self.pe, self.simd = int(pe), int(simd)
        self.ram_style = ram_style
        self.mh, self.mw = layer.mh, layer.mw
        self.sf, self.nf = self.mw // self.simd, self.mh // self.pe
        self.in_encoding = layer.in_encoding
        self.in_bits = encoding_bits(layer.in_encoding)
        self.weight_kind = layer.weights.kind
        self.output_pixels = layer.output_pixels
        self.produces_scores = layer.produces_scores

    # --- weights as planes ------------------------------------------------------------------
    @cached_property
    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return weight_planes(self.layer.weights)

    @property
    def signs(self) -> np.ndarray:
        """Sign bits (1 = +1) per plane, ``(P, MH, MW)`` uint8."""
        return self._planes[0]

    @property
    def masks(self) -> np.ndarray:
        """Usage bits per plane, ``(P, MH, MW)`` uint8."""
        return self._planes[1]

    @property
    def scales(self) -> np.ndarray:
        """Integer plane scales ``a_p``, ``(P,)``."""
        return self._planes[2]

    @property
    def planes(self) -> int:
        if self.weight_kind in ("residual", "integer"):
            return int(self.layer.weights.planes.shape[0])
        return 1

    # --- schedule ---------------------------------------------------------------------------
    @cached_property
    def _usage(self) -> tuple[np.ndarray, np.ndarray]:
        """Per plane and tile ``(P, NF, SF)``: the plane takes a step (some weight uses it, or
        plane 0 of an empty tile), and every weight of the tile uses it."""
        shape = (-1, self.nf, self.pe, self.sf, self.simd)
        tiles = self.masks.reshape(shape).astype(bool)
        used, full = tiles.any(axis=(2, 4)), tiles.all(axis=(2, 4))
        used[0] |= ~used.any(axis=0)
        return used, full

    @property
    def used(self) -> np.ndarray:
        """Which plane steps each tile takes, ``(P, NF, SF)`` bool."""
        return self._usage[0]

    @cached_property
    def steps(self) -> int:
        """Steps per input vector: NF * SF plus the extra plane steps."""
        if self.planes == 1:  # one plane: every tile takes exactly one step
            return self.nf * self.sf
        return int(self.used.sum())

    @cached_property
    def needs_mask(self) -> bool:
        """Some step's tile has weights that do not use its plane: the ROM stores masks."""
        if self.weight_kind == "binary":
            return False
        used, full = self._usage
        return bool((used & ~full).any())

    @cached_property
    def irregular(self) -> bool:
        """Tiles take different plane steps (the sequencer needs a per-tile schedule)."""
        used = self.used
        return bool((used != used[:, :1, :1]).any())

    @cached_property
    def schedule_in_rom(self) -> bool:
        """An irregular schedule whose tiles each take a prefix of the planes (residual weights:
        plane ``p`` serves the weights of more than ``p`` bits). The plane is then the slot, and
        the only per-tile fact is where a tile's steps end: one bit a step (see
        :meth:`ends_ahead`), no schedule table in logic."""
        used = self.used
        return self.irregular and bool((used[1:] <= used[:-1]).all())

    @property
    def schedule_apart(self) -> bool:
        """The schedule's bits sit in a memory of their own (one bit wide, same address) rather
        than on top of the weight word: for a word wider than one bit (a power of two as a
        rule, where one bit more costs a block column on iCE40: 33 bits take 3 blocks of 16
        where 32 take 2) and at most :data:`SCHEDULE_APART_STEPS` steps, where the one-bit
        memory stays in logic at a few LUTs. A one-bit word takes the bit in (every family
        has a two-bit block mode), and so does a deeper memory: there the one-bit memory
        would cost more LUTs than the column (digits mix at 1x2: 717 steps, 138 LUTs more on
        iCE40)."""
        return (self.schedule_in_rom and self.pe * self.simd * (1 + self.needs_mask) > 1
                and self.steps <= SCHEDULE_APART_STEPS)

    @property
    def schedule_in_word(self) -> bool:
        """The schedule's bit rides on top of the weight word (not :attr:`schedule_apart`)."""
        return self.schedule_in_rom and not self.schedule_apart

    def ends_ahead(self) -> np.ndarray:
        """Per step ``k``, whether step ``k + 1`` (step 0 after the last) is the last of its
        tile, ``(steps,)`` uint8. The sequencer reads step k's word when k issues, so the
        bit of the next step is at hand when the step counter moves (hw/mvtu.py,
        docs/design.md section 4)."""
        return np.roll(self.last_steps(), -1).astype(np.uint8)

    def last_steps(self) -> np.ndarray:
        """Per step, whether it is the last of its tile, ``(steps,)`` bool."""
        nf, sf, _ = self.step_tiles()
        tile = nf * self.sf + sf
        return np.append(tile[1:] != tile[:-1], True)

    def step_tiles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nf, sf, plane) of every step, in step order."""
        return np.nonzero(self.used.transpose(1, 2, 0))

    def tile_rows(self, nf: int) -> np.ndarray:
        """Rows of neuron fold ``nf`` in PE order: row ``nf*PE + p`` goes to PE ``p``."""
        return nf * self.pe + np.arange(self.pe)

    def tile_cols(self, sf: int) -> np.ndarray:
        return sf * self.simd + np.arange(self.simd)

    @property
    def plane_schedule(self) -> list[list[int]]:
        """Planes per tile, tile order (nf, sf)."""
        used = self.used.transpose(1, 2, 0).reshape(-1, self.used.shape[0])
        return [np.flatnonzero(row).tolist() for row in used]

    @property
    def max_slots(self) -> int:
        """Most weight-plane steps of one tile (the sequencer's slot counter counts them)."""
        return int(self.used.sum(axis=0).max())

    @property
    def cycles_per_vector(self) -> int:
        """Clock cycles per input vector at II = 1: the steps."""
        return self.steps

    @property
    def cycles_per_frame(self) -> int:
        return self.steps * self.output_pixels

    @property
    def input_fifo_depth(self) -> int:
        """Beats of the FIFO in front of this layer's MVTU (see :data:`MAX_FIFO_DEPTH`)."""
        return min(self.sf + 2, MAX_FIFO_DEPTH)

    # --- memory images ----------------------------------------------------------------------
    @cached_property
    def weight_image(self) -> np.ndarray:
        """The weight ROM as a (steps, width) bit matrix: per step, the PE x SIMD sign bits of
        its tile and plane (bit ``p*SIMD + s`` = PE p, lane s), then the mask bits at offset
        ``PE*SIMD`` where needed."""
        used = self.used.transpose(1, 2, 0)  # (NF, SF, P): step order nf, sf, plane
        shape = (-1, self.nf, self.pe, self.sf, self.simd)
        order = (1, 3, 0, 2, 4)  # -> (NF, SF, P, PE, SIMD)
        image = self.signs.reshape(shape).transpose(order)[used].reshape(self.steps, -1)
        if self.needs_mask:
            masks = self.masks.reshape(shape).transpose(order)[used]
            image = np.concatenate([image, masks.reshape(self.steps, -1)], axis=1)
        return image

    @cached_property
    def rom_image(self) -> np.ndarray:
        """The weight memory as a (steps, rom_width) bit matrix: :attr:`weight_image`, and with
        :attr:`schedule_in_word` one more column on top, :meth:`ends_ahead`."""
        if not self.schedule_in_word:
            return self.weight_image
        return np.concatenate([self.weight_image, self.ends_ahead()[:, None]], axis=1)

    def rom_words(self) -> list[int]:
        """Weight-memory contents, word k = step k (see :attr:`rom_image`)."""
        return pack_rows(self.rom_image)

    @property
    def rom_width(self) -> int:
        return self.pe * self.simd * (2 if self.needs_mask else 1) + self.schedule_in_word

    @property
    def weight_bits(self) -> int:
        """Bits of the weight memory (signs, and masks where a tile mixes plane usage, and
        the schedule's bit a step where it has one)."""
        return self.steps * (self.rom_width + self.schedule_apart)

    @property
    def signed_input(self) -> bool:
        """Two's-complement input elements (``intN``: the int8 path, pool sums)."""
        return is_signed_int(self.in_encoding)

    # --- accumulator domain -----------------------------------------------------------------
    @property
    def popcount_domain(self) -> bool:
        """Binary inputs: the accumulator holds scaled popcounts (see module docstring)."""
        return self.in_encoding == "binary"

    @cached_property
    def _offsets(self) -> np.ndarray:
        return np.einsum("p,prc->r", self.scales, self.masks.astype(np.int64))

    def offsets(self) -> np.ndarray:
        """Per row: ``sum_p a_p * popcount(mask)`` (the popcount-domain constant)."""
        return self._offsets

    @cached_property
    def _acc_bounds(self) -> tuple[int, int]:
        if self.popcount_domain:
            return 0, int(self._offsets.max())
        lo, hi = encoding_range(self.in_encoding)
        signs = 2 * self.signs.astype(np.int64) - 1
        contrib = self.scales[:, None, None] * self.masks * signs
        low = np.minimum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        high = np.maximum(contrib * lo, contrib * hi).sum(axis=(0, 2))
        return int(low.min()), int(high.max())

    def acc_bounds(self) -> tuple[int, int]:
        """Range of every partial accumulation (any subset of steps) of any row."""
        return self._acc_bounds

    def hw_thresholds(self) -> np.ndarray | None:
        """Thresholds in the accumulator's domain, clamped to [lo, hi + 1] (same results)."""
        if self.layer.thresholds is None:
            return None
        t = self.layer.thresholds.astype(np.int64)
        if self.popcount_domain:
            off = self._offsets[:, None]
            return np.clip(ceil_div(t + off, 2), 0, off + 1)
        lo, hi = self._acc_bounds
        return np.clip(t, lo, hi + 1)

    @property
    def acc_width(self) -> int:
        """Signed width of the hardware accumulator (partial sums and thresholds)."""
        lo, hi = self._acc_bounds
        return signed_width(lo, hi + 1)

    @property
    def acc_bits(self) -> int:
        """Width of each PE's accumulator register: in the popcount domain it never goes below
        0 and its thresholds lie in [0, hi + 1], so it is unsigned and one bit narrower."""
        return self.acc_width - 1 if self.popcount_domain else self.acc_width

    @property
    def carry_lane(self) -> bool:
        """Binary inputs with one plane of scale 1: each popcount's last lane skips the tree
        and enters the accumulator as carry-in (free on iCE40/ECP5 carry chains)."""
        return (self.popcount_domain and self.simd > 1
                and [int(a) for a in self.scales] == [1])

    @property
    def out_encoding(self) -> str | None:
        return self.layer.out_encoding

    @property
    def out_bits(self) -> int:
        """Bits per output element: the encoding's, or the layer's acc_width for scores."""
        if self.produces_scores:
            return self.layer.acc_width
        return encoding_bits(self.layer.out_encoding)

    @property
    def levels(self) -> int:
        """Thresholds per output (0 for a scores layer)."""
        return 0 if self.produces_scores else encoding_levels(self.out_encoding)

    @property
    def threshold_fields(self) -> int:
        """Values per row in the threshold ROM: the levels, or one popcount offset for a
        scores layer with binary inputs, or none."""
        if self.produces_scores:
            return int(self.popcount_domain)
        return self.levels

    def threshold_table(self) -> np.ndarray | None:
        """Per row, the values the threshold ROM holds, ``(MH, fields)``; None without one."""
        if self.threshold_fields == 0:
            return None
        if self.produces_scores:
            return self._offsets[:, None]
        return self.hw_thresholds()

    def threshold_image(self) -> np.ndarray | None:
        """The threshold ROM as a (NF, width) bit matrix: per neuron fold the fields of its
        PEs, PE 0 lowest, each ``acc_width`` bits two's complement."""
        table = self.threshold_table()
        if table is None:
            return None
        return twos_complement_bits(table.reshape(self.nf, -1), self.acc_width).reshape(self.nf, -1)

    # --- datapath -----------------------------------------------------------------------------
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
    def fan_in_bits(self) -> int:
        """Input bits entering the datapath per step: SIMD elements of in_bits."""
        return self.simd * self.in_bits

    @property
    def memory_attrs(self) -> dict[str, str]:
        """Attributes of the constant memories (weights, schedule, thresholds): the
        ``ram_style`` that Yosys's ``memory_libmap`` obeys, on a ROM as on a RAM."""
        return {} if self.ram_style == "auto" else {"ram_style": self.ram_style}

    @property
    def weight_rom(self) -> MemoryShape:
        return MemoryShape(f"{self.name}.weights", self.steps, self.rom_width, rom=True,
                           style=self.ram_style, **rom_columns(self.rom_image))

    @property
    def schedule_rom(self) -> MemoryShape | None:
        """The schedule's memory where it sits apart (:attr:`schedule_apart`)."""
        if not self.schedule_apart:
            return None
        return MemoryShape(f"{self.name}.ends", self.steps, 1, rom=True,
                           style=self.ram_style, **rom_columns(self.ends_ahead()[:, None]))

    @property
    def input_buffer(self) -> MemoryShape:
        return MemoryShape(f"{self.name}.inbuf", self.sf, self.simd * self.in_bits, rom=False,
                           shared_address=True)

    @property
    def threshold_rom(self) -> MemoryShape | None:
        if self.threshold_fields == 0:
            return None
        return MemoryShape(f"{self.name}.thresholds", self.nf,
                           self.pe * self.threshold_fields * self.acc_width, rom=True,
                           style=self.ram_style, **rom_columns(self.threshold_image()))

    @property
    def memories(self) -> list[MemoryShape]:
        return [m for m in (self.weight_rom, self.input_buffer, self.threshold_rom,
                            self.schedule_rom) if m is not None]

    # --- what synthesis sees of a weight table in logic ---------------------------------------
    def _changing_lanes(self) -> np.ndarray:
        """Per lane (PE x SIMD), whether its sign or mask changes between steps."""
        lanes = self.pe * self.simd
        image = self.weight_image
        varying = (image != image[:1]).any(axis=0)
        return varying[:lanes] | (varying[lanes:] if self.needs_mask else False)

    def varying_sign_lanes(self) -> int:
        """Lanes whose weight sign changes between steps; the others see a constant sign, which
        synthesis folds into the lane when the weight table is in logic."""
        signs = self.weight_image[:, :self.pe * self.simd]
        return int((signs != signs[:1]).any(axis=0).sum())

    def lane_weights(self) -> tuple[int, int, int]:
        """Lanes (PE x SIMD) by their weight over the steps: (varying, constant and used,
        constant zero)."""
        lanes = self.pe * self.simd
        changes = self._changing_lanes()
        dead = (~self.weight_image[:, lanes:].any(axis=0) if self.needs_mask
                else np.zeros(lanes, dtype=bool))
        return int(changes.sum()), int((~changes & ~dead).sum()), int(dead.sum())

    def negative_constant_lanes(self) -> int:
        """Lanes whose weight never changes and is used with sign -1."""
        lanes = self.pe * self.simd
        first = self.weight_image[0]
        used = first[lanes:].astype(bool) if self.needs_mask else np.ones(lanes, bool)
        return int((~self._changing_lanes() & used & (first[:lanes] == 0)).sum())

    # --- counts of the IR layer -----------------------------------------------------------------
    @property
    def macs_per_frame(self) -> int:
        """Multiply-accumulates of the IR layer per frame (every weight, zero or not)."""
        return self.mh * self.mw * self.output_pixels

    @cached_property
    def weight_bits_stored(self) -> int:
        return int(self.layer.weights.bitwidths().sum())

    @cached_property
    def nonzero_weights(self) -> int:
        return int(np.count_nonzero(self.layer.weights.values()))

    @cached_property
    def plane_macs(self) -> int:
        """Weight-plane bits in use (a residual weight of b bits counts b)."""
        return int(self.masks.sum(dtype=np.int64))

    # --- numpy model of the schedule (checks the plan without simulation) ---------------------
    def reference_acc(self, x: np.ndarray) -> np.ndarray:
        """Accumulators ``(N, MH)`` as the hardware forms them, step by step, for value vectors
        ``(N, MW)``."""
        x = np.asarray(x, dtype=np.int64)
        acc = np.zeros((len(x), self.mh), dtype=np.int64)
        for nf, sf, plane in zip(*self.step_tiles(), strict=True):
            rows, cols = self.tile_rows(nf), self.tile_cols(sf)
            s = self.signs[plane][np.ix_(rows, cols)].astype(np.int64)
            m = self.masks[plane][np.ix_(rows, cols)].astype(np.int64)
            xs = x[:, cols]
            if self.popcount_domain:
                lane = ((xs[:, None, :] > 0) == (s[None] > 0)) * m[None]
            else:
                lane = m[None] * (2 * s[None] - 1) * xs[:, None, :]
            acc[:, rows] += self.scales[plane] * lane.sum(axis=2)
        return acc

    def reference_dot(self, x: np.ndarray) -> np.ndarray:
        """The layer's accumulators in the IR's domain, from :meth:`reference_acc`."""
        acc = self.reference_acc(x)
        return 2 * acc - self._offsets[None] if self.popcount_domain else acc
