"""``hwbnn gen``: a model's streaming hardware as Verilog + manifest.json."""

from __future__ import annotations

from ..cli import model_argument, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("gen", help="generate streaming Verilog + manifest for a model")
    model_argument(p)
    p.add_argument("--fold", default="auto",
                   help="'auto' (with --target-fps) or a JSON file {layer: {pe, simd}}")
    p.add_argument("--target-fps", type=float, default=1000.0,
                   help="frames per second for --fold auto (default 1000)")
    p.add_argument("--clock-mhz", type=float, default=100.0,
                   help="clock assumed by --fold auto (default 100)")
    p.add_argument("--mode", choices=("folded", "unrolled"), default="folded")
    p.add_argument("--output", choices=("scores", "label"), default="scores")
    p.add_argument("--name", help="Verilog top module name (default hwbnn_MODEL)")
    p.add_argument("--out", required=True, help="output folder, e.g. rtl/NAME/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gen)


def cmd_gen(args) -> int:
    from .. import zoo
    from .fold import auto_folding, load_folding
    from .gen import generate

    net = zoo.load(args.model)
    if args.fold == "auto":
        folding, _ = auto_folding(net, args.target_fps, args.clock_mhz * 1e6)
    else:
        folding = load_folding(args.fold, net)
    result = generate(net, folding, args.out, output=args.output, mode=args.mode,
                      name=args.name)
    if args.json:
        print_json(result)
    else:
        fold = ", ".join(f"{k} pe={v['pe']} simd={v['simd']}"
                         for k, v in result["folding"].items())
        print(f"wrote {args.out.rstrip('/')}/{result['verilog']} and manifest.json "
              f"({result['cycles_per_frame']} cycles/frame, bottleneck "
              f"{result['bottleneck']}; {fold})")
    return 0
