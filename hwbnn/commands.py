"""The foundation's subcommands: train, export, summary, run, zoo."""

from __future__ import annotations

import argparse

from .cli import (
    model_argument,
    output_path,
    positive_float,
    positive_int,
    print_json,
    seed_int,
)
from .dist import cluster_arguments
from .errors import HwbnnError


def _int_list(text: str) -> list[int]:
    try:
        return [positive_int(part) for part in text.split(",") if part]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, not {text!r}") from None


def _bit_group(text: str) -> int | str:
    from .ir.mix import parse_group

    value = int(text) if text.isascii() and text.isdigit() else text
    try:
        parse_group(value)
    except HwbnnError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _conv_list(text: str) -> list:
    items = []
    for part in text.split(","):
        if part.upper() == "M":
            items.append("M")
            continue
        try:
            items.append(positive_int(part))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"conv list takes channel counts and M, not {part!r}") from None
    return items


def _dataset_arguments(parser) -> None:
    parser.add_argument("--dataset", default="digits",
                        help="digits (embedded), mnist, fashion-mnist or cifar10")
    parser.add_argument("--data-path", help="folder with the dataset's files (not for digits)")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a quantized model; write .pt and .hwbnn")
    p.add_argument("--recipe", help="start from a zoo recipe (e.g. digits_mlp_w1a1)")
    p.add_argument("--arch", choices=("mlp", "cnn"))
    p.add_argument("--dense", type=_int_list, help="hidden dense widths, e.g. 64,64")
    p.add_argument("--conv", type=_conv_list, help="conv channels and M (pool), e.g. 32,M,64,M")
    p.add_argument("--weights", help="float, binary, ternary, w2, w3, mix:F1,F2,F3 or mix:AVG")
    p.add_argument("--activations", help="float, binary, ternary or uint2..uint8")
    p.add_argument("--group", type=_bit_group,
                   help="bitwidth granularity: N consecutive inputs of a row share bits, "
                        "PExSIMD (each tile of a folded unit, e.g. 4x8), or 'column' (each "
                        "input across all outputs; for --mode unrolled)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--seed", type=seed_int, default=0)
    _dataset_arguments(p)
    p.add_argument("--out", required=True, help="output path without suffix (writes .pt, .hwbnn)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("export", help="export a torch checkpoint to a .hwbnn model, "
                                             "or a model to QONNX")
    p.add_argument("checkpoint", help="torch checkpoint (--to hwbnn) or model/zoo:NAME "
                                      "(--to qonnx)")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--to", choices=("hwbnn", "qonnx"), default="hwbnn",
                   help="hwbnn model file (default) or QONNX graph (.onnx)")
    p.add_argument("--name", help="model name (default: the output file's stem)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("summary", help="per-layer encodings, bits, operations")
    model_argument(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = subparsers.add_parser("run", help="accuracy of a model with the golden integer model")
    model_argument(p)
    _dataset_arguments(p)
    p.add_argument("--checkpoint", help="torch checkpoint: also check integer torch == golden")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("zoo", help="list or rebuild the model zoo")
    zoo_commands = p.add_subparsers(dest="zoo_command", required=True)
    q = zoo_commands.add_parser("list", help="zoo models with their accuracy")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_zoo_list)
    q = zoo_commands.add_parser("build", help="retrain the shipped zoo models (reproducible)")
    q.add_argument("names", nargs="*",
                   help="zoo models or float baselines (default: every trained zoo model of "
                        "--dataset, and with --seeds above 1 its baselines)")
    _dataset_and_seeds(q)
    q.add_argument("--missing-only", action="store_true",
                   help="train only the runs the run record (hwbnn/zoo/runs.json) lacks; the "
                        "shipped files stay as they are (resumes an interrupted --seeds build)")
    cluster_arguments(q, jobs_default=1)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_zoo_build)
    q = zoo_commands.add_parser("table", help="the README's accuracy table from the run record "
                                              "(trains nothing)")
    q.add_argument("names", nargs="*",
                   help="zoo models or float baselines (default: every trained zoo model of "
                        "--dataset, and with --seeds above 1 its baselines)")
    _dataset_and_seeds(q)
    q.add_argument("--jobs", type=positive_int,
                   help="also the time a seed-0 rebuild (hwbnn zoo build --jobs N) of these "
                        "models would train on N workers, from the recorded training times")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_zoo_table)


def _dataset_and_seeds(q) -> None:
    q.add_argument("--dataset", choices=("digits", "fashion-mnist"),
                   help="only the models of this dataset")
    q.add_argument("--seeds", type=positive_int, default=1,
                   help="with more than 1: also the mean test accuracy over that many seeds")


