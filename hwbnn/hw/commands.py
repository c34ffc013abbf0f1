"""``hwbnn gen``: a model's streaming hardware as Verilog + manifest.json."""

from __future__ import annotations

from ..cli import fold_arguments, mode_argument, model_argument, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("gen", help="generate streaming Verilog + manifest for a model")
    model_argument(p)
    fold_arguments(p, clock_default="with --family, its predicted Fmax; else 100")
    p.add_argument("--family", choices=("ice40", "ecp5", "xc7", "asic"),
                   help="the target family: --fold auto aims at the clock its model predicts "
                        "for the folded design, less the model's error margin (hwbnn cost "
                        "--family F shows the same folding)")
    mode_argument(p)
    p.add_argument("--output", choices=("scores", "label"), default="scores")
    p.add_argument("--name", help="Verilog top module name (default hwbnn_MODEL)")
    p.add_argument("--out", required=True, help="output folder, e.g. rtl/NAME/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gen)


def cmd_gen(args) -> int:
    from ..api import load

    design = load(args.model).generate(args.out, args.fold, target_fps=args.target_fps,
                                       clock_mhz=args.clock_mhz, output=args.output,
                                       mode=args.mode, name=args.name, family=args.family,
                                       adders=args.adders)
    result = design.manifest
    if args.json:
        print_json({"design_path": str(design.directory), **result})
    else:
        fold = ", ".join(f"{k} pe={v['pe']} simd={v['simd']}"
                         + (f" ram_style={v['ram_style']}" if "ram_style" in v else "")
                         for k, v in result["folding"].items())
        print(f"wrote {args.out.rstrip('/')}/{result['verilog']} and manifest.json "
              f"({result['cycles_per_frame']} cycles/frame, bottleneck "
              f"{result['bottleneck']}; {fold})")
        made_for = result.get("folded_for") or {}
        if made_for.get("target_frames_per_s") and made_for.get("clock_mhz"):
            print(f"  folded for {made_for['target_frames_per_s']:,.0f} frames/s at "
                  f"{made_for['clock_mhz']:.1f} MHz ({made_for.get('clock_source', 'given')})")
        if made_for.get("route_note"):
            print(f"  note: {made_for['route_note']}")
    return 0
