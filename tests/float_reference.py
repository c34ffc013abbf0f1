"""Comparing hwbnn's integer scores with a float framework's (Brevitas, torch, qonnx)."""

import numpy as np

# Float frameworks compute in float32: their scores match u * integers + c to this fraction
# of their size.
FLOAT32_TOLERANCE = 1e-5


def assert_scores_match(reference: np.ndarray, scores: np.ndarray, what: str) -> None:
    """Labels equal, and ``reference = u * scores + c`` for one ``u > 0`` (float32 aside)."""
    np.testing.assert_array_equal(reference.argmax(axis=1), scores.argmax(axis=1),
                                  err_msg=f"{what}: labels")
    assert scores.std() > 0, f"{what}: constant scores prove nothing"
    design = np.stack([scores.reshape(-1), np.ones(scores.size)], axis=1).astype(np.float64)
    (u, c), *_ = np.linalg.lstsq(design, reference.reshape(-1).astype(np.float64), rcond=None)
    residual = np.abs(design @ [u, c] - reference.reshape(-1)).max()
    assert u > 0, f"{what}: scale {u}"
    assert residual <= FLOAT32_TOLERANCE * max(1.0, np.abs(reference).max()), (
        f"{what}: scores differ from {u:g} * integers + {c:g} by {residual:g}")
