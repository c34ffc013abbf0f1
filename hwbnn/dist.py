"""The one execution layer of hwbnn's many-job commands: ``explore``, ``sweep``, ``cost
calibrate`` and multi-design ``verify`` (docs/design.md, "Execution layer").

Jobs run on Dask distributed: a local cluster of worker processes by default (``--jobs N``,
one thread each, so single-threaded training stays reproducible and N jobs use N cores), or an
existing cluster with ``--cluster ADDRESS`` (``tcp://host:8786``, or a scheduler file written
by ``dask scheduler --scheduler-file``). With one local job and no cluster the jobs run in this
process, in order, and Dask is not imported.

Why Dask and not a home-made pool: its scheduler re-runs a task whose worker died on another
worker (up to ``distributed.scheduler.allowed-failures`` times), workers can join and leave a
running computation, and a lab cluster (SSH, SLURM through dask-jobqueue, Kubernetes) is
reached by an address. Ray would do the same; Dask is pip-only, smaller, and its futures map
one to one onto the submit-and-collect loops here.

Job functions must be importable top-level functions of :mod:`hwbnn` (workers unpickle them
by name), take picklable arguments and return picklable results; a :class:`HwbnnError`
raised in a worker is raised again here, unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from .errors import HwbnnError

# Seconds to wait for an existing cluster's scheduler (a wrong address fails after this).
CONNECT_TIMEOUT_S = 10


@dataclass
class Executor:
    """Where jobs run: in this process, on a local Dask cluster, or on an existing one.

    Use as a context manager; :meth:`submit` returns a future, :meth:`completed` yields
    futures as they finish (more can be added while iterating), :meth:`map` runs a function
    over items and yields ``(index, result)`` in completion order.
    """

    jobs: int = 1
    cluster: str | None = None
    # A local Dask cluster even for one job (benchmarks compare 1 and N workers like for like).
    always_dask: bool = False
    _client: object = field(default=None, repr=False)
    _local: object = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise HwbnnError(f"jobs must be a positive integer, not {self.jobs!r}")

    @property
    def inline(self) -> bool:
        """True when jobs run in this process (one local job, no cluster)."""
        return self.cluster is None and self.jobs == 1 and not self.always_dask

    @property
    def workers(self) -> int:
        """How many jobs can run at once (workers x threads of the cluster)."""
        if self._client is None:
            return 1
        threads = self._client.nthreads()
        return max(1, sum(threads.values()))

    @property
    def where(self) -> str:
        """One line saying where the jobs run (for reports)."""
        if self.inline:
            return "this process"
        if self.cluster is None:
            return (f"a local Dask cluster of {self.jobs} worker process"
                    f"{'es' if self.jobs > 1 else ''}")
        return f"the Dask cluster at {self.cluster} ({self.workers} worker threads)"

    def __enter__(self) -> Executor:
        if self.inline:
            return self
        from distributed import Client, LocalCluster

        # CRITICAL: a job that raises is reported by the command, not by a worker's log.
        quiet = logging.CRITICAL
        if self.cluster is None:
            import dask

            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which switches off
            # glibc's adaptive mmap threshold: every tensor above 128 KiB is then mmapped and
            # unmapped again, and page faults took 60% of a training worker's time (a zoo
            # build ran 2.5x slower than the same jobs in one process). Unset it.
            with dask.config.set({"distributed.nanny.pre-spawn-environ."
                                  "MALLOC_TRIM_THRESHOLD_": None}):
                self._local = LocalCluster(n_workers=self.jobs, threads_per_worker=1,
                                           processes=True, dashboard_address=":0",
                                           silence_logs=quiet)
            self._client = Client(self._local)
        else:
            self._client = _connect(Client, self.cluster)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.close()
        self._client = self._local = None

    def submit(self, function: Callable, *args) -> Future:
        """Run ``function(*args)`` as one job; a future of its result."""
        if self._client is None:
            if not self.inline:
                raise HwbnnError("Executor.submit needs the executor opened (use `with`)")
            future: Future = Future()
            try:
                future.set_result(function(*args))
            except Exception as error:  # delivered by result(), as a worker's would be
                future.set_exception(error)
            return future
        # pure=False: the same arguments twice (a trial re-run after a crash) are two jobs.
        return self._client.submit(function, *args, pure=False)

    def completed(self, futures: Iterable) -> _Completed:
        """Futures in the order they finish; ``add`` more while iterating."""
        return _Completed(self, list(futures))

    def map(self, function: Callable, items: Iterable) -> Iterator[tuple[int, object]]:
        """``(index, function(item))`` for every item, in completion order (in this process:
        in order, each job run when its result is asked for, so progress and outputs follow
        the jobs)."""
        if self._client is None:
            for index, item in enumerate(items):
                yield index, result(self.submit(function, item))
            return
        futures = [self.submit(function, item) for item in items]
        index = {id(future): n for n, future in enumerate(futures)}
        for future in self.completed(futures):
            yield index[id(future)], result(future)


class _Completed:
    """Iterator over futures in completion order (Dask's ``as_completed``, or in order)."""

    def __init__(self, executor: Executor, futures: list):
        self._dask = None
        self._pending = []
        if executor._client is None:
            self._pending = futures
        else:
            from distributed import as_completed

            self._dask = as_completed(futures)

    def add(self, future) -> None:
        if self._dask is not None:
            self._dask.add(future)
        else:
            self._pending.append(future)

    def __iter__(self):
        return self

    def __next__(self):
        if self._dask is not None:
            return next(self._dask)
        if not self._pending:
            raise StopIteration
        return self._pending.pop(0)


def result(future):
    """A job's result; a job that killed its workers too often is one clear error."""
    try:
        return future.result()
    except HwbnnError:
        raise
    except Exception as error:
        if type(error).__name__ == "KilledWorker":
            raise HwbnnError(f"a job was lost with its worker too many times: {error}") from None
        raise


def _connect(client_class, address: str):
    """A client of the cluster at ``address`` (or the scheduler file of that path).

    Any failure to connect is one HwbnnError line: an address that does not answer (after
    :data:`CONNECT_TIMEOUT_S`), one that does not parse, a protocol this install cannot speak
    (``tls://`` without certificates, ``ucx://``), a file that is not a scheduler file.
    """
    if os.path.isfile(address):
        # Read here rather than by Dask: its reader fails on a bad file with a bare assertion.
        import json

        try:
            with open(address, encoding="utf-8") as file:
                info = json.load(file)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise HwbnnError(f"{address} is not a Dask scheduler file: {error}") from None
        scheduler = info.get("address") if isinstance(info, dict) else None
        if not isinstance(scheduler, str) or not scheduler:
            raise HwbnnError(f"{address} is not a Dask scheduler file: it names no "
                             f"\"address\"")
    else:
        scheduler = address
    try:
        return client_class(scheduler, timeout=CONNECT_TIMEOUT_S)
    except HwbnnError:
        raise
    except Exception as error:  # whatever Dask raises for an address it cannot use
        first = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        raise HwbnnError(f"cannot reach the Dask scheduler at {address}: {first}") from None


def cluster_arguments(parser, jobs_default: int = 2) -> None:
    """``--jobs`` and ``--cluster``, spelled and defaulted the same in every command."""
    from .cli import positive_int

    parser.add_argument("--jobs", type=positive_int, default=jobs_default,
                        help=f"worker processes of the local Dask cluster (default "
                             f"{jobs_default}; 1 runs the jobs in this process)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the jobs on an existing Dask cluster: its scheduler address "
                             "(tcp://host:8786) or scheduler file")


def executor_of(args) -> Executor:
    """The executor of a command's ``--jobs`` / ``--cluster`` arguments."""
    return Executor(jobs=args.jobs, cluster=args.cluster)

