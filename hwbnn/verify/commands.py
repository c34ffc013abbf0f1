"""``hwbnn verify rtl/NAME|MODEL ...``: the generated Verilog, simulated, against the golden
model; several targets run as one job each (:mod:`hwbnn.verify.many`)."""

from __future__ import annotations

from ..cli import fold_arguments, mode_argument, positive_int, print_json, seed_int
from ..dist import cluster_arguments
from .tools import SIMULATORS


def _probability(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, not {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"probability must be in [0, 1), not {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="simulate generated Verilog on dataset frames; compare with golden")
    p.add_argument("target", nargs="+",
                   help="design folder written by `hwbnn gen` (rtl/NAME), or a model (.hwbnn "
                        "or zoo:NAME) to generate first; several: one job each (--jobs)")
    p.add_argument("--model", help="model the design folders were generated from (default: "
                                   "found by each manifest's ir_sha256)")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="verilator (default), icarus, or amaranth (the generator's own "
                        "description, slow)")
    p.add_argument("--frames", type=positive_int,
                   help="first N frames of the test split, repeated when N exceeds it (default "
                        "all; synthetic: 1000)")
    p.add_argument("--backpressure", type=_probability, default=0.0,
                   help="probability that the sink refuses a cycle (default 0)")
    p.add_argument("--gap", type=_probability, default=0.0,
                   help="probability of an idle input cycle (default 0)")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="seed of the gaps, the backpressure and synthetic frames")
    p.add_argument("--dataset", default="digits",
                   help="digits (embedded), mnist, fashion-mnist, cifar10 (pixels; binarized "
                        "for a binary-input model), or synthetic (random frames in the "
                        "model's own input encoding)")
    p.add_argument("--data-path", help="folder with the dataset's files (not for digits)")
    fold_arguments(p)
    mode_argument(p, None, "how a MODEL target is generated (default folded); a design "
                           "folder keeps its own")
    p.add_argument("--work", help="folder for builds, runs and waveforms (default "
                                  "build/verify/NAME; several targets: WORK/NAME each)")
    # One job per target; one local job by default (a single target needs no more).
    cluster_arguments(p, jobs_default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    from ..dist import executor_of
    from .many import VerifyOptions, plan_targets, verify_jobs

    options = VerifyOptions(model=args.model, sim=args.sim, frames=args.frames,
                            backpressure=args.backpressure, gap=args.gap, seed=args.seed,
                            dataset=args.dataset, data_path=args.data_path, fold=args.fold,
                            target_fps=args.target_fps, clock_mhz=args.clock_mhz,
                            mode=args.mode, adders=args.adders, work=args.work)
    # Every target resolved and its frames loaded before any job starts.
    jobs = plan_targets(args.target, options)
    reports = verify_jobs(jobs, executor_of(args))
    passed = all(report.passed for report in reports)
    if len(jobs) == 1:
        if args.json:
            print_json(reports[0].to_dict())
        else:
            _print_report(reports[0], jobs[0])
    elif args.json:
        print_json({"designs": [report.to_dict() for report in reports], "passed": passed})
    else:
        for report, job in zip(reports, jobs, strict=True):
            _print_report(report, job)
        print(f"{sum(report.passed for report in reports)} of {len(reports)} designs "
              f"bit-exact")
    return 0 if passed else 1


def _print_report(report, design) -> None:
    """The text report of one design; ``design`` has its ``output`` mode and ``directory``
    (a :class:`~hwbnn.verify.many.VerifyJob` or an opened design)."""
    verdict = ("bit-exact with the golden model" if report.passed
               else "DIFFER from the golden model")
    print(f"{report.top} on {report.sim}: {report.frames} frames {verdict} "
          f"({design.output} mode, {design.directory})")
    if report.sim != "amaranth":
        cached = " (cached)" if report.build_cached else ""
        print(f"build {report.build_s:.1f} s{cached}, simulation {report.sim_s:.1f} s, "
              f"total {report.total_s:.1f} s")
    else:
        print(f"simulation {report.sim_s:.1f} s, total {report.total_s:.1f} s")
    print(f"{report.sim_cycles:,} cycles ({report.measured_cycles_per_frame:.0f} per frame, "
          f"model {report.cycles_per_frame}), {report.sim_cycles_per_s:,.0f} cycles/s, "
          f"{report.sim_frames_per_s:.1f} frames/s"
          + (f"; gap {report.gap}, backpressure {report.backpressure}, seed {report.seed}"
             if report.gap or report.backpressure else ""))
    if not report.passed:
        print(f"first difference at the output: {report.difference}")
        if report.diagnosis:
            print(f"per-layer taps: {report.diagnosis}")
        if report.waveform_path:
            print(f"waveform: {report.waveform_path}")
        if report.log_path:
            print(f"log: {report.log_path}")
