"""``hwbnn sweep MODEL|ARCH --mixes ...``: accuracy, LUTs, block RAM, cycles and energy per mix.

Each mix is one job in its own process: get the model at that mix (re-quantize MODEL, see
:mod:`.mixes`; or, with ``--train``, train ARCH on digits through ``hwbnn train`` in a
subprocess, so this module never imports torch), score it with the golden model on the test
split, fold it (the layers' own folding, or ``--target-fps``), and estimate FPGA resources and
ASIC energy per frame. Results go to ``sweep.csv``, ``sweep.md`` and two Pareto plots.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import progress
from ..cli import fold_arguments, mode_argument
from ..dist import Executor, cluster_arguments, executor_of
from ..errors import HwbnnError
from .mixes import DEFAULT_MIXES, average_bits, parse_mixes, requantize, train_spec

CSV_COLUMNS = ("mix", "avg_bits", "accuracy", "lut", "ff", "bram", "finn_r_lut",
               "cycles_per_frame", "frames_per_s", "energy_pj_per_frame",
               "energy_compute_pj", "energy_weight_memory_pj", "energy_activation_buffers_pj",
               "energy_fifos_pj", "area_um2", "ops_per_joule", "weight_bits", "folding")


@dataclass(frozen=True)
class SweepSettings:
    source: str
    family: str = "ice40"
    train: bool = False
    target_fps: float | None = None
    clock_mhz: float | None = None
    node: int = 45
    group: int = 1
    epochs: int | None = None
    activations: str | None = None
    fold: str | None = None
    mode: str = "folded"  # or "unrolled": every mix a frame per clock, no folding
    adders: str = "trees"  # the unrolled mode's sums (hw.unrolled.ADDERS)


def _arch_arguments(source: str) -> list[str]:
    """``mlp:64,32`` / ``cnn:32,M,64,M`` -> ``hwbnn train`` arguments."""
    arch, _, layers = source.partition(":")
    if arch not in ("mlp", "cnn") or not layers:
        raise HwbnnError(f"with --train the model must be an architecture like mlp:32,32 or "
                         f"cnn:32,M,64,M, not {source!r}")
    return ["--arch", arch, "--dense" if arch == "mlp" else "--conv", layers]


def _train(settings: SweepSettings, mix: str):
    """Train ARCH at ``mix`` in a ``hwbnn train`` subprocess, in a folder of the worker's
    own (so a remote worker needs no file system shared with the command)."""
    with tempfile.TemporaryDirectory(prefix="hwbnn-sweep-") as tmp:
        return _train_into(settings, mix, Path(tmp) / f"mix{mix.replace('.', '_')}")


def _train_into(settings: SweepSettings, mix: str, out: Path):
    from .. import zoo

    command = [sys.executable, "-m", "hwbnn.cli", "train", *_arch_arguments(settings.source),
               "--weights", train_spec(mix), "--dataset", "digits", "--out", str(out)]
    if settings.epochs:
        command += ["--epochs", str(settings.epochs)]
    if settings.activations:
        command += ["--activations", settings.activations]
    if settings.group > 1 and mix not in ("1", "ternary"):
        command += ["--group", str(settings.group)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise HwbnnError(f"training mix {mix} failed: {lines[-1] if lines else 'no output'}")
    return zoo.load(str(out) + ".hwbnn")


def evaluate_mix(settings: SweepSettings, mix: str) -> dict:
    """One sweep row: the model at ``mix``, its accuracy on digits and its costs."""
    from .. import zoo

    if settings.train:
        net = _train(settings, mix)
    else:
        net = requantize(zoo.load(settings.source), mix, settings.group)
    return _evaluate(settings, net, mix, average_bits(mix))


def evaluate_source(settings: SweepSettings) -> dict:
    """The row of the source model itself, unchanged: the reference point of the plots."""
    from .. import zoo

    net = zoo.load(settings.source)
    bits = net.weight_bits
    weights = sum(int(layer.weights.bitwidths().size) for layer in net.weight_layers)
    return _evaluate(settings, net, "source", bits / weights)


def _evaluate(settings: SweepSettings, net, mix: str, avg_bits: float) -> dict:
    from .. import data
    from ..hw.fold import DEFAULT_CLOCK_MHZ, Folding
    from ..ref import golden
    from .estimate import estimate

    dataset = data.load("digits")
    accuracy = float((golden.predict(net, dataset.test_x) == dataset.test_y).mean())
    if settings.mode == "unrolled":
        folding = None
        parallel = Folding.unfolded(net).to_dict()
    else:
        folding = Folding.parse(settings.fold, net, target_fps=settings.target_fps,
                                clock_mhz=settings.clock_mhz)
        parallel = folding.to_dict()
    clock_mhz = settings.clock_mhz or DEFAULT_CLOCK_MHZ
    fpga = estimate(net, settings.family, folding, clock_mhz=clock_mhz, mode=settings.mode,
                    adders=settings.adders)
    chip = estimate(net, "asic", folding, node=settings.node, clock_mhz=clock_mhz,
                    mode=settings.mode, adders=settings.adders)
    totals, energy = fpga.totals(), chip.totals()
    return {
        "mix": mix, "avg_bits": round(avg_bits, 3), "accuracy": round(accuracy, 4),
        "lut": round(totals["lut"]), "ff": round(totals["ff"]), "bram": totals["bram"],
        "finn_r_lut": totals.get("finn_r_lut"),
        "cycles_per_frame": totals["cycles_per_frame"],
        "frames_per_s": round(totals["frames_per_s"], 1),
        "energy_pj_per_frame": round(energy["energy_pj_per_frame"], 1),
        "energy_compute_pj": round(energy["energy_compute_pj"], 1),
        "energy_weight_memory_pj": round(energy["energy_weight_memory_pj"], 1),
        "energy_activation_buffers_pj": round(energy["energy_activation_buffers_pj"], 1),
        "energy_fifos_pj": round(energy["energy_fifos_pj"], 1),
        "area_um2": round(energy["area_um2"]),
        "ops_per_joule": energy["ops_per_joule"],
        "weight_bits": net.weight_bits,
        "folding": parallel,  # unrolled: PE = MH, SIMD = MW
    }


def _job(args):
    settings, mix = args
    return evaluate_mix(settings, mix)


def run_sweep(settings: SweepSettings, mixes: list[str], executor: Executor | None = None
              ) -> list[dict]:
    """Evaluate every mix, one job each on ``executor`` (default: in this process); rows in
    the order of ``mixes``."""
    executor = executor or Executor()
    with (progress.step(f"sweep {settings.source} on {executor.where}",
                        total=len(mixes)) as step, executor):
        rows = {}
        for index, row in executor.map(_job, [(settings, mix) for mix in mixes]):
            rows[mixes[index]] = row
            step.advance(f"mix {mixes[index]}")
    return [rows[mix] for mix in mixes]


def folding_text(folding: dict) -> str:
    """A row's folding ``{layer: {pe, simd}}`` in the inline spelling ``P1xS1,...``."""
    from ..hw.fold import LayerFold

    return ",".join(str(LayerFold(**fold)) for fold in folding.values())


