"""``hwbnn synth DIR --family ice40|ecp5|xc7``: cell counts and Fmax of a generated design."""

from __future__ import annotations

from pathlib import Path

from ..cli import non_negative_int, positive_float, print_json
from .flow import DEFAULT_PNR_TIMEOUT_S, FAMILIES, ROUTERS, SynthResult


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesize generated Verilog: LUT/FF/carry/BRAM/DSP and Fmax",
        description="Yosys (stat -json) and nextpnr (median Fmax over seeds) through YoWASP, "
                    "inside a pin-limited wrapper. xc7 gives synthesis counts only.")
    p.add_argument("directory", help="folder with generated Verilog and manifest.json")
    p.add_argument("--family", required=True, choices=tuple(FAMILIES))
    p.add_argument("--device", help="ice40: up5k (default), hx8k, ...; ecp5: 85k (default), "
                                    "25k, ...")
    p.add_argument("--seeds", type=non_negative_int, default=3,
                   help="nextpnr seeds; Fmax is the median (0: synthesis only)")
    p.add_argument("--target-mhz", type=positive_float,
                   help="clock constraint for timing-driven place and route "
                        "(default: ice40 60, ecp5 150); Fmax is what was achieved")
    p.add_argument("--router", choices=ROUTERS, default="auto",
                   help="nextpnr router (default auto: router2 above 10,000 LUTs, else "
                        "router1)")
    p.add_argument("--pnr-timeout", type=positive_float, default=DEFAULT_PNR_TIMEOUT_S,
                   help=f"seconds a place-and-route run may take before it stops with a hint "
                        f"(default {DEFAULT_PNR_TIMEOUT_S:.0f})")
    p.add_argument("--work", help="keep scripts, netlists, reports and logs in this folder")
    p.add_argument("--model", help="model the design was generated from (default: found by "
                                   "the manifest's ir_sha256)")
    p.add_argument("--blocks", action="store_true",
                   help="also synthesize with every block kept apart and print each block's "
                        "counts beside its estimate (a second Yosys pass)")
    p.add_argument("--plot", metavar="PNG",
                   help="with --blocks: draw the per-block estimate vs synthesis as a bar "
                        "chart into this file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args) -> int:
    from ..errors import HwbnnError
    from .design import read_design
    from .flow import synthesize

    if args.plot and not args.blocks:
        raise HwbnnError("--plot draws the per-block report: add --blocks")
    rtl = read_design(args.directory)
    # A network from `hwbnn gen` (its manifest has the packing) also gets its estimate per
    # block and its frame rate; any other generated Verilog gets counts and Fmax only.
    design = _network_design(args.directory, args.blocks, args.model)
    result = synthesize(rtl, args.family, args.device, args.seeds, args.target_mhz,
                        args.work, router=args.router, pnr_timeout_s=args.pnr_timeout,
                        blocks=args.blocks)
    rows = design.compare_blocks(result) if args.blocks else None
    closure = design.closure(result) if design and result.fmax_mhz is not None else None
    if args.plot:
        from ..report.plots import plot_block_resources

        title = f"{result.top} on {result.family}: estimate vs synthesis per block"
        Path(args.plot).write_bytes(plot_block_resources(rows, title))
    if args.json:
        print_json({**result.as_dict(), **({"block_comparison": rows} if rows else {}),
                    **({"throughput": closure} if closure else {})})
    else:
        print(format_result(result))
        if closure:
            print(format_closure(closure))
        if rows:
            print(format_blocks(rows))
    return 0


def _network_design(directory: str, required: bool, model: str | None = None):
    """The :class:`~hwbnn.api.Design` in ``directory`` when it is a network design."""
    import json

    from ..api import Design
    from ..errors import HwbnnError

    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict) or "packing" not in manifest:
        if required:
            raise HwbnnError(f"--blocks needs a network design from `hwbnn gen`; "
                             f"{directory} is not one (its manifest has no packing)")
        return None
    return Design.open(directory, model)


def format_closure(closure: dict) -> str:
    """Frames/s achieved at the measured Fmax, against the requested rate."""
    line = (f"  throughput: {closure['achieved_frames_per_s']:,.0f} frames/s at "
            f"{closure['fmax_mhz']:.1f} MHz ({closure['cycles_per_frame']:,} cycles/frame)")
    target = closure["requested_frames_per_s"]
    if target is None:
        return line + "; no frame rate was requested (gen --target-fps)"
    if closure["met"]:
        return line + f": meets the requested {target:,.0f}"
    line += f": short of the requested {target:,.0f}"
    if closure["suggested_folding"]:
        line += (f"; --fold {closure['suggested_folding']} reaches it at this Fmax "
                 f"({closure['suggested_cycles_per_frame']:,} cycles/frame)")
    else:
        line += f"; {closure['note']}"
    return line


def format_blocks(rows: list[dict]) -> str:
    """The per-block table: estimate / synthesis (error) for LUT, FF and block RAM."""
    resources = [r for r in ("lut", "ff", "bram", "area_um2") if r in rows[0]]
    header = ["block", "kind", *(f"{r} est/syn (err)" for r in resources)]
    table = []
    for row in rows:
        cells = [row["block"], row["kind"]]
        for r in resources:
            est, syn = row[r]["estimate"], row[r]["synthesis"]
            if syn is None:
                cells.append(f"{est:,.0f} / -")
                continue
            err = f" ({(est - syn) / syn * 100:+.0f}%)" if syn else ""
            cells.append(f"{est:,.0f} / {syn:,.0f}{err}")
        table.append(cells)
    widths = [max(len(h), *(len(r[n]) for r in table)) for n, h in enumerate(header)]
    lines = ["per block (synthesis with every block kept apart; they add up to more than "
             "the flattened design):",
             "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in table]
    return "\n".join(lines)


def format_result(result: SynthResult) -> str:
    """Human-readable lines: counts of the design, then Fmax."""
    counts = result.counts
    lines = [
        f"{result.top} on {result.family} {result.device} (design only, wrapper excluded):",
        f"  LUT {counts['lut']}  FF {counts['ff']}  carry {counts['carry']}  "
        f"block RAM {counts['bram']}  DSP {counts['dsp']}"
        + (f"  LUT RAM {counts['lutram']}" if counts["lutram"] else "")
        + (f"  mux {counts['mux']}" if counts["mux"] else ""),
    ]
    if result.fmax_mhz is not None:
        seeds = ", ".join(f"{value:.1f}" for value in result.fmax_mhz_per_seed)
        runs = f"median of {len(result.seeds)} seeds" if len(result.seeds) > 1 else "1 seed"
        pnr = ", ".join(f"{s:.0f}" for s in result.pnr_s)
        lines.append(f"  Fmax {result.fmax_mhz:.1f} MHz ({runs}: {seeds}; constraint "
                     f"{result.target_mhz:g} MHz; nextpnr {result.router}, {pnr} s)")
    path = result.critical_path
    if path:
        lines.append(f"  critical path {path['total_ns']:.2f} ns ({path['logic_steps']} logic "
                     f"steps, {path['logic_ns']:.2f} ns logic, {path['routing_ns']:.2f} ns "
                     f"routing): {path['from']} -> {path['to']}")
    lines += [f"  {note}" for note in result.notes]
    if result.work_path:
        lines.append(f"  logs and reports in {result.work_path}")
    return "\n".join(lines)
