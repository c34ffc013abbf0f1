"""Training of quantized models (CPU, seeded and deterministic) and their checkpoints."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import progress as hwbnn_progress
from .data import Dataset
from .errors import HwbnnError
from .ir.fileformat import write_atomic
from .quant.models import QuantNet
from .quant.quantizers import one_thread

CHECKPOINT_FORMAT = "hwbnn-checkpoint-1"


@dataclass
class TrainSettings:
    """Optimizer settings; the defaults are tuned on digits."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0


@contextmanager
def _deterministic(seed: int):
    """One thread and fixed seeds: the same run gives the same bits on any CPU."""
    with one_thread():
        torch.manual_seed(seed)
        yield np.random.default_rng(seed)


def accuracy(model: QuantNet, images: np.ndarray, labels: np.ndarray) -> float:
    """Float-mode (eval) accuracy of a torch model."""
    model.eval()
    with torch.no_grad():
        predicted = model(model.prepare_input(images)).argmax(1).numpy()
    return float(np.mean(predicted == labels))


def train(config: dict, dataset: Dataset, settings: TrainSettings | None = None,
          progress: bool = True, max_steps: int | None = None) -> QuantNet:
    """Train a QuantNet on ``dataset`` with Adam and a cosine learning-rate schedule
    (``max_steps``: stop after that many optimizer steps, the schedule unchanged, so the
    result is the full run's state at that step)."""
    settings = settings or TrainSettings()
    if settings.epochs < 1 or settings.batch_size < 1:
        raise HwbnnError("epochs and batch size must be positive")
    config = {**config, "input_shape": list(dataset.input_shape),
              "input_encoding": dataset.input_encoding, "num_classes": dataset.num_classes}
    with _deterministic(settings.seed) as rng:
        model = QuantNet(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr,
                                     weight_decay=settings.weight_decay)
        x_all = model.prepare_input(dataset.train_x)
        y_all = torch.as_tensor(dataset.train_y)
        steps_per_epoch = math.ceil(len(x_all) / settings.batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, settings.epochs * steps_per_epoch)
        label = f"train {config.get('arch', 'mlp')} (seed {settings.seed})"
        steps = 0
        with hwbnn_progress.step(label, settings.epochs, quiet=not progress) as step:
            for _ in range(settings.epochs):
                model.train()
                order = torch.as_tensor(rng.permutation(len(x_all)))
                total = 0.0
                for start in range(0, len(order), settings.batch_size):
                    if max_steps is not None and steps == max_steps:
                        return model.eval()
                    steps += 1
                    batch = order[start:start + settings.batch_size]
                    loss = F.cross_entropy(model(x_all[batch]), y_all[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    model.clip_latent_weights()
                    total += loss.item() * len(batch)
                step.advance(f"loss {total / len(order):.3f}")
    return model.eval()


def checkpoint_bytes(model: QuantNet, **extra) -> bytes:
    """The checkpoint (config and state dict, loadable with ``weights_only=True``) as bytes."""
    import io

    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "config": model.config,
                "state_dict": model.state_dict(), **extra}, buffer)
    return buffer.getvalue()


def save_checkpoint(model: QuantNet, path: str | os.PathLike, **extra) -> Path:
    """Write :func:`checkpoint_bytes` to ``path`` (atomically)."""
    return write_atomic(path, checkpoint_bytes(model, **extra))


def load_checkpoint(path: str | os.PathLike) -> QuantNet:
    """Rebuild a QuantNet from a checkpoint; HwbnnError if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise HwbnnError(f"checkpoint {str(path)!r} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise HwbnnError(f"{path}: not a hwbnn checkpoint ({type(error).__name__})") from None
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise HwbnnError(f"{path}: not a hwbnn checkpoint (format {CHECKPOINT_FORMAT})")
    model = QuantNet(content["config"])
    try:
        model.load_state_dict(content["state_dict"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise HwbnnError(f"{path}: state dict does not fit its config ({first})") from None
    return model.eval()
