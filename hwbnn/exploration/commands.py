"""``hwbnn explore MODEL|ARCH``: the CLI of :mod:`hwbnn.exploration` (parse, run, print, write)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from ..cli import fold_arguments, positive_int, print_json, seed_int
from ..dist import cluster_arguments, executor_of
from ..errors import HwbnnError
from . import (
    ACTIVATION_CHOICES,
    OBJECTIVES,
    SAMPLERS,
    WEIGHT_CHOICES,
    ExploreResult,
    ExploreSettings,
    point_text,
    run_explore,
    synthesize_front,
)

CSV_COLUMNS = ("trial", "point", "accuracy", "lut", "ff", "bram", "energy_pj_per_frame",
               "cycles_per_frame", "frames_per_s", "weight_bits", "feasible", "trial_s",
               "model_path")


def _names(text: str) -> tuple[str, ...]:
    """``a,b,c`` -> ("a", "b", "c") (a mix is named by its average: mix:1.4)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _widths(text: str) -> tuple[int, ...]:
    """argparse type of --widths: positive ASCII integers, comma-separated."""
    import argparse

    parts = _names(text)
    try:
        widths = tuple(positive_int(part) for part in parts)
    except argparse.ArgumentTypeError:
        widths = ()
    if not widths:
        raise argparse.ArgumentTypeError(f"must be positive widths like 32,64, not {text!r}")
    return widths


def register(subparsers) -> None:
    from ..boards.targets import BOARDS
    from ..cost.commands import FAMILY_CHOICES

    p = subparsers.add_parser(
        "explore", help="search per-layer precision and folding under a hardware budget",
        description="Multi-objective search (Optuna) over per-layer weight specs, activation "
                    "encodings and folding: each trial trains the architecture, scores it "
                    "and estimates its cost; writes a Pareto table, plot and model files. "
                    "Trials run on a local Dask cluster or an existing one (--cluster); the "
                    "study is kept in SQLite (or --storage), so running the command again "
                    "continues it.")
    p.add_argument("model", help="architecture mlp:W1,W2 or cnn:C1,M,C2,M, or zoo:NAME "
                                 "(its architecture and training recipe)")
    p.add_argument("--dataset", default="digits",
                   help="digits (embedded), mnist, fashion-mnist, cifar10")
    p.add_argument("--data-path", help="folder with the dataset's files (not for digits)")
    p.add_argument("--board", choices=tuple(BOARDS),
                   help="constraint: the design fits this board's LUTs, FFs and block RAMs "
                        "(sets --family and the default clock)")
    p.add_argument("--family", choices=FAMILY_CHOICES[:3], default="ice40",
                   help="FPGA family of the estimates without --board (default ice40)")
    fold_arguments(p, clock_default="the board's clock, else 100")
    p.add_argument("--objectives", default="accuracy,lut",
                   help=f"comma-separated, accuracy first; from {', '.join(OBJECTIVES)} "
                        "(default accuracy,lut)")
    p.add_argument("--weights", type=_names, default=WEIGHT_CHOICES,
                   help=f"weight specs per layer to choose from (default "
                        f"{','.join(WEIGHT_CHOICES)})")
    p.add_argument("--activations", type=_names, default=ACTIVATION_CHOICES,
                   help=f"activation encodings per hidden layer to choose from (default "
                        f"{','.join(ACTIVATION_CHOICES)})")
    p.add_argument("--widths", type=_widths, default=(),
                   help="hidden dense widths to choose from per layer, e.g. 32,64,128 "
                        "(default: the architecture's own)")
    p.add_argument("--trials", type=positive_int, default=40,
                   help="finished trials the study should hold (default 40)")
    p.add_argument("--epochs", type=positive_int,
                   help="training epochs per trial (default: the recipe's, 60)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the sampler and training")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                   help="tpe (multi-objective TPE, default) or nsga2 (NSGA-II)")
    p.add_argument("--node", type=int, choices=(45, 28, 7), default=45,
                   help="ASIC node of the energy estimate (default 45)")
    p.add_argument("--storage", help="study database URL (default sqlite:///OUT/study.db; "
                                     "postgresql://... to share one study between machines)")
    p.add_argument("--study", help="study name (default from the model and constraint)")
    p.add_argument("--synth", action="store_true",
                   help="also synthesize the Pareto front's designs (hwbnn gen + Yosys)")
    cluster_arguments(p)
    p.add_argument("--out", default="explore", help="output folder (default ./explore)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explore)


def cmd_explore(args) -> int:
    if args.fold is not None:
        raise HwbnnError("explore folds every trial itself (auto-folding for --target-fps); "
                         "--fold is not for explore")
    settings = ExploreSettings(
        args.model, args.dataset, args.data_path, args.family, args.board, args.target_fps,
        args.clock_mhz, _names(args.objectives), tuple(args.weights), tuple(args.activations),
        args.widths, args.epochs, args.seed, args.node, args.sampler)
    result = run_explore(settings, args.trials, Path(args.out), executor_of(args),
                         args.storage, args.study)
    if args.synth:
        synthesize_front(result, executor_of(args))
    paths = write_outputs(result, Path(args.out))
    if args.json:
        print_json(result.to_dict())
    else:
        print(markdown(result, []).split("\n\n", 1)[1].rstrip())
        print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def write_outputs(result: ExploreResult, out_dir: Path) -> list[Path]:
    """``explore.csv`` (every trial), ``explore.md``, ``pareto.png`` and the front's model
    files in ``pareto/``."""
    from ..report.plots import plot_explore

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "explore.csv", out_dir / "explore.md", out_dir / "pareto.png"]
    with open(paths[0], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "point": point_text(row)} for row in result.trials)
    settings = result.settings
    cost = next((name for name in settings.objectives if name != "accuracy"), "lut")
    key = OBJECTIVES[cost][0]
    limit = settings.limits.get(key)
    image = plot_explore(result.trials, result.front, key, f"{key} ({settings.family}, "
                         "estimate)", f"{settings.source}: {settings.describe()}",
                         f"{len(result.trials)} trials; accuracy of the golden integer "
                         f"model after {settings.base['settings']['epochs']} epochs; costs "
                         f"estimated.", result.references, limit)
    paths[2].write_bytes(image)
    chosen = out_dir / "pareto"
    if chosen.exists():
        shutil.rmtree(chosen)
    chosen.mkdir()
    for row in result.front:
        if row["model_path"]:
            target = chosen / Path(row["model_path"]).name
            shutil.copyfile(row["model_path"], target)
            paths.append(target)
    paths[1].write_text(markdown(result, [paths[2].name]))
    return paths


