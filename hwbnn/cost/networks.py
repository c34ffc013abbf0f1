"""Whole networks for calibrating and validating the cost model and the clock model.

Components alone (:mod:`.calibrate`) do not show what a network adds: width converters and
FIFOs between layers, windows and pools, and the optimization Yosys does across blocks. The
network set is a fixed list of generated networks (docs/design.md, "Cost model"): binary,
ternary, 2- and 3-bit and mixed residual weights; binary, ternary, uint2 and uint3
activations; binary and pixel (uint5, uint8) inputs; MLPs from 64 to 1,024 wide and CNNs;
foldings from PE = SIMD = 1 to PE x SIMD = 2,048, plus shipped zoo models. Alternate
networks train and are held out; the held-out ones are only compared.

Each network is synthesized with :func:`hwbnn.synth.flow.synthesize`: the flattened design's
counts (what ``hwbnn synth`` reports), a per-block pass (every block kept apart, compared with
the estimate's rows; iCE40 and ECP5) and one place and route for Fmax where the design fits
the family's default device. The counts are stored in ``calibration/networks_F.json`` with
the digest of the Verilog they came from, so a generator change re-synthesizes only what it
changed.
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
from ..ir.network import NetworkIR

CALIBRATION_DIR = Path(__file__).parent / "calibration"


@dataclass(frozen=True)
class NetworkConfig:
    """One network of the set: a synthetic architecture (``source`` "synthetic") or a zoo
    model (``source`` its zoo name), at a folding (an inline ``fold`` or ``auto`` for
    ``target_fps`` at 100 MHz)."""

    name: str
    source: str = "synthetic"
    input_shape: tuple[int, ...] = (8, 8, 1)
    input_encoding: str = "binary"
    conv: tuple = ()
    dense: tuple[int, ...] = ()
    classes: int = 10
    weights: str = "binary"
    activations: str = "binary"
    fold: str | None = "auto"
    target_fps: float | None = None
    split: str = "train"
    mode: str = "folded"  # or "unrolled" (no folding: fold and target_fps unused)


def _mlp(name, inputs, dense, weights, activations, encoding="binary", fold="auto",
         fps=None, classes=10):
    return NetworkConfig(name, input_shape=(inputs, 1, 1), input_encoding=encoding,
                         dense=tuple(dense), classes=classes, weights=weights,
                         activations=activations, fold=fold, target_fps=fps)


def _cnn(name, shape, conv, dense, weights, activations, encoding="uint5", fold="auto",
         fps=None):
    return NetworkConfig(name, input_shape=shape, input_encoding=encoding, conv=tuple(conv),
                         dense=tuple(dense), weights=weights, activations=activations,
                         fold=fold, target_fps=fps)


def _zoo(name, zoo_name, fold="auto", fps=None):
    return NetworkConfig(name, source=zoo_name, fold=fold, target_fps=fps)


# The set, in pairs of similar networks: the first of each pair trains, the second is held
# out. Sizes keep one synthesis within minutes on a laptop core (YoWASP's Yosys).
NETWORKS = [
    _mlp("n00_mlp_bin_64", 64, [64, 64], "binary", "binary", fold="1x1,1x1,1x1"),
    _mlp("n01_mlp_bin_128", 128, [128, 64], "binary", "binary", fold="1x1,1x1,1x1"),
    _mlp("n02_mlp_bin_wide", 256, [256, 128], "binary", "binary", fps=2e5),
    _mlp("n03_mlp_bin_wide2", 256, [128, 128], "binary", "binary", fps=5e5),
    _mlp("n04_mlp_ter", 64, [64, 32], "ternary", "ternary", fps=1e5),
    _mlp("n05_mlp_ter2", 128, [64, 64], "ternary", "ternary", fps=2e5),
    _mlp("n06_mlp_w2_u2", 64, [64, 32], "w2", "uint2", fps=1e5),
    _mlp("n07_mlp_w2_u2b", 128, [64, 64], "w2", "uint2", fps=5e4),
    _mlp("n08_mlp_w3_u2", 64, [32, 32], "w3", "uint2", fps=1e5),
    _mlp("n09_mlp_w3_u2b", 64, [64, 32], "w3", "uint2", fps=2e5),
    _mlp("n10_mlp_mix631", 128, [64, 64], "mix631", "binary", fps=1e5),
    _mlp("n11_mlp_mix631b", 64, [64, 64], "mix631", "binary", fps=3e5),
    _mlp("n12_mlp_bin_u3", 64, [64, 32], "binary", "uint3", fps=1e5),
    _mlp("n13_mlp_bin_u3b", 128, [64, 32], "binary", "uint3", fps=5e4),
    _mlp("n14_mlp_pix_u5", 64, [64, 32], "binary", "binary", encoding="uint5", fps=1e5),
    _mlp("n15_mlp_pix_u8", 64, [128, 32], "binary", "binary", encoding="uint8", fps=1e5),
    _mlp("n16_mlp_mix14", 64, [64, 64], "mix14", "binary", fps=1e5),
    _mlp("n17_mlp_mix14b", 128, [128, 32], "mix14", "binary", fps=1e5),
    _mlp("n18_mlp_1024", 256, [1024], "binary", "binary", fold="32x64,10x64"),
    _mlp("n19_mlp_1024b", 512, [1024], "binary", "binary", fold="32x32,10x32"),
    _mlp("n20_mlp_wide_pe", 256, [256, 256], "binary", "binary", fold="64x16,32x16,10x8"),
    _mlp("n21_mlp_wide_pe2", 256, [256, 128], "binary", "binary", fold="32x32,16x32,10x16"),
    _cnn("n22_cnn_bin", (8, 8, 1), [16, "M", 32], [32], "binary", "binary", fps=2e4),
    _cnn("n23_cnn_bin2", (8, 8, 1), [16, 32], [32], "binary", "binary", fps=1e4),
    _cnn("n24_cnn_ter", (8, 8, 1), [16, "M", 16], [], "ternary", "ternary", fps=1e4),
    _cnn("n25_cnn_u2", (8, 8, 1), [16, 16], [], "w2", "uint2", fps=1e4),
    _cnn("n26_cnn_u8", (10, 10, 3), [16, "M", 32], [32], "binary", "binary",
         encoding="uint8", fps=1e4),
    _cnn("n27_cnn_u8b", (10, 10, 3), [32, 32, "M"], [], "binary", "binary",
         encoding="uint8", fps=5e3),
    _zoo("n28_digits_cnn", "zoo:digits_cnn_w1a1", fps=1e4),
    _zoo("n29_digits_cnn_1e3", "zoo:digits_cnn_w1a1", fps=1e3),
    _zoo("n30_digits_mlp", "zoo:digits_mlp_w1a1", fps=1e5),
    _zoo("n31_digits_mix14", "zoo:digits_mlp_mix14", fps=1e5),
    _zoo("n32_fmnist_tfc_w2a2", "zoo:fmnist_tfc_w2a2", fps=1e4),
    _zoo("n33_fmnist_tfc_w1a1", "zoo:fmnist_tfc_w1a1", fps=1e4),
    # The residual model (issue 18's blocks: int8 convolutions with 255 thresholds, adds,
    # forks, shortcut FIFOs, the stride-2 window, average pools): at PE = SIMD = 1, and
    # 32x faster.
    _zoo("n34_digits_resnet", "zoo:digits_resnet_w1a1", fold="1x1,1x1,1x1,1x1,1x1,1x1"),
    _zoo("n35_digits_resnet_pe2", "zoo:digits_resnet_w1a1",
         fold="2x9,2x16,2x16,2x16,2x32,1x8"),
]


def _alternate(configs: list[NetworkConfig]) -> list[NetworkConfig]:
    """The configs with every other one held out, the first training."""
    return [NetworkConfig(**{**asdict(config), "split": "train" if index % 2 == 0
                             else "heldout"}) for index, config in enumerate(configs)]


NETWORKS = _alternate(NETWORKS)


def _unrolled(config: NetworkConfig) -> NetworkConfig:
    return NetworkConfig(**{**asdict(config), "mode": "unrolled", "fold": None})


# Unrolled networks (hw/unrolled.py: a frame per clock, weights as wires), which price the
# unrolled unit's own features (features.unrolled_features). In pairs again: the first of
# each trains; the digits models as the issue compares them (issue 22), pixel (uint5) and
# binary inputs, binary, ternary, 2-bit and mixed weights, grouped mixes.
UNROLLED_NETWORKS = _alternate([_unrolled(config) for config in (
    _zoo("u00_digits_w2", "zoo:digits_mlp_w2"),
    _zoo("u01_digits_mix14_t4x8", "zoo:digits_mlp_mix14_t4x8"),
    _zoo("u02_digits_w1a1", "zoo:digits_mlp_w1a1"),
    _zoo("u03_digits_mix14", "zoo:digits_mlp_mix14"),
    _mlp("u04_mlp_ter", 64, [64, 32], "ternary", "ternary"),
    _zoo("u05_digits_ternary", "zoo:digits_mlp_ternary"),
    _mlp("u06_mlp_w2_u2", 64, [32, 32], "w2", "uint2"),
    _mlp("u07_mlp_mix14_bin", 96, [48, 32], "mix14", "binary"),
)])
ALL_NETWORKS = NETWORKS + UNROLLED_NETWORKS
UNROLLED_NAMES = {config.name for config in UNROLLED_NETWORKS}


def network_ir(config: NetworkConfig) -> NetworkIR:
    """The network of a config (synthetic weights are seeded by its name)."""
    if config.source != "synthetic":
        from .. import zoo

        return zoo.load(config.source)
    from ..zoo.synthetic import build

    arch = {"input_shape": config.input_shape, "input_encoding": config.input_encoding,
            "conv": list(config.conv), "dense": list(config.dense),
            "calibration_frames": 16, "classes": config.classes}
    seed = int.from_bytes(hashlib.sha256(config.name.encode()).digest()[:4], "little")
    return build(config.name, arch, config.weights, config.activations, seed)


def _generate(config: NetworkConfig, folder: Path):
    from ..api import Model

    return Model(network_ir(config)).generate(folder, config.fold,
                                              target_fps=config.target_fps, mode=config.mode)


def verilog_digest(config: NetworkConfig) -> str:
    """Digest of the config's generated Verilog (stored beside its counts)."""
    with tempfile.TemporaryDirectory(prefix="hwbnn-net-") as tmp:
        return _design_digest(_generate(config, Path(tmp)))


