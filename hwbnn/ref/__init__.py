"""Reference CPU models of a NetworkIR: :mod:`golden` (the source of truth)."""
