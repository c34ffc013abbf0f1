"""Per-component and per-network cost estimates: FPGA resources, ASIC area, energy per frame.

``estimate(net, family)`` profiles the folded network (:mod:`.profile`), applies the family's
fitted coefficients (``constants/FAMILY.json``, written by :mod:`.calibrate`) to each
component's features (:mod:`.features`), counts block RAM from the families' real block shapes
(:mod:`.memory`), and adds FINN-R's analytical LUT / BRAM estimate as a comparison column. For
``asic`` it gives area (um^2, GE) and energy per frame (pJ) broken down into compute, weight
memory, activation buffers and FIFOs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from math import ceil, log2
from pathlib import Path

from ..errors import HwbnnError
from ..hw.fold import Folding
from ..hw.plan import LayerPlan
from ..ir.network import NetworkIR
from . import asic
from .features import (
    FEATURES,
    UNROLLED_FEATURES,
    apply,
    converter_features,
    dsp_blocks,
    elementwise_features,
    fifo_features,
    fork_features,
    global_pool_features,
    map_memory,
    memory_features,
    mvtu_features,
    select_luts,
    unrolled_features,
)
from .profile import (
    Block,
    NetworkProfile,
    PoolProfile,
    UnrolledProfile,
    WindowProfile,
    profile_network,
)

FAMILIES = ("ice40", "ecp5", "xc7", "asic")
CONSTANTS_DIR = Path(__file__).parent / "constants"
FPGA_COLUMNS = ("lut", "ff", "carry", "lutram", "bram", "dsp")
ENERGY_PARTS = ("compute", "weight_memory", "activation_buffers", "fifos")


@cache
def constants_file(family: str) -> dict:
    """The fitted constants file of ``family``: ``coefficients`` (target -> feature ->
    value) and, where fitted, ``clock`` (:mod:`.clock`)."""
    if family not in FAMILIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    path = CONSTANTS_DIR / f"{family}.json"
    try:
        data = json.loads(path.read_text())
        data["coefficients"]
        return data
    except FileNotFoundError:
        raise HwbnnError(f"no fitted constants for {family} ({path}); run "
                         f"`hwbnn cost calibrate --family {family}`") from None
    except (ValueError, KeyError, TypeError) as error:
        raise HwbnnError(f"{path} is not a constants file: {error}") from error


def constants(family: str) -> dict[str, dict[str, float]]:
    """The fitted coefficients of ``family`` (target -> feature -> value)."""
    return constants_file(family)["coefficients"]


@dataclass
class ComponentCost:
    """Estimated cost of one generated component."""

    name: str
    layer: str
    kind: str  # a Block's kind: mvtu, window, pool, fifo; in graphs also globalpool,
    # threshold, add, width, fork
    values: dict[str, float]
    cycles_per_frame: int = 0
    finn_r: dict[str, float] = field(default_factory=dict)


def _window_features(window: WindowProfile, family: str):
    h, w, c = window.in_shape
    counters = 2 * ceil(log2(max(h * w, 2))) + 4 * ceil(log2(max(window.kernel, 2)))
    features = dict.fromkeys(FEATURES, 0.0)
    features.update({"const": 1.0, "counter_bits": counters, "out_bits": c * window.bits,
                     "in_word_bits": c * window.bits})
    mappings = [map_memory(window.frame_memory, family)]
    features.update(memory_features(mappings, family))
    features["reg_bits"] += counters + 2 * c * window.bits
    return features, mappings


def _pool_features(pool: PoolProfile, family: str):
    """A pool keeps one output row of running results in W/K registers; each result bit is
    the merge of the pixel with the row's register at the column counter (a W/K-way
    selection), or the pixel itself at a window's first pixel."""
    _, w, c = pool.in_shape
    words = w // pool.kernel
    features = dict.fromkeys(FEATURES, 0.0)
    # A max pool compares; an average pool adds into its running window sums, out_bits wide
    # (an accumulator's structure, so its feature).
    merge = "compare_bits" if pool.merge == "max" else "acc_bits"
    features.update({"const": 1.0, merge: c * pool.out_bits, "out_bits": c * pool.out_bits,
                     "ram_bits": pool.row_bits, "ram_words": words,
                     "select_luts": select_luts(c * pool.out_bits,
                                                words + ceil(log2(words + 1)) + 2, family),
                     "counter_bits": 3 * ceil(log2(max(w, 2)))})
    features["reg_bits"] = sum(features[name] for name in ("ram_bits", "out_bits",
                                                           "counter_bits"))
    return features, []