def _design_digest(design) -> str:
    """Digest of a generated design's Verilog files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(design.directory).glob("*.v")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthesize_network(config: NetworkConfig, family: str) -> dict:
    """Counts (flattened and per block), cycles per frame and, where it fits, Fmax."""
    from ..synth.design import read_design
    from ..synth.flow import (
        DEFAULT_PNR_TIMEOUT_S,
        FAMILIES,
        LARGE_DESIGN_LUTS,
        ROUTE_MAX_LUTS,
        place_and_route,
        synthesize,
    )

    with tempfile.TemporaryDirectory(prefix="hwbnn-net-") as tmp:
        design = _generate(config, Path(tmp) / "rtl")
        rtl = read_design(design.directory)
        entry = {"verilog": _design_digest(design), "cycles_per_frame": design.cycles_per_frame,
                 "folding": {name: str(fold) for name, fold in design.folding.items()}}
        if family == "asic":
            import shutil

            from .calibrate import gate_area

            work = Path(tmp) / "asic"
            work.mkdir()
            names = []
            for path in rtl.verilog_files:
                shutil.copyfile(path, work / path.name)
                names.append(path.name)
            area = gate_area(work, names, rtl.top)
            entry["counts"] = {"area_um2": area["area_um2"]}
            return entry
        work = Path(tmp) / "work"
        # The per-block pass (a second Yosys run) for the families with place and route;
        # xc7 (synth_xilinx, the slowest) gives its flattened counts only.
        result = synthesize(rtl, family, seeds=0, blocks=family != "xc7", work_dir=work)
        fam = FAMILIES[family]
        if fam.nextpnr and result.counts["lut"] > ROUTE_MAX_LUTS:
            entry["pnr"] = (f"not placed: {result.counts['lut']:,} LUTs is above the set's "
                            f"place-and-route limit ({ROUTE_MAX_LUTS:,})")
        elif fam.nextpnr and config.mode == "folded":  # the clock model's networks
            # One place and route of the netlist just written; a design too big for the
            # default device keeps its counts and records why it has no Fmax.
            try:
                luts = result.counts["lut"]
                fmax, path = place_and_route(
                    fam, fam.default_device, 1, fam.default_target_mhz, work,
                    router="router2" if luts > LARGE_DESIGN_LUTS else "router1",
                    timeout_s=DEFAULT_PNR_TIMEOUT_S, luts=luts)
                result.fmax_mhz, result.critical_path = fmax, path
            except HwbnnError as error:
                entry["pnr"] = str(error).split("; log in")[0]
    entry.update({"counts": result.counts, "blocks": result.blocks,
                  "fmax_mhz": result.fmax_mhz, "critical_path": result.critical_path})
    return entry


def _synthesize_job(args):
    config, family = args
    return config.name, synthesize_network(config, family)


def measured_path(family: str) -> Path:
    return CALIBRATION_DIR / f"networks_{family}.json"


def load_measured(family: str) -> dict[str, dict]:
    path = measured_path(family)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["measured"]
    except (ValueError, KeyError) as error:
        raise HwbnnError(f"{path} is not a network calibration file: {error}") from error


def run_networks(family: str, executor: Executor | None = None,
                 names: list[str] | None = None) -> dict[str, dict]:
    """Synthesize the networks whose stored counts are missing or stale; store; return all."""
    measured = load_measured(family)
    configs = [c for c in ALL_NETWORKS if names is None or c.name in names]
    stale = [c for c in configs
             if measured.get(c.name, {}).get("verilog") != verilog_digest(c)]
    executor = executor or Executor()
    path = measured_path(family)
    with (progress.step(f"calibrate {family}: {len(stale)} networks on {executor.where}",
                        total=len(stale)) as step, executor):
        for _, (name, entry) in executor.map(_synthesize_job, [(c, family) for c in stale]):
            measured[name] = entry
            # Written after every network, so an interrupted run keeps what it measured.
            path.write_text(json.dumps({"networks": [asdict(c) for c in ALL_NETWORKS],
                                        "measured": measured}, indent=1, sort_keys=True))
            step.advance(name)
    return measured


# --- estimates, fit rows and validation ---------------------------------------------------

def network_folding(config: NetworkConfig, net: NetworkIR):
    """The folding the config's design is generated at."""
    from ..hw.fold import Folding

    return Folding.parse(config.fold, net, target_fps=config.target_fps)


