"""Compare a per-layer trace against the golden one and name the first difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mismatch:
    """First element that differs: layer, which tensor, frame and element index, values."""

    layer: str
    tensor: str
    index: tuple[int, ...]
    expected: int
    actual: int
    count: int

    def __str__(self) -> str:
        return (f"layer {self.layer} {self.tensor}{list(self.index)}: expected "
                f"{self.expected}, got {self.actual} ({self.count} elements differ)")


def first_mismatch(expected, actual) -> Mismatch | None:
    """Walk two traces (objects with ``name``, ``acc``, ``out``) layer by layer."""
    for want, got in zip(expected, actual, strict=True):
        for tensor in ("acc", "out"):
            a, b = getattr(want, tensor), getattr(got, tensor)
            if a is None or b is None:
                continue
            if a.shape != b.shape:
                return Mismatch(want.name, tensor, (), -1, -1, max(a.size, b.size))
            differ = a != b
            if differ.any():
                index = tuple(int(i) for i in np.argwhere(differ)[0])
                return Mismatch(want.name, tensor, index, int(a[index]), int(b[index]),
                                int(differ.sum()))
    return None
