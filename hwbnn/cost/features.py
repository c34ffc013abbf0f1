"""Structural features of generated components: the quantities that LUTs, flip-flops and area
scale with, counted from profiles. The estimators are linear in these features (summed into a
few groups per target, see :data:`GROUPS`); the coefficients are fitted against synthesis by
:mod:`.calibrate` and shipped as JSON.

==================  =========================================================================
feature             what it counts (per component)
==================  =========================================================================
const               one per MVTU (handshake, pipeline control)
popcount_bits       adder bits of the per-PE popcount trees (binary / ternary inputs) on
                    carry chains
soft_adder_luts     LUTs of tree adders too narrow for the family's carry chain (see
                    :func:`soft_adder_luts`)
lane_merge_luts     the LUTs more those adders take on the tree's lanes when synthesis
                    merges the lane logic (XNOR, masks, sign select) into them
mask_lanes          lanes ANDed with a weight mask (tiles that mix plane usage)
ternary_lanes       lanes decoding ternary inputs (nonzero / sign into the two popcounts)
ternary_sub_bits    the 2 * agree - used subtraction of ternary inputs
addtree_bits        adder bits of the per-PE signed adder trees (unsigned inputs) on carry
                    chains
uint_lanes          lanes of unsigned inputs (mask and sign select per lane)
negate_bits         their conditional negation, (bits + 1) per lane whose weight sign varies
uint_lane_luts      the unsigned lanes' logic counted per output bit (see
                    :func:`_uint_lane_luts`; used for gates)
tree_reg_bits       pipeline-register bits inside the adder trees (every level registered)
acc_bits            PE * accumulator width (accumulate adders and registers)
scale_bits          PE * scaled lane-sum width * (distinct plane scales - 1): scale multiplexer
compare_bits        PE * levels * accumulator width, thresholds from a table (NF > 1);
                    gates: the table's distinct columns (:func:`shared_compare_bits`)
compare_const_bits  the same against constant thresholds (NF = 1); scores count one level
count_bits          PE * levels for multi-level outputs (summing the comparisons)
out_bits            PE * output bits (output register)
in_word_bits        SIMD * input bits (input word register, fresh/buffer multiplexer)
counter_bits        sequencer counters (step, neuron fold, synapse fold)
rom_luts            LUTs of constant memories left in logic (see :func:`rom_luts_per_bit`;
                    gates: :func:`rom_gates`), and of the constant plane table of an
                    irregular schedule whose tiles do not take a prefix of the planes
                    (integer weights, :func:`schedule_luts`)
rom_reg_bits        the synchronous read register of those memories
rom_lane_bits       lane bits fed by a weight table in logic, times its address bits
ram_bits            bits of writable memories left in flip-flops
ram_mux_bits        their read multiplexers: width * (depth - 1)
ram_words           their words (write decode)
lutram_cells        LUT-RAM primitives (ECP5 TRELLIS_DPR16X4, 7-series RAM32M)
stack_mux_bits      read multiplexers over RAM cells stacked in depth: width * (stack - 1)
fifo_const          one per FIFO
fifo_bits           FIFO width (output register, data path)
fifo_level_bits     FIFO level and pointer bits (none for a two-deep FIFO)
fifo_wrap_bits      pointer bits compared for the wrap when the inner depth is no power of two
reg_bits            every register bit the generator declares and synthesis keeps (see
                    :func:`mvtu_register_bits`, :func:`fifo_features`): flip-flops are
                    structural, so this one feature (coefficient near 1) predicts them
bypass_bits         writable memories in block RAM: the registers Yosys adds to emulate
                    read-before-write on the block (see :func:`bypass_bits`)
==================  =========================================================================

An unrolled unit (:func:`unrolled_features`) has features of its own: ``unrolled_const`` (one
per unit), ``unrolled_popcount_bits`` and ``unrolled_adder_bits`` (adder bits on carry chains
of its popcounts and of its other adders: trees of wider lanes, run sums, plane scales; a
shared node once), ``unrolled_soft_luts`` (LUTs of its adders too narrow for a carry chain)
and ``unrolled_compare_bits`` (comparator bits against constant thresholds and the level
count), plus ``reg_bits``.
"""

from __future__ import annotations

from math import ceil, log2

from ..hw.plan import LayerPlan, MemoryShape
from .memory import MemoryMapping
from .memory import map_memory as _map_fpga_memory
from .profile import (
    ConverterProfile,
    ElementwiseProfile,
    ForkProfile,
    GlobalPoolProfile,
    StreamProfile,
    TreeShape,
    UnrolledProfile,
    adder_tree,
    layer_tree,
)

# An unrolled unit's (:func:`unrolled_features`), fitted apart (:mod:`.networks`).
UNROLLED_FEATURES = ("unrolled_const", "unrolled_popcount_bits", "unrolled_adder_bits",
                     "unrolled_soft_luts", "unrolled_compare_bits")
