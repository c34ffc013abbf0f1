"""Progress of long steps on stderr (docs/design.md, "JSON schema and progress").

Library code marks its slow steps (a Verilator build, a nextpnr seed, a training epoch) with
:func:`step` and never prints: a step says something only while a reporter is enabled, which
the command line does for every command (:func:`reporting`) and a script may do too::

    from hwbnn import progress
    with progress.reporting():
        design.verify()

On a terminal the innermost running step is one status line, redrawn in place every half
second with its elapsed time (and a bar for counted steps); a step that took at least
:data:`SHOW_AFTER_S` leaves one finished line. Anywhere else (a log, a pipe, CI) nothing is
redrawn and no carriage return is written: each such step writes one plain line when it ends,
a counted step at most one line per :data:`SHOW_AFTER_S` while it runs, and a step that has
written nothing for :data:`HEARTBEAT_S` (a long Yosys run) one line saying it still runs, so
that a log never looks hung.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SHOW_AFTER_S = 2.0  # steps shorter than this are not worth a line
REDRAW_S = 0.5
HEARTBEAT_S = 60.0  # a log hears from a running step at least this often
HEARTBEAT_CHECK_S = 1.0
BAR_WIDTH = 20
PREFIX = "hwbnn: "
_clock = time.monotonic


class Step:
    """One running step: its label, its count (for counted steps) and a short note."""

    def __init__(self, reporter: Reporter | None, label: str, total: int | None):
        self._reporter = reporter
        self.label = label
        self.total = total
        self.done = 0
        self.note = ""
        self.started = _clock()
        self.logged_at = self.started  # when a log last got a line of this step

    @property
    def elapsed_s(self) -> float:
        return _clock() - self.started

    def advance(self, note: str = "", by: int = 1) -> None:
        """Count ``by`` more units done; ``note`` says what the last one was."""
        self.done += by
        self.note = note
        if self._reporter is not None:
            self._reporter.advanced(self)

    def text(self) -> str:
        """``label [#####.....] 3/7 note 12 s`` (the live line and the plain line)."""
        parts = [self.label]
        if self.total:
            filled = BAR_WIDTH * min(self.done, self.total) // self.total
            parts.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                         f"{self.done}/{self.total}")
        if self.note:
            parts.append(self.note)
        parts.append(f"{self.elapsed_s:.0f} s")
        return " ".join(parts)


class Reporter:
    """Writes the steps of this process to ``stream``: live on a terminal, plain elsewhere."""

    def __init__(self, stream):
        self._stream = stream
        self._live = _is_terminal(stream)
        self._pid = os.getpid()  # forked workers inherit the reporter but must stay silent
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._shown = False  # a live line is on the terminal
        loop = self._redraw_loop if self._live else self._heartbeat_loop
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return os.getpid() == self._pid

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._clear()

    def started(self, step: Step) -> None:
        with self._lock:
            self._steps.append(step)

    def advanced(self, step: Step) -> None:
        if not self.active:
            return
        with self._lock:
            if self._live:
                self._draw()
            elif step.total is None or step.done < step.total:
                now = _clock()
                if now - step.logged_at >= SHOW_AFTER_S:
                    step.logged_at = now
                    self._write(PREFIX + step.text() + "\n")

    def finished(self, step: Step, failed: bool) -> None:
        with self._lock:
            if step in self._steps:
                self._steps.remove(step)
            if not self.active:
                return
            self._clear()
            if not failed and step.elapsed_s >= SHOW_AFTER_S:
                count = f" ({step.done}/{step.total})" if step.total else ""
                self._write(f"{PREFIX}{step.label}{count}: {step.elapsed_s:.1f} s\n")
            if self._live:
                self._draw()

    def _redraw_loop(self) -> None:
        while not self._stop.wait(REDRAW_S):
            with self._lock:
                if self.active:
                    self._draw()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_CHECK_S):
            with self._lock:
                if not self.active or not self._steps:
                    continue
                step, now = self._steps[-1], _clock()
                if now - step.logged_at >= HEARTBEAT_S:
                    step.logged_at = now
                    self._write(f"{PREFIX}{step.text()} (running)\n")

    def _draw(self) -> None:
        if not self._steps:
            return
        width = shutil.get_terminal_size().columns - 1
        self._write("\r\x1b[K" + (PREFIX + self._steps[-1].text())[:width])
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the work
            pass


_reporter: Reporter | None = None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


@contextmanager
def reporting(stream=None) -> Iterator[Reporter]:
    """Show the steps run inside on ``stream`` (default stderr); quiet again afterwards."""
    global _reporter
    previous = _reporter
    reporter = Reporter(stream if stream is not None else sys.stderr)
    _reporter = reporter
    try:
        yield reporter
    finally:
        _reporter = previous
        reporter.close()


@contextmanager
def step(label: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Step]:
    """A step that may take seconds: ``with step("verify: Verilator build"): ...``; with
    ``total`` a counted one whose :meth:`Step.advance` moves a bar. Silent unless a reporter
    is enabled (:func:`reporting`), and with ``quiet``."""
    active = _reporter is not None and _reporter.active and not quiet
    reporter = _reporter if active else None
    current = Step(reporter, label, total)
    if reporter is None:
        yield current
        return
    reporter.started(current)
    failed = True
    try:
        yield current
        failed = False
    finally:
        reporter.finished(current, failed)
