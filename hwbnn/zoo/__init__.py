"""Model zoo: trained digits models shipped as files, plus synthetic benchmark models.

A model reference is a path to a ``.hwbnn`` file or ``zoo:NAME``. Trained models live
beside this file (``NAME.hwbnn`` with the torch checkpoint ``NAME.pt``) and are rebuilt
reproducibly by ``hwbnn zoo build`` from :data:`hwbnn.zoo.recipes.RECIPES`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import HwbnnError
from ..ir import fileformat
from ..ir.network import NetworkIR

ZOO_DIR = Path(__file__).resolve().parent
# The run record of every trained (model, seed): hwbnn.zoo.build.read_record.
RECORD = ZOO_DIR / "runs.json"
PREFIX = "zoo:"


def names() -> list[str]:
    """Every zoo name: trained models, then synthetic benchmark models."""
    from .synthetic import SYNTHETIC

    return trained_names() + list(SYNTHETIC)


def trained_names() -> list[str]:
    """Names of the trained models shipped in the package."""
    from .recipes import RECIPES

    return list(RECIPES)


def model_path(name: str) -> Path:
    """File of a shipped trained model."""
    return ZOO_DIR / f"{name}.hwbnn"


def checkpoint_path(name: str) -> Path:
    """Torch checkpoint of a shipped trained model."""
    return ZOO_DIR / f"{name}.pt"


def is_zoo_ref(ref: str) -> bool:
    return str(ref).startswith(PREFIX)


def load(ref: str | Path) -> NetworkIR:
    """Load a model from a path or ``zoo:NAME``; HwbnnError if it does not exist or is bad."""
    ref = str(ref)
    if not is_zoo_ref(ref):
        return fileformat.load(ref)
    name = ref[len(PREFIX):]
    if name in trained_names():
        return fileformat.load(model_path(name))
    from .synthetic import SYNTHETIC

    if name in SYNTHETIC:
        return SYNTHETIC[name]().validate()
    raise HwbnnError(f"no zoo model {name!r}; known: {', '.join(names())}")


def resolve_checkpoint(ref: str | Path) -> Path | None:
    """The shipped checkpoint of ``zoo:NAME`` (None for other references)."""
    ref = str(ref)
    if is_zoo_ref(ref) and ref[len(PREFIX):] in trained_names():
        return checkpoint_path(ref[len(PREFIX):])
    return None