def pareto_front(rows: list[dict], cost: str) -> list[dict]:
    """Rows not dominated in (lower ``cost``, higher accuracy), by increasing cost."""
    from ..pareto import non_dominated

    ordered = sorted(rows, key=lambda r: (r[cost], -r["accuracy"]))
    return non_dominated(ordered, {cost: -1, "accuracy": 1})


def write_outputs(rows: list[dict], settings: SweepSettings, out_dir: Path) -> list[Path]:
    """``sweep.csv``, ``sweep.md``, ``pareto_lut.png``, ``pareto_energy.png`` in ``out_dir``.

    A re-quantized sweep also evaluates the source model unchanged, for a reference point in
    the report and the plots (a ``--train`` sweep has no source model).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "sweep.csv", out_dir / "sweep.md"]
    with open(paths[0], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "folding": folding_text(row["folding"])} for row in rows)
    source = None if settings.train else evaluate_source(settings)
    paths += plot_pareto(rows, settings, out_dir, source)
    paths[1].write_text(markdown_report(rows, settings, [p.name for p in paths[2:]], source))
    return paths


def markdown_report(rows: list[dict], settings: SweepSettings, plots: list[str],
                    source: dict | None = None) -> str:
    how = how_obtained(settings)
    clock = settings.clock_mhz or 100
    sums = "" if settings.adders == "trees" else f", sums from {settings.adders}'s adder graph"
    fold = (f"unrolled (a frame per clock, weights as wires{sums})" if settings.mode == "unrolled"
            else f"folded as {settings.fold}" if settings.fold not in (None, "auto")
            else f"folded for {settings.target_fps:g} frames/s at {clock:g} MHz"
            if settings.target_fps else "with the model's own folding (PE = SIMD = 1 unless "
                                        "set)")
    lines = [f"# Bitwidth-mix sweep: {settings.source}", "",
             f"Models {how}; accuracy on the digits test split (golden integer model); "
             f"LUT / FF / block RAM estimated for {settings.family}, energy per frame for an "
             f"ASIC at {settings.node} nm; {fold}.", "",
             "| mix | avg bits | accuracy | LUT | FF | BRAM | FINN-R LUT | cycles/frame | "
             "energy pJ/frame | weight bits |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['mix']} | {row['avg_bits']:g} | {row['accuracy'] * 100:.1f}% | "
                     f"{row['lut']:,} | {row['ff']:,} | {row['bram']:g} | "
                     f"{'-' if row['finn_r_lut'] is None else format(row['finn_r_lut'], ',')} | "
                     f"{row['cycles_per_frame']:,} | "
                     f"{row['energy_pj_per_frame']:,.1f} | {row['weight_bits']:,} |")
    for cost, label in (("lut", "LUTs"), ("energy_pj_per_frame", "energy per frame")):
        front = ", ".join(row["mix"] for row in pareto_front(rows, cost))
        lines.append("")
        lines.append(f"Pareto front (accuracy vs {label}): {front}.")
    if source is not None:
        lines += ["", f"Source model {settings.source}, unchanged ({source['avg_bits']:g} bits "
                      f"per weight on average): accuracy {source['accuracy'] * 100:.1f}%, "
                      f"{source['lut']:,} LUTs, {source['energy_pj_per_frame']:,.1f} pJ per "
                      f"frame."]
    lines += ["", *[f"![{name}]({name})" for name in plots]]
    return "\n".join(lines) + "\n"


def how_obtained(settings: SweepSettings) -> str:
    """How the sweep's models (and so their accuracies) came about."""
    return ("retrained on digits for every mix" if settings.train
            else f"re-quantized from {settings.source} without retraining")


