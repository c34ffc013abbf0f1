"""Train, export and write zoo models (``hwbnn zoo build``, ``hwbnn train``).

``hwbnn zoo build`` trains every (model, seed) as one job of :mod:`hwbnn.dist` (training is
seeded and single-threaded, so a job gives the same bytes on any worker); the command writes the
seed-0 files. Each shipped model records the *fingerprint* of its recipe: the digest of the
recipe's model exported before its first training step (seeded initialization, quantizers,
residual binarization, BatchNorm folding). It changes when the recipe or that code path
changes and costs a second to recompute, so the tests check it for every shipped model that is
too slow to retrain in CI; the training step itself is checked by retraining the digits models
byte for byte (docs/design.md, "Zoo"). After even a few steps a digest would depend on float
rounding (a 20-step digest differed for 3 of 13 models between two environments of one
machine), so it would flag changes that are not there.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .. import data, progress, zoo
from ..errors import HwbnnError
from ..ir import save
from ..ir.export import export, three_way_mismatch
from ..ir.fileformat import to_bytes, write_atomic
from ..quant.models import is_float
from ..ref import golden
from ..train import TrainSettings, accuracy, checkpoint_bytes, save_checkpoint, train
from . import ZOO_DIR
from .recipes import BASELINES, RECIPES, dataset_of, expected_work


def recipe(name: str) -> dict:
    """A zoo or baseline recipe by name."""
    recipes = {**RECIPES, **BASELINES}
    if name not in recipes:
        raise HwbnnError(f"no recipe {name!r}; known: {', '.join(recipes)}")
    return recipes[name]


def train_model(config: dict, settings: TrainSettings, dataset: data.Dataset, name: str,
                progress: bool = True, metadata: dict | None = None):
    """Train and (unless float) export: ``(row, torch model, network or None)``. The export is
    checked on the whole test split: integer torch == golden == packed on every layer."""
    start = time.perf_counter()
    model = train(config, dataset, settings, progress=progress)
    seconds = time.perf_counter() - start
    result = {"model": name, "dataset": dataset.name, "seed": settings.seed,
              "epochs": settings.epochs, "train_s": seconds,
              "float_accuracy": accuracy(model, dataset.test_x, dataset.test_y)}
    net = None
    if not is_float(model.config):
        training = {k: result[k] for k in ("dataset", "seed", "epochs", "float_accuracy")}
        net = export(model, name, {"training": {**training, **(metadata or {})}})
        mismatch = three_way_mismatch(model, net, dataset.test_x)
        if mismatch is not None:
            raise HwbnnError(f"{name} (seed {settings.seed}): {mismatch}")
        predicted = golden.predict(net, dataset.test_x)
        result["integer_accuracy"] = net.metadata["training"]["integer_accuracy"] = float(
            np.mean(predicted == dataset.test_y))
    return result, model, net


def train_and_save(config: dict, settings: TrainSettings, dataset: data.Dataset,
                   out_stem: Path | None, name: str, progress: bool = True) -> dict:
    """Train; with ``out_stem`` write ``.pt`` and ``.hwbnn`` (float models: ``.pt`` only)."""
    result, model, net = train_model(config, settings, dataset, name, progress)
    if out_stem is not None:
        out_stem = Path(out_stem)
        result["checkpoint_path"] = str(save_checkpoint(model, out_stem.with_name(
            out_stem.name + ".pt")))
        if net is not None:
            result["model_path"] = str(save(net, out_stem.with_name(out_stem.name + ".hwbnn")))
    return result


def fingerprint(name: str, dataset: data.Dataset | None = None, seed: int = 0) -> str:
    """Digest of recipe ``name``'s model (of ``seed``) exported before its first training step."""
    entry = recipe(name)
    dataset = dataset or data.load(dataset_of(entry))
    settings = TrainSettings(**entry["settings"], seed=seed)
    model = train(entry["config"], dataset, settings, progress=False, max_steps=0)
    return hashlib.sha256(to_bytes(export(model, name))).hexdigest()[:16]