def cmd_train(args) -> int:
    from . import data
    from .ir.fileformat import check_folder
    from .train import TrainSettings
    from .zoo.build import recipe, train_and_save

    out = output_path(args.out, ".hwbnn")
    check_folder(out.parent)  # before training, not after
    base = recipe(args.recipe) if args.recipe else {"config": {}, "settings": {}}
    config = dict(base["config"])
    for key in ("arch", "dense", "conv", "weights", "activations", "group"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if config.get("conv") and "arch" not in config:
        config["arch"] = "cnn"
    settings = TrainSettings(**base["settings"])
    settings.seed = args.seed
    for key in ("epochs", "lr"):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    dataset = data.load(args.dataset, args.data_path)
    result = train_and_save(config, settings, dataset, out.with_suffix(""), name=out.stem)
    if args.json:
        print_json(result)
    else:
        print(f"wrote {result['checkpoint_path']} and {result['model_path']}")
        print(f"test accuracy: float {100 * result['float_accuracy']:.2f}%, integer "
              f"{100 * result['integer_accuracy']:.2f}% ({result['train_s']:.1f} s)")
    return 0


def cmd_export(args) -> int:
    if args.to == "qonnx":
        from .interop.commands import export_qonnx_file

        export_qonnx_file(args.checkpoint, args.out, args.name)
        return 0
    from .ir import save
    from .ir.export import export
    from .train import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    out = output_path(args.out, ".hwbnn")
    save(export(model, args.name or out.stem), out)
    print(f"wrote {out}")
    return 0


def cmd_summary(args) -> int:
    from .api import load
    from .summary import format_table

    prof = load(args.model).summary()
    if args.json:
        print_json(prof.as_dict())
    else:
        print(format_table(prof))
    return 0


def cmd_run(args) -> int:
    from .api import load

    model = load(args.model)
    result = {"model": model.name, "model_path": args.model, "dataset": args.dataset,
              "frames": len(model.frames(args.dataset, args.data_path)),
              "accuracy": model.accuracy(args.dataset, args.data_path)}
    if args.checkpoint:
        result.update(model.check_against_torch(args.checkpoint, args.dataset, args.data_path))
    if args.json:
        print_json(result)
    else:
        print(f"{args.model} on {args.dataset} test split ({result['frames']} frames): "
              f"accuracy {100 * result['accuracy']:.2f}% (golden integer model)")
        if args.checkpoint:
            print(f"integer torch vs golden: {result['exactness']}; float torch accuracy "
                  f"{100 * result['torch_float_accuracy']:.2f}%, agrees with golden on "
                  f"{100 * result['float_agreement']:.2f}% of frames")
    return 0 if result.get("exact", True) else 1


def cmd_zoo_list(args) -> int:
    from . import zoo

    rows = []
    for name in zoo.names():
        entry = {"model": name, "model_path": f"zoo:{name}",
                 "trained": name in zoo.trained_names()}
        if entry["trained"]:
            entry.update(zoo.load(f"zoo:{name}").metadata.get("training", {}))
        rows.append(entry)
    if args.json:
        print_json({"models": rows})
    else:
        for row in rows:
            accuracy = row.get("integer_accuracy")
            detail = f"test accuracy {100 * accuracy:.2f}%" if accuracy else "synthetic weights"
            print(f"{row['model_path']:32s} {detail}")
    return 0


def _zoo_names(args) -> list[str]:
    """The models (and float baselines) a zoo build or table covers: the names given, or every
    trained model of ``--dataset`` with, for several seeds, its dataset's baselines."""
    from . import zoo
    from .zoo.build import with_baselines
    from .zoo.recipes import BASELINES, RECIPES, dataset_of

    if not args.names:
        return with_baselines([name for name in zoo.trained_names() if args.dataset in
                               (None, dataset_of(RECIPES[name]))], args.seeds)
    unknown = [name for name in args.names if name not in RECIPES and name not in BASELINES]
    if unknown:
        raise HwbnnError(f"not a trained zoo model or baseline: {', '.join(unknown)}")
    return args.names


def _print_zoo_rows(args, rows: list[dict], rebuild: dict | None = None) -> int:
    from .zoo.build import zoo_table

    if args.json:
        print_json({"models": rows, **({"rebuild": rebuild} if rebuild else {})})
        return 0
    print(zoo_table(rows))
    if rebuild:
        print(f"\nseed-0 rebuild (hwbnn zoo build --jobs {rebuild['workers']}): "
              f"{rebuild['jobs']} jobs, {rebuild['train_s'] / 60:.0f} min of training, about "
              f"{rebuild['makespan_s'] / 60:.0f} min on {rebuild['workers']} workers "
              f"(recorded training times, longest first)")
    return 0


def cmd_zoo_build(args) -> int:
    from .dist import executor_of
    from .zoo.build import build

    return _print_zoo_rows(args, build(_zoo_names(args), seeds=args.seeds,
                                       executor=executor_of(args),
                                       missing_only=args.missing_only))


def cmd_zoo_table(args) -> int:
    from .zoo.build import rebuild_estimate, table_rows
    from .zoo.recipes import RECIPES

    names = _zoo_names(args)
    rebuild = None
    if args.jobs:
        rebuild = rebuild_estimate([name for name in names if name in RECIPES], args.jobs)
    return _print_zoo_rows(args, table_rows(names, args.seeds), rebuild)