def plot_pareto(rows: list[dict], settings: SweepSettings, out_dir: Path,
                source: dict | None = None) -> list[Path]:
    """Accuracy vs LUTs and accuracy vs energy per frame (``pareto_lut.png``,
    ``pareto_energy.png``), drawn by :func:`hwbnn.report.plots.plot_pareto`."""
    from ..report.plots import plot_pareto as draw

    note = f"Models {how_obtained(settings)}; accuracy of the golden integer model."
    paths = []
    for cost, label, name in (("lut", f"LUTs ({settings.family}, estimate)", "pareto_lut.png"),
                              ("energy_pj_per_frame",
                               f"energy per frame (pJ, ASIC {settings.node} nm, estimate)",
                               "pareto_energy.png")):
        image = draw(rows, pareto_front(rows, cost), cost, label,
                     f"{settings.source}: bitwidth mixes", note, source)
        (out_dir / name).write_bytes(image)
        paths.append(out_dir / name)
    return paths


def register_sweep(subparsers) -> None:
    from ..cli import positive_int
    from .commands import FAMILY_CHOICES

    p = subparsers.add_parser(
        "sweep", help="accuracy, LUTs, block RAM, cycles and energy for bitwidth mixes",
        description="For each mix: re-quantize MODEL (or retrain ARCH on digits with "
                    "--train), score it, estimate its cost; write CSV, Markdown and Pareto "
                    "plots.")
    p.add_argument("model", help="model file or zoo:NAME; with --train an architecture "
                                 "mlp:W1,W2 or cnn:C1,M,C2,M")
    p.add_argument("--mixes", default=",".join(DEFAULT_MIXES),
                   help="average bitwidths and/or ternary (default: 1,1.2,1.4,1.6,2,3,ternary)")
    p.add_argument("--train", action="store_true", help="retrain every mix on digits")
    p.add_argument("--epochs", type=positive_int, help="training epochs (with --train)")
    p.add_argument("--activations", help="activations when training (default: the recipe's)")
    p.add_argument("--group", type=positive_int, default=1,
                   help="consecutive inputs sharing a bitwidth (default 1)")
    fold_arguments(p)
    mode_argument(p)
    p.add_argument("--family", choices=FAMILY_CHOICES[:3], default="ice40")
    p.add_argument("--node", type=int, choices=(45, 28, 7), default=45)
    cluster_arguments(p)
    p.add_argument("--out", default="sweep", help="output folder (default ./sweep)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser(
        "compare", help="accuracy, LUTs (estimate and synthesis) and energy of models",
        description="Side by side: accuracy on a test split, LUT/FF/BRAM estimate, "
                    "synthesized counts (--synth: hwbnn gen + Yosys), cycles and ASIC energy "
                    "per frame, each model folded the same way (--target-fps: auto-folded for "
                    "the same frame rate) or all unrolled (a frame per cycle).")
    p.add_argument("models", nargs="+", help="model files or zoo:NAMEs")
    p.add_argument("--dataset", default="digits",
                   help="test split the accuracy is measured on (default digits)")
    fold_arguments(p)
    p.add_argument("--family", choices=FAMILY_CHOICES[:3], default="ice40")
    mode_argument(p)
    p.add_argument("--synth", action="store_true", help="also synthesize each model")
    p.add_argument("--node", type=int, choices=(45, 28, 7), default=45)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)


