"""One JSON schema (hwbnn.schema): every command's ``--json`` output follows it, an unknown or
misnamed key fails it, docs/json-schema.md is rendered from it; progress goes to stderr only,
one plain line per long step in a log, and the Python API prints nothing."""

import argparse
import functools
import io
import json
import shutil
import time
from pathlib import Path

import pytest

from hwbnn import progress, schema
from hwbnn.cli import build_parser, main

from .tooling import require_simulator, require_yowasp

ROOT = Path(__file__).resolve().parents[1]
MODEL = "zoo:digits_mlp_w1a1"
RTL = str(ROOT / "rtl" / "digits_mlp_w1a1")


def _commands_with_json(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _commands_with_json(sub, f"{prefix} {name}".strip())
        elif "--json" in action.option_strings and prefix:
            found.add(prefix)
    return found


def test_every_command_with_json_has_a_schema():
    commands = _commands_with_json(build_parser())
    # ``cost calibrate`` is ``cost`` with MODEL = calibrate; ``verify (several targets)`` is
    # ``verify`` with more than one target.
    assert commands == set(schema.COMMANDS) - {"cost calibrate", "verify (several targets)"}


def _run(capsys, *argv) -> dict:
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


# Fast commands on the small zoo model: (schema command, argv).
FAST = [
    ("summary", ["summary", MODEL, "--json"]),
    ("summary", ["summary", "zoo:digits_cnn_w1a1", "--json"]),
    ("run", ["run", MODEL, "--json"]),
    ("zoo list", ["zoo", "list", "--json"]),
    ("cost", ["cost", MODEL, "--family", "ice40", "--json"]),
    ("cost", ["cost", "zoo:digits_cnn_w1a1", "--family", "asic", "--node", "7", "--json"]),
    ("bench cpu", ["bench", "cpu", MODEL, "--batch", "1,3", "--min-time", "0",
                   "--golden-frames", "2", "--json"]),
    ("compare", ["compare", MODEL, "zoo:digits_mlp_w2", "--json"]),
    ("compare", ["compare", MODEL, "--mode", "unrolled", "--json"]),
]


@pytest.mark.parametrize("command, argv", FAST, ids=[" ".join(a[:2]) for _, a in FAST])
def test_fast_commands_follow_the_schema(command, argv, capsys):
    schema.validate(command, _run(capsys, *argv))


def test_gen_and_sweep_follow_the_schema(tmp_path, capsys):
    schema.validate("gen", _run(capsys, "gen", MODEL, "--target-fps", "1e6", "--out",
                                str(tmp_path / "rtl"), "--json"))
    schema.validate("sweep", _run(capsys, "sweep", MODEL, "--mixes", "1,1.4", "--jobs", "1",
                                  "--out", str(tmp_path / "sweep"), "--json"))


def test_explore_follows_the_schema(tmp_path, capsys):
    schema.validate("explore", _run(
        capsys, "explore", "mlp:8", "--board", "icebreaker", "--target-fps", "1000",
        "--epochs", "1", "--trials", "2", "--jobs", "1", "--synth", "--widths", "8,16",
        "--objectives", "accuracy,lut,frames_per_s", "--out", str(tmp_path / "e"), "--json"))


def test_train_and_zoo_build_follow_the_schema(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from hwbnn.zoo import build as zoo_build

    trained = _run(capsys, "train", "--arch", "mlp", "--dense", "8", "--epochs", "1", "--out",
                   str(tmp_path / "m"), "--json")
    schema.validate("train", trained)
    checked = _run(capsys, "run", trained["model_path"], "--checkpoint",
                   trained["checkpoint_path"], "--json")
    schema.validate("run", checked)
    assert checked["model"] == "m" and checked["exact"] is True
    schema.validate("zoo table", _run(capsys, "zoo", "table", "--dataset", "digits", "--seeds", "3",
                                      "--json"))
    # One epoch, written to a temporary zoo: the shipped zoo stays as it is.
    recipe = zoo_build.recipe
    monkeypatch.setattr(zoo_build, "recipe", lambda name: {
        **recipe(name), "settings": {**recipe(name)["settings"], "epochs": 1}})
    monkeypatch.setattr(zoo_build, "build", functools.partial(
        zoo_build.build, zoo_dir=tmp_path, record_path=tmp_path / "runs.json"))
    schema.validate("zoo build", _run(capsys, "zoo", "build", "digits_mlp_w1a1", "--json"))


def test_cost_calibrate_follows_the_schema(tmp_path, capsys, monkeypatch):
    pytest.importorskip("scipy")
    from hwbnn.cost import calibrate

    # --refit rewrites the constants and reports: into copies, not the package.
    for name in ("CALIBRATION_DIR", "CONSTANTS_DIR"):
        copy = tmp_path / name
        shutil.copytree(getattr(calibrate, name), copy)
        monkeypatch.setattr(calibrate, name, copy)
    schema.validate("cost calibrate", _run(capsys, "cost", "calibrate", "--family", "ice40",
                                           "--refit", "--json"))


def test_verify_follows_the_schema(tmp_path, capsys):
    require_simulator("verilator")
    schema.validate("verify", _run(capsys, "verify", RTL, "--frames", "20", "--work",
                                   str(tmp_path), "--json"))
    several = _run(capsys, "verify", RTL, MODEL, "--frames", "20", "--work",
                   str(tmp_path / "several"), "--json")
    schema.validate("verify (several targets)", several)
    with pytest.raises(schema.SchemaError, match="unknown key 'designs'"):
        schema.validate("verify", several)


def test_synth_and_build_follow_the_schema(tmp_path, capsys):
    require_yowasp()
    schema.validate("synth", _run(capsys, "synth", RTL, "--family", "ice40", "--seeds", "0",
                                  "--json"))
    # The Arty build stops after synthesis (seconds; the iCE40 and ECP5 builds take minutes
    # and are checked in test_boards_build).
    schema.validate("build", _run(capsys, "build", MODEL, "--board", "arty-a7-35", "--out",
                                  str(tmp_path / "arty"), "--json"))


# --- the schema itself ----------------------------------------------------------------------
def _cost_output(capsys) -> dict:
    return _run(capsys, "cost", MODEL, "--family", "ice40", "--json")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["totals"].update(frames_per_second=1.0), "unknown key 'frames_per_second'"),
    (lambda d: d["layers"][0].update(name=d["layers"][0].pop("layer")), "unknown key 'name'"),
    (lambda d: d.update(model_ref="zoo:x"), "unknown key 'model_ref'"),
    (lambda d: d["totals"].pop("frames_per_s"), "missing key 'frames_per_s'"),
    (lambda d: d.pop("schema_version"), "schema_version must be"),
    (lambda d: d.update(layers={"dense0": {}}), "a list was expected"),
])
def test_unknown_misnamed_or_missing_keys_fail(change, message, capsys):
    data = _cost_output(capsys)
    schema.validate("cost", data)
    change(data)
    with pytest.raises(schema.SchemaError, match=message):
        schema.validate("cost", data)


