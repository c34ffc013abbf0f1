"""Synthetic benchmark models: real architectures with random weights and real thresholds.

They need no training; the CPU and hardware benchmarks use them at sizes beyond digits.
``SYNTHETIC`` maps a zoo name to a function building its NetworkIR.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.network import NetworkIR

SYNTHETIC: dict[str, Callable[[], NetworkIR]] = {}