FEATURES = ("const", "popcount_bits", "mask_lanes", "ternary_lanes", "ternary_sub_bits",
            "addtree_bits", "uint_lanes", "negate_bits", "tree_reg_bits", "acc_bits", "scale_bits",
            "compare_bits", "compare_const_bits", "count_bits", "out_bits", "in_word_bits",
            "counter_bits", "rom_luts", "rom_reg_bits", "rom_lane_bits",
            "ram_bits", "ram_mux_bits", "ram_words", "lutram_cells", "stack_mux_bits",
            "fifo_const", "fifo_bits", "fifo_level_bits", "fifo_wrap_bits", "reg_bits",
            "bypass_bits", "soft_adder_luts", "lane_merge_luts", "uint_lane_luts",
            "select_luts", *UNROLLED_FEATURES)

# LUT inputs per family: iCE40 SB_LUT4, ECP5 LUT4 (Lattice data sheets), 7-series LUT6 (UG474).
LUT_INPUTS = {"ice40": 4, "ecp5": 4, "xc7": 6, "asic": 4}
# Widest adder a family's flow leaves in LUTs rather than a carry chain: the ``$alu`` techmaps
# refuse narrower ones (yosys techlibs/lattice/arith_map_ccu2c.v: Y_WIDTH <= 4;
# xilinx/arith_map.v: Y_WIDTH <= 2). iCE40 refuses Y_WIDTH <= 2 too (ice40/arith_map.v), but
# there a LUT per sum bit is what the carry chain costs as well (SB_CARRY beside the SB_LUT4),
# so its 2-bit adders stay with the others: two more coefficients for the same LUTs only
# raised the leave-one-out error of the 28 training configs. Gates (asic): no carry chains.
SOFT_ADDER_WIDTH = {"ice40": 0, "ecp5": 4, "xc7": 2, "asic": 0}


def _clog2(n: int) -> int:
    return max(1, ceil(log2(max(n, 2))))


def _power_of_two(value: int) -> bool:
    return value >= 1 and not value & (value - 1)


def _range_bits(n: int) -> int:
    """Width of an Amaranth ``Signal(range(n))``: none for a single value."""
    return max(int(n) - 1, 0).bit_length()


def map_memory(memory: MemoryShape, family: str) -> MemoryMapping:
    """FPGA families: yosys's choice (:mod:`.memory`); ``asic``: every memory in gates, as
    Yosys's generic ``synth`` maps it (no SRAM macros)."""
    if family == "asic":
        return MemoryMapping(memory, "logic", None, 0, 0.0)
    return _map_fpga_memory(memory, family)


def luts_of_function(inputs: int, family: str) -> float:
    """LUTs of one function of ``inputs`` signals: one LUT up to k inputs, else 2^(n-k) LUTs
    joined by the dedicated multiplexers of ECP5 (PFUMX, L6MUX21) and 7-series (MUXF7/8),
    or by 2^(n-k) - 1 more LUTs on iCE40."""
    k = LUT_INPUTS[family]
    if inputs <= 0:
        return 0.0
    if inputs <= k:
        return 1.0
    leaves = 2 ** (min(inputs, MAX_FUNCTION_INPUTS) - k)
    return float(leaves if family in ("ecp5", "xc7") else 2 * leaves - 1)


# Synthesis does not build functions of more inputs than this from one adder bit (above it
# ABC decomposes); measured adder bits reach 7 inputs (15-lane popcount nodes on ECP5).
MAX_FUNCTION_INPUTS = 7


def soft_adder_luts(tree, family: str, lane_inputs=None) -> float:
    """LUTs of a tree's adders that the family leaves in LUTs (:data:`SOFT_ADDER_WIDTH`).

    Each output bit is one function of the operand bits below it (the top bit of all of them).
    With ``lane_inputs`` (bit -> signals one lane's bits 0..bit depend on) the adders on the
    tree's lanes are costed with the lane logic merged in instead.
    """
    total = 0.0
    for adder in tree.adders:
        if adder.width > SOFT_ADDER_WIDTH[family]:
            continue
        for bit in range(adder.width):
            if lane_inputs is not None and adder.on_lanes:
                top = bit if bit < adder.width - 1 else max(adder.a, adder.b) - 1
                inputs = (lane_inputs(min(top, adder.a - 1)) if adder.a else 0) + (
                    lane_inputs(min(top, adder.b - 1)) if adder.b else 0) + (
                    lane_inputs(0) if adder.carry_in else 0)
            else:
                inputs = adder.inputs(bit)
            total += luts_of_function(inputs, family)
    return total