# The features of each kind of block (hwbnn.cost.profile.Block).
BLOCK_FEATURES = {"mvtu": mvtu_features, "unrolled": unrolled_features,
                  "window": _window_features, "pool": _pool_features,
                  "fifo": fifo_features, "globalpool": global_pool_features,
                  "threshold": elementwise_features, "add": elementwise_features,
                  "width": converter_features, "fork": fork_features}


def finn_r(profile: LayerPlan) -> dict[str, float]:
    """FINN-R's analytical MVTU cost (Blott et al., "FINN-R", ACM TRETS 11(3), 2018, sec. 5,
    as used by FINN's LUT / BRAM estimates): LUT = c0 + c1 * PE * (SIMD-lane multipliers +
    adder tree + accumulator + threshold comparators), c0 = 300, c1 = 1.1 (fitted on Xilinx
    LUT6 devices in that work); binary x binary lanes count as XNOR + popcount; weight memory
    in RAMB18 of 512 x 36 .. 16K x 1 picked by the PE memory's width."""
    w = int(profile.scales.size) if profile.weight_kind == "residual" else (
        1 if profile.weight_kind == "binary" else 2)
    a = profile.in_bits
    acc_bits = w + a + ceil(log2(profile.mw))
    if w == 1 and a == 1:
        lane = 1.0
        tree = profile.simd + ceil(log2(max(profile.simd, 2)))
    else:
        lane = (2 * ceil((w + a) / 6) - 1) * (w + a)
        tree = (w + a) * (2 * profile.simd - 1)
    levels = profile.levels
    thresholds = levels * acc_bits * ceil(profile.nf / 64) if levels else 0
    compare = levels * acc_bits
    lut = 300 + 1.1 * profile.pe * (profile.simd * lane + tree + acc_bits + thresholds + compare)
    width = profile.simd * w
    depth = profile.nf * profile.sf
    configs = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
    port_width, port_depth = next(((pw, pd) for pw, pd in configs if width <= pw),
                                  configs[-1])
    bram18 = profile.pe * ceil(width / port_width) * ceil(depth / port_depth)
    return {"lut": round(lut), "bram18": bram18}