def network_profile(config: NetworkConfig):
    """The profile (:func:`~.profile.profile_network`) of the config's network at its
    folding: what its estimate and its clock terms are computed from."""
    from .profile import profile_network

    net = network_ir(config)
    if config.mode == "unrolled":
        return profile_network(net, None, "unrolled")
    return profile_network(net, network_folding(config, net))


def network_features(config: NetworkConfig, family: str
                     ) -> tuple[dict[str, float], dict[str, tuple[dict[str, float], float]]]:
    """(features summed over every block, {block: (its features, its block RAM)}): a
    network's estimate is the sum of its blocks' (the model is linear in the features)."""
    from .estimate import BLOCK_FEATURES
    from .features import FEATURES

    profile = network_profile(config)
    total = dict.fromkeys(FEATURES, 0.0)
    blocks = {}
    for block in profile.blocks:
        features, mappings = BLOCK_FEATURES[block.kind](block.profile, family)
        blocks[block.name] = (features, sum(mapping.block_ram for mapping in mappings))
        for name, value in features.items():
            total[name] = total.get(name, 0.0) + value
    return total, blocks


def fit_rows(family: str, measured: dict[str, dict]) -> list[tuple[dict[str, float], dict]]:
    """(summed features, flattened counts) of every training network with stored counts."""
    return [(network_features(config, family)[0], measured[config.name]["counts"])
            for config in NETWORKS if config.split == "train" and config.name in measured]


