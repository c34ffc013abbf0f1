"""``hwbnn verify`` of one or several targets (design folders written by ``hwbnn gen``, or
models to generate first), one job per target on the execution layer (:mod:`hwbnn.dist`).

Two phases, so that bad input fails before any job starts: :func:`plan_targets` opens every
design folder (checking ``--model``) or loads every model (checking its folding), loads its
frames (:func:`hwbnn.data.model_frames`) and gives it its own work folder; :func:`verify_jobs`
runs the planned jobs, each :func:`hwbnn.verify.flow.verify` on one design.
:func:`verify_target` and :func:`verify_many` do both.

A job carries what it needs: the opened design or the model, and the frames. A worker reads
the Verilog of a design folder target and writes the work folders and the build cache at
their paths, so the workers of an existing cluster (``--cluster``) must share the file system
of those paths; a local cluster's workers run in this process's working folder.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import progress
from ..dist import Executor, result
from ..errors import HwbnnError
from ..ir.network import NetworkIR
from .design import RtlDesign
from .flow import VerifyReport

WORK_ROOT = Path("build/verify")  # default work folders: WORK_ROOT / NAME
CACHE = WORK_ROOT / "cache"  # the Verilator and Icarus builds, shared by all targets
GENERATED_OUTPUT = "scores"  # what a design generated from a model target streams out

# One verification at a time per process: the simulator's PATH is set in os.environ while it
# builds and runs (hwbnn.verify.tools.simulator_path), which threads of one worker would share.
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify every target: the options of ``hwbnn verify``.

    ``model``: the model the design folder targets were generated from (default: found by
    their manifests' ``ir_sha256``); not for model targets. ``fold``, ``target_fps`` and
    ``clock_mhz``: the folding of the designs generated from model targets (as
    :meth:`hwbnn.hw.fold.Folding.parse` takes them); not for design folders. ``mode``:
    ``folded`` (default) or ``unrolled`` for model targets, and ``adders`` (``trees`` or
    ``da4ml``, the unrolled mode's); neither for design folders. ``frames``,
    ``dataset``, ``data_path``, ``seed``: the frames (:func:`hwbnn.data.model_frames`).
    ``work``: the work folder of a single target, or the folder of the targets' own ones
    (``WORK/NAME``) for several (default ``build/verify/NAME``). ``cache``: the build cache.
    """

    model: str | None = None
    sim: str = "verilator"
    frames: int | None = None
    backpressure: float = 0.0
    gap: float = 0.0
    seed: int = 0
    dataset: str = "digits"
    data_path: str | None = None
    fold: str | None = None
    target_fps: float | None = None
    clock_mhz: float | None = None
    mode: str | None = None
    adders: str | None = None
    work: str | None = None
    cache: str = str(CACHE)


@dataclass
class VerifyJob:
    """One target, resolved and checked: what a job needs to verify it (picklable).

    ``design`` is the opened design of a design folder target; ``net`` the model of a model
    target, generated into ``work/rtl`` by the job.
    """

    target: str
    name: str  # the design's top module, or the model's name: names the work folder
    images: np.ndarray
    options: VerifyOptions
    work: Path
    design: RtlDesign | None = None
    net: NetworkIR | None = field(default=None, repr=False)

    @property
    def output(self) -> str:
        """What the design streams out (scores or label)."""
        return self.design.output if self.design is not None else GENERATED_OUTPUT

    @property
    def directory(self) -> Path:
        """The design folder (for a model target: the one the job generates)."""
        return self.design.directory if self.design is not None else self.work / "rtl"


def plan_target(target: str, options: VerifyOptions) -> VerifyJob:
    """Resolve ``target`` (a design folder, or a model file or ``zoo:NAME``) and load its
    frames; HwbnnError for a target, an option or a dataset that does not fit, before any
    generation or simulation."""
    from .. import data, zoo
    from ..hw.fold import Folding
    from ..hw.gen import check_unrolled
    from ..hw.unrolled import check_adders
    from .design import open_design

    path = Path(target)
    if path.is_dir():
        if options.fold is not None or options.target_fps is not None:
            raise HwbnnError("--fold and --target-fps are for a MODEL target; a design folder "
                             "keeps the folding it was generated with")
        if options.mode is not None or options.adders is not None:
            raise HwbnnError("--mode and --adders are for a MODEL target; a design folder "
                             "keeps the mode it was generated in")
        design = open_design(path, options.model)
        net, name = design.net, design.top
    else:
        if options.model is not None:
            raise HwbnnError("--model is for a design folder; a model target is itself the "
                             "model")
        if target.endswith("/") or (not target.startswith("zoo:") and not path.exists()):
            raise HwbnnError(f"{target} is neither a design folder nor a model file")
        design, net = None, zoo.load(target)
        name = net.name
    # Frames first: a dataset that does not fit the model fails before generation.
    images = data.model_frames(net, options.dataset, options.data_path, options.frames,
                               options.seed)
    if design is None:
        check_adders(options.mode or "folded", options.adders or "trees")
    if design is None and options.mode == "unrolled":
        check_unrolled(net, options.fold, options.target_fps)
    elif design is None:
        # The job folds it again (the same way): here only to fail before any job starts.
        Folding.parse(options.fold, net, target_fps=options.target_fps,
                      clock_mhz=options.clock_mhz)
    work = Path(options.work) if options.work else WORK_ROOT / name
    return VerifyJob(target, name, images, options, work, design=design,
                     net=None if design is not None else net)