class CostReport:
    """Per-component costs, per-layer rows and totals of one network on one family."""

    def __init__(self, net: NetworkIR, family: str, profile: NetworkProfile,
                 components: list[ComponentCost], node: int | None, clock_mhz: float,
                 energy: dict[str, dict[str, float]] | None):
        self.net, self.family, self.profile = net, family, profile
        self.components, self.node, self.clock_mhz = components, node, clock_mhz
        self.energy = energy
        # How clock_mhz was chosen: "given", "predicted" (hwbnn.cost.clock) or "assumed";
        # and the clock an auto-folding aimed at (the prediction less the model's margin).
        self.clock_source = "given"
        self.folded_for_mhz = clock_mhz

    @property
    def columns(self) -> tuple[str, ...]:
        return ("area_um2", "ge") if self.family == "asic" else FPGA_COLUMNS

    def layer_rows(self) -> list[dict]:
        """One row per IR layer: its components summed (a conv's window, the input FIFO)."""
        rows = {}
        for component in self.components:
            row = rows.setdefault(component.layer, {"layer": component.layer,
                                                    **dict.fromkeys(self.columns, 0.0)})
            for column in self.columns:
                row[column] += component.values.get(column, 0.0)
            if component.kind in ("mvtu", "unrolled"):
                profile = next(p for p in self.profile.layers if p.name == component.layer)
                row.update({"pe": profile.pe, "simd": profile.simd,
                            "cycles_per_frame": profile.cycles_per_frame})
                if self.family != "asic":
                    row.update({f"finn_r_{k}": v for k, v in component.finn_r.items()})
            if self.energy is not None and component.layer in self.energy:
                row.update({f"energy_{k}_pj": v for k, v in
                            self.energy[component.layer].items()})
        return list(rows.values())

    def block_rows(self) -> list[dict]:
        """One row per priced block, named as in the generated hierarchy (so an estimate and
        a synthesis compare block by block), with its layer, kind and cycles per frame."""
        return [{"block": c.name, "layer": c.layer, "kind": c.kind,
                 "cycles_per_frame": c.cycles_per_frame or "-",
                 **{column: c.values.get(column, 0.0) for column in self.columns}}
                for c in self.components]

    def compare_blocks(self, blocks: dict[str, dict[str, float]]) -> list[dict]:
        """Each block's estimate beside its synthesized counts (``blocks``: a
        :class:`~hwbnn.synth.flow.SynthResult`'s per-block counts, from a pass that keeps
        the blocks apart), in pipeline order; cells outside every block as "(top)". Per
        resource ``{"estimate": E, "synthesis": S}`` (S None for a block not synthesized
        apart, E 0 for cells no block is estimated for)."""
        resources = [column for column in self.columns if column != "ge"]
        rows = []
        for component in self.components:
            counted = blocks.get(component.name)
            rows.append({"block": component.name, "layer": component.layer,
                         "kind": component.kind,
                         **{r: {"estimate": component.values.get(r, 0.0),
                                "synthesis": None if counted is None else counted.get(r, 0)}
                            for r in resources}})
        named = {component.name for component in self.components}
        for name, counted in blocks.items():
            if name not in named:
                rows.append({"block": name, "layer": "-",
                             "kind": "glue" if name == "(top)" else "unpriced",
                             **{r: {"estimate": 0.0, "synthesis": counted.get(r, 0)}
                                for r in resources}})
        return rows

    def rows(self) -> list[dict]:
        """The printed table: a row per block for a version-2 network (a layer there is
        several blocks: forks, shortcut FIFOs, width converters), else a row per layer."""
        return self.block_rows() if self.profile.per_block else self.layer_rows()

    def totals(self) -> dict:
        totals = {column: sum(c.values.get(column, 0.0) for c in self.components)
                  for column in self.columns}
        cycles = self.profile.cycles_per_frame
        totals.update({"cycles_per_frame": cycles, "latency_cycles": self.profile.latency_cycles,
                       "clock_mhz": self.clock_mhz, "clock_source": self.clock_source,
                       "frames_per_s": self.clock_mhz * 1e6 / cycles,
                       "macs_per_frame": self.profile.macs_per_frame})
        if self.family != "asic" and any(c.finn_r for c in self.components):
            for key in ("lut", "bram18"):
                totals[f"finn_r_{key}"] = sum(c.finn_r.get(key, 0) for c in self.components)
        if self.energy is not None:
            parts = {part: sum(layer[part] for layer in self.energy.values())
                     for part in ENERGY_PARTS}
            total = sum(parts.values())
            totals.update({f"energy_{part}_pj": value for part, value in parts.items()})
            totals["energy_pj_per_frame"] = total
            # One MAC = two operations (multiply and add), the usual TOPS convention.
            totals["ops_per_joule"] = 2 * self.profile.macs_per_frame / (total * 1e-12)
            totals["node_nm"] = self.node
        return totals

    @property
    def route_note(self) -> str | None:
        """Where the estimate is above what the open flow places and routes, what to expect
        (:func:`.clock.route_note`, the note ``gen`` prints too), else None."""
        from .clock import route_note

        if self.family == "asic":
            return None
        return route_note(self.family, self.totals()["lut"])

    def as_dict(self) -> dict:
        note = self.route_note
        return {"model": self.net.name, "family": self.family,
                "layers": self.layer_rows(), "totals": self.totals(),
                "components": [{"component": c.name, "layer": c.layer, "kind": c.kind,
                                **c.values} for c in self.components],
                **({"route_note": note} if note else {})}


def _component_values(features, mappings, family: str, dsp: int = 0) -> dict[str, float]:
    coefficients = constants(family)
    values = {target: max(0.0, apply(coefficients[target], features, target))
              for target in coefficients}
    if family == "asic":
        return {"area_um2": values["area_um2"], "ge": values["area_um2"] / asic.GE_UM2}
    values["bram"] = sum(mapping.block_ram for mapping in mappings)
    values.setdefault("lutram", 0.0)
    # Multiplications by constants that synthesis maps to DSP blocks (features.dsp_blocks).
    values["dsp"] = float(dsp)
    return values


def estimate(net: NetworkIR, family: str, folding: Folding | None = None, *,
             node: int = 45, clock_mhz: float = 100.0, mode: str = "folded",
             adders: str = "trees") -> CostReport:
    """Estimate ``net`` at ``folding`` (anything :meth:`Folding.parse` takes; default: the
    layers' own PE/SIMD, else 1), or unrolled (``mode="unrolled"``, no folding: a frame
    per clock, its units priced from what they build, with ``adders``)."""
    if family not in FAMILIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if not clock_mhz > 0:
        raise HwbnnError(f"clock must be positive, not {clock_mhz!r} MHz")
    if mode == "unrolled":
        from ..hw.gen import check_unrolled

        check_unrolled(net, folding, None)
    profile = profile_network(net, folding, mode, adders)
    if mode == "unrolled" and not any(name in coefficients for coefficients in
                                      constants(family).values() for name in UNROLLED_FEATURES):
        raise HwbnnError(f"no unrolled calibration for {family} (its constants have no "
                         f"unrolled networks); run `hwbnn cost calibrate --family {family}`")
    components = []
    for block in profile.blocks:
        features, mappings = BLOCK_FEATURES[block.kind](block.profile, family)
        dsp = dsp_blocks(block.kind, block.profile, family)
        components.append(ComponentCost(
            block.name, block.layer, block.kind,
            _component_values(features, mappings, family, dsp),
            block.cycles_per_frame, finn_r(block.profile) if block.kind == "mvtu" else {}))
    energy = energy_per_frame(profile, node) if family == "asic" else None
    return CostReport(net, family, profile, components, node if family == "asic" else None,
                      clock_mhz, energy)