def rom_luts_per_bit(depth: int, k: int, family: str) -> float:
    """LUTs of one output bit of a constant table with ``depth`` words (FPGA families; gates:
    :func:`rom_gates`).

    Two words need no LUT (the bit is an address bit, its inverse or a constant); up to 2^k
    words one LUT; beyond that 2^(a-k) LUTs and a multiplexer tree over them, which iCE40
    builds from LUTs (2^(a-k) - 1 more) while ECP5 (PFUMX, L6MUX21) has dedicated
    multiplexers for it.
    """
    address = _clog2(depth)
    if depth <= 2:
        return 0.0
    if family == "xc7":
        # synth_xilinx maps a counter-addressed table to LUT5 leaves and a tree of 2:1
        # multiplexers in LUTs, no MUXF7/F8: measured on isolated random tables (address
        # from a counter, registered read, as the units have them), 64 / 512 / 2,048 /
        # 4,096 words take about 3 / 33 / 153 / 300 LUTs a bit, against 3 / 31 / 127 / 255
        # here; the MUXF7/F8 tree over LUT6 leaves would be 1 / 11 / 43 / 85.
        k = 5
    if address <= k:
        return 1.0
    leaves = 2 ** (address - k)
    return float(leaves if family == "ecp5" else 2 * leaves - 1)


def rom_gates(memory: MemoryShape) -> float:
    """Two-input gates of a constant table in logic: its information, B = depth x the
    columns' entropy (:attr:`MemoryShape.column_entropy`, else its distinct columns), over
    log2(B). A table is a system of functions of the address, and such a system of B bits
    needs about B / log2(B) gates (the counting argument of Shannon 1949, for several
    outputs Lupanov's), so the columns of a wide table share their address decoding.
    Counting each column apart (depth / log2(depth) gates a column) had given the leave-one-out
    error on the ASIC training rows, components / networks, 4.95% / 3.72%; this gives
    4.18% / 2.05%. Measured alone, a counter-addressed random 4,096 x 1 table takes about 17
    um2 a gate of this count, 16,384 x 1 about 16."""
    if memory.depth <= 2:
        return 0.0
    columns = (memory.column_entropy if memory.column_entropy is not None
               else memory.logic_columns)
    bits = columns * memory.depth
    return bits / log2(max(bits, 4.0))


def memory_features(mappings: list[MemoryMapping], family: str) -> dict[str, float]:
    """Features of memories that did not land in block RAM.

    A one-word memory has no address: a ROM is a constant (no cells), a RAM one register.
    """
    k = LUT_INPUTS[family]
    features = dict.fromkeys(("rom_luts", "rom_reg_bits", "ram_bits", "ram_mux_bits",
                              "ram_words", "lutram_cells", "stack_mux_bits", "reg_bits"), 0.0)
    for mapping in mappings:
        memory = mapping.memory
        if not mapping.in_logic:
            features["stack_mux_bits"] += memory.width * (mapping.stacked - 1)
        # Registers: a ROM in logic keeps its read register (distinct columns only), a RAM
        # in logic its words and read register, a RAM in LUT RAM its read register; block
        # RAMs register inside the block (but see :func:`bypass_bits`).
        if memory.rom:
            if mapping.in_logic and memory.depth > 1:
                features["reg_bits"] += memory.logic_columns
        elif mapping.kind != "block":
            features["reg_bits"] += memory.width * (
                1 + (memory.depth if mapping.in_logic else 0))
        if mapping.kind == "distributed":
            features["lutram_cells"] += mapping.cells
        elif mapping.in_logic and memory.rom and memory.depth > 1:
            columns = memory.logic_columns
            # Gates follow the table's information (rom_gates); a LUT holds 2^k bits
            # whatever they are.
            features["rom_luts"] += (rom_gates(memory) if family == "asic"
                                     else columns * rom_luts_per_bit(memory.depth, k, family))
            features["rom_reg_bits"] += columns
        elif mapping.in_logic and not memory.rom:
            features["ram_bits"] += memory.bits
            if memory.depth > 1:
                features["ram_mux_bits"] += memory.width * (memory.depth - 1)
                features["ram_words"] += memory.depth
    return features