def test_keys_are_snake_case_with_their_unit_in_the_name():
    # How a unit shows in a key's name (a width is in bits, the hardware habit).
    spelled = {"s": ("_s",), "MHz": ("_mhz",), "ns": ("_ns",), "pJ": ("_pj",),
               "um^2": ("_um2",), "bits": ("bits", "_width"), "bytes": ("_bytes",),
               "frames/s": ("_per_s",), "cycles/s": ("_per_s",),
               "MAC/s": ("_per_s",)}
    for name, key in schema.KEYS.items():
        assert schema.SNAKE_CASE.fullmatch(name), name
        assert key.kind in (schema.MODELLED, schema.MEASURED, schema.FACT), name
        if key.unit in spelled:
            assert any(part in name for part in spelled[key.unit]), (name, key.unit)
        if name.endswith(("_s", "_mhz", "_ns", "_pj", "_um2", "_bytes")):
            assert key.unit in spelled, name
    for command, spec in schema.COMMANDS.items():
        for _, path, *_ in schema.rows(spec, command):
            for part in path.replace("[]", "").split(".")[1:]:
                assert part.startswith("<") or schema.SNAKE_CASE.fullmatch(part), path


def test_modelled_and_measured_never_share_a_key():
    """One kind per leaf key, except inside an object that declares its own (``counts`` and
    a synthesis' per-block ``blocks``: Yosys's counts; ``available``: the FPGA's)."""
    for command, spec in schema.COMMANDS.items():
        for key, path, _, kind, _ in schema.rows(spec, command):
            if key is None or any(part in path for part in ("counts.", "available.",
                                                            "synth.blocks.")):
                continue
            assert kind == schema.KEYS[key].kind, path


