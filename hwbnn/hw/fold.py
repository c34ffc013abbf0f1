"""Folding (PE/SIMD per layer): explicit from a JSON file, or ``auto`` for a frame rate.

``auto`` balances the layers like FINN's SetFolding: start fully folded (PE = SIMD = 1) and
repeatedly give the slowest foldable layer its next larger SIMD (a divisor of MW), then its
next larger PE (a divisor of MH), until every layer meets the cycle budget
``clock_hz / target_fps`` or none can be unfolded further.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import HwbnnError
from ..ir.network import Conv, NetworkIR
from .plan import LayerPlan


def divisors(n: int) -> list[int]:
    """Every d that divides n, ascending (the legal PE or SIMD values for n rows/columns)."""
    return [d for d in range(1, n + 1) if n % d == 0]


def load_folding(path: str | Path, net: NetworkIR) -> dict[str, dict[str, int]]:
    """Read ``{"layer": {"pe": P, "simd": S}, ...}`` (optionally under a ``"folding"`` key)."""
    path = Path(path)
    if not path.is_file():
        raise HwbnnError(f"folding file {str(path)!r} does not exist")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HwbnnError(f"folding file {str(path)!r} is not valid JSON: {error}") from None
    if isinstance(content, dict) and isinstance(content.get("folding"), dict):
        content = content["folding"]
    if not isinstance(content, dict):
        raise HwbnnError(f"folding file {str(path)!r} must hold an object of layers")
    names = {layer.name: layer for layer in net.weight_layers}
    folding = {}
    for name, entry in content.items():
        if name not in names:
            raise HwbnnError(f"folding file names unknown layer {name!r}; "
                             f"weight layers: {', '.join(names)}")
        if not isinstance(entry, dict) or set(entry) - {"pe", "simd"}:
            raise HwbnnError(f"folding of layer {name!r} must be {{\"pe\": P, \"simd\": S}}")
        LayerPlan(names[name], entry.get("pe"), entry.get("simd"))
        folding[name] = {"pe": entry.get("pe", 1), "simd": entry.get("simd", 1)}
    return folding


def layer_cycles(layer, pe: int, simd: int) -> int:
    """Cycles per frame of a weight layer's MVTU at this folding."""
    return LayerPlan(layer, pe, simd).cycles_per_vector * layer.output_pixels


def fixed_cycles(net: NetworkIR) -> dict[str, int]:
    """Cycles per frame of the stages that folding does not change (sliding windows)."""
    fixed = {}
    for layer in net.layers:
        if isinstance(layer, Conv):
            oh, ow, _ = layer.out_shape
            fixed[f"{layer.name}_window"] = oh * ow * layer.kernel ** 2
    return fixed


def auto_folding(net: NetworkIR, target_fps: float, clock_hz: float = 100e6,
                 ) -> tuple[dict[str, dict[str, int]], dict]:
    """Smallest balanced folding reaching ``target_fps`` at ``clock_hz``.

    Returns ``(folding, report)``; raises HwbnnError naming the bottleneck when the target
    cannot be met even fully unfolded.
    """
    if not target_fps or target_fps <= 0:
        raise HwbnnError(f"--target-fps must be a positive number, not {target_fps!r}")
    budget = int(clock_hz // target_fps)
    if budget < 1:
        raise HwbnnError(f"{target_fps} frames/s needs more than one frame per clock cycle at "
                         f"{clock_hz / 1e6:g} MHz")
    layers = net.weight_layers
    folding = {layer.name: {"pe": 1, "simd": 1} for layer in layers}
    cycles = {layer.name: layer_cycles(layer, 1, 1) for layer in layers}
    while True:
        over = [layer for layer in layers if cycles[layer.name] > budget
                and _unfold(layer, folding[layer.name]) is not None]
        if not over:
            break
        slowest = max(over, key=lambda layer: cycles[layer.name])
        folding[slowest.name] = _unfold(slowest, folding[slowest.name])
        fold = folding[slowest.name]
        cycles[slowest.name] = layer_cycles(slowest, fold["pe"], fold["simd"])
    stages = {**cycles, **fixed_cycles(net)}
    worst = max(stages, key=stages.get)
    report = {"target_fps": target_fps, "clock_hz": clock_hz, "cycle_budget": budget,
              "cycles_per_frame": stages[worst], "bottleneck": worst,
              "fps": clock_hz / stages[worst]}
    if stages[worst] > budget:
        raise HwbnnError(f"target {target_fps:g} frames/s at {clock_hz / 1e6:g} MHz cannot be "
                         f"met: at most {clock_hz / stages[worst]:.0f} frames/s, limited by "
                         f"{worst} ({stages[worst]} cycles per frame > {budget})")
    return folding, report


def _unfold(layer, fold: dict[str, int]) -> dict[str, int] | None:
    """Next folding step for a layer: larger SIMD first, then larger PE; None at the end."""
    simd_options = [d for d in divisors(layer.mw) if d > fold["simd"]]
    if simd_options:
        return {"pe": fold["pe"], "simd": simd_options[0]}
    pe_options = [d for d in divisors(layer.mh) if d > fold["pe"]]
    if pe_options:
        return {"pe": pe_options[0], "simd": fold["simd"]}
    return None