def mvtu_features(profile: LayerPlan, family: str) -> tuple[dict[str, float],
                                                               list[MemoryMapping]]:
    """Features of one matrix-vector-threshold unit and the mapping of its memories."""
    pe, simd = profile.pe, profile.simd
    tree = layer_tree(profile)
    pops = profile.popcounts_per_pe
    ternary_in = profile.in_encoding == "ternary"
    scales = len(set(int(a) for a in profile.scales))
    # The scale multiplexer picks among lane_sum * a_p: the lane sum's width plus the shift.
    lane_sum_width = tree.out_width + (1 if ternary_in else 0)
    scaled_width = lane_sum_width + int(max(profile.scales)).bit_length() - 1

    mappings = [map_memory(memory, family) for memory in profile.memories]
    # Unsigned lanes negate by their weight's sign; a constant sign (weight table in logic)
    # folds the negation away.
    negating_lanes = (profile.varying_sign_lanes() if mappings[0].in_logic
                      else pe * simd)
    soft = tree.adder_bits_up_to(SOFT_ADDER_WIDTH[family])
    soft_luts, merged_luts = _tree_luts(profile, family, mappings[0].in_logic)
    compare = pe * profile.acc_width * max(profile.levels, int(profile.produces_scores))
    # One threshold word per neuron fold: with NF = 1 the thresholds are constants.
    constant_thresholds = profile.nf == 1
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({
        "const": 1.0,
        "popcount_bits": profile.adder_trees * (tree.adder_bits - soft) if pops else 0,
        "soft_adder_luts": soft_luts,
        "lane_merge_luts": merged_luts - soft_luts,
        "mask_lanes": pe * simd * pops if profile.needs_mask else 0,
        "ternary_lanes": pe * simd if ternary_in else 0,
        "ternary_sub_bits": pe * (tree.out_width + 1) if ternary_in else 0,
        "addtree_bits": 0 if pops else pe * (tree.adder_bits - soft),
        "uint_lanes": 0 if pops else pe * simd,
        "negate_bits": 0 if pops else negating_lanes * (profile.in_bits + 1),
        "uint_lane_luts": 0 if pops else _uint_lane_luts(profile, mappings[0].in_logic, family),
        "tree_reg_bits": profile.adder_trees * tree.register_bits,
        "acc_bits": pe * profile.acc_bits,
        "scale_bits": pe * scaled_width * (scales - 1),
        "compare_bits": 0 if constant_thresholds else (
            shared_compare_bits(profile, compare) if family == "asic" else compare),
        "compare_const_bits": compare if constant_thresholds else 0,
        "count_bits": pe * profile.levels if profile.levels > 1 else 0,
        "out_bits": pe * profile.out_bits,
        "in_word_bits": profile.fan_in_bits,
        "counter_bits": _clog2(profile.steps) + _clog2(profile.nf) + _clog2(profile.sf),
    })
    features.update(memory_features(mappings, family))
    # A plane table is a constant table in logic like a ROM's (one LUT per output bit for
    # every 2^k entries): one feature. Since the mixes' schedules moved into the weight
    # memory, no calibration config has a table of its own to fit a coefficient on.
    features["rom_luts"] += schedule_luts(profile, family)
    # Signs and masks from a weight table in logic merge into the lane logic: every lane bit
    # becomes a function of the table's address bits too.
    weights = mappings[0]
    if weights.in_logic and weights.memory.depth > 1:
        lane_bits = pe * simd * (pops or profile.in_bits + 1)
        features["rom_lane_bits"] = lane_bits * _clog2(weights.memory.depth)
    features["reg_bits"] += mvtu_register_bits(profile, family, weights.in_logic)
    # The input buffer reads and writes one address, so Yosys can map it to one read-write
    # port, which reads the old word during a write on ECP5's DP16KD up to 18 bits wide;
    # iCE40's block cannot, nor ECP5's 36-bit mode (PDPW16KD, separate ports): there Yosys
    # adds the bypass. A FIFO's ports differ (fifo_features): every family adds it there.
    features["bypass_bits"] = sum(
        bypass_bits(mapping.memory) for mapping in mappings
        if mapping.kind == "block" and not mapping.memory.rom
        and (family != "ecp5" or mapping.config_width > 18))
    return features, mappings


# Units with at least this many thresholds per lane compare in gates as many bits as their
# threshold table has distinct varying columns (:func:`shared_compare_bits`). Chosen by
# leave-one-out on the ASIC training rows: mean error, components / networks, 4.40% / 2.43%
# without, 5.90 / 2.43 from 1 level, 5.61 / 2.64 from 2, 4.18 / 2.05 from 4, 4.20 / 2.15
# from 16.
SHARED_COMPARE_LEVELS = 4


def shared_compare_bits(profile: LayerPlan, compare: int) -> int:
    """Comparator bits of a multi-threshold unit in gates. Its thresholds are sorted, so
    neighbouring levels share their upper bits: the threshold table's columns repeat, and
    the comparisons over equal columns are one netlist after Yosys's sharing. So the
    distinct varying columns (``MemoryShape.distinct_columns``), not levels x width, set the
    comparator logic; the residual model's 255-level units were 56-105% over without it."""
    rom = profile.threshold_rom
    if (rom is None or rom.distinct_columns is None
            or profile.levels < SHARED_COMPARE_LEVELS):
        return compare
    return min(compare, rom.distinct_columns)


def bypass_bits(memory: MemoryShape) -> int:
    """Registers around a writable block RAM where the block cannot itself give a read in the
    cycle of a write to the same word the old data: Yosys emulates it with a read register,
    the write data, address and enable, and the address match."""
    return 2 * memory.width + _range_bits(memory.depth) + 2