def clock_rows(family: str, measured: dict[str, dict], coefficients: dict[str, dict],
               split: str = "train") -> list[tuple[dict[str, float], float]]:
    """(clock model terms, measured Fmax) of the networks of ``split`` that were placed and
    routed; the LUT term is the fitted estimate, as a prediction would see it."""
    from .clock import clock_terms
    from .features import apply

    rows = []
    for config in NETWORKS:
        entry = measured.get(config.name)
        if config.split != split or not entry or not entry.get("fmax_mhz"):
            continue
        luts = apply(coefficients["lut"], network_features(config, family)[0], "lut")
        rows.append((clock_terms(network_profile(config), luts), entry["fmax_mhz"]))
    return rows


def validate_networks(family: str, measured: dict[str, dict], coefficients: dict[str, dict],
                      clock: dict[str, float] | None = None, split: str = "heldout",
                      configs: list[NetworkConfig] | None = None) -> dict:
    """Estimate vs synthesis (flattened counts) of the networks of ``split`` (of
    ``configs``, default :data:`NETWORKS`), and predicted vs measured Fmax where the network
    was placed and routed; error statistics."""
    from .calibrate import TARGETS, _error
    from .clock import clock_terms, predict_mhz
    from .features import apply

    rows = []
    for config in NETWORKS if configs is None else configs:
        if config.split != split or config.name not in measured:
            continue
        entry = measured[config.name]
        total, blocks = network_features(config, family)
        estimate = {target: apply(coefficients[target], total, target)
                    for target in TARGETS[family]}
        if family != "asic":
            estimate["bram"] = sum(bram for _, bram in blocks.values())
        row = {"network": config.name, "folding": entry.get("folding"),
               "cycles_per_frame": entry.get("cycles_per_frame")}
        for target, value in estimate.items():
            synthesis = entry["counts"][target]
            row[target] = {"estimate": round(value, 1), "synthesis": synthesis,
                           "error": _error(value, synthesis)}
        if clock is not None and entry.get("fmax_mhz"):
            predicted = predict_mhz(clock_terms(network_profile(config), estimate["lut"]),
                                    clock)
            row["fmax_mhz"] = {"estimate": round(predicted, 1),
                               "synthesis": round(entry["fmax_mhz"], 1),
                               "error": _error(predicted, entry["fmax_mhz"])}
        rows.append(row)
    targets = list(dict.fromkeys(key for row in rows for key, value in row.items()
                                 if isinstance(value, dict) and "error" in value))
    stats = {}
    for target in targets:
        errors = [row[target]["error"] for row in rows if target in row]
        stats[target] = {"median_abs_error": statistics.median(abs(e) for e in errors),
                         "max_abs_error": max(abs(e) for e in errors),
                         "mean_error": statistics.fmean(errors),
                         "exact": sum(abs(e) < 1e-9 for e in errors),
                         "networks": len(errors)}
    return {"family": family, "split": split, "rows": rows, "stats": stats}


