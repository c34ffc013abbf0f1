"""``hwbnn import``: a QONNX graph to a model file (``export --to qonnx`` is in commands.py)."""

from __future__ import annotations

from ..cli import output_path


def register(subparsers) -> None:
    p = subparsers.add_parser("import", help="import a QONNX graph (.onnx) as a .hwbnn model")
    p.add_argument("onnx", help="QONNX model file (.onnx), e.g. exported by Brevitas or hwbnn")
    p.add_argument("-o", "--out", required=True, help="output model file (.hwbnn)")
    p.add_argument("--name", help="model name (default: the exporter's name or the file stem)")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from ..ir import save
    from .qonnx import import_qonnx

    net = import_qonnx(args.onnx, name=args.name)
    out = output_path(args.out, ".hwbnn")
    save(net, out)
    print(f"wrote {out} ({len(net.layers)} layers, input {'x'.join(map(str, net.input_shape))} "
          f"{net.input_encoding})")
    return 0


def export_qonnx_file(model: str, out: str, name: str | None) -> None:
    """``hwbnn export --to qonnx``: a model file or zoo:NAME to a QONNX graph."""
    from .. import zoo
    from .qonnx import save_qonnx

    net = zoo.load(model)
    if name:
        net.name = name
    path = output_path(out, ".onnx")
    save_qonnx(net, path)
    print(f"wrote {path}")