def _uint_lane_luts(profile: LayerPlan, table_in_logic: bool, family: str) -> float:
    """LUTs of the unsigned lanes, mask ? (sign ? v : -v) : 0, per output bit a function of
    the value bits below it, the sign and the mask. With the weight table in logic a lane
    whose weight never changes is v (no logic), -v (a negation) or 0."""
    bits, mask = profile.in_bits, int(profile.needs_mask)

    def lane(select: int) -> float:
        # Bit 0 of +-v is v0 (masked): a LUT only with a mask.
        return sum(luts_of_function(min(bit + 1, bits) + select, family)
                   for bit in range(1, bits + 1)) + (1.0 if mask else 0.0)

    lanes = profile.pe * profile.simd
    if not table_in_logic:
        return lanes * lane(1 + mask)
    varying, _, _ = profile.lane_weights()
    return varying * lane(1 + mask) + profile.negative_constant_lanes() * lane(0)


def _tree_luts(profile: LayerPlan, family: str, in_logic: bool) -> tuple[float, float]:
    """LUTs of all adder trees' soft adders: (lanes apart, lane logic merged in); ``in_logic``
    when the weight table is in logic."""
    tree = layer_tree(profile)
    mask = int(profile.needs_mask)
    plain = profile.adder_trees * soft_adder_luts(tree, family)
    if in_logic and not profile.popcounts_per_pe:
        # Unsigned lanes with a constant weight are +v, -v or 0: an operand bit narrower
        # (no sign to select), or no operand at all.
        varying, constant, _ = profile.lane_weights()
        lanes = profile.pe * profile.simd
        narrow = adder_tree(profile.simd, profile.in_bits)
        plain = profile.adder_trees * (varying * soft_adder_luts(tree, family)
                                       + constant * soft_adder_luts(narrow, family)) / lanes
    if profile.in_encoding == "binary":
        merged = profile.adder_trees * soft_adder_luts(tree, family, lambda bit: 2 + mask)
    elif profile.in_encoding == "ternary":
        # agree lanes: nonzero, negative, weight sign; used lanes: nonzero (and the masks).
        merged = (profile.pe * soft_adder_luts(tree, family, lambda bit: 3 + mask)
                  + (profile.adder_trees - profile.pe)
                  * soft_adder_luts(tree, family, lambda bit: 1 + mask))
    else:
        # An adder on two lanes: each output bit a function of the operand bits below it and
        # the lanes' sign and mask selects, which a table in logic computes from the step's
        # address bits (shared by both operands).
        selects = 2 * (1 + mask)
        if in_logic:
            selects = min(selects, max(profile.steps - 1, 1).bit_length())
        merged = profile.adder_trees * sum(
            luts_of_function(min(bit + 1, adder.a) + min(bit + 1, adder.b) + selects, family)
            if adder.on_lanes else luts_of_function(adder.inputs(bit), family)
            for adder in tree.adders if adder.width <= SOFT_ADDER_WIDTH[family]
            for bit in range(adder.width))
    # Lanes whose weight (sign and mask) is constant over the steps fold their lane logic
    # into constants when the weight table is in logic: nothing to merge.
    if in_logic:
        varying = (profile.varying_sign_lanes() if profile.popcounts_per_pe
                   else profile.lane_weights()[0])
        merged = plain + (merged - plain) * varying / (profile.pe * profile.simd)
    return plain, merged


def mvtu_register_bits(profile: LayerPlan, family: str,
                       table_in_logic: bool) -> int:
    """Register bits of an MVTU outside its memories, as hw/mvtu.py declares them, less the
    ones Yosys removes as unused or constant.

    Sequencer counters (step, neuron fold, synapse fold, tile, plane slot); the stage-A
    registers (valid, fresh, first, last, the fresh input word, and the plane and neuron fold
    where they are used: a scale multiplexer, a threshold table); the adder trees' registers
    (see :func:`dead_lane_register_bits`, :func:`shared_lsb_register_bits`); the control
    delayed along the trees; accumulators and the done flag; output and valid.
    """
    pe = profile.pe
    tree = layer_tree(profile)
    plane_bits = _range_bits(len(profile.scales)) if len(set(map(int, profile.scales))) > 1 else 0
    nf_bits = _range_bits(profile.nf) if profile.threshold_rom is not None else 0
    # With one step per tile the step and tile counters are the same register (merged). A
    # schedule in the weight memory has no tile counter, and holds the flag it last read.
    tiles = profile.nf * profile.sf
    tile_counter = profile.steps > tiles and not profile.schedule_in_rom
    counters = (_range_bits(max(profile.steps, 2)) + _range_bits(max(profile.nf, 2))
                + _range_bits(max(profile.sf, 2)) + _range_bits(max(profile.max_slots, 2))
                + (_range_bits(max(tiles, 2)) if tile_counter else 0)
                + int(profile.schedule_in_rom))
    control = 4 + plane_bits + nf_bits
    tree_bits = profile.adder_trees * tree.register_bits
    if table_in_logic:
        tree_bits -= dead_lane_register_bits(profile)
    if family == "asic":
        tree_bits -= shared_lsb_register_bits(profile)
    return (counters + control + profile.fan_in_bits + tree_bits
            + tree.stages * (control - 1)
            + pe * profile.acc_bits + 1 + pe * profile.out_bits + 1)