def recipe_digest(name: str) -> str:
    """Digest of a recipe's text (config, settings, dataset): a recorded run belongs to it."""
    text = json.dumps(recipe(name), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_job(args) -> dict:
    """One (recipe, seed) in a worker: the row and, with ``files``, the model file's and the
    checkpoint's bytes (and the recipe's fingerprint)."""
    name, seed, files = args
    entry = recipe(name)
    dataset = data.load(dataset_of(entry))
    settings = TrainSettings(**entry["settings"], seed=seed)
    extra = {"fingerprint": fingerprint(name, dataset)} if files and name in RECIPES else {}
    result, model, net = train_model(entry["config"], settings, dataset, name,
                                     progress=False, metadata=extra)
    if files:
        result["files"] = {".pt": checkpoint_bytes(model),
                           **({".hwbnn": to_bytes(net)} if net is not None else {})}
    return result


# --- The record of trained runs -------------------------------------------------------------
RECORD_FORMAT = 1
_RECORDED = ("dataset", "epochs", "float_accuracy", "integer_accuracy", "train_s")


def read_record(path: Path | None = None) -> dict:
    """The run record at ``path`` (default :data:`hwbnn.zoo.RECORD`, the shipped one) as
    ``{name: {seed: run}}`` (empty when there is no file). A run keeps the recipe digest it was
    trained from, its accuracies, epochs and training time."""
    path = Path(path or zoo.RECORD)
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text())
        runs = content["runs"]
        if content.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {content.get('format')!r}")
        return {name: {int(seed): run for seed, run in seeds.items()}
                for name, seeds in runs.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise HwbnnError(f"{path}: not a zoo run record ({error})") from None


def write_record(record: dict, path: Path | None = None) -> Path:
    content = {"format": RECORD_FORMAT, "runs": {
        name: {str(seed): record[name][seed] for seed in sorted(record[name])}
        for name in sorted(record)}}
    text = json.dumps(content, indent=1, sort_keys=True) + "\n"
    return write_atomic(path or zoo.RECORD, text.encode())


def add_run(name: str, seed: int, run: dict, path: Path | None = None) -> dict:
    """Add one run to the record file and return the record: read, update and write under an
    exclusive lock, so builds running side by side on one machine keep each other's runs."""
    import fcntl

    path = Path(path or zoo.RECORD)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = read_record(path)
        record.setdefault(name, {})[seed] = run
        write_record(record, path)
    return record


def recorded_run(record: dict, name: str, seed: int) -> dict | None:
    """The recorded run of ``name`` at ``seed`` if it was trained from today's recipe."""
    run = record.get(name, {}).get(seed)
    return run if run is not None and run.get("recipe") == recipe_digest(name) else None


def _run_of(name: str, row: dict) -> dict:
    return {"recipe": recipe_digest(name), **{key: row[key] for key in _RECORDED if key in row}}


def with_baselines(names: list[str], seeds: int) -> list[str]:
    """``names`` and, with ``seeds > 1``, the float baselines of their datasets."""
    datasets = {dataset_of(recipe(name)) for name in names}
    return [*names, *(name for name, entry in BASELINES.items()
                      if seeds > 1 and dataset_of(entry) in datasets)]


def build(names: list[str], seeds: int = 1, zoo_dir: Path = ZOO_DIR, executor=None,
          record_path: Path | None = None, missing_only: bool = False) -> list[dict]:
    """Rebuild zoo models (and float baselines: :func:`with_baselines`) with seed 0, the zoo's
    written to ``zoo_dir``; with ``seeds > 1`` also seeds 1..seeds-1, for the mean.

    Every (model, seed) is one job on ``executor`` (default: in this process). Each finished
    run goes into the record at ``record_path`` (default :data:`hwbnn.zoo.RECORD`) at once (so an
    interrupted build keeps what it finished). Runs beyond the shipped seed 0 are taken from
    the record where it has them for the same recipe; ``missing_only`` takes seed 0 from it
    too (the shipped files stay as they are) and trains only what the record lacks. Returns
    :func:`table_rows` of ``names``.
    """
    from ..dist import Executor

    executor = executor or Executor()
    record = read_record(record_path)
    wanted = [(name, seed) for name in names for seed in range(seeds)]

    def needed(name: str, seed: int) -> bool:
        shipped = seed == 0 and name in RECIPES
        return (shipped and not missing_only) or recorded_run(record, name, seed) is None

    # Longest first, so the last job to finish is a short one.
    jobs = sorted(((name, seed, seed == 0 and name in RECIPES) for name, seed in wanted
                   if needed(name, seed)), key=lambda job: -expected_work(job[0]))
    trained: dict[tuple[str, int], dict] = {}
    with (progress.step(f"zoo build on {executor.where}", total=len(jobs)) as step,
          executor):
        for index, row in executor.map(train_job, jobs):
            name, seed, _ = jobs[index]
            for suffix, content in row.pop("files", {}).items():
                path = write_atomic(Path(zoo_dir) / f"{name}{suffix}", content)
                row["model_path" if suffix == ".hwbnn" else "checkpoint_path"] = str(path)
            trained[name, seed] = row
            record = add_run(name, seed, _run_of(name, row), record_path)
            step.advance(f"{name} seed {seed}")
    rows = table_rows(names, seeds, record, zoo_dir)
    for row in rows:
        row.update({key: value for key, value in trained.get((row["model"], 0), {}).items()
                    if key.endswith("_path")})
    return rows


def seed_accuracies(name: str, record: dict | None = None) -> list[float]:
    """Accuracies (integer; float for a float baseline) of seeds 0, 1, ... of ``name`` that
    the record holds for today's recipe (up to the first missing seed)."""
    record = read_record() if record is None else record
    accuracies = []
    while (run := recorded_run(record, name, len(accuracies))) is not None:
        accuracies.append(run.get("integer_accuracy", run["float_accuracy"]))
    return accuracies


def table_rows(names: list[str], seeds: int, record: dict | None = None,
               zoo_dir: Path = ZOO_DIR) -> list[dict]:
    """One row per name from the record: seed 0's run, with ``seeds > 1`` the accuracy of
    every seed and their mean. HwbnnError naming what the record lacks."""
    record = read_record() if record is None else record
    missing = [f"{name} seed {seed}" for name in names for seed in range(seeds)
               if recorded_run(record, name, seed) is None]
    if missing:
        raise HwbnnError(f"the run record lacks {', '.join(missing)} (hwbnn zoo build "
                         f"--seeds {seeds} --missing-only trains them)")
    rows = []
    for name in names:
        row = {"model": name, "seed": 0, **recorded_run(record, name, 0)}
        del row["recipe"]
        if name in RECIPES:
            row["model_path"] = str(Path(zoo_dir) / f"{name}.hwbnn")
        if seeds > 1:
            row["seed_accuracies"] = seed_accuracies(name, record)[:seeds]
            row["mean_accuracy"] = float(np.mean(row["seed_accuracies"]))
        rows.append(row)
    return rows


def rebuild_estimate(names: list[str], workers: int, record: dict | None = None) -> dict:
    """How long ``hwbnn zoo build NAMES --jobs WORKERS`` (seed 0) would train, from the
    recorded seed-0 training times: the jobs in :func:`build`'s order (longest expected work
    first), each to the worker that frees up first. ``{"jobs", "workers", "train_s" (the
    sum), "makespan_s"}``; HwbnnError naming the runs the record lacks."""
    record = read_record() if record is None else record
    runs = {name: recorded_run(record, name, 0) for name in names}
    missing = [name for name, run in runs.items() if run is None]
    if missing:
        raise HwbnnError(f"the run record lacks seed 0 of {', '.join(missing)}")
    if workers < 1:
        raise HwbnnError(f"workers must be at least 1, not {workers}")
    free = [0.0] * workers
    for name in sorted(names, key=lambda name: -expected_work(name)):
        first = free.index(min(free))
        free[first] += runs[name]["train_s"]
    return {"jobs": len(names), "workers": workers,
            "train_s": sum(runs[name]["train_s"] for name in names), "makespan_s": max(free)}


def zoo_table(rows: list[dict]) -> str:
    """The README's accuracy table of :func:`build` rows (Markdown): weights / activations,
    weight bits, seed 0, the mean over seeds (when trained), training time of seed 0."""
    seeds = max((len(row.get("seed_accuracies", [0])) for row in rows), default=1)
    lines = ["| model | dataset | weights / activations | weight bits | seed 0 | "
             + (f"mean of {seeds} seeds | " if seeds > 1 else "") + "train time |",
             "|---|---|---|---|---|" + ("---|" if seeds > 1 else "") + "---|"]
    for row in rows:
        config = recipe(row["model"])["config"]
        accuracy = row.get("integer_accuracy", row["float_accuracy"])
        bits = "-"
        if row.get("model_path"):
            from .. import zoo

            net = zoo.load(row["model_path"])
            bits = f"{net.weight_bits:,}"
        mean = f" {100 * row['mean_accuracy']:.2f}% |" if "mean_accuracy" in row else (
            " |" if seeds > 1 else "")
        weights, activations = config["weights"], config["activations"]
        if config.get("edge_weights"):  # residual: 8-bit first/last layers, an integer path
            weights += f" ({config['edge_weights']} first/last)"
            activations += f" ({config['path']} shortcut path)"
        lines.append(f"| {row['model']} | {row['dataset']} | {weights} / "
                     f"{activations} | {bits} | {100 * accuracy:.2f}% |{mean} "
                     f"{row['train_s']:.0f} s |")
    return "\n".join(lines)

