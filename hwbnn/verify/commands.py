"""``hwbnn verify rtl/NAME|MODEL``: the generated Verilog, simulated, against the golden model."""

from __future__ import annotations

from pathlib import Path

from ..cli import fold_arguments, positive_int, print_json, seed_int
from ..errors import HwbnnError
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
    p.add_argument("target", help="design folder written by `hwbnn gen` (rtl/NAME), or a "
                                  "model (.hwbnn or zoo:NAME) to generate first")
    p.add_argument("--model", help="model the design folder was generated from (default: "
                                   "found by the manifest's ir_sha256)")
    p.add_argument("--sim", choices=SIMULATORS, default="verilator",
                   help="verilator (default), icarus, or amaranth (the generator's own "
                        "description, slow)")
    p.add_argument("--frames", type=positive_int,
                   help="first N frames of the test split (default all; synthetic: 1000)")
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
    p.add_argument("--work", help="folder for builds, runs and waveforms "
                                  "(default build/verify/NAME)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    from .. import data
    from .design import generate_design, open_design
    from .flow import verify

    target = Path(args.target)
    if target.is_dir():
        if args.fold is not None or args.target_fps is not None:
            raise HwbnnError("--fold and --target-fps are for a MODEL target; a design folder "
                             "keeps the folding it was generated with")
        design = open_design(target, args.model)
        images = data.model_frames(design.net, args.dataset, args.data_path, args.frames,
                                   args.seed)
        work = Path(args.work or f"build/verify/{design.top}")
    else:
        if args.model is not None:
            raise HwbnnError("--model is for a design folder; a model target is itself the "
                             "model")
        if args.target.endswith("/") or (not args.target.startswith("zoo:")
                                         and not target.exists()):
            raise HwbnnError(f"{args.target} is neither a design folder nor a model file")
        from .. import zoo

        net = zoo.load(args.target)
        # Frames first: a dataset that does not fit the model fails before generation.
        images = data.model_frames(net, args.dataset, args.data_path, args.frames, args.seed)
        work = Path(args.work or f"build/verify/{net.name}")
        design = generate_design(net, work / "rtl", folding=args.fold,
                                 target_fps=args.target_fps, clock_mhz=args.clock_mhz)
    report = verify(design, images, sim=args.sim, backpressure=args.backpressure,
                    gap=args.gap, seed=args.seed, work=work, cache=Path("build/verify/cache"))
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report, design)
    return 0 if report.passed else 1


def _print_report(report, design) -> None:
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
