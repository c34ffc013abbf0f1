"""Every picture hwbnn draws, as PNG bytes (docs/design.md, "Design report").

One home for the plotting code: the sweep writes these bytes to files, the HTML report embeds
them as data URIs. Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot),
so drawing sets no global backend and leaves no figure open. matplotlib is the ``plots``
extra; it is imported only when a picture is drawn.
"""

from __future__ import annotations

import io
from math import ceil

# What each resource counts, for axis labels (cells of the family's own primitives).
RESOURCE_LABELS = {"lut": "LUTs", "ff": "flip-flops", "carry": "carry cells",
                   "lutram": "LUT RAM cells", "bram": "block RAMs", "dsp": "DSP blocks",
                   "area_um2": "area (µm²)"}
ESTIMATE_COLOR, SYNTHESIS_COLOR, BOTTLENECK_COLOR = "tab:blue", "tab:orange", "tab:red"
WINDOW_COLOR, BUDGET_COLOR, SOURCE_COLOR = "tab:green", "black", "tab:red"


def png(figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _figure(width: float, height: float, **subplots):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(**subplots)


def _accuracy_plot_png(figure, axes, x_label: str, y_label: str, title: str, note: str,
                       legend_size: int) -> bytes:
    """Labels, grid, legend and the italic ``note`` under an accuracy-vs-cost plot; PNG."""
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=legend_size, loc="lower right")
    figure.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    figure.text(0.01, 0.01, note, fontsize=7, style="italic", wrap=True)
    return png(figure)