def cmd_sweep(args) -> int:
    from ..cli import print_json
    from ..hw.fold import Folding, check_rate
    from ..hw.gen import check_unrolled
    from ..hw.unrolled import check_adders

    # One clear error for a bad model, architecture or folding before starting processes.
    check_adders(args.mode, args.adders)
    if args.train:
        _arch_arguments(args.model)
        check_rate(args.target_fps, args.clock_mhz)
        if args.mode == "unrolled":
            check_unrolled(None, args.fold, args.target_fps)
    else:
        from .. import zoo

        net = zoo.load(args.model)
        if args.mode == "unrolled":
            check_unrolled(net, args.fold, args.target_fps)
        else:
            Folding.parse(args.fold, net, target_fps=args.target_fps, clock_mhz=args.clock_mhz)
    settings = SweepSettings(args.model, args.family, args.train, args.target_fps,
                             args.clock_mhz, args.node, args.group, args.epochs,
                             args.activations, fold=args.fold, mode=args.mode,
                             adders=args.adders)
    rows = run_sweep(settings, parse_mixes(args.mixes), executor_of(args))
    paths = write_outputs(rows, settings, Path(args.out))
    if args.json:
        print_json({"mixes": rows})
    else:
        print(markdown_report(rows, settings, []).split("\n\n", 2)[2].rstrip())
        print("wrote " + ", ".join(str(path) for path in paths))
    return 0


