"""``hwbnn report DESIGN``: one self-contained HTML page about a generated design."""

from __future__ import annotations

from ..cli import positive_int


def register(subparsers) -> None:
    from ..cost.commands import FAMILY_CHOICES

    p = subparsers.add_parser(
        "report", help="one self-contained HTML page about a generated design",
        description="Model summary, folding balance, per-layer cost estimate and, when asked, "
                    "synthesis and verification, with pictures, in one HTML file that loads "
                    "nothing else.")
    p.add_argument("design", help="design folder written by `hwbnn gen`")
    p.add_argument("--model", help="model the design was generated from (default: found by "
                                   "the manifest's ir_sha256)")
    p.add_argument("--out", help="HTML file (default DESIGN/report.html)")
    p.add_argument("--family", choices=FAMILY_CHOICES, default="ice40",
                   help="family of the cost estimate and of --synth (default ice40)")
    p.add_argument("--synth", action="store_true",
                   help="also synthesize (Yosys, and nextpnr with one seed): counts and Fmax")
    p.add_argument("--verify", action="store_true",
                   help="also verify in the compiled Verilator harness on the digits test "
                        "split")
    p.add_argument("--frames", type=positive_int,
                   help="with --verify: the first N test frames (default all)")
    p.add_argument("--work", help="with --verify: folder for builds and runs "
                                  "(default build/verify/NAME)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..api import Design

    report = Design.open(args.design, args.model).report(
        args.out, family=args.family, synth=args.synth, verify=args.verify, frames=args.frames,
        work=args.work)
    print(report.path)
    return 0 if report.passed else 1