def test_every_key_is_used():
    used = {key for command, spec in schema.COMMANDS.items()
            for key, *_ in schema.rows(spec, command) if key is not None}
    assert set(schema.KEYS) - used == {"schema_version"}


def test_the_document_is_rendered_from_the_schema():
    assert (ROOT / "docs" / "json-schema.md").read_text() == schema.render(), (
        "docs/json-schema.md is stale: python -m hwbnn.schema > docs/json-schema.md")


# --- progress ---------------------------------------------------------------------------------
class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_gets_one_plain_line_per_long_step(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress, "_clock", clock)
    log = io.StringIO()
    with progress.reporting(log):
        with progress.step("quick"):
            clock.now += 0.5
        with progress.step("synth: nextpnr seed 1"):
            clock.now += 30
        with progress.step("sweep", total=4) as step:
            for mix in ("1", "1.4", "2", "3"):
                clock.now += 1.5
                step.advance(f"mix {mix}")
        with pytest.raises(RuntimeError), progress.step("fails"):
            clock.now += 5
            raise RuntimeError
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines == ["hwbnn: synth: nextpnr seed 1: 30.0 s",
                     "hwbnn: sweep [##########..........] 2/4 mix 1.4 3 s",
                     "hwbnn: sweep (4/4): 6.0 s"]


def test_a_log_hears_from_a_long_step_while_it_runs(monkeypatch):
    """A step that writes nothing for HEARTBEAT_S (a long Yosys run) says it still runs."""
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(progress, "HEARTBEAT_CHECK_S", 0.02)
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    log = io.StringIO()
    with progress.reporting(log), progress.step("synth top: Yosys (ice40)"):
        time.sleep(0.75)
    lines = log.getvalue().splitlines()
    assert 2 <= len(lines) - 1 <= 4, lines
    for line in lines[:-1]:
        assert line.startswith("hwbnn: synth top: Yosys (ice40) ")
        assert line.endswith(" s (running)")
    assert lines[-1].startswith("hwbnn: synth top: Yosys (ice40): 0.")


def test_a_terminal_gets_a_live_line(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "xterm")
    screen = Terminal()
    with progress.reporting(screen), progress.step("train mlp", total=2) as step:
        step.advance("loss 1.0")
        step.advance("loss 0.5")
    assert "\r\x1b[K" in screen.getvalue() and "2/2 loss 0.5" in screen.getvalue()


def test_steps_are_silent_without_a_reporter(capsys):
    with progress.step("anything", total=3) as step:
        step.advance()
    assert capsys.readouterr() == ("", "")


def test_the_python_api_prints_nothing(tmp_path, capsys):
    from hwbnn.api import load

    model = load(MODEL)
    model.accuracy("digits")
    model.summary().as_dict()
    model.cost("ice40", target_fps=1e5).totals()
    design = model.generate(tmp_path / "rtl", target_fps=1e5)
    require_simulator("verilator")
    assert design.verify(count=20, work=tmp_path / "verify").passed
    assert capsys.readouterr() == ("", "")


def test_cli_progress_goes_to_stderr_and_json_stays_pure(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    data = _run(capsys, "gen", MODEL, "--out", str(tmp_path), "--json")
    schema.validate("gen", data)
    assert main(["gen", MODEL, "--out", str(tmp_path / "b"), "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "hwbnn: gen hwbnn_digits_mlp_w1a1: elaborate and convert to Verilog" in err
    assert "\r" not in err