def _pruned_tree_register_bits(dead: list[bool], width: int) -> int:
    """Register bits of :func:`.profile.adder_tree` over lanes of ``width`` bits when the
    ``dead`` lanes are constant zero: a node over dead lanes only is a constant (removed), a
    node with one dead operand passes the other one on at its width (the extra sign bit is
    the same signal, merged)."""
    nodes = [(0 if lane_dead else width) for lane_dead in dead]
    registers = 0
    while len(nodes) > 1:
        pairs = [max(a, b) + 1 if a and b else a or b
                 for a, b in zip(nodes[::2], nodes[1::2], strict=False)]
        if len(nodes) % 2:
            pairs.append(nodes[-1])
        nodes = pairs
        if len(nodes) > 1:
            registers += sum(nodes)
    return registers + nodes[0]


def dead_lane_register_bits(profile: LayerPlan) -> int:
    """Tree registers that a weight table in logic makes constant: unsigned lanes whose mask
    is zero in every step are constant zero, and synthesis removes the registers over them
    (the adder trees of unsigned inputs; popcounts are left as counted)."""
    if profile.popcounts_per_pe or not profile.needs_mask or profile.steps < 2:
        return 0
    lanes = profile.pe * profile.simd
    dead = ~profile.weight_image[:, lanes:].any(axis=0)
    if not dead.any():
        return 0
    width = profile.in_bits + 1
    return sum(layer_tree(profile).register_bits
               - _pruned_tree_register_bits(list(dead[start:start + profile.simd]), width)
               for start in range(0, lanes, profile.simd))


def shared_lsb_register_bits(profile: LayerPlan) -> int:
    """Gates: unsigned lanes without a mask are +v or -v, whose bit 0 is v's bit 0 whatever
    the weight, so bit 0 of every tree node is the parity of the same input bits in every PE;
    after mapping to gates those XORs and their registers are identical across PEs and Yosys
    merges them into one PE's. FPGA flows build the adders in each PE's carry chain or LUTs,
    which stay apart (removing them there raised the iCE40 and ECP5 flip-flop errors)."""
    if profile.popcounts_per_pe or profile.needs_mask:
        return 0
    return (profile.pe - 1) * len(layer_tree(profile).adders)


def unrolled_features(profile: UnrolledProfile, family: str) -> tuple[dict[str, float],
                                                                     list[MemoryMapping]]:
    """Features of one unrolled unit, counted from what it builds (each shared node once).
    Weights are wires and thresholds constants: no memories, no lane logic (an inverted lane
    is an inverted LUT input), no sequencer. Its adders are features of their own, not the
    MVTU's: an MVTU's adder coefficients also carry its lane logic, which an unrolled unit
    does not have, so they are fitted on unrolled networks (:mod:`.networks`); its register
    bits are the MVTU's ``reg_bits``."""
    soft = SOFT_ADDER_WIDTH[family]
    tree = TreeShape(0, 0, 0, 0, profile.popcount.adders + profile.adders.adders)
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({
        "unrolled_const": 1.0,
        "unrolled_popcount_bits": (profile.popcount.adder_bits
                                   - profile.popcount.adder_bits_up_to(soft)),
        "unrolled_adder_bits": profile.adders.adder_bits - profile.adders.adder_bits_up_to(soft),
        "unrolled_soft_luts": soft_adder_luts(tree, family),
        "unrolled_compare_bits": (profile.compare_bits
                                  + (profile.mh * profile.levels if profile.levels > 1 else 0)),
        "reg_bits": profile.register_bits,
    })
    return features, []