def compare_models(models: list[str], family: str, synth: bool, node: int = 45,
                   dataset: str = "digits", fold=None, target_fps: float | None = None,
                   clock_mhz: float | None = None, mode: str = "folded",
                   adders: str = "trees") -> list[dict]:
    """Accuracy on ``dataset``, LUT/FF/BRAM estimate (and synthesis), cycles and energy per
    frame of each model, each folded by ``fold`` / ``target_fps`` (the same frame rate for
    all: ``--target-fps`` auto-folds each model for it).

    ``mode="unrolled"``: every model computes a frame per cycle (the same rate for all),
    estimated from what its unrolled units build (their sums built with ``adders``)."""
    from .. import data, zoo
    from ..hw.fold import DEFAULT_CLOCK_MHZ, Folding
    from ..hw.gen import check_unrolled
    from ..hw.unrolled import check_adders
    from ..ref import golden
    from .estimate import estimate

    check_adders(mode, adders)

    test = data.load(dataset)
    clock = clock_mhz or DEFAULT_CLOCK_MHZ
    rows = []
    for source in models:
        net = zoo.load(source)
        frames = data.model_frames(net, dataset)
        row = {"model": net.name, "model_path": source, "mode": mode,
               **({"adders": adders} if adders != "trees" else {}),
               "accuracy": float((golden.predict(net, frames) == test.test_y).mean()),
               **_seed_mean(source, dataset), "weight_bits": net.weight_bits}
        if mode == "unrolled":
            check_unrolled(net, fold, target_fps)
            folding = None
        else:
            folding = Folding.parse(fold, net, target_fps=target_fps, clock_mhz=clock)
        fpga = estimate(net, family, folding, clock_mhz=clock, mode=mode,
                        adders=adders).totals()
        chip = estimate(net, "asic", folding, node=node, clock_mhz=clock, mode=mode,
                        adders=adders).totals()
        row.update({"lut": round(fpga["lut"]), "ff": round(fpga["ff"]), "bram": fpga["bram"],
                    "cycles_per_frame": fpga["cycles_per_frame"],
                    "frames_per_s": round(fpga["frames_per_s"], 1),
                    "energy_pj_per_frame": chip["energy_pj_per_frame"]})
        if synth:
            row.update(synthesize_model(net, family, folding, mode, adders))
        rows.append(row)
    return rows


def _seed_mean(source: str, dataset: str) -> dict:
    """For a shipped zoo model with several training seeds in the run record (on the dataset
    it was trained on): their mean accuracy and count."""
    from numpy import mean

    from .. import zoo
    from ..zoo.build import seed_accuracies
    from ..zoo.recipes import RECIPES, dataset_of

    name = str(source).removeprefix(zoo.PREFIX)
    if not zoo.is_zoo_ref(source) or name not in RECIPES or dataset_of(RECIPES[name]) != dataset:
        return {}
    accuracies = seed_accuracies(name)
    if len(accuracies) < 2:
        return {}
    return {"mean_accuracy": float(mean(accuracies)), "training_seeds": len(accuracies)}


def synthesize_model(net, family: str, folding=None, mode: str = "folded",
                     adders: str = "trees") -> dict:
    """LUT/FF/block RAM of the whole generated network at ``folding`` (anything
    :meth:`~hwbnn.hw.fold.Folding.parse` takes; default the layers' own) or unrolled,
    ``hwbnn gen`` + Yosys."""
    from ..hw.gen import generate
    from ..synth.design import read_design
    from ..synth.flow import synthesize

    with tempfile.TemporaryDirectory(prefix="hwbnn-compare-") as tmp:
        generate(net, folding, tmp, mode=mode, adders=adders)
        counts = synthesize(read_design(tmp), family, seeds=0).counts
    return {"measured_lut": counts["lut"], "measured_ff": counts["ff"],
            "measured_bram": counts["bram"]}


def compare_table(rows: list[dict]) -> str:
    """Markdown table of :func:`compare_models` rows."""
    keys = list(dict.fromkeys(key for row in rows for key in row))  # a file has no seed mean
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = ["-" if row.get(k) is None else
                 f"{row[k] * 100:.2f}%" if k.endswith("accuracy") else
                 f"{row[k]:,.1f}" if isinstance(row[k], float) else
                 f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_compare(args) -> int:
    from ..cli import print_json

    rows = compare_models(args.models, args.family, args.synth, args.node, args.dataset,
                          args.fold, args.target_fps, args.clock_mhz, args.mode, args.adders)
    if args.json:
        print_json({"models": rows})
    else:
        print(compare_table(rows))
    return 0
