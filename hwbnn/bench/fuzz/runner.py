"""Running cases: a worker process executes them, the parent watches time and memory."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import resource
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

from .cases import ADDRESS_SPACE_BYTES, FAILURES, HANG_SECONDS, MEMORY_BYTES, OUTCOMES, Case, Result

_FOLDER = "HWBNN_FUZZ_FOLDER"  # tells the worker where to make the cases' folders


def _execute(case: Case, main) -> Result:
    """Run one case in a fresh folder (in the worker)."""
    with tempfile.TemporaryDirectory(prefix="case-", dir=os.environ.get(_FOLDER)) as folder:
        root = Path(folder)
        for name, data in case.files.items():
            (root / name).write_bytes(data)
        for name in case.folders:
            (root / name).mkdir()
        for name in case.fifos:
            os.mkfifo(root / name)
        for name, mode in case.modes.items():
            (root / name).chmod(mode)
        cwd, out, err = os.getcwd(), io.StringIO(), io.StringIO()
        result = Result(None)
        start = time.perf_counter()
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings():
                warnings.simplefilter("always")  # a warning is output, every time
                # except Amaranth's for a design left unused when a command stops with an
                # error: it comes when the garbage is collected, which a command line
                # process never gets to, while here it would land in a later case.
                warnings.filterwarnings("ignore", message=".* created but never used")
                result.rc = main(list(case.argv))
        except BaseException:  # noqa: BLE001 - the point is to record it
            result.exception = traceback.format_exc()
        finally:
            os.chdir(cwd)
            for name in case.modes:
                (root / name).chmod(0o700)

        result.seconds = time.perf_counter() - start
        result.stdout, result.stderr = out.getvalue(), err.getvalue()
        if case.product and (root / case.product).is_file():
            result.product = (root / case.product).read_bytes()
    result.maxrss = peak_rss()
    return result


def peak_rss() -> int:
    """Peak resident bytes of this process: VmHWM of its own address space where Linux gives
    it (``ru_maxrss`` also counts what a forked child shared with its parent before ``exec``,
    so a worker started from a large test process would report the parent's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def serve() -> None:
    """The worker: cases in on stdin, results out on the original stdout (the cases' own
    output is captured; anything written to the file descriptors goes to /dev/null)."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    channel = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    from ...cli import main

    source = sys.stdin.buffer
    while size := source.read(8):
        case = pickle.loads(source.read(struct.unpack("<Q", size)[0]))
        data = pickle.dumps(_execute(case, main))
        channel.write(struct.pack("<Q", len(data)) + data)
        channel.flush()


class _Worker:
    def __init__(self):
        # The cases' folders live in one folder of ours: a killed worker leaves its case's
        # files there, and close() removes them all.
        self.folder = tempfile.mkdtemp(prefix="hwbnn-fuzz-")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from hwbnn.bench.fuzz.runner import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, **{_FOLDER: self.folder}))

    def run(self, case: Case, timeout: float) -> Result | None:
        """The case's result; None when it took longer than ``timeout`` or the worker died
        (it is then unusable)."""
        data = pickle.dumps(case)
        try:
            self.process.stdin.write(struct.pack("<Q", len(data)) + data)
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        deadline = time.monotonic() + timeout
        header = self._read(8, deadline)
        if header is None:
            return None
        body = self._read(struct.unpack("<Q", header)[0], deadline)
        return None if body is None else pickle.loads(body)

    def _read(self, size: int, deadline: float) -> bytes | None:
        stream, data = self.process.stdout, b""
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
                return None
            chunk = os.read(stream.fileno(), size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for path in Path(self.folder).rglob("*"):  # what a killed case left read-only
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(self.folder, ignore_errors=True)


def classify(case: Case, result: Result | None, reference: Result | None) -> str:
    """One of :data:`OUTCOMES` for a finished (or timed-out: None) case."""
    if result is None:
        return "hang"
    if result.maxrss > MEMORY_BYTES:
        return "memory"
    if result.exception:
        return "traceback"
    lines = result.stderr.splitlines()
    if result.rc == 2 and len(lines) == 1 and lines[0].startswith("hwbnn: error: "):
        return "clean error"
    if result.rc == 0 and not result.stderr:
        if reference is not None and (result.stdout, result.product) == (
                reference.stdout, reference.product):
            return "accepted identical"
        return "accepted different"
    return "traceback"


def run_cases(cases: list[Case], timeout: float = HANG_SECONDS
              ) -> list[tuple[Case, Result | None]]:
    """Run ``cases`` in order in a worker process (restarted after a hang, a crash or a
    memory overrun) and set each result's ``outcome``; references come before their cases.
    """
    references: dict[str, Result] = {}
    done = []
    worker = _Worker()
    try:
        for case in cases:
            result = worker.run(case, timeout)
            if result is None:
                worker.close()
                worker = _Worker()
            elif result.maxrss > MEMORY_BYTES:
                worker.close()
                worker = _Worker()
            if case.reference:
                if result is None or result.rc != 0:
                    raise RuntimeError(f"unmutated input {case.key} fails: " + (
                        f"{result.rc}, {result.exception or result.stderr}" if result else
                        "no answer"))
                references[case.key] = result
            outcome = classify(case, result, references.get(case.key))
            if result is not None:
                result.outcome = outcome
            done.append((case, result))
    finally:
        worker.close()
    return done


def outcome(result: Result | None) -> str:
    return "hang" if result is None else result.outcome


def counts_table(done: list[tuple[Case, Result | None]]) -> str:
    """The Markdown table of outcomes per input kind (the unmutated references left out)."""
    kinds = {"file": "`.hwbnn` files (`summary`, `run`)", "qonnx": "QONNX files (`import`)",
             "cli": "CLI arguments"}
    rows = ["| input | variants | " + " | ".join(OUTCOMES) + " |",
            "|---|" + "---|" * (len(OUTCOMES) + 1)]
    for kind, title in kinds.items():
        counts = Counter(outcome(r) for c, r in done if c.kind == kind and not c.reference)
        if counts:
            rows.append(f"| {title} | {sum(counts.values())} | "
                        + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    return "\n".join(rows)


def failures(done: list[tuple[Case, Result | None]]) -> list[str]:
    """One line per failed case: outcome, mutation, and the last line of what went wrong."""
    lines = []
    for case, result in done:
        if outcome(result) in FAILURES:
            detail = "" if result is None else (result.exception or result.stderr or
                                                result.stdout).strip().splitlines()[-1:]
            lines.append(f"{outcome(result)}: {case.kind} {case.mutation} -> "
                         f"{detail[0] if detail else ''}"[:300])
    return lines
