"""Pareto fronts: the one definition of "not dominated" for the sweep and the exploration."""

from __future__ import annotations


def non_dominated(rows: list[dict], senses: dict[str, int]) -> list[dict]:
    """The rows no other row dominates, in their given order. ``senses`` maps each objective's
    key to +1 (higher is better) or -1 (lower is better); a row dominates another when it is at
    least as good on every objective and better on one. Of rows with the same objective values
    only the first is kept."""
    scores = [tuple(sense * row[key] for key, sense in senses.items()) for row in rows]
    front, seen = [], set()
    for row, mine in zip(rows, scores, strict=True):
        if mine in seen:
            continue
        if not any(other != mine and all(o >= m for o, m in zip(other, mine, strict=True))
                   for other in scores):
            front.append(row)
            seen.add(mine)
    return front
