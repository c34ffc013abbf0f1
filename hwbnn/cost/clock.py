"""The clock a folded design reaches on a family, predicted before synthesis.

Place and route of generated networks (``calibration/networks_F.json``) shows these critical
paths: the stream handshakes (a downstream FIFO's or width converter's state decides whether a
matrix unit advances, and that decision enables every register of its input buffer: mostly
routing, growing with the fan-out and the design's size); the multi-level threshold compare
of unsigned outputs (its comparators and the count of passed levels sit in one cycle); and,
on ECP5, a sliding window's frame-memory address (row x width + column) and block RAM reads
into the first adders. The model is a period in nanoseconds,

    period = c0 + c1 log2(largest enable fan-out) + c2 log2(LUTs)
             + c3 log2(1 + most output levels)
             + c4 log2(1 + pixels of the largest sliding window),

fitted per family by non-negative least squares on the training networks' nextpnr Fmax (one
seed), and checked on the held-out ones (docs/design.md, "Clock model"). Mixed-bitwidth
weights had a path of their own, the per-tile plane table of their sequencer, until the
weight memory took its place (docs/design.md section 4). Families without open place and
route (xc7, asic) have no prediction: commands then assume
:data:`~hwbnn.hw.fold.DEFAULT_CLOCK_MHZ` and say so.
"""

from __future__ import annotations

from math import log2

import numpy as np

CLOCK_TERMS = ("const", "log2_fanout", "log2_luts", "log2_levels", "log2_window")
# Families with an Fmax measurement (open place and route) and so a model.
CLOCK_FAMILIES = ("ice40", "ecp5")


def enable_fanout(profile) -> int:
    """Registers behind the widest stall enable of a network profile: per matrix unit its
    input buffer, its output register and its counters advance together."""
    fanouts = [layer.input_buffer.bits + layer.pe * max(layer.out_bits, 1)
               for layer in profile.layers]
    return max(fanouts, default=1)


def clock_terms(profile, luts: float) -> dict[str, float]:
    """The model's terms for a network profile with ``luts`` estimated LUTs."""
    levels = max((layer.levels for layer in profile.layers), default=1)
    pixels = max((window.in_shape[0] * window.in_shape[1] for window in profile.windows),
                 default=0)
    return {"const": 1.0, "log2_fanout": log2(max(enable_fanout(profile), 2)),
            "log2_luts": log2(max(luts, 2.0)), "log2_levels": log2(1 + levels),
            "log2_window": log2(1 + pixels)}


def predict_mhz(terms: dict[str, float], coefficients: dict[str, float]) -> float:
    """Fmax (MHz) from the terms and a family's fitted coefficients."""
    period_ns = sum(coefficients.get(name, 0.0) * value for name, value in terms.items())
    return 1e3 / max(period_ns, 1e-3)


