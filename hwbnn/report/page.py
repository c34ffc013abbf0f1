"""The design report: one self-contained HTML page about a folder written by ``hwbnn gen``
(docs/design.md, "Design report").

Sections: overview, model (per-layer summary), folding (stage cycles against the budget),
cost estimate for one family, synthesis (estimate vs synthesis, Fmax) and verification, each
with its picture where one says more than the table. The page loads nothing: CSS inline,
pictures as ``data:`` URIs, so it can be mailed or archived as one file. Every text is
escaped, since layer and model names come from model files.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import HwbnnError
from . import plots

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; } tr.bottleneck td { background: #fde8e8; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
.pass { color: #176b17; font-weight: bold; } .fail { color: #b00; font-weight: bold; }
.note { color: #555; font-style: italic; }
"""


# Cost columns beside the resources: ASIC gate equivalents; FINN-R's analytical MVTU model
# (hwbnn.cost.estimate.finn_r) for FPGA families.
ASIC_COLUMNS = {"ge": "gate equivalents"}
FINN_R_COLUMNS = {"finn_r_lut": "FINN-R LUTs", "finn_r_bram18": "FINN-R RAMB18"}


@dataclass
class DesignReport:
    """A written report and the results it shows."""

    path: Path
    cost: object
    synthesis: object | None = None
    verification: object | None = None

    @property
    def passed(self) -> bool:
        """False only when verification ran and found a difference."""
        return self.verification is None or self.verification.passed


