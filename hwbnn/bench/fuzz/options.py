"""Every option of every command with bad values: the command must refuse each one."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .cases import Case

_FLOAT_BAD = ["nan", "inf", "-inf", "-1", "0", "abc", "", "1e400"]
# Bad values by the name of an option's argparse type (the shared types of hwbnn.cli also
# refuse what int() reads but a user hardly means: "٣", "1_0").
_BAD_BY_TYPE = {
    "positive_float": _FLOAT_BAD, "_probability": _FLOAT_BAD + ["1"],
    "int": ["x", "1.5", "", "nan"], "positive_int": ["0", "-1", "x", "1.5", ""],
    "seed_int": ["-1", "x", str(2 ** 64), "٣"], "_int_list": ["x,y", "-1", "0", "3,0"],
    "_conv_list": ["x", "-1", "0", "8,0", "٣"], "_bit_group": ["0", "-1", "x", "٣"],
    "_batches": ["x", "0", "-1", ""],
    "non_negative_float": ["nan", "inf", "-inf", "-1", "abc", "", "1e400"],
    "non_negative_int": ["-1", "x", "1.5", "", "٣"],
    "_widths": ["0", "x", "", "-1", "8,0", "٣"],
}
_MODEL_BAD = ["missing.hwbnn", "folder", "empty.hwbnn", "garbage.hwbnn", "zoo:nope",
              "/dev/zero", "pipe"]
_FOLD_BAD = ["missing.json", "null.json", "bool.json", "nan.json", "deep.json", "garbage.json",
             "folder", "3x3", "auto", "0x1,1x1,1x1", "x", "1x1", "empty.hwbnn",
             "1x1:ultra,1x1,1x1", "1x1:,1x1,1x1"]
# Bad values of options without a telling type, by destination (semantic checks: these
# commands refuse them before any long work).
_BAD_BY_DEST = {
    "model": _MODEL_BAD, "relative_to": _MODEL_BAD, "fold": _FOLD_BAD, "dataset": ["bogus"],
    "checkpoint": ["missing.pt", "garbage.pt", "folder"],
    "onnx": ["missing.onnx", "garbage.onnx", "folder", "/dev/zero", "empty.hwbnn", "pipe"],
    "recipe": ["nope"], "weights": ["w9", "mix:nan,0,1", "mix:inf"],
    "activations": ["uint9", "uint５"], "mixes": ["nan", "mix:nan,0,1", ""],
    "objectives": ["lut", "accuracy,area", "accuracy,accuracy", ""],
    "storage": ["nosuchdb://x", "sqlite:////nonexistent/folder/study.db", "x"],
    # --plot without --blocks is refused before synthesis.
    "plot": ["blocks.png", ""],
}
# --cluster: an address that does not answer (refused after dist.CONNECT_TIMEOUT_S), one
# that does not parse, files that are no scheduler file. Tried for the long commands too:
# they connect before any long work (`hwbnn cost MODEL` refuses the option: it runs no jobs).
_BAD_CLUSTER = ["tcp://127.0.0.1:1", "bogus", "existing", "garbage.json"]
# Paths every command checks first, so they are tried for the long commands too.
_BAD_PATHS = {
    "target": ["missing", "folder", "existing"], "directory": ["missing", "folder", "existing"],
    "design": ["missing", "folder", "existing"],
    "models": ["missing.hwbnn", "folder"], "bitstream": ["missing.bit", "folder", "existing"],
    "names": ["nope"],
}
_BAD_OUT = {"gen": ["existing", "existing/sub"], "import": ["", "/", "x", "existing/sub"],
            "export": ["", "/", "x", "existing/sub"], "report": ["existing/sub", "folder"]}
_BAD_NAME = {"gen": ["1abc", "a-b", "é"]}
# Where permissions apply (not for root): a file that cannot be read, a folder not written.
_UNREADABLE = {"model": "unreadable.hwbnn", "fold": "unreadable.json", "out": "readonly/x"}
# Options without bad values to try: flags, free-form names, folders that are created.
CLI_UNFUZZED = {"json", "csv", "refit", "train", "synth", "selftest", "scores", "flash",
                "dry_run", "name", "work", "device", "data_path", "help", "study"}
_CLI_FILES = {
    "empty.hwbnn": b"", "garbage.hwbnn": b"garbage", "garbage.json": b"{",
    "null.json": b'{"dense0": {"pe": null}}', "bool.json": b'{"dense0": {"pe": true}}',
    "nan.json": b'{"dense0": {"pe": NaN}}', "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "existing": b"x", "garbage.onnx": b"garbage", "garbage.pt": b"garbage",
    "unreadable.json": b"{}",
}


def _cli_bases() -> dict[tuple, tuple[list[str], dict, bool]]:
    """Command -> (argv prefix, valid arguments by destination, whether the bad values by
    destination are tried: they are where the command refuses them quickly)."""
    from ... import zoo

    model = "zoo:digits_mlp_w1a1"
    checkpoint = str(zoo.checkpoint_path("digits_mlp_w1a1"))
    return {
        ("train",): (["train"], {"out": "m", "dense": "8", "epochs": "1"}, True),
        ("export",): (["export"], {"checkpoint": checkpoint, "out": "x"}, True),
        ("summary",): (["summary"], {"model": model}, True),
        ("run",): (["run"], {"model": model}, True),
        ("zoo", "list"): (["zoo", "list"], {}, False),
        ("zoo", "build"): (["zoo", "build"], {"names": ["digits_mlp_w1a1"]}, False),
        ("zoo", "table"): (["zoo", "table"], {"names": ["digits_mlp_w1a1"]}, True),
        ("bench", "cpu"): (["bench", "cpu"], {"model": model, "min_time": "0.01",
                                              "batch": "1"}, True),
        ("gen",): (["gen"], {"model": model, "out": "rtl"}, True),
        # A model target: the options argparse accepts (--cluster) get past the target.
        ("verify",): (["verify"], {"target": model}, False),
        ("synth",): (["synth"], {"directory": "rtl", "family": "ice40"}, False),
        ("cost",): (["cost"], {"model": model, "family": "ice40"}, True),
        ("sweep",): (["sweep"], {"model": model}, False),
        ("explore",): (["explore"], {"model": "mlp:8", "epochs": "1", "trials": "1",
                                     "jobs": "1"}, True),
        ("compare",): (["compare"], {"models": [model]}, False),
        ("build",): (["build"], {"model": model, "board": "icebreaker"}, False),
        ("program",): (["program"], {"bitstream": "x.bin", "board": "icebreaker",
                                     "dry_run": True}, False),
        ("import",): (["import"], {"onnx": "graph.onnx", "out": "out"}, True),
        ("report",): (["report"], {"design": "rtl"}, False),
    }


def _subparsers(parser, path=()):
    """(command path, parser) of every leaf command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, path + (name,))
            return
    yield path, parser


