"""``hwbnn cost MODEL``, ``hwbnn cost calibrate --family F`` and ``hwbnn sweep``."""

from __future__ import annotations

import csv
import io

from ..cli import fold_arguments, mode_argument, model_argument, print_json
from ..dist import cluster_arguments
from ..errors import HwbnnError

FAMILY_CHOICES = ("ice40", "ecp5", "xc7", "asic")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cost", help="estimate LUT/FF/BRAM (FPGA) or area and energy per frame (ASIC)",
        description="Per-layer cost table and totals from the IR and the folding, with the "
                    "calibrated constants; `hwbnn cost calibrate --family F` refits them "
                    "against synthesis.")
    model_argument(p)
    p.add_argument("--family", choices=FAMILY_CHOICES, help="ice40, ecp5, xc7 or asic")
    fold_arguments(p)
    mode_argument(p)
    p.add_argument("--node", type=int, choices=(45, 28, 7), default=45,
                   help="ASIC technology node in nm for energy (default 45)")
    # calibrate: one synthesis per job; one local job by default (YoWASP's Yosys reserves
    # about 4 GB of address space per run).
    cluster_arguments(p, jobs_default=1)
    p.add_argument("--refit", action="store_true",
                   help="calibrate: refit from the stored synthesis counts, no synthesis")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_cost)

    from .sweep import register_sweep
    register_sweep(subparsers)


def cmd_cost(args) -> int:
    if args.model == "calibrate":
        return cmd_calibrate(args)
    if args.cluster is not None or args.jobs != 1:
        raise HwbnnError("--jobs and --cluster are for `hwbnn cost calibrate` (an estimate "
                         "runs no jobs)")
    from ..api import load

    if args.family is None:
        raise HwbnnError("hwbnn cost: --family is required (ice40, ecp5, xc7 or asic)")
    report = load(args.model).cost(args.family, args.fold, target_fps=args.target_fps,
                                   clock_mhz=args.clock_mhz, node=args.node, mode=args.mode,
                                   adders=args.adders)
    if args.json:
        print_json(report.as_dict())
    elif args.csv:
        print(report_csv(report), end="")
    else:
        print(format_report(report))
    return 0


def cmd_calibrate(args) -> int:
    from ..dist import executor_of
    from .calibrate import calibrate

    if args.family is None:
        raise HwbnnError("hwbnn cost calibrate: --family is required")
    if args.adders != "trees":
        raise HwbnnError("--adders is for an estimate; calibration fits the constants on its "
                         "own set of designs")
    validation = calibrate(args.family, executor_of(args), resynthesize=not args.refit)
    if args.json:
        print_json(validation)
        return 0
    print(f"{args.family}: held-out validation on {len(validation['rows'])} configs")
    for target, stats in validation["stats"].items():
        print(f"  {target:9s} median |error| {stats['median_abs_error'] * 100:5.1f}%   "
              f"max |error| {stats['max_abs_error'] * 100:5.1f}%")
    print(f"  report: hwbnn/cost/calibration/report_{args.family}.md")
    held_out = validation.get("networks")
    if held_out:
        print(f"{args.family}: held-out validation on {len(held_out['rows'])} whole networks")
        for target, stats in held_out["stats"].items():
            print(f"  {target:9s} median |error| {stats['median_abs_error'] * 100:5.1f}%   "
                  f"max |error| {stats['max_abs_error'] * 100:5.1f}%   exact "
                  f"{stats['exact']} of {stats['networks']}")
        print(f"  report: hwbnn/cost/calibration/report_networks_{args.family}.md")
        print(f"  a training network weighs {validation['network_weight']:g} components "
              "in the fit (chosen by leave-one-out on the training sets)")
    unrolled = validation.get("unrolled")
    if unrolled:
        print(f"{args.family}: held-out validation on {len(unrolled['rows'])} unrolled networks")
        for target, stats in unrolled["stats"].items():
            print(f"  {target:9s} median |error| {stats['median_abs_error'] * 100:5.1f}%   "
                  f"max |error| {stats['max_abs_error'] * 100:5.1f}%")
        print(f"  report: hwbnn/cost/calibration/report_unrolled_{args.family}.md")
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value or abs(value) >= 1e5 or (0 < abs(value) < 1e-2):
            return f"{value:.3g}"
        return f"{value:,.1f}" if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _columns(report) -> list[str]:
    rows = report.rows()
    first = ["block", "layer", "kind"] if report.profile.per_block else ["layer", "pe", "simd"]
    keys = [*first, "cycles_per_frame", *report.columns]
    extra = [key for row in rows for key in row if key not in keys]
    return keys + list(dict.fromkeys(extra))


def format_report(report) -> str:
    """The per-layer table and the totals as text."""
    columns = _columns(report)
    rows = [[_fmt(row.get(column, "-")) for column in columns] for row in report.rows()]
    widths = [max(len(column), *(len(row[n]) for row in rows)) for n, column in
              enumerate(columns)]
    lines = ["  ".join(column.ljust(w) for column, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
              for row in rows]
    totals = report.totals()
    lines.append("")
    lines.append(f"model {report.net.name} on {report.family}"
                 + (f" ({report.node} nm)" if report.node else ""))
    lines += [f"  {key}: {_fmt(value)}" for key, value in totals.items()]
    if report.route_note:
        lines.append(f"  note: {report.route_note}")
    return "\n".join(lines)


def report_csv(report) -> str:
    """Per-layer rows and a TOTAL row as CSV."""
    columns = _columns(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in report.rows():
        writer.writerow(row)
    totals = report.totals()
    writer.writerow({columns[0]: "TOTAL", **{k: v for k, v in totals.items() if k in columns}})
    return out.getvalue()