def plan_targets(targets: Sequence[str], options: VerifyOptions) -> list[VerifyJob]:
    """:func:`plan_target` of every target, each with its own work folder.

    One target works in ``options.work`` (default ``build/verify/NAME``). Several work in
    ``WORK/NAME`` (``WORK``: ``options.work``, default ``build/verify``); a name that comes
    again (the same design twice, two model files of one name) gets ``NAME-2``, ``NAME-3``...
    With several targets, an error names its target.
    """
    if isinstance(targets, str) or not targets:
        raise HwbnnError("verify needs a list of one or more targets")
    if len(targets) == 1:
        return [plan_target(targets[0], options)]
    jobs = []
    for target in targets:
        try:
            jobs.append(plan_target(target, options))
        except HwbnnError as error:  # which of the targets, unless the message says it
            if target in str(error):
                raise
            raise HwbnnError(f"{target}: {error}") from None
    root = Path(options.work) if options.work else WORK_ROOT
    cache = Path(options.cache)
    taken = {cache.name} if cache.parent == root else set()  # no design works in the cache
    for job in jobs:
        name, count = job.name, 1
        while name in taken:
            count += 1
            name = f"{job.name}-{count}"
        taken.add(name)
        job.work = root / name
    return jobs


def run_job(job: VerifyJob) -> VerifyReport:
    """Verify one planned target: generate its design first for a model target. The job
    function of :func:`verify_jobs` (a worker runs it)."""
    from .design import generate_design
    from .flow import verify

    options = job.options
    with _ONE_AT_A_TIME:
        design = job.design
        if design is None:
            design = generate_design(job.net, job.work / "rtl", folding=options.fold,
                                     target_fps=options.target_fps,
                                     clock_mhz=options.clock_mhz, output=GENERATED_OUTPUT,
                                     mode=options.mode or "folded",
                                     adders=options.adders or "trees")
        return verify(design, job.images, sim=options.sim, backpressure=options.backpressure,
                      gap=options.gap, seed=options.seed, work=job.work,
                      cache=Path(options.cache))


def verify_jobs(jobs: Sequence[VerifyJob], executor: Executor | None = None
                ) -> list[VerifyReport]:
    """Run planned jobs, one per target, on ``executor`` (not yet opened; default: in this
    process); the reports in the order of ``jobs``.

    A local cluster gets no more workers than there are jobs, and a single job without
    ``--cluster`` runs in this process. With several jobs, a job's HwbnnError is raised
    again naming its target (the other jobs stop with the executor).
    """
    from .tools import require

    jobs = list(jobs)
    if not jobs:
        return []
    executor = executor or Executor()
    if executor.cluster is None:
        for sim in sorted({job.options.sim for job in jobs}):
            require(sim)  # a missing simulator fails before the local workers start
        executor = replace(executor, jobs=min(executor.jobs, len(jobs)))
    if len(jobs) == 1 and executor.inline:
        return [run_job(jobs[0])]
    reports: list[VerifyReport | None] = [None] * len(jobs)
    designs = f"{len(jobs)} design{'s' if len(jobs) > 1 else ''}"
    with executor, progress.step(f"verify {designs} on {executor.where}",
                                 total=len(jobs)) as step:
        futures = [executor.submit(run_job, job) for job in jobs]
        index = {id(future): n for n, future in enumerate(futures)}
        for future in executor.completed(futures):
            n = index[id(future)]
            try:
                reports[n] = result(future)
            except HwbnnError as error:
                if len(jobs) == 1 or jobs[n].target in str(error):
                    raise
                raise HwbnnError(f"{jobs[n].target}: {error}") from None
            step.advance(jobs[n].name)
    return reports


def verify_target(target: str, options: VerifyOptions | None = None) -> VerifyReport:
    """Verify one design folder or model (generated into its work folder first) on the
    frames of ``options`` (:class:`VerifyOptions`, default digits, Verilator)."""
    return run_job(plan_target(target, options or VerifyOptions()))


def verify_many(targets: Sequence[str], options: VerifyOptions | None = None,
                executor: Executor | None = None) -> list[VerifyReport]:
    """Verify several design folders and/or models, one job each on ``executor`` (not yet
    opened; default: in this process, in turn); the reports in the order of ``targets``.
    Every target is resolved and its frames loaded before any job starts
    (:func:`plan_targets`)."""
    return verify_jobs(plan_targets(targets, options or VerifyOptions()), executor)
