"""``hwbnn gen``: a model's streaming hardware as Verilog + manifest.json."""

from __future__ import annotations

from ..cli import fold_arguments, model_argument, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("gen", help="generate streaming Verilog + manifest for a model")
    model_argument(p)
    fold_arguments(p)
    p.add_argument("--mode", choices=("folded", "unrolled"), default="folded")
    p.add_argument("--output", choices=("scores", "label"), default="scores")
    p.add_argument("--name", help="Verilog top module name (default hwbnn_MODEL)")
    p.add_argument("--out", required=True, help="output folder, e.g. rtl/NAME/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gen)


def cmd_gen(args) -> int:
    from ..api import load

    design = load(args.model).generate(args.out, args.fold, target_fps=args.target_fps,
                                       clock_mhz=args.clock_mhz, output=args.output,
                                       mode=args.mode, name=args.name)
    result = design.manifest
    if args.json:
        print_json({"design_path": str(design.directory), **result})
    else:
        fold = ", ".join(f"{k} pe={v['pe']} simd={v['simd']}"
                         for k, v in result["folding"].items())
        print(f"wrote {args.out.rstrip('/')}/{result['verilog']} and manifest.json "
              f"({result['cycles_per_frame']} cycles/frame, bottleneck "
              f"{result['bottleneck']}; {fold})")
    return 0
