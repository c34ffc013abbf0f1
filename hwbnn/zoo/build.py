"""Train, export and write zoo models (``hwbnn zoo build``, ``hwbnn train``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import data
from ..errors import HwbnnError
from ..ir import save
from ..ir.export import export
from ..quant.models import is_float
from ..ref import golden
from ..train import TrainSettings, accuracy, save_checkpoint, train
from . import ZOO_DIR
from .recipes import BASELINES, RECIPES


def recipe(name: str) -> dict:
    """A zoo or baseline recipe by name."""
    recipes = {**RECIPES, **BASELINES}
    if name not in recipes:
        raise HwbnnError(f"no recipe {name!r}; known: {', '.join(recipes)}")
    return recipes[name]


def train_and_save(config: dict, settings: TrainSettings, dataset: data.Dataset,
                   out_stem: Path | None, name: str, progress: bool = True) -> dict:
    """Train; with ``out_stem`` write ``.pt`` and ``.hwbnn`` (float models: ``.pt`` only)."""
    start = time.perf_counter()
    model = train(config, dataset, settings, progress=progress)
    seconds = time.perf_counter() - start
    result = {"model": name, "dataset": dataset.name, "seed": settings.seed,
              "epochs": settings.epochs, "train_s": seconds,
              "float_accuracy": accuracy(model, dataset.test_x, dataset.test_y)}
    exportable = not is_float(model.config)
    if exportable:
        training = {k: result[k] for k in ("dataset", "seed", "epochs", "float_accuracy")}
        net = export(model, name, {"training": training})
        predicted = golden.predict(net, dataset.test_x)
        result["integer_accuracy"] = training["integer_accuracy"] = float(
            np.mean(predicted == dataset.test_y))
    if out_stem is not None:
        out_stem = Path(out_stem)
        result["checkpoint_path"] = str(save_checkpoint(model, out_stem.with_name(
            out_stem.name + ".pt")))
        if exportable:
            result["model_path"] = str(save(net, out_stem.with_name(out_stem.name + ".hwbnn")))
    return result


def build(names: list[str], seeds: int = 1, zoo_dir: Path = ZOO_DIR) -> list[dict]:
    """Rebuild zoo models with seed 0; with ``seeds > 1`` add the mean over seeds 0..seeds-1.

    Baseline recipes (float32) are trained for the table but never written.
    """
    dataset = data.load("digits")
    results = []
    for name in [*names, *(BASELINES if seeds > 1 else [])]:
        entry = recipe(name)
        settings = TrainSettings(**entry["settings"], seed=0)
        stem = None if name in BASELINES else zoo_dir / name
        row = train_and_save(entry["config"], settings, dataset, stem, name)
        if seeds > 1:
            key = "float_accuracy" if name in BASELINES else "integer_accuracy"
            accuracies = [row[key]]
            for seed in range(1, seeds):
                settings = TrainSettings(**entry["settings"], seed=seed)
                accuracies.append(train_and_save(entry["config"], settings, dataset, None,
                                                 name, progress=False)[key])
            row["seed_accuracies"] = accuracies
            row["mean_accuracy"] = float(np.mean(accuracies))
        results.append(row)
    return results