def energy_per_frame(profile: NetworkProfile, node: int = 45) -> dict[str, dict[str, float]]:
    """Energy (pJ) per frame per layer, split into compute / weight memory / activation
    buffers / FIFOs, from the operations the folded hardware performs (see :mod:`.asic`):
    the sum of the layer's blocks' energies."""
    scale = asic.node_scale(node)
    result: dict[str, dict[str, float]] = {}
    for block in profile.blocks:
        parts = result.setdefault(block.layer, dict.fromkeys(ENERGY_PARTS, 0.0))
        for part, value in _block_energy(block).items():
            parts[part] += value
    return {layer: {part: scale * value for part, value in parts.items()}
            for layer, parts in result.items()}


def _block_energy(block: Block) -> dict[str, float]:
    """Energy (pJ at 45 nm) per frame of one block, by part."""
    unit, add = block.profile, asic.ADD_PJ_PER_BIT
    if block.kind == "mvtu":
        return _mvtu_energy(unit)
    if block.kind == "unrolled":
        return _unrolled_energy(unit)
    if block.kind == "window":
        bits = unit.bits_read_per_frame + unit.bits_written_per_frame
        return {"activation_buffers": bits * asic.sram_pj_per_bit(unit.frame_memory.bits)}
    if block.kind in ("fifo", "width"):
        return {"fifos": 2 * unit.bits_per_frame * asic.REGISTER_PJ_PER_BIT}
    if block.kind == "pool":
        buffered = 2 * unit.row_bits * (unit.in_shape[0] // unit.kernel) \
            * asic.REGISTER_PJ_PER_BIT
        return {"compute": unit.compares_per_frame * unit.out_bits * add,
                "activation_buffers": buffered}
    if block.kind == "globalpool":
        sums = unit.pixels * unit.channels * unit.out_bits
        return {"compute": sums * add, "activation_buffers": sums * asic.REGISTER_PJ_PER_BIT}
    if block.kind in ("threshold", "add"):
        per_element = (unit.adders + (unit.levels or 2)) * unit.value_width * add
        return {"compute": unit.elements * per_element}
    return {}  # a fork: wires and two flags


def _unrolled_energy(unit: UnrolledProfile) -> dict[str, float]:
    """An unrolled unit does every addition of a frame in its own adder, once per vector:
    each adder bit, comparator bit and register bit (the pipeline registers and the
    input word) switches once per vector; its weights are wires (no weight memory) and it
    buffers nothing (no activation memory)."""
    add = asic.ADD_PJ_PER_BIT
    vectors = unit.output_pixels
    adds = unit.popcount.adder_bits + unit.adders.adder_bits + unit.compare_bits
    return {"compute": vectors * (adds * add + unit.register_bits * asic.REGISTER_PJ_PER_BIT)}


def _mvtu_energy(layer: LayerPlan) -> dict[str, float]:
    steps = layer.cycles_per_frame
    lanes = steps * layer.pe * layer.simd
    add = asic.ADD_PJ_PER_BIT
    if layer.popcounts_per_pe:
        lane_pj = lanes * layer.popcounts_per_pe * asic.XNOR_POPCOUNT_PJ_PER_LANE
    else:
        lane_pj = lanes * (layer.in_bits + 1) * add
    accumulate_pj = steps * layer.pe * layer.acc_width * add
    outputs = layer.mh * layer.output_pixels
    compare_pj = outputs * max(layer.levels, 1) * layer.acc_width * add
    rom, ends = layer.weight_rom, layer.schedule_rom
    buffer = layer.input_buffer
    return {"compute": lane_pj + accumulate_pj + compare_pj,
            "weight_memory": steps * rom.width * asic.sram_pj_per_bit(rom.bits)
            + (steps * asic.sram_pj_per_bit(ends.bits) if ends else 0.0),
            "activation_buffers": (layer.sf * layer.output_pixels + steps) * buffer.width
            * asic.sram_pj_per_bit(buffer.bits)}