def _measured(row: dict, key: str) -> str:
    """``estimate`` or ``estimate / synthesis`` of a resource."""
    text = f"{row[key]:,}" if key != "bram" else f"{row[key]:g}"
    measured = row.get(f"measured_{key}")
    return text if measured is None else f"{text} / {measured:,}"


def markdown(result: ExploreResult, plots: list[str]) -> str:
    """The study as Markdown: settings, the Pareto front, the zoo beside it."""
    s = result.settings
    objectives = ", ".join(f"{name} ({OBJECTIVES[name][1][:3]})" for name in s.objectives)
    lines = [f"# Exploration: {s.source}", "",
             f"Constraint: {s.describe()}; family {s.family}; objectives {objectives}; "
             f"{len(result.trials)} finished trials of study `{result.study_name}` "
             f"({result.storage}), run on {result.where}; accuracy on the {s.dataset} test "
             f"split after {s.base['settings']['epochs']} epochs (seed {s.seed}).", "",
             "## Pareto front (feasible trials)", "",
             "LUT, FF and BRAM are estimates" + (" / synthesis (Yosys)" if any(
                 "measured_lut" in row for row in result.front) else "") + ".", "",
             "| trial | weights / activations | accuracy | LUT | FF | BRAM | frames/s | "
             "energy pJ/frame | weight bits | model |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result.front:
        model = Path(row["model_path"]).name if row["model_path"] else "(other machine)"
        lines.append(f"| {row['trial']} | {point_text(row)} | {row['accuracy'] * 100:.2f}% | "
                     f"{_measured(row, 'lut')} | {_measured(row, 'ff')} | "
                     f"{_measured(row, 'bram')} | "
                     f"{row['frames_per_s']:,.0f} | {row['energy_pj_per_frame']:,.1f} | "
                     f"{row['weight_bits']:,} | pareto/{model} |")
    if not result.front:
        lines.append("| (no feasible trial) | | | | | | | | | |")
    feasible = sum(row["feasible"] for row in result.trials)
    lines += ["", f"{feasible} of {len(result.trials)} trials meet the constraint.", ""]
    if result.references:
        lines += ["## Zoo models under the same constraint", "",
                  "| model | accuracy | LUT | BRAM | frames/s | fits |",
                  "|---|---|---|---|---|---|"]
        for row in result.references:
            fits = "yes" if row.get("feasible") else f"no ({row.get('why', '')})"
            lines.append(f"| {row['model']} | {row['accuracy'] * 100:.2f}% | "
                         f"{row.get('lut', 0):,} | {row.get('bram', 0):g} | "
                         f"{row.get('frames_per_s', 0):,.0f} | {fits} |")
        best, found = result.best_reference, result.front[0] if result.front else None
        if best is not None and found is not None:
            verdict = ("at least as accurate as" if found["accuracy"] >= best["accuracy"]
                       else "less accurate than")
            lines += ["", f"Best trial {found['trial']} ({found['accuracy'] * 100:.2f}%) is "
                          f"{verdict} the best zoo model that fits, {best['model']} "
                          f"({best['accuracy'] * 100:.2f}%)."]
    lines += ["", *[f"![{name}]({name})" for name in plots]]
    return "\n".join(lines) + "\n"