def fifo_features(stream: StreamProfile, family: str) -> tuple[dict[str, float],
                                                               list[MemoryMapping]]:
    """Features of a stream FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``: depth - 1 words of
    memory plus an output register)."""
    features = dict.fromkeys(FEATURES, 0.0)
    # A two-deep FIFO is a register pair with two flags; deeper ones count levels.
    features.update({"fifo_const": 1.0, "fifo_bits": stream.width,
                     "fifo_level_bits": _clog2(stream.depth + 1) if stream.depth > 2 else 0})
    # SyncFIFO's pointers wrap at the inner depth (depth - 1): free at a power of two, else a
    # compare of the pointer bits against depth - 2 (amaranth.lib.fifo).
    inner = stream.depth - 1
    if inner > 1 and not _power_of_two(inner):
        features["fifo_wrap_bits"] = float((inner - 1).bit_length())
    mappings = []
    if stream.depth > 1:
        mappings.append(map_memory(MemoryShape(stream.memory.name, stream.depth - 1,
                                               stream.width, rom=False), family))
    features.update(memory_features(mappings, family))
    if mappings and mappings[0].kind == "block":
        features["bypass_bits"] = bypass_bits(mappings[0].memory)
    # The memory's read register is the FIFO's output register; control: write and read
    # pointers over depth - 1 words, the inner level (0 .. depth - 1) and the output valid.
    if stream.depth == 1:
        features["reg_bits"] = stream.width + 1
    else:
        counters = 2 * _range_bits(inner) + _range_bits(inner + 1)
        features["reg_bits"] += counters + 1
        if stream.depth > 2:
            # The two pointers and the level count (their increments and wraps).
            features["counter_bits"] = counters
    return features, mappings


def elementwise_features(unit: ElementwiseProfile, family: str) -> tuple[dict[str, float],
                                                                         list[MemoryMapping]]:
    """Features of a threshold or add unit: per lane its adders (into the output register, so
    priced as accumulator bits) and comparators (against a threshold ROM row, constants when
    there is one channel group, or the clip's two), the count of passed thresholds, the
    output register and the channel-group counter. The ROM is read combinationally, so it
    stays in logic (no block RAM reads without a clock) and has no read register."""
    lanes = unit.lanes
    compares = lanes * unit.value_width * (unit.levels or 2)
    table = unit.thresholds is not None and unit.groups > 1
    counter = _range_bits(unit.groups)
    features = dict.fromkeys(FEATURES, 0.0)
    # No "const": the unit's handshake is one enable, not an MVTU's pipeline control.
    features.update({
        "acc_bits": lanes * unit.adders * unit.value_width,
        "compare_bits": compares if table else 0,
        "compare_const_bits": 0 if table else compares,
        "count_bits": lanes * unit.levels if unit.levels > 1 else 0,
        "out_bits": lanes * unit.out_bits,
        "counter_bits": counter,
    })
    mappings = []
    if unit.thresholds is not None:
        mappings.append(MemoryMapping(unit.thresholds, "logic", None, 0, 0.0))
        features.update(memory_features(mappings, family))
        features["rom_reg_bits"] = 0.0
    features["reg_bits"] = lanes * unit.out_bits + 1 + counter
    return features, mappings


def global_pool_features(pool: GlobalPoolProfile, family: str) -> tuple[dict[str, float],
                                                                        list[MemoryMapping]]:
    """Features of a global average pool: per channel a running sum that restarts at each
    frame (the structure of an MVTU's accumulator, so its feature), the output register and
    the pixel counter."""
    sums = pool.channels * pool.out_bits
    counter = _range_bits(max(pool.pixels, 2))
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({"const": 1.0, "acc_bits": sums, "out_bits": sums,
                     "counter_bits": counter, "reg_bits": 2 * sums + counter + 1})
    return features, []


def schedule_luts(plan: LayerPlan, family: str) -> float:
    """LUTs of an irregular layer's plane schedule (hw/mvtu.py, the sequencer): a constant
    table read by the tile counter, per tile its planes' indices (``code_bits`` per slot) and
    its slot count, one LUT per output bit for every 2^k tiles; an 8-bit integer weight's tile
    takes up to 8 planes, 3 bits each. Residual weights take a prefix of the planes in every
    tile: their tile ends are a bit of the weight memory (:attr:`LayerPlan.schedule_in_rom`),
    counted with it, and no table."""
    if not plan.irregular or plan.schedule_in_rom:
        return 0.0
    code_bits = max(1, (len(plan.scales) - 1).bit_length())
    bits = code_bits * plan.max_slots + _range_bits(plan.max_slots + 1)
    return bits * ceil(plan.nf * plan.sf / 2 ** LUT_INPUTS[family])


def dsp_blocks(kind: str, profile, family: str) -> int:
    """DSP blocks synthesis infers for a block's multiplications by constants.

    synth_ecp5 maps every multiplication whose operands are 2 bits or wider to a MULT18X18D
    (Yosys mul2dsp, ``DSP_A_MINWIDTH = DSP_B_MINWIDTH = 2``); a power-of-two constant is a
    shift before that. On the network set these survive (exact on all 36 networks):

    - a sliding window's row address ``iy * W``, for a frame width W not a power of two;
    - a width converter's landing offset ``level * elem_bits``, for elements whose width is
      not a power of two, where a beat brings more than one element (a one-element beat's
      shift becomes a decoder first);
    - an MVTU's plane-scale multiplexer, one per PE and plane scale not a power of two.

    iCE40 (synth_ice40 without ``-dsp``) and ASIC gates have none. xc7 (synth_xilinx, products
    of 9 bits or more) is counted as none: one network of the set, the digits 1.4-bit mix,
    uses one DSP48E1.
    """
    if family != "ecp5":
        return 0
    if kind == "window":
        width = profile.in_shape[1]
        return int(width >= 3 and not _power_of_two(width))
    if kind == "width":
        return int(profile.in_count > 1 and not _power_of_two(profile.elem_bits))
    if kind == "mvtu":
        scales = {int(a) for a in profile.scales}
        return profile.pe * sum(not _power_of_two(a) for a in scales)
    return 0


