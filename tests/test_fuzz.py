"""The seeded fuzz suite of issue 17: bad input never crashes, hangs or lies.

Every mutated model file, QONNX graph and bad command-line value ends in one clean error line
(exit code 2) or in exactly the unmutated input's output; never a traceback, a hang past
30 s or more than 2 GiB. The budget here fits CI; the long run is
``python -m hwbnn.bench.fuzz --files 2000 --qonnx 1000 --seed 0``.
"""

import pytest

from hwbnn.bench import fuzz

BUDGETS = {
    "file": lambda: fuzz.file_cases(300, seed=0),
    "qonnx": lambda: fuzz.qonnx_cases(150, seed=0),
    "cli": fuzz.cli_cases,
}


@pytest.mark.parametrize("kind", BUDGETS)
def test_fuzz(kind):
    done = fuzz.run_cases(BUDGETS[kind]())
    problems = fuzz.failures(done)
    assert not problems, "\n" + fuzz.counts_table(done) + "\n" + "\n".join(problems)
    outcomes = {fuzz.outcome(result) for case, result in done if not case.reference}
    # The mutations must break inputs; model files and graphs also get harmless ones.
    assert "clean error" in outcomes
    assert kind == "cli" or "accepted identical" in outcomes


def test_every_cli_option_is_fuzzed():
    """A new option needs bad values in hwbnn.bench.fuzz (or a place in CLI_UNFUZZED)."""
    assert fuzz.cli_unfuzzed() == []


def test_a_case_past_its_time_is_a_hang():
    """The watchdog kills the worker and goes on with a fresh one (training stands in for a
    hang: it takes longer than the 2 s allowed)."""
    cases = [fuzz.Case("cli", "slow", ["train", "--dense", "8", "--epochs", "50", "--out", "m"]),
             fuzz.Case("cli", "bad", ["summary", "missing.hwbnn"])]
    done = fuzz.run_cases(cases, timeout=2)
    assert [fuzz.outcome(result) for _, result in done] == ["hang", "clean error"]


@pytest.mark.parametrize("result, expected", [
    (None, "hang"),
    (fuzz.Result(2, stderr="hwbnn: error: x\n", maxrss=3 << 30), "memory"),
    (fuzz.Result(None, exception="Traceback ..."), "traceback"),
    (fuzz.Result(2, stderr="RuntimeWarning: overflow\nhwbnn: error: x\n"), "traceback"),
    (fuzz.Result(1, stderr="hwbnn: error: x\n"), "traceback"),
    (fuzz.Result(2, stderr="hwbnn: error: x\n"), "clean error"),
    (fuzz.Result(0, stdout="same"), "accepted identical"),
    (fuzz.Result(0, stdout="other"), "accepted different"),
])
def test_outcomes(result, expected):
    case = fuzz.Case("file", "m", ["summary", "model.hwbnn"], key="k")
    assert fuzz.classify(case, result, fuzz.Result(0, stdout="same")) == expected