def write_report(design, path: str | Path, *, family: str = "ice40", synthesis=None,
                 verification=None) -> DesignReport:
    """Write the HTML report of ``design`` (a :class:`hwbnn.Design`) to ``path``.

    ``synthesis`` (:class:`~hwbnn.synth.flow.SynthResult`, of ``family``) and
    ``verification`` (:class:`~hwbnn.verify.flow.VerifyReport`) are shown when given;
    :meth:`hwbnn.Design.report` runs them first.
    """
    from ..cli import output_path
    from ..hw.fold import DEFAULT_CLOCK_MHZ

    design.require_folded("a design report")
    if synthesis is not None and synthesis.family != family:
        raise HwbnnError(f"the synthesis result is for {synthesis.family}, the report for "
                         f"{family}: estimate and synthesis must be of one family")
    folding = design.folding
    clock_mhz = folding.clock_mhz or DEFAULT_CLOCK_MHZ
    cost = design.cost(family)
    body = [
        f"<h1>hwbnn design report: {_text(design.top)}</h1>",
        f"<p class='note'>{_text(design.directory)}, written by hwbnn {_text(__version__)}"
        f"</p>",
        _overview(design, folding, clock_mhz, cost),
        _model_section(design.model),
        _folding_section(folding, clock_mhz),
        _cost_section(cost, synthesis),
        _synthesis_section(cost, synthesis, design.cycles_per_frame),
        _verification_section(verification),
    ]
    page = ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>hwbnn report: {_text(design.top)}</title>\n<style>{STYLE}</style>\n"
            "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
    path = output_path(str(path), ".html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return DesignReport(path, cost, synthesis, verification)


# --- building blocks ---------------------------------------------------------------------------
def _text(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{_text('-' if value is None else value)}</td>"
    if isinstance(value, int):
        return f"<td class='num'>{value:,}</td>"
    if isinstance(value, float):
        shown = (f"{value:,.0f}" if value.is_integer() or abs(value) >= 100 else
                 f"{value:,.1f}" if abs(value) >= 1 else f"{value:.2g}")
        return f"<td class='num'>{shown}</td>"
    return f"<td>{_text(value)}</td>"


def _table(headers, rows, row_classes=None) -> str:
    """A table; cells are escaped, numbers right-aligned."""
    head = "".join(f"<th>{_text(header)}</th>" for header in headers)
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for index, row in enumerate(rows):
        kind = (row_classes or {}).get(index)
        attribute = f" class='{kind}'" if kind else ""
        lines.append(f"<tr{attribute}>" + "".join(_cell(value) for value in row) + "</tr>")
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)


def _image(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f"<img alt='{_text(alt)}' src='data:image/png;base64,{encoded}'>"


def _section(anchor: str, title: str, *parts: str) -> str:
    return f"<section id='{anchor}'>\n<h2>{_text(title)}</h2>\n" + "\n".join(parts) + \
        "\n</section>"


def _note(text: str) -> str:
    return f"<p class='note'>{_text(text)}</p>"


def _shape(shape) -> str:
    return "x".join(map(str, shape))


# --- sections ----------------------------------------------------------------------------------
def _overview(design, folding, clock_mhz: float, cost) -> str:
    net = design.model.net
    budget = plots.cycle_budget(folding, clock_mhz)
    rows = [
        ("model", f"{design.model.name} ({design.model.source})"),
        ("input", f"{_shape(net.input_shape)} {net.input_encoding}"),
        ("output", f"{design.rtl.output} ({net.num_classes} classes)"),
        ("folding (PE x SIMD per weight layer)", str(folding)),
        ("cycles per frame (model)", design.cycles_per_frame),
        ("bottleneck", folding.bottleneck),
        ("latency bound (cycles)", design.rtl.latency_cycles),
        ("clock (MHz)", clock_mhz),
        ("frames per second at that clock", clock_mhz * 1e6 / design.cycles_per_frame),
        ("target frames per second", "none" if budget is None else folding.target_fps),
    ]
    return _section("overview", "Overview", _table(("quantity", "value"), rows))


def _model_section(model) -> str:
    summary = model.summary()
    headers = ("layer", "kind", "in -> out", "encoding in -> out", "weights", "bit mix 1/2/3b",
               "params", "weight bits", "accumulator bits", "thresholds", "operations")
    rows = [(layer.name, layer.kind, f"{_shape(layer.in_shape)} -> {_shape(layer.out_shape)}",
             f"{layer.in_encoding} -> {layer.out_encoding}", layer.weights, layer.bit_mix,
             layer.params, layer.weight_bits, layer.acc_width, layer.thresholds,
             ", ".join(f"{count:,} {what}" for what, count in layer.ops.items()))
            for layer in summary.layers]
    rows.append(("total", "", "", "", "", "", summary.params, summary.weight_bits, None,
                 None, ""))
    return _section("model", "Model", _table(headers, rows, {len(rows) - 1: "total"}),
                    _note(f"{summary.threshold_bits:,} threshold bits besides the weights; "
                          f"operations are counted per frame."))


def _folding_section(folding, clock_mhz: float) -> str:
    stages = folding.stage_cycles()
    budget = plots.cycle_budget(folding, clock_mhz)
    reference = budget or folding.cycles_per_frame
    headers = ("stage", "kind", "PE", "SIMD", "cycles per frame",
               f"% of {'budget' if budget else 'bottleneck'}")
    rows, marks = [], {}
    for name in plots.stage_order(folding):
        fold = folding.get(name)
        kind = "weight layer" if fold else "sliding window"
        if fold and fold.ram_style != "auto":
            kind += f" (memories: {fold.ram_style})"
        rows.append((name, kind, fold.pe if fold else None, fold.simd if fold else None,
                     stages[name],
                     f"{100 * stages[name] / reference:.0f}%"))
        if name == folding.bottleneck:
            marks[len(rows) - 1] = "bottleneck"
    note = (f"Budget {budget:,} cycles per frame: {folding.target_fps:,.0f} frames/s at "
            f"{clock_mhz:g} MHz." if budget else
            "Generated without a target rate, so there is no budget: the slowest stage sets "
            "the frame rate.")
    return _section("folding", "Folding", _table(headers, rows, marks),
                    _note(note + " The bottleneck row is shaded; sliding windows take one "
                                 "cycle per window element whatever the folding."),
                    _image(plots.plot_folding_balance(folding, clock_mhz),
                           "cycles per frame of every stage against the cycle budget"))


def _cost_section(cost, synthesis) -> str:
    resources = plots.shown_resources(cost, synthesis)
    extra = ASIC_COLUMNS if cost.family == "asic" else FINN_R_COLUMNS
    headers = ("layer", "PE", "SIMD", *[plots.RESOURCE_LABELS[r] for r in resources],
               *extra.values())
    rows = [(row["layer"], row.get("pe"), row.get("simd"), *[row[r] for r in resources],
             *[row.get(key) for key in extra]) for row in plots.layer_rows(cost)]
    totals = cost.totals()
    rows.append(("total", None, None, *[totals[r] for r in resources],
                 *[totals.get(key) for key in extra]))
    parts = [_table(headers, rows, {len(rows) - 1: "total"})]
    if cost.family == "asic":
        parts.append(_note(f"Energy per frame at {cost.node} nm: "
                           f"{totals['energy_pj_per_frame']:,.1f} pJ."))
    parts += [_note("Estimates from the calibrated per-component models (docs/design.md); a "
                    "layer's row includes its sliding window and input FIFO."),
              _image(plots.plot_layer_resources(cost, synthesis),
                     "resources per layer, estimate" + (" vs synthesis" if synthesis else ""))]
    return _section("cost", f"Cost estimate: {cost.family}", *parts)


def _synthesis_section(cost, synthesis, cycles_per_frame: int) -> str:
    if synthesis is None:
        return _section("synthesis", "Synthesis",
                        _note("Not run: add --synth (or synth=True) for Yosys counts and "
                              "nextpnr's Fmax."))
    totals = cost.totals()
    rows = []
    for resource in plots.shown_resources(cost, synthesis):
        counted = synthesis.counts.get(resource, 0)
        error = (f"{100 * (totals[resource] / counted - 1):+.1f}%" if counted else "-")
        rows.append((plots.RESOURCE_LABELS.get(resource, resource), totals[resource],
                     counted, error))
    parts = [_note(f"{synthesis.top} on {synthesis.family} {synthesis.device}, the design "
                   f"alone (the pin-limited wrapper excluded)."),
             _table(("resource", "estimate", "synthesis", "estimate error"), rows)]
    if synthesis.fmax_mhz is not None:
        fps = synthesis.fmax_mhz * 1e6 / cycles_per_frame
        parts.append(_table(("quantity", "value"), [
            ("Fmax (MHz, median of seeds)", synthesis.fmax_mhz),
            ("seeds", ", ".join(map(str, synthesis.seeds))),
            ("clock constraint (MHz)", synthesis.target_mhz),
            ("frames per second at Fmax", fps),
            ("critical path (ns)", (synthesis.critical_path or {}).get("total_ns")),
        ]))
    if synthesis.blocks:
        rows = cost.compare_blocks(synthesis.blocks)
        resources = [r for r in ("lut", "ff", "bram") if r in rows[0]]
        parts += [
            _note("Per block: the design synthesized again with every block kept apart "
                  "(they add up to a few percent more than the flattened design), beside "
                  "each block's estimate."),
            _table(("block", "kind", *(f"{r} estimate / synthesis" for r in resources)),
                   [(row["block"], row["kind"],
                     *(f"{row[r]['estimate']:,.0f} / {row[r]['synthesis']:,.0f}"
                       if row[r]["synthesis"] is not None else f"{row[r]['estimate']:,.0f} / -"
                       for r in resources)) for row in rows]),
            _image(plots.plot_block_resources(
                rows, f"{synthesis.top} on {synthesis.family}: estimate vs synthesis per "
                      f"block"), "resources per block, estimate vs synthesis")]
    parts += [_note(note) for note in synthesis.notes]
    return _section("synthesis", "Synthesis", *parts)


def _verification_section(verification) -> str:
    if verification is None:
        return _section("verification", "Verification",
                        _note("Not run: add --verify (or verify=True) to simulate the Verilog "
                              "against the golden model."))
    verdict = ("<p class='pass'>PASS: bit-exact with the golden model</p>"
               if verification.passed else
               "<p class='fail'>FAIL: the output differs from the golden model</p>")
    rows = [("simulator", verification.sim), ("frames", verification.frames),
            ("cycles per frame (measured)", verification.measured_cycles_per_frame),
            ("cycles per frame (model)", verification.cycles_per_frame),
            ("input gap / output backpressure",
             f"{verification.gap:g} / {verification.backpressure:g}"),
            ("seed", verification.seed), ("build (s)", verification.build_s),
            ("simulation (s)", verification.sim_s)]
    if not verification.passed:
        rows += [("first difference", verification.difference),
                 ("per-layer taps", verification.diagnosis),
                 ("waveform", verification.waveform_path), ("log", verification.log_path)]
    return _section("verification", "Verification", verdict,
                    _table(("quantity", "value"), rows))
