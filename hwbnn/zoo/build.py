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
import time
from pathlib import Path

import numpy as np

from .. import data, progress
from ..errors import HwbnnError
from ..ir import save
from ..ir.export import export
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
    """Train and (unless float) export: ``(row, torch model, network or None)``."""
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


def fingerprint(name: str, dataset: data.Dataset | None = None) -> str:
    """Digest of recipe ``name``'s seed-0 model exported before its first training step."""
    entry = recipe(name)
    dataset = dataset or data.load(dataset_of(entry))
    settings = TrainSettings(**entry["settings"], seed=0)
    model = train(entry["config"], dataset, settings, progress=False, max_steps=0)
    return hashlib.sha256(to_bytes(export(model, name))).hexdigest()[:16]


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


def build(names: list[str], seeds: int = 1, zoo_dir: Path = ZOO_DIR,
          executor=None) -> list[dict]:
    """Rebuild zoo models with seed 0 (written to ``zoo_dir``); with ``seeds > 1`` add the
    mean over seeds 0..seeds-1 and train the float baselines of the same datasets too.

    Every (model, seed) is one job on ``executor`` (default: in this process).
    """
    from ..dist import Executor

    executor = executor or Executor()
    datasets = {dataset_of(recipe(name)) for name in names}
    baselines = [name for name, entry in BASELINES.items()
                 if seeds > 1 and dataset_of(entry) in datasets]
    order = [*names, *baselines]
    # Longest first, so the last job to finish is a short one.
    jobs = sorted(((name, seed, seed == 0 and name in RECIPES) for name in order
                   for seed in range(seeds)), key=lambda job: -expected_work(job[0]))
    rows: dict[tuple[str, int], dict] = {}
    with (progress.step(f"zoo build on {executor.where}", total=len(jobs)) as step,
          executor):
        for index, row in executor.map(train_job, jobs):
            name, seed, _ = jobs[index]
            for suffix, content in row.pop("files", {}).items():
                path = write_atomic(Path(zoo_dir) / f"{name}{suffix}", content)
                row["model_path" if suffix == ".hwbnn" else "checkpoint_path"] = str(path)
            rows[name, seed] = row
            step.advance(f"{name} seed {seed}")
    results = []
    for name in order:
        row = rows[name, 0]
        if seeds > 1:
            key = "float_accuracy" if name in BASELINES else "integer_accuracy"
            row["seed_accuracies"] = [rows[name, seed][key] for seed in range(seeds)]
            row["mean_accuracy"] = float(np.mean(row["seed_accuracies"]))
        results.append(row)
    return results


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
        lines.append(f"| {row['model']} | {row['dataset']} | {config['weights']} / "
                     f"{config['activations']} | {bits} | {100 * accuracy:.2f}% |{mean} "
                     f"{row['train_s']:.0f} s |")
    return "\n".join(lines)