def select_luts(bits: int, inputs: int, family: str) -> float:
    """LUTs of ``bits`` output bits, each one function of ``inputs`` signals (a selection:
    data candidates, select bits and enables): a tree of k-input LUTs, (n - 1) / (k - 1)."""
    k = LUT_INPUTS[family]
    return bits * max(1.0, (inputs - 1) / (k - 1))


def converter_features(converter: ConverterProfile, family: str
                       ) -> tuple[dict[str, float], list[MemoryMapping]]:
    """Features of a width converter (hw/stream_utils.py): its shift buffer and level are
    registers. Each buffer bit is one function of the bits it can receive (one input element
    bit per landing offset, at most ``in_count`` of them), the fill level that picks among
    them, the two buffer bits it keeps or shifts from, and the take and put enables."""
    capacity, n_in, b = converter.capacity, converter.in_count, converter.elem_bits
    bits = capacity * b
    level = _range_bits(capacity + 1)
    # Buffer element e receives input element k when the fill level is e - k. The level never
    # exceeds capacity - in_count when a beat enters, but synthesis cannot know that, so the
    # selection counts every input element k <= e: min(e, n_in - 1) + 1 of them.
    # Where many inputs can land on one element, synthesis builds the logarithmic shifter
    # instead: a 2:1 multiplexer per bit in each stage where the element can already hold
    # input (stage s shifts by 2^s elements, so element e is live from the stage where
    # n_in + 2^(s+1) - 1 > e), and one for the keep-or-shift of the buffer: the cheaper.
    shift_stages = level

    def shifter(e: int) -> int:
        return b * (1 + sum(e < n_in + (1 << (s + 1)) - 1 for s in range(shift_stages)))

    luts = sum(min(select_luts(b, min(e, n_in - 1) + 1 + level + 4, family), shifter(e))
               for e in range(capacity))
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({"const": 1.0, "select_luts": luts, "counter_bits": level,
                     "reg_bits": bits + level})
    return features, []


def fork_features(fork: ForkProfile, family: str) -> tuple[dict[str, float],
                                                           list[MemoryMapping]]:
    """Features of a stream fork: two one-bit ``taken`` registers with their update logic
    (counted as counter bits); the payload is wires."""
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({"counter_bits": 2, "reg_bits": 2})
    return features, []


# Per target, features are summed into groups and one coefficient per group is fitted.
# Flip-flops: the register bits (a coefficient near one flip-flop per bit) plus the block-RAM
# bypass registers. LUTs, carries and ASIC area: every feature is its own group; grouping them
# (one coefficient for all adder bits, say) gave larger held-out errors, since popcount, signed
# adder and comparator bits map to cells differently and Yosys merges some across blocks.
# Where two features describe the same logic, each target keeps the one with the lower
# leave-one-out error on the training configs: unsigned lanes as negate_bits (FPGA LUTs and
# carries) or as uint_lane_luts (gates: 7.7% against 11.8% median leave-one-out error on the
# 28 training configs of the 56-config ASIC set).
def _every_feature_but(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in FEATURES if name not in names}


GROUPS = {
    "lut": _every_feature_but("uint_lane_luts"),
    "ff": {"registers": ("reg_bits",), "bypass": ("bypass_bits",)},
    "carry": _every_feature_but("uint_lane_luts"),
    "lutram": {"lutram": ("lutram_cells",)},
    # The lane/table merging is an FPGA LUT-packing effect; for gates it only overfits. Gates
    # have no carry chains or block RAM (no soft adders, no bypass), and unsigned lanes are
    # counted by uint_lane_luts alone.
    "area_um2": _every_feature_but("rom_lane_bits", "negate_bits", "uint_lanes",
                                   "bypass_bits", "soft_adder_luts", "lane_merge_luts"),
}


def grouped(features: dict[str, float], target: str) -> dict[str, float]:
    """The features of ``target`` summed into its groups."""
    return {group: sum(features.get(name, 0.0) for name in names)
            for group, names in GROUPS[target].items()}


def apply(coefficients: dict[str, float], features: dict[str, float], target: str) -> float:
    """Linear model of ``target``: sum of group coefficient * group feature."""
    return sum(coefficients.get(group, 0.0) * value
               for group, value in grouped(features, target).items())
