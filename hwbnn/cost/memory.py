"""Where a memory lands on an FPGA: block RAM (the families' real block shapes), LUT RAM or logic.

Yosys's ``memory_libmap`` (the pass every ``synth_*`` script uses) chooses the cheapest of
three mappings for each memory, and the estimator makes the same choice with the same costs:

* soft logic: ``bits * 1/16`` for a ROM, ``bits * 1`` for a RAM (the pass's defaults,
  ``-logic-cost-rom`` / ``-logic-cost-ram``, yosys passes/memory/memory_libmap.cc);
* block RAM: ``cells * cost`` over the block's depth x width configurations, plus the
  logic the pass adds around the block to emulate what the memory asks and the block lacks
  (``FACTOR_EMU = 2`` per point of its ``score_emu_ports``: 3 points for a read-first or
  transparency emulation, 2 for a read register's init value, 2 for its synchronous reset,
  1 for a read port not shared with a write port);
* distributed (LUT) RAM where the family has it: ``cells * cost``.

Ties go to logic, as in the pass (a RAM mapping must be strictly cheaper), then to LUT RAM.
A memory with a ``ram_style`` (:attr:`MemoryShape.style`: the folding's, docs/design.md
section 4) goes where it says, as the pass obeys the attribute: ``logic``, or the cheapest
block-RAM configuration for ``block``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil

from ..errors import HwbnnError
from .profile import MemoryShape

# memory_libmap defaults (yosys passes/memory/memory_libmap.cc: logic_cost_rom = 1/16,
# logic_cost_ram = 1), and its FACTOR_MUX = FACTOR_DEMUX = 0.5: the read multiplexer over
# cells stacked in depth costs half a unit per data bit and extra cell, the write-enable
# demultiplexer half a unit per stacked cell.
LOGIC_COST_ROM = 1 / 16
LOGIC_COST_RAM = 1.0
FACTOR_MUX = 0.5
FACTOR_DEMUX = 0.5


@dataclass(frozen=True)
class BlockKind:
    """A RAM primitive: its (depth, width) configurations, yosys cost, and how it counts."""

    name: str
    configs: tuple[tuple[int, int], ...]
    cost: float
    # What one cell counts as in the family's block-RAM column (xc7 counts RAMB36 units).
    weight: float = 1.0
    # LUT RAM: ``True`` where the kind needs the read and write port to share the address
    # (a single-port RAM); the part of ``cost`` that scales with the width a unit uses (the
    # library's ``widthscale``); configurations whose width is so many one-bit cells
    # (RAM64X1S, RAM128X1D) rather than one cell a unit (RAM32M, TRELLIS_DPR16X4).
    single_port: bool = False
    width_cost: float = 0.0
    one_bit_cells: tuple[int, ...] = ()


@dataclass(frozen=True)
class FamilyMemories:
    family: str
    blocks: tuple[BlockKind, ...]
    distributed: tuple[BlockKind, ...]
    block_bits: int
    # Emulation cost (FACTOR_EMU * score) of mapping a ROM / a RAM (one write port) to the
    # family's block RAM, in the pass's points, taken from which memories Yosys put in logic
    # across the calibration components and networks: a RAM (a FIFO's storage, an input
    # buffer) pays 5 (its read register's init value and reset, 2 + 2, and a read port not
    # shared with the write port, 1): 65 x 1, 17 x 4 and 9 x 8 FIFOs stay in logic, an
    # 8 x 10 buffer does not; a ROM pays at most 1 (a 271 x 4 ROM, 67 bits of logic cost,
    # went to a block). On ECP5 a RAM pays 1 (the unshared read port): with the write-enable
    # demultiplexer a 33 x 64 FIFO memory costs 257.5 in 48 TRELLIS_DPR16X4 against 258 in
    # 2 DP16KD, and Yosys keeps it in LUT RAM.
    rom_emu: float = 0.0
    ram_emu: float = 0.0
    # memory_libmap's logic cost of a ROM bit: 1/16 by default (a LUT4 holds 16), 1/64 where
    # synth_xilinx passes -logic-cost-rom 0.015625 (a LUT6 holds 64: yosys
    # techlibs/xilinx/synth_xilinx.cc, xc6v / xc7).
    logic_cost_rom: float = LOGIC_COST_ROM


FAMILY_MEMORIES = {
    # iCE40 SB_RAM40_4K: 4 kbit, 256x16, 512x8, 1024x4, 2048x2 (Lattice TN1250 "Memory Usage
    # Guide for iCE40 Devices"); yosys cost 64 (techlibs/ice40/brams.txt). No LUT RAM.
    # memory_libmap also fills one block with 4096 one-bit words (two words per 2-bit word,
    # the low address bit selecting; writes through the 16-bit mode's bit mask), measured
    # with Yosys 0.70 synth_ice40: a 4096x1 ROM or RAM in one block, 4096x3 in three, 8192x1
    # in two; so a 4096x1 configuration stands for it.
    "ice40": FamilyMemories("ice40", (
        BlockKind("SB_RAM40_4K", ((256, 16), (512, 8), (1024, 4), (2048, 2), (4096, 1)), 64),
    ), (), 4096, rom_emu=2 * 1, ram_emu=2 * 5),
    # ECP5 DP16KD: 18 kbit, 16384x1 .. 1024x18, and PDPW16KD 512x36 (Lattice TN1264 "ECP5 and
    # ECP5-5G Memory Usage Guide"); yosys cost 128 (techlibs/lattice/brams_16kd.txt).
    # TRELLIS_DPR16X4: 16x4 LUT RAM, cost 4 (techlibs/lattice/lutrams_trellis.txt).
    "ecp5": FamilyMemories("ecp5", (
        BlockKind("DP16KD", ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18),
                             (512, 36)), 128),
    ), (BlockKind("TRELLIS_DPR16X4", ((16, 4),), 4),), 18432, ram_emu=2 * 1),
    # 7-series RAMB18E1 (16Kx1 .. 1Kx18, 512x36 simple dual port) and RAMB36E1 (32Kx1 ..
    # 1Kx36, 512x72) (Xilinx UG473 "7 Series FPGAs Memory Resources"); yosys costs 129 and
    # 257 (techlibs/xilinx/brams_xc4v.txt, HAS_SIZE_36). Counted in RAMB36 units.
    # LUT RAM as yosys's techlibs/xilinx/lutrams_xc5v.txt and _map.v define it (cost 8 a
    # unit, scaled by the width used): single-port 32 x 8 (RAM32M), 64 x 4, 128 x 2, 256 x 1
    # (RAM64X1S .. RAM256X1S, a cell a bit); dual-port 32 x 4 (RAM32M), 64 x 2, 128 x 1
    # (RAM64X1D, RAM128X1D); simple dual-port 32 x 6, 64 x 3 (RAM32M, RAM64M; 7 of its 8
    # scale). Measured (Yosys 0.70 synth_xilinx): a matrix unit's 112 x 56 input buffer is
    # 56 RAM128X1S, a 65 x 1 FIFO one RAM128X1D, a 64 x 1 buffer one RAM64X1S.
    "xc7": FamilyMemories("xc7", (
        BlockKind("RAMB18E1", ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18),
                               (512, 36)), 129, 0.5),
        BlockKind("RAMB36E1", ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18),
                               (1024, 36), (512, 72)), 257, 1.0),
    ), (BlockKind("LUTRAM_SP", ((32, 8), (64, 4), (128, 2), (256, 1)), 8, single_port=True,
                  width_cost=8, one_bit_cells=(64, 128, 256)),
        BlockKind("LUTRAM_DP", ((32, 4), (64, 2), (128, 1)), 8, width_cost=8,
                  one_bit_cells=(64, 128)),
        BlockKind("LUTRAM_SDP", ((32, 6), (64, 3)), 8, width_cost=7)),
        36864, logic_cost_rom=1 / 64),
}


@dataclass(frozen=True)
class MemoryMapping:
    """The mapping chosen for one memory."""

    memory: MemoryShape
    kind: str  # "logic", "block" or "distributed"
    primitive: str | None
    cells: int
    block_ram: float  # in the family's block-RAM units
    stacked: int = 1  # cells stacked in depth (read multiplexer over them)
    config_width: int = 0  # data width of the block configuration chosen

    @property
    def in_logic(self) -> bool:
        return self.kind == "logic"


def _cells(memory: MemoryShape, block: BlockKind) -> tuple[float, int, int, int]:
    """(cost, cells, cells stacked in depth, configuration width) of the cheapest
    configuration of ``block``."""
    options = []
    for depth, width in block.configs:
        stacked = ceil(memory.depth / depth)
        # memory_libmap packs a ROM's (address block, bit column) slices into cells: a
        # 6,144 x 3 ROM at 2048 x 2 is 9 slices in 5 cells, not 3 x 2. A RAM's word is
        # padded to the cell width (its write enables), so each address block takes whole
        # cells.
        cells = (ceil(stacked * memory.width / width) if memory.rom
                 else ceil(memory.width / width) * stacked)
        mux = FACTOR_MUX * memory.width * (stacked - 1)
        if not memory.rom and stacked > 1:
            mux += FACTOR_DEMUX * stacked
        # A width-scaled cost: the unscaled part per unit, the scaled part per bit used.
        cost = (cells * (block.cost - block.width_cost)
                + block.width_cost * stacked * memory.width / width)
        if depth in block.one_bit_cells:
            cells = stacked * memory.width
        options.append((cost + mux, cells, stacked, width))
    return min(options)


def map_memory(memory: MemoryShape, family: str) -> MemoryMapping:
    """Choose logic, block RAM or LUT RAM for ``memory`` on ``family`` (yosys's rule)."""
    if family not in FAMILY_MEMORIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILY_MEMORIES)}, not {family!r}")
    fam = FAMILY_MEMORIES[family]
    if memory.rom and memory.varying_columns is not None:
        # Yosys's opt_mem drops a ROM's constant bit columns before the mapping, so only the
        # varying columns are mapped (and counted).
        memory = replace(memory, width=memory.varying_columns)
    # The pass compares against the integer part of the logic cost.
    best = MemoryMapping(memory, "logic", None, 0, 0.0)
    if memory.style == "logic":
        return best
    best_cost = (float("inf") if memory.style == "block"
                 else int(memory.bits * (fam.logic_cost_rom if memory.rom else LOGIC_COST_RAM)))
    # LUT RAM is tried before block RAM, so on a tie Yosys keeps the LUT RAM. LUT RAM kinds
    # hold no ROM (the libraries' ``prune_rom``).
    candidates = [(block, "distributed") for block in fam.distributed
                  if not memory.rom and (memory.shared_address or not block.single_port)
                  and memory.style == "auto"]
    candidates += [(block, "block") for block in fam.blocks]
    for block, kind in candidates:
        cost, cells, stacked, width = _cells(memory, block)
        if kind == "block":
            cost += fam.rom_emu if memory.rom else fam.ram_emu
        if cost < best_cost:
            best_cost = cost
            best = MemoryMapping(memory, kind, block.name, cells,
                                 cells * block.weight if kind == "block" else 0.0, stacked,
                                 width)
    return best
