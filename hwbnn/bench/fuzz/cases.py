"""What a fuzz case is, what it gave, and the outcomes it is sorted into."""

from __future__ import annotations

from dataclasses import dataclass, field

HANG_SECONDS = 30.0
MEMORY_BYTES = 2 << 30  # peak resident memory of a case
ADDRESS_SPACE_BYTES = 4 << 30  # the worker's hard limit, so a runaway case cannot take the host
OUTCOMES = ("clean error", "accepted identical", "accepted different", "traceback", "hang",
            "memory")
FAILURES = OUTCOMES[2:]
ZOO_FILES = ("digits_mlp_w1a1", "digits_mlp_ternary", "digits_mlp_w2", "digits_mlp_mix14",
             "digits_cnn_w1a1")


@dataclass
class Case:
    """One command: ``argv`` run in a fresh folder holding ``files``, ``folders`` and named
    pipes (``fifos``), with permission ``modes`` applied.

    ``key`` names the unmutated input whose output an accepted case must reproduce (None:
    the case must be refused); ``reference`` marks that unmutated run itself. ``product`` is
    a file the command writes whose bytes count as output.
    """

    kind: str
    mutation: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    folders: tuple[str, ...] = ()
    fifos: tuple[str, ...] = ()
    modes: dict[str, int] = field(default_factory=dict)
    key: str | None = None
    reference: bool = False
    product: str | None = None


@dataclass
class Result:
    """What a case gave: exit code (None: it raised), output, the written product's bytes,
    the exception's traceback, time and the worker's peak resident memory so far."""

    rc: int | None
    stdout: str = ""
    stderr: str = ""
    product: bytes | None = None
    exception: str | None = None
    seconds: float = 0.0
    maxrss: int = 0
    outcome: str = ""
