"""``hwbnn synth DIR --family ice40|ecp5|xc7``: cell counts and Fmax of a generated design."""

from __future__ import annotations

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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args) -> int:
    from .design import read_design
    from .flow import synthesize

    result = synthesize(read_design(args.directory), args.family, args.device, args.seeds,
                        args.target_mhz, args.work, router=args.router,
                        pnr_timeout_s=args.pnr_timeout)
    if args.json:
        print_json(result.as_dict())
    else:
        print(format_result(result))
    return 0


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
