"""ASIC estimates: area (um^2, gate equivalents) from open cell areas, energy per frame.

Area: the generated design mapped by Yosys to simple gates (``abc -g``) and counted with the
cell areas of the SkyWater SKY130 high-density library; the estimator predicts that area from
the same structural features as the FPGA estimators (coefficients fitted by
``hwbnn cost calibrate --family asic``). One gate equivalent (GE) is one NAND2 (nand2_1).

Energy: operation counts per frame times per-operation energies at 45 nm (Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014, figure on energy per operation),
scaled to other nodes to first order.
"""

from __future__ import annotations

from ..errors import HwbnnError

# SkyWater SKY130 sky130_fd_sc_hd standard cells (Apache-2.0, github.com/google/skywater-pdk):
# cell area = width x 2.72 um row height, widths in 0.46 um placement sites from the
# library's LEF: inv_1 / nand2_1 / nor2_1 3 sites, and2_1 / or2_1 5, xor2_1 / xnor2_1 7,
# mux2_1 9, dfxtp_1 (positive-edge D flip-flop) 16.
SITE_UM2 = 0.46 * 2.72
CELL_SITES = {"inv_1": 3, "nand2_1": 3, "nor2_1": 3, "and2_1": 5, "or2_1": 5, "xor2_1": 7,
              "xnor2_1": 7, "mux2_1": 9, "dfxtp_1": 16, "conb_1": 3}
CELL_AREA_UM2 = {cell: sites * SITE_UM2 for cell, sites in CELL_SITES.items()}
GE_UM2 = CELL_AREA_UM2["nand2_1"]

# Yosys internal gate -> the sky130 cell that implements it.
YOSYS_GATES = {"$_NOT_": "inv_1", "$_NAND_": "nand2_1", "$_NOR_": "nor2_1", "$_AND_": "and2_1",
               "$_OR_": "or2_1", "$_XOR_": "xor2_1", "$_XNOR_": "xnor2_1", "$_MUX_": "mux2_1",
               "$_DFF_P_": "dfxtp_1", "$_BUF_": None}
# The gate set given to ``abc -g`` (each has a one-cell sky130 equivalent above).
ABC_GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"


def mapped_area(cells: dict[str, int]) -> float:
    """Area (um^2) of a Yosys gate-level cell count; HwbnnError for an unknown cell."""
    area = 0.0
    for cell, count in cells.items():
        if cell == "$scopeinfo":
            continue
        if cell not in YOSYS_GATES:
            raise HwbnnError(f"gate-level netlist has cell {cell!r}, which has no sky130 area")
        if YOSYS_GATES[cell] is not None:
            area += CELL_AREA_UM2[YOSYS_GATES[cell]] * count
    return area


# --- energy ------------------------------------------------------------------------------
# Horowitz, ISSCC 2014 (45 nm, 0.9 V): integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ; integer
# multiply 8 bit 0.2 pJ, 32 bit 3.1 pJ; SRAM read of 64 bits: 8 KB 10 pJ, 32 KB 20 pJ,
# 1 MB 100 pJ; DRAM 1.3-2.6 nJ per 64 bits.
ADD_PJ_PER_BIT = 0.1 / 32       # 32-bit add, per bit (the 8-bit figure gives 0.0038)
SRAM_PJ_PER_BIT = ((8 * 1024 * 8, 10 / 64), (32 * 1024 * 8, 20 / 64),
                   (1024 * 1024 * 8, 100 / 64))
# A 1-bit XNOR lane feeding a popcount: one full-adder bit of the tree per lane on average
# (a tree over n bits has about n adder bits), so it costs one adder bit.
XNOR_POPCOUNT_PJ_PER_LANE = ADD_PJ_PER_BIT
# A flip-flop write per bit: not in Horowitz's table; taken as one adder bit, the same
# order as a register-file access per bit in the paper's figure (register file 64-bit
# read ~ a 32-bit add).
REGISTER_PJ_PER_BIT = ADD_PJ_PER_BIT

# First-order node scaling of switching energy, E ~ C V^2 with C ~ feature size: nominal
# supplies 45 nm 0.9 V (Horowitz's figures), 28 nm 0.9 V, 7 nm 0.7 V (foundry nominal core
# voltages). This ignores wire-dominated effects; treat other nodes as rough.
NODES = {45: (45, 0.9), 28: (28, 0.9), 7: (7, 0.7)}


def node_scale(node: int) -> float:
    """Energy factor from 45 nm to ``node`` nm."""
    if node not in NODES:
        raise HwbnnError(f"node must be one of {', '.join(map(str, NODES))} (nm), not {node!r}")
    feature, volts = NODES[node]
    base_feature, base_volts = NODES[45]
    return (feature / base_feature) * (volts / base_volts) ** 2


# A 64-bit register bank is the small end: register energy per bit. Between it and the
# SRAM sizes of the table, energy per bit is interpolated linearly in log(size) / log(energy)
# (access energy grows with the array's wire length, so smoothly with its size).
MEMORY_ENERGY_POINTS = ((64, REGISTER_PJ_PER_BIT), *SRAM_PJ_PER_BIT)


def sram_pj_per_bit(memory_bits: int) -> float:
    """Access energy per bit of a memory holding ``memory_bits`` (log-log interpolation of
    :data:`MEMORY_ENERGY_POINTS`, clamped at both ends)."""
    import math

    points = MEMORY_ENERGY_POINTS
    if memory_bits <= points[0][0]:
        return points[0][1]
    for (size_a, energy_a), (size_b, energy_b) in zip(points, points[1:], strict=False):
        if memory_bits <= size_b:
            t = math.log(memory_bits / size_a) / math.log(size_b / size_a)
            return math.exp(math.log(energy_a) + t * math.log(energy_b / energy_a))
    return SRAM_PJ_PER_BIT[-1][1]