def fit_clock(rows: list[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Least squares on (terms, measured Fmax MHz) rows, in period (ns), relative to each
    period; the fan-out and size terms may not shorten the period (non-negative)."""
    from scipy.optimize import nnls

    a = np.array([[terms[name] for name in CLOCK_TERMS] for terms, _ in rows], dtype=float)
    period = np.array([1e3 / mhz for _, mhz in rows])
    weight = 1.0 / period
    solution, _ = nnls(a * weight[:, None], period * weight)
    fitted = {name: round(float(value), 6) for name, value in zip(CLOCK_TERMS, solution,
                                                                   strict=True)}
    # The margin: the most the prediction overshot a training network's Fmax, relative to
    # the prediction. Folding for the prediction less it met every training network.
    over = [(predict_mhz(terms, fitted) - mhz) / predict_mhz(terms, fitted)
            for terms, mhz in rows]
    return {**fitted, "margin": round(max(0.0, *over), 4)}


def clock_coefficients(family: str) -> dict[str, float] | None:
    """The family's fitted clock model (``constants/F.json``, key ``clock``), or None."""
    from .estimate import constants_file

    if family not in CLOCK_FAMILIES:
        return None
    return constants_file(family).get("clock")


def predicted_mhz(report) -> float | None:
    """Predicted Fmax of an estimated network (a :class:`~.estimate.CostReport`), or None
    where the family has no clock model."""
    coefficients = clock_coefficients(report.family)
    if coefficients is None:
        return None
    return predict_mhz(clock_terms(report.profile, report.totals()["lut"]), coefficients)


# Refolding at a lower predicted clock can only add lanes, so it converges; a few rounds do.
MAX_ROUNDS = 6


def folding_for(net, family: str, fold=None, *, target_fps: float | None = None,
                clock_mhz: float | None = None):
    """The folding :func:`estimate_at_clock` chooses (with the clock it was made for and its
    source recorded on it), for generating a design."""
    from ..boards.targets import device_capacity
    from ..errors import HwbnnError
    from ..synth.flow import FAMILIES

    report = estimate_at_clock(net, family, fold, target_fps=target_fps, clock_mhz=clock_mhz)
    if family in FAMILIES:
        device = FAMILIES[family].default_device
        capacity = device_capacity(family, device) or {}
        totals = report.totals()
        needs = {"lut": totals["lut"], "bram": totals["bram"]}
        if family == "ice40":
            # An iCE40 logic cell is one LUT4 and one flip-flop, paired only where the LUT
            # feeds the flip-flop: count the larger of the two and half the smaller. (The
            # closure bench's two designs at the UP5K's limit: the digits MLP at 1e6 frames/s
            # placed with 3,260 LUTs and about 2,950 flip-flops; the digits CNN at 1e4 needed
            # 5,909 cells for 3,585 LUTs and about 3,660 flip-flops.)
            needs["lut"] = max(totals["lut"], totals["ff"]) + min(totals["lut"],
                                                                  totals["ff"]) / 2
        words = {"lut": "LUT" if family != "ice40" else "logic cells", "bram": "BRAM"}
        over = [f"{needs[key]:,.0f} {words[key]} of its {capacity[key]:,}"
                for key in ("lut", "bram") if key in capacity and needs[key] > capacity[key]]
        if over:
            rate = f" folded for {target_fps:,.0f} frames/s" if target_fps else ""
            raise HwbnnError(f"the design{rate} does not fit the {family} {device}: the "
                             f"estimate needs {' and '.join(over)}; ask for a lower rate or "
                             f"a larger family")
    folding = report.profile.folding
    folding.clock_mhz = report.folded_for_mhz
    folding.clock_source = report.clock_source
    folding.route_note = report.route_note
    return folding


def route_note(family: str, luts: float) -> str | None:
    """What to expect of place and route where the estimate is above the largest design the
    open flow has placed and routed (:data:`~hwbnn.synth.flow.ROUTE_MAX_LUTS`), else None."""
    from ..synth.flow import FAMILIES, ROUTE_MAX_LUTS

    if family not in FAMILIES or not FAMILIES[family].nextpnr or luts <= ROUTE_MAX_LUTS:
        return None
    return (f"the estimate, {luts:,.0f} LUTs, is above the {ROUTE_MAX_LUTS:,} that YoWASP's "
            f"nextpnr has placed and routed within its 30-minute default: expect no measured "
            f"Fmax here, so the open flow cannot confirm the design's frame rate")


def estimate_at_clock(net, family: str, fold=None, *, target_fps: float | None = None,
                      clock_mhz: float | None = None, node: int = 45, mode: str = "folded",
                      adders: str = "trees"):
    """The cost report of ``net`` folded as asked, at the clock the design will run at.

    With ``clock_mhz`` that clock ("given"). Else, where the family has a clock model, the
    predicted Fmax of the folded design ("predicted"); auto-folding for ``target_fps`` then
    aims at that clock: fold for a clock, predict the folded design's Fmax, refold for it
    when lower, until the folding reaches the rate at its own predicted clock. Else
    :data:`~hwbnn.hw.fold.DEFAULT_CLOCK_MHZ` ("assumed").

    ``mode="unrolled"`` (no folding): the given clock or the assumed one, since the clock
    model was fitted on folded networks only.
    """
    from ..hw.fold import DEFAULT_CLOCK_MHZ, Folding
    from ..hw.unrolled import check_adders
    from .estimate import estimate

    check_adders(mode, adders)
    if mode == "unrolled":
        from ..hw.gen import check_unrolled

        check_unrolled(net, fold, target_fps)
        report = estimate(net, family, node=node, mode=mode, adders=adders,
                          clock_mhz=clock_mhz or DEFAULT_CLOCK_MHZ)
        report.clock_source = "given" if clock_mhz else "assumed"
        return report
    if clock_mhz is not None or clock_coefficients(family) is None:
        folding = Folding.parse(fold, net, target_fps=target_fps, clock_mhz=clock_mhz)
        clock = clock_mhz or folding.clock_mhz or DEFAULT_CLOCK_MHZ
        report = estimate(net, family, folding, node=node, clock_mhz=clock)
        report.clock_source = "given" if clock_mhz else "assumed"
        report.folded_for_mhz = clock
        return report
    auto = Folding.asks_auto(fold, target_fps)
    # Fold for the predicted clock less the model's margin (its largest relative error on
    # the training networks), so that the design meets the rate at its real Fmax.
    derate = 1.0 - clock_coefficients(family).get("margin", 0.0)
    clock = DEFAULT_CLOCK_MHZ
    for _ in range(MAX_ROUNDS):
        folding = Folding.parse(fold, net, target_fps=target_fps if auto else None,
                                clock_mhz=clock if auto else None)
        report = estimate(net, family, folding, node=node, clock_mhz=clock)
        predicted = predicted_mhz(report)
        if not auto or predicted * derate >= clock * 0.999:
            break
        clock = predicted * derate
    report.clock_mhz = predicted
    report.clock_source = "predicted"
    report.folded_for_mhz = clock if auto else predicted * derate
    folding = report.profile.folding  # the report's own copy
    if auto:
        folding.clock_mhz = clock
    elif target_fps is not None:
        folding.check_rate(target_fps, predicted * derate)
        folding.target_fps = target_fps
    return report


def throughput_closure(folding, cycles_per_frame: int, fmax_mhz: float,
                       target_fps: float | None = None) -> dict:
    """What a synthesized design achieves against what was asked: frames/s at the measured
    Fmax and, when short of ``target_fps``, the folding that reaches it at that Fmax (a
    wider design may clock somewhat lower: `hwbnn cost --fold F` predicts it), or why none
    can."""
    from ..errors import HwbnnError
    from ..hw.fold import Folding

    achieved = fmax_mhz * 1e6 / cycles_per_frame
    result = {"fmax_mhz": fmax_mhz, "cycles_per_frame": cycles_per_frame,
              "achieved_frames_per_s": achieved, "requested_frames_per_s": target_fps,
              "met": None if target_fps is None else achieved >= target_fps,
              "suggested_folding": None, "suggested_cycles_per_frame": None, "note": None}
    if target_fps is None or achieved >= target_fps:
        return result
    try:
        better = Folding.auto(folding.net, target_fps, fmax_mhz)
    except HwbnnError as error:
        result["note"] = f"no folding reaches it at {fmax_mhz:.1f} MHz: {error}"
        return result
    result["suggested_folding"] = str(better)
    result["suggested_cycles_per_frame"] = better.cycles_per_frame
    return result