def write_report(validation: dict, path: Path) -> None:
    """The held-out whole-network report as Markdown."""
    family = validation["family"]
    targets = list(validation["stats"])
    labels = {"fmax_mhz": "Fmax (MHz)"}
    unrolled = all(row["network"] in UNROLLED_NAMES for row in validation["rows"])
    if unrolled:  # no Fmax: the clock model covers folded designs
        title = f"# Cost model validation: {family}, held-out unrolled whole networks"
        measured = "(`hwbnn synth`, flattened), every weight layer an unrolled unit. "
    else:
        title = f"# Cost and clock model validation: {family}, held-out whole networks"
        measured = ("(`hwbnn synth`, flattened) and, for Fmax, one nextpnr run on the "
                    "family's default device where the design fits. ")
    lines = [title, "", "Estimates from the shipped constants (hwbnn/cost/constants/"
             f"{family}.json) against Yosys synthesis of the same generated network "
             f"{measured}Error = (estimate - synthesis) / synthesis. "
             "Networks: hwbnn/cost/networks.py; none of these was used for fitting.", "",
             "| statistic | " + " | ".join(labels.get(t, t) for t in targets) + " |",
             "|---|" + "---|" * len(targets)]
    for key, label, scale, form in (("median_abs_error", "median abs error", 100, "{:.1f}%"),
                                    ("max_abs_error", "max abs error", 100, "{:.1f}%"),
                                    ("mean_error", "mean signed error", 100, "{:+.1f}%"),
                                    ("exact", "exact", 1, "{:.0f}"),
                                    ("networks", "networks", 1, "{:.0f}")):
        lines.append(f"| {label} | " + " | ".join(
            form.format(validation["stats"][t][key] * scale) for t in targets) + " |")
    lines += ["", "| network | folding | " + " | ".join(
        f"{labels.get(t, t)} est / syn / err" for t in targets) + " |",
        "|---|---|" + "---|" * len(targets)]
    for row in validation["rows"]:
        folding = "unrolled" if unrolled else ",".join((row.get("folding") or {}).values())
        cells = [(f"{row[t]['estimate']:g} / {row[t]['synthesis']:g} / "
                  f"{row[t]['error'] * 100:+.1f}%") if t in row else "-" for t in targets]
        lines.append(f"| {row['network']} | {folding} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def fit_unrolled(family: str, measured: dict[str, dict], coefficients: dict[str, dict]
                 ) -> dict[str, dict]:
    """``coefficients`` with the unrolled unit's (:data:`~.features.UNROLLED_FEATURES`)
    added, fitted on the training :data:`UNROLLED_NETWORKS` after everything else: per
    target, each unrolled block's count (its own row where the synthesis kept the blocks
    apart, else the network's count less what ``coefficients`` give its other blocks) by
    non-negative least squares on relative residuals. The other coefficients stay as they
    are; an unrolled unit's registers are ``reg_bits`` like every block's."""
    from scipy.optimize import nnls

    from .calibrate import MIN_FEATURE_ROWS
    from .features import GROUPS, UNROLLED_FEATURES, apply, grouped

    rows = []  # (features, measured counts): an unrolled block's, or a whole network's
    for config in UNROLLED_NETWORKS:
        entry = measured.get(config.name)
        if config.split != "train" or entry is None:
            continue
        total, blocks = network_features(config, family)
        kept = entry.get("blocks") or {}
        unrolled = [name for name, (features, _) in blocks.items()
                    if features["unrolled_const"]]
        if all(name in kept for name in unrolled):
            rows += [(blocks[name][0], kept[name]) for name in unrolled]
        else:
            rows.append((total, entry["counts"]))
    result = {target: dict(values) for target, values in coefficients.items()}
    if not rows:
        return result
    for target in coefficients:
        names = [name for name in UNROLLED_FEATURES if name in GROUPS[target]
                 and sum(bool(features[name]) for features, _ in rows) >= MIN_FEATURE_ROWS]
        if not names:
            continue
        a = np.array([[grouped(features, target)[name] for name in names]
                      for features, _ in rows])
        y = np.array([float(counts[target]) - apply(coefficients[target], features, target)
                      for features, counts in rows])
        # residuals relative to each row's count (not to its unexplained rest)
        weight = 1.0 / np.maximum([float(counts[target]) for _, counts in rows], 1.0)
        solution = nnls(a * weight[:, None], y * weight)[0]
        result[target].update({name: round(float(value), 6)
                               for name, value in zip(names, solution, strict=True)
                               if value > 0})
    return result


def block_rows(family: str, measured: dict[str, dict], split: str = "train"
               ) -> list[tuple[dict[str, float], dict]]:
    """(features, counts with the blocks kept apart) of every block of the networks of
    ``split`` with stored counts."""
    rows = []
    for config in NETWORKS:
        if config.split != split or config.name not in measured:
            continue
        counted = measured[config.name]["blocks"]
        for name, (features, _) in network_features(config, family)[1].items():
            if name in counted:
                rows.append((features, counted[name]))
    return rows
