"""Structural features of generated components: the quantities that LUTs, flip-flops and area
scale with, counted from profiles. The estimators are linear in these features; the
coefficients are fitted against synthesis by :mod:`.calibrate` and shipped as JSON.

Each feature counts bits of one kind of hardware, so a coefficient reads as "cells per bit":

=================  ==========================================================================
feature            what it counts (per component)
=================  ==========================================================================
const              one per component (handshake, control)
popcount_bits      adder bits of the per-PE popcount trees (binary / ternary inputs)
addtree_bits       adder bits of the per-PE signed adder trees (unsigned inputs)
lane_bits          lane logic in front of the trees: PE*SIMD*(in_bits+1) for unsigned inputs
                   (mask and negate), PE*SIMD per popcount with masks (XNOR folds into adders)
tree_reg_bits      pipeline-register bits inside the adder trees
acc_bits           PE * accumulator width (accumulate adders and registers)
scale_bits         PE * accumulator width * (distinct plane scales - 1): the scale multiplexer
compare_bits       PE * threshold levels * accumulator width (comparators); scores: PE * acc
out_bits           PE * output bits (output register)
in_word_bits       SIMD * input bits (input word register, fresh/buffer multiplexer)
counter_bits       sequencer counters (step, tile, slot, neuron fold, synapse fold)
schedule_tiles     tiles of an irregular plane schedule (a constant table in logic)
rom_luts           LUTs of constant memories left in logic: width * ceil(depth / 2^k), k inputs
rom_reg_bits       the synchronous read register of those memories
ram_bits           bits of writable memories left in flip-flops
ram_words          their words (write decode)
lutram_cells       LUT-RAM primitives (ECP5 TRELLIS_DPR16X4, 7-series RAM32M)
fifo_bits          FIFO output register bits (SyncFIFOBuffered) and handshake per bit
=================  ==========================================================================
"""

from __future__ import annotations

from math import ceil, log2

from .memory import MemoryMapping
from .memory import map_memory as _map_fpga_memory
from .profile import LayerProfile, MemoryShape, StreamProfile

FEATURES = ("const", "popcount_bits", "addtree_bits", "lane_bits", "tree_reg_bits", "acc_bits",
            "scale_bits", "compare_bits", "out_bits", "in_word_bits", "counter_bits",
            "schedule_tiles", "rom_luts", "rom_reg_bits", "ram_bits", "ram_words",
            "lutram_cells", "fifo_bits")

# LUT inputs per family: iCE40 SB_LUT4, ECP5 LUT4 (Lattice data sheets), 7-series LUT6 (UG474).
LUT_INPUTS = {"ice40": 4, "ecp5": 4, "xc7": 6, "asic": 4}


def _clog2(n: int) -> int:
    return max(1, ceil(log2(max(n, 2))))


def map_memory(memory: MemoryShape, family: str) -> MemoryMapping:
    """FPGA families: yosys's choice (:mod:`.memory`); ``asic``: every memory in gates, as
    Yosys's generic ``synth`` maps it (no SRAM macros)."""
    if family == "asic":
        return MemoryMapping(memory, "logic", None, 0, 0.0)
    return _map_fpga_memory(memory, family)


def memory_features(mappings: list[MemoryMapping], family: str) -> dict[str, float]:
    """Features of memories that did not land in block RAM."""
    k = LUT_INPUTS[family]
    features = dict.fromkeys(("rom_luts", "rom_reg_bits", "ram_bits", "ram_words",
                              "lutram_cells"), 0.0)
    for mapping in mappings:
        memory = mapping.memory
        if mapping.kind == "distributed":
            features["lutram_cells"] += mapping.cells
        elif mapping.in_logic and memory.rom:
            features["rom_luts"] += memory.width * ceil(memory.depth / 2 ** k)
            features["rom_reg_bits"] += memory.width
        elif mapping.in_logic:
            features["ram_bits"] += memory.bits
            features["ram_words"] += memory.depth
    return features


def mvtu_features(profile: LayerProfile, family: str) -> tuple[dict[str, float],
                                                               list[MemoryMapping]]:
    """Features of one matrix-vector-threshold unit and the mapping of its memories."""
    pe, simd = profile.pe, profile.simd
    tree = profile.tree
    pops = profile.popcounts_per_pe
    mask_lanes = pe * simd * pops if profile.needs_mask else 0
    scales = len(set(int(a) for a in profile.scales))
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({
        "const": 1.0,
        "popcount_bits": pe * pops * tree.adder_bits,
        "addtree_bits": 0 if pops else pe * tree.adder_bits,
        "lane_bits": mask_lanes if pops else pe * simd * (profile.in_bits + 1),
        "tree_reg_bits": pe * max(pops, 1) * tree.register_bits,
        "acc_bits": pe * profile.acc_width,
        "scale_bits": pe * profile.acc_width * (scales - 1),
        "compare_bits": pe * profile.acc_width * max(profile.levels,
                                                     int(profile.produces_scores)),
        "out_bits": pe * profile.out_bits,
        "in_word_bits": profile.fan_in_bits,
        "counter_bits": (_clog2(profile.steps) + _clog2(profile.nf) + _clog2(profile.sf)
                         + (2 * _clog2(profile.nf * profile.sf) if profile.irregular else 0)),
        "schedule_tiles": profile.nf * profile.sf if profile.irregular else 0,
    })
    mappings = [map_memory(memory, family) for memory in profile.memories]
    features.update(memory_features(mappings, family))
    return features, mappings


def fifo_features(stream: StreamProfile, family: str) -> tuple[dict[str, float],
                                                               list[MemoryMapping]]:
    """Features of a stream FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``: depth - 1 words of
    memory plus an output register)."""
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({"const": 1.0, "fifo_bits": stream.width,
                     "counter_bits": 2 * _clog2(stream.depth)})
    mappings = []
    if stream.depth > 1:
        mappings.append(map_memory(MemoryShape(stream.memory.name, stream.depth - 1,
                                               stream.width, rom=False), family))
    features.update(memory_features(mappings, family))
    return features, mappings


def apply(coefficients: dict[str, float], features: dict[str, float]) -> float:
    """Linear model: sum of coefficient * feature."""
    return sum(coefficients.get(name, 0.0) * value for name, value in features.items())