def plot_pareto(rows: list[dict], front: list[dict], cost: str, cost_label: str, title: str,
                note: str, source: dict | None = None) -> bytes:
    """Accuracy against ``cost`` of sweep rows, their Pareto ``front`` as a step line, the
    unchanged ``source`` model as a star, and ``note`` (how the accuracies were obtained)."""
    figure, axes = _figure(6, 4.4)
    axes.scatter([row[cost] for row in rows], [100 * row["accuracy"] for row in rows],
                 color=ESTIMATE_COLOR, label="bitwidth mixes", zorder=3)
    for row in rows:
        axes.annotate(row["mix"], (row[cost], 100 * row["accuracy"]),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.step([row[cost] for row in front], [100 * row["accuracy"] for row in front],
              where="post", linestyle="--", linewidth=1, color="gray", label="Pareto front")
    if source is not None:
        axes.scatter([source[cost]], [100 * source["accuracy"]], marker="*", s=180,
                     color=SOURCE_COLOR, label="source model (unchanged)", zorder=4)
    return _accuracy_plot_png(figure, axes, cost_label, "accuracy on the digits test split (%)",
                              title, note, 8)


def plot_explore(rows: list[dict], front: list[dict], cost: str, cost_label: str, title: str,
                 note: str, references: list[dict], limit: float | None = None) -> bytes:
    """Accuracy against ``cost`` of an exploration's trials (feasible ones filled, the others
    hollow), the Pareto front as a step line, reference models as labelled stars, and the
    board's ``limit`` on ``cost`` as a vertical line."""
    figure, axes = _figure(6.4, 4.6)
    for feasible, style in ((True, {"color": ESTIMATE_COLOR, "label": "trials (feasible)"}),
                            (False, {"facecolors": "none", "edgecolors": "gray",
                                     "label": "trials (break a constraint)"})):
        chosen = [row for row in rows if row["feasible"] == feasible]
        if chosen:
            axes.scatter([row[cost] for row in chosen],
                         [100 * row["accuracy"] for row in chosen], zorder=3, **style)
    ordered = sorted(front, key=lambda row: row[cost])
    axes.step([row[cost] for row in ordered], [100 * row["accuracy"] for row in ordered],
              where="post", linestyle="--", linewidth=1, color="gray", label="Pareto front")
    for row in ordered:
        axes.annotate(f"#{row['trial']}", (row[cost], 100 * row["accuracy"]),
                      textcoords="offset points", xytext=(4, -10), fontsize=7)
    shown = [row for row in references if cost in row]
    if shown:
        axes.scatter([row[cost] for row in shown], [100 * row["accuracy"] for row in shown],
                     marker="*", s=160, color=SOURCE_COLOR, label="zoo models", zorder=4)
        for row in shown:
            axes.annotate(row["model"], (row[cost], 100 * row["accuracy"]),
                          textcoords="offset points", xytext=(5, 4), fontsize=7)
    if limit is not None:
        axes.axvline(limit, color=BUDGET_COLOR, linewidth=1, linestyle=":",
                     label="board limit")
    return _accuracy_plot_png(figure, axes, cost_label, "accuracy on the test split (%)",
                              title, note, 7)


def shown_resources(report, synthesis=None) -> list[str]:
    """The resource columns of ``report`` worth a table column and a panel: those non-zero in
    the estimate or the synthesis (iCE40 has no LUT RAM or DSP, for one)."""
    totals = report.totals()
    counts = synthesis.counts if synthesis is not None else {}
    return [column for column in report.columns if column != "ge"
            and (totals.get(column) or counts.get(column))]


def layer_rows(report) -> list[dict]:
    """The per-layer rows of a cost report in network order (pools come last there)."""
    order = {layer.name: index for index, layer in enumerate(report.net.layers)}
    return sorted(report.layer_rows(), key=lambda row: order.get(row["layer"], len(order)))


def plot_layer_resources(report, synthesis=None) -> bytes:
    """One panel per resource: the estimate of every layer (a :class:`~hwbnn.cost.estimate.
    CostReport`) and, with a :class:`~hwbnn.synth.flow.SynthResult`, the whole design's
    estimate beside its synthesized count (Yosys flattens the layers, so synthesis has no
    per-layer figure)."""
    from matplotlib.ticker import MaxNLocator

    resources = shown_resources(report, synthesis)
    rows, totals = layer_rows(report), report.totals()
    columns = min(len(resources), 3)
    figure, panels = _figure(4.2 * columns, 3.6 * ceil(len(resources) / columns),
                             nrows=ceil(len(resources) / columns), ncols=columns,
                             squeeze=False)
    panels = panels.ravel()
    layers = [row["layer"] for row in rows]
    for axes, resource in zip(panels, resources, strict=False):
        axes.bar(range(len(rows)), [row[resource] for row in rows], color=ESTIMATE_COLOR,
                 label="estimate")
        ticks = list(layers)
        if synthesis is not None:
            at = len(rows) + 0.5
            axes.bar(at - 0.2, totals[resource], width=0.4, color=ESTIMATE_COLOR,
                     hatch="//", edgecolor="white", label="estimate, whole design")
            axes.bar(at + 0.2, synthesis.counts.get(resource, 0), width=0.4,
                     color=SYNTHESIS_COLOR, label=f"synthesis, whole design ({synthesis.device})")
            ticks.append("whole\ndesign")
        axes.set_xticks([*range(len(rows)), *([len(rows) + 0.5] if synthesis else [])], ticks,
                        rotation=45 if len(ticks) > 4 else 0, fontsize=8)
        if resource == "area_um2":
            axes.set_ylabel("µm²")
        else:
            axes.set_ylabel("count")
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(RESOURCE_LABELS[resource], fontsize=10)
        axes.grid(axis="y", alpha=0.3)
    for axes in panels[len(resources):]:
        axes.set_visible(False)
    panels[0].legend(fontsize=7)
    what = "estimate vs synthesis" if synthesis is not None else "estimate"
    figure.suptitle(f"{report.net.name}: resources per layer on {report.family} ({what})")
    return png(figure)


def plot_block_resources(rows: list[dict], title: str) -> bytes:
    """One panel per resource: every block's estimate beside its synthesized count
    (:meth:`~hwbnn.cost.estimate.CostReport.compare_blocks` rows), blocks top to bottom in
    pipeline order."""
    resources = [r for r in ("lut", "ff", "carry", "bram", "area_um2")
                 if rows and r in rows[0]
                 and any(row[r]["estimate"] or row[r]["synthesis"] for row in rows)]
    figure, panels = _figure(3.6 * max(len(resources), 1), 1.2 + 0.22 * len(rows),
                             ncols=max(len(resources), 1), squeeze=False, sharey=True)
    panels = panels.ravel()
    at = list(range(len(rows)))
    for axes, resource in zip(panels, resources, strict=False):
        axes.barh([y - 0.2 for y in at], [row[resource]["estimate"] for row in rows],
                  height=0.4, color=ESTIMATE_COLOR, label="estimate")
        axes.barh([y + 0.2 for y in at], [row[resource]["synthesis"] or 0 for row in rows],
                  height=0.4, color=SYNTHESIS_COLOR, label="synthesis, blocks kept apart")
        axes.set_title(RESOURCE_LABELS[resource], fontsize=10)
        axes.grid(axis="x", alpha=0.3)
    panels[0].set_yticks(at, [row["block"] for row in rows], fontsize=7)
    panels[0].invert_yaxis()
    panels[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    return png(figure)


def stage_order(folding) -> list[str]:
    """The pipeline's stages (weight layers and sliding windows) in dataflow order."""
    stages = folding.stage_cycles()
    order = []
    for layer in folding.net.layers:
        order += [name for name in (f"{layer.name}_window", layer.name) if name in stages]
    return order


def cycle_budget(folding, clock_mhz: float) -> int | None:
    """Cycles a stage may take per frame at the rate ``folding`` was made for; None without
    one."""
    if folding.target_fps is None:
        return None
    return int(clock_mhz * 1e6 // folding.target_fps)


def plot_folding_balance(folding, clock_mhz: float) -> bytes:
    """Cycles per frame of every weight layer and sliding window against the cycle budget of
    the target rate; the bottleneck (the pipeline's initiation interval) in red."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    stages, order = folding.stage_cycles(), stage_order(folding)
    budget = cycle_budget(folding, clock_mhz)
    figure, axes = _figure(max(6.0, 0.9 * len(order) + 2), 4.8)
    colors = [BOTTLENECK_COLOR if name == folding.bottleneck else
              ESTIMATE_COLOR if name in folding else WINDOW_COLOR for name in order]
    bars = axes.bar(range(len(order)), [stages[name] for name in order], color=colors)
    for bar, name in zip(bars, order, strict=True):
        label = f"{folding[name]}" if name in folding else "window"
        axes.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)
    if budget is not None:
        axes.axhline(budget, color=BUDGET_COLOR, linestyle="--", linewidth=1)
    if max(stages.values()) > 50 * min(stages.values()):
        axes.set_yscale("log")
    handles = [Patch(color=ESTIMATE_COLOR, label="weight layer (PE x SIMD)"),
               *([Patch(color=WINDOW_COLOR, label="sliding window")]
                 if len(order) > len(folding) else []),
               Patch(color=BOTTLENECK_COLOR, label=f"bottleneck: {folding.bottleneck}")]
    if budget is not None:
        handles.append(Line2D([], [], color=BUDGET_COLOR, linestyle="--",
                              label=f"budget {budget:,} cycles ({folding.target_fps:,.0f} "
                                    f"frames/s at {clock_mhz:g} MHz)"))
    figure.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=2)
    axes.margins(y=0.1)
    axes.set_xticks(range(len(order)), order, rotation=45 if len(order) > 4 else 0,
                    fontsize=8)
    axes.set_ylabel("cycles per frame")
    axes.set_xlabel("pipeline stage (dataflow order)")
    rate = clock_mhz * 1e6 / folding.cycles_per_frame
    axes.set_title(f"{folding.net.name}: folding balance\n{folding.cycles_per_frame:,} "
                   f"cycles/frame, {rate:,.0f} frames/s at {clock_mhz:g} MHz", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return png(figure)