def _argv(prefix: list[str], parser, values: dict) -> list[str]:
    argv, positionals = list(prefix), []
    for action in parser._actions:
        if action.dest not in values:
            continue
        value = values[action.dest]
        if not action.option_strings:
            positionals += value if isinstance(value, list) else [value]
        elif value is True:
            argv.append(action.option_strings[-1])
        else:
            argv += [action.option_strings[-1], value]
    return argv[:len(prefix)] + positionals + argv[len(prefix):]


def _bad_values(command: tuple, action, deep: bool) -> list[str] | None:
    """The bad values tried for one option; None: not fuzzed (see CLI_UNFUZZED)."""
    from ... import cli

    name = getattr(action.type, "__name__", None)
    if action.type is cli.positive_int:
        return _BAD_BY_TYPE[name] + ["٣", "1_0"]
    if name in _BAD_BY_TYPE:
        return _BAD_BY_TYPE[name] + (["bogus"] if action.choices else [])
    if action.choices:
        return ["bogus", "99"]
    if action.dest in _BAD_PATHS:
        return _BAD_PATHS[action.dest]
    if action.dest == "cluster":
        return _BAD_CLUSTER
    if action.dest == "out":
        return _BAD_OUT.get(command[0], [])
    if action.dest == "name" and command[0] in _BAD_NAME:
        return _BAD_NAME[command[0]]
    if action.dest in _BAD_BY_DEST:
        return _BAD_BY_DEST[action.dest] if deep else []
    return None


def cli_unfuzzed() -> list[str]:
    """Options no rule gives bad values to (a new option must get one or be listed)."""
    from ...cli import build_parser

    bases = _cli_bases()
    missing = []
    for command, parser in _subparsers(build_parser()):
        for action in parser._actions:
            if action.dest in CLI_UNFUZZED or action.nargs == 0:
                continue
            if command not in bases or _bad_values(command, action, True) is None:
                missing.append(f"{' '.join(command)} {action.dest}")
    return missing


def permissions_apply() -> bool:
    """Whether this process is refused a file without read permission (root is not)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "unreadable"
        path.write_bytes(b"")
        path.chmod(0)
        try:
            path.open("rb").close()
        except PermissionError:
            return True
        return False


def cli_cases(unreadable: bool | None = None) -> list[Case]:
    """Every option of every command with each of its bad values; all must be refused.

    ``unreadable``: also files without read permission and a read-only folder (default:
    where permissions apply, which they do not for root).
    """
    from ... import zoo
    from ...cli import build_parser
    from ...interop.qonnx import export_qonnx

    if unreadable is None:
        unreadable = permissions_apply()
    onnx = export_qonnx(zoo.load("zoo:digits_mlp_w1a1")).SerializeToString()
    files = dict(_CLI_FILES, **{"graph.onnx": onnx,
                                "unreadable.hwbnn": zoo.model_path("digits_mlp_w1a1")
                                .read_bytes()})
    modes = {"unreadable.hwbnn": 0, "unreadable.json": 0, "readonly": 0o555} if (
        unreadable) else {}
    bases = _cli_bases()
    cases = []
    for command, parser in _subparsers(build_parser()):
        if command not in bases:
            continue
        prefix, valid, deep = bases[command]
        for action in parser._actions:
            values = _bad_values(command, action, deep) or []
            if unreadable and deep and action.dest in _UNREADABLE:
                values = values + [_UNREADABLE[action.dest]]
            for value in values:
                argv = _argv(prefix, parser, dict(valid, **{action.dest: value}))
                cases.append(Case("cli", " ".join(argv), argv, files,
                                  folders=("folder", "x.hwbnn", "readonly"), fifos=("pipe",),
                                  modes=modes))
    return cases
