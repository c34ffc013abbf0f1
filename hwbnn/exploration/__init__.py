"""``hwbnn explore``: a multi-objective search over per-layer precision and folding under a
hardware budget (docs/design.md, "Design-space exploration").

A *point* of the space is one weight spec per weight layer (binary, ternary, a residual mix,
w2, w3), one activation encoding per hidden layer and, when frame rate is an objective, a
speed-up of the folding over the required rate. A trial trains the architecture at that point
on the dataset (the zoo's seeded, single-threaded training, usually shortened), exports it,
scores the golden integer model on the test split, folds it for the frame rate at the clock
(:meth:`hwbnn.hw.fold.Folding.auto`) and estimates its cost (:mod:`hwbnn.cost.estimate`).
Constraints ("fits this board at >= N frames/s") are the board's LUT, flip-flop and block RAM
counts and the rate; a trial that breaks one stays in the study as infeasible.

Optuna drives the search (multi-objective TPE by default, NSGA-II with ``--sampler nsga2``)
by ask and tell from this process; the trials run as jobs of :mod:`hwbnn.dist`. The study
lives in SQLite (``OUT/study.db``) unless ``--storage`` names another database (PostgreSQL
for several machines adding trials to one study). Only this process writes it, when a job
has finished, so a worker killed mid-trial loses nothing finished: Dask runs its trial again
on another worker. A crashed command leaves its running trials behind; they carry a heartbeat,
and once it is stale the next ``ask`` (of this or any other process) fails them and queues
their parameters again. Running the same command again continues the study up to
``--trials`` finished trials.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import progress
from ..dist import Executor
from ..errors import HwbnnError
from ..ir.fileformat import make_dir

# name -> (metric key, direction).
OBJECTIVES = {
    "accuracy": ("accuracy", "maximize"),
    "lut": ("lut", "minimize"),
    "ff": ("ff", "minimize"),
    "bram": ("bram", "minimize"),
    "energy": ("energy_pj_per_frame", "minimize"),
    "frames_per_s": ("frames_per_s", "maximize"),
}
WEIGHT_CHOICES = ("binary", "ternary", "mix:1.2", "mix:1.4", "mix:1.6", "w2", "w3")
ACTIVATION_CHOICES = ("binary", "ternary", "uint2")
# Speed-ups of the folding over the required rate, searched when frames/s is an objective.
SPEED_CHOICES = (1, 2, 4, 8)
SAMPLERS = ("tpe", "nsga2")
# Seconds between heartbeats of running trials; a trial without one for twice this long
# belongs to a process that died and is queued again.
HEARTBEAT_S = 30


@dataclass(frozen=True)
class ExploreSettings:
    """What to explore and under which budget (all picklable: it travels to the workers)."""

    source: str
    dataset: str = "digits"
    data_path: str | None = None
    family: str = "ice40"
    board: str | None = None
    target_fps: float | None = None
    clock_mhz: float | None = None
    objectives: tuple[str, ...] = ("accuracy", "lut")
    weights: tuple[str, ...] = WEIGHT_CHOICES
    activations: tuple[str, ...] = ACTIVATION_CHOICES
    widths: tuple[int, ...] = ()  # hidden dense widths to choose from (none: the source's)
    epochs: int | None = None
    seed: int = 0
    node: int = 45
    sampler: str = "tpe"
    base: dict = field(default_factory=dict)  # filled by resolve(): architecture, training

    @property
    def clock(self) -> float:
        """The clock the frame rate is met at: given, else the board's, else 100 MHz."""
        from ..hw.fold import DEFAULT_CLOCK_MHZ

        if self.clock_mhz is not None:
            return self.clock_mhz
        if self.board is not None:
            from ..boards.targets import board

            return board(self.board).default_clock_hz / 1e6
        return DEFAULT_CLOCK_MHZ

    @property
    def limits(self) -> dict[str, float]:
        """The board's LUT, FF and block RAM counts (none without a board)."""
        if self.board is None:
            return {}
        from ..boards.targets import board

        resources = board(self.board).resources
        return {key: resources[key] for key in ("lut", "ff", "bram")}

    def describe(self) -> str:
        """The constraint in words."""
        parts = []
        if self.board:
            parts.append(f"fits the {self.board}")
        if self.target_fps:
            parts.append(f">= {self.target_fps:g} frames/s at {self.clock:g} MHz")
        return " at ".join(parts) if parts else "no constraint"


def resolve(settings: ExploreSettings) -> ExploreSettings:
    """Check the settings and fill ``base``: the architecture and training of the source."""
    from ..boards.targets import board as find_board
    from ..cost.calibrate import FAMILIES
    from ..quant.models import complete_config
    from ..quant.quantizers import weight_quantizer

    family = settings.family
    if settings.board is not None:
        family = find_board(settings.board).family
    if family not in FAMILIES:
        raise HwbnnError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    unknown = [name for name in settings.objectives if name not in OBJECTIVES]
    if unknown or not settings.objectives or "accuracy" not in settings.objectives:
        raise HwbnnError(f"objectives must include accuracy and be among "
                         f"{', '.join(OBJECTIVES)}, not {','.join(settings.objectives)!r}")
    if any(not isinstance(w, int) or w < 1 for w in settings.widths):
        raise HwbnnError(f"widths must be positive integers, not {settings.widths!r}")
    if len(set(settings.objectives)) != len(settings.objectives):
        raise HwbnnError("each objective may be named once")
    if settings.sampler not in SAMPLERS:
        raise HwbnnError(f"sampler must be one of {', '.join(SAMPLERS)}, not "
                         f"{settings.sampler!r}")
    if not settings.weights or not settings.activations:
        raise HwbnnError("the search needs at least one weight and one activation choice")
    for spec in settings.weights:
        if spec == "float":
            raise HwbnnError("float weights cannot be exported to hardware; choose quantized "
                             "weight specs")
        weight_quantizer(spec)
    base = _source_base(settings.source)
    from .. import data

    data.load(settings.dataset, settings.data_path)  # a bad dataset fails before any trial
    base["settings"] = {**base["settings"],
                        **({"epochs": settings.epochs} if settings.epochs else {})}
    complete_config({**base["config"], "weights": settings.weights[0],
                     "activations": settings.activations[0]})
    if settings.activations and any(a == "float" for a in settings.activations):
        raise HwbnnError("float activations cannot be exported to hardware")
    from ..ir.encoding import validate_encoding

    for spec in settings.activations:
        validate_encoding(spec, "activations")
    if settings.target_fps is not None and settings.clock_mhz is not None:
        from ..hw.fold import check_rate

        check_rate(settings.target_fps, settings.clock_mhz)
    return ExploreSettings(**{**asdict(settings), "family": family, "base": base})


def _source_base(source: str) -> dict:
    """Architecture and training settings of ``mlp:W,..`` / ``cnn:C,M,..`` or a zoo recipe."""
    from ..zoo.recipes import RECIPES, SETTINGS

    arch, _, layers = source.partition(":")
    if arch == "zoo":
        if layers not in RECIPES:
            raise HwbnnError(f"explore starts from an architecture (mlp:32,32, cnn:32,M,64,M) "
                             f"or a trained zoo model (zoo:NAME), not {source!r}")
        config = {k: v for k, v in RECIPES[layers]["config"].items()
                  if k in ("arch", "dense", "conv")}
        return {"config": config, "settings": dict(RECIPES[layers]["settings"])}
    if arch not in ("mlp", "cnn") or not layers:
        raise HwbnnError(f"explore starts from an architecture (mlp:32,32, cnn:32,M,64,M) or "
                         f"a trained zoo model (zoo:NAME), not {source!r}")
    items = []
    for item in layers.split(","):
        item = item.strip()
        if item.upper() == "M" and arch == "cnn":
            items.append("M")
        elif re.fullmatch(r"[0-9]+", item) and int(item) > 0:  # ASCII: not "٣"
            items.append(int(item))
        else:
            raise HwbnnError(f"architecture {source!r}: {item!r} is not a positive width"
                             + (" or M" if arch == "cnn" else ""))
    config = ({"arch": "mlp", "dense": items} if arch == "mlp"
              else {"arch": "cnn", "conv": items, "dense": []})
    return {"config": config, "settings": dict(SETTINGS)}


def layer_counts(settings: ExploreSettings) -> tuple[int, int]:
    """(weight layers, hidden layers) of the architecture."""
    config = settings.base["config"]
    hidden = sum(1 for item in config.get("conv", []) if item != "M") + len(config["dense"])
    return hidden + 1, hidden


def suggest(trial, settings: ExploreSettings) -> dict:
    """The point of ``trial``: per-layer weights and activations, and the folding speed-up."""
    weights, hidden = layer_counts(settings)
    point = {f"w{i}": trial.suggest_categorical(f"w{i}", list(settings.weights))
             for i in range(weights)}
    point.update({f"a{i}": trial.suggest_categorical(f"a{i}", list(settings.activations))
                  for i in range(hidden)})
    dense = len(settings.base["config"]["dense"])
    if settings.widths:
        point.update({f"h{i}": trial.suggest_categorical(f"h{i}", list(settings.widths))
                      for i in range(dense)})
    if "frames_per_s" in settings.objectives and settings.target_fps:
        point["speed"] = trial.suggest_categorical("speed", list(SPEED_CHOICES))
    return point


def point_config(settings: ExploreSettings, point: dict) -> dict:
    """The model config (:mod:`hwbnn.quant.models`) of a point."""
    weights, hidden = layer_counts(settings)
    config = settings.base["config"]
    dense = [point.get(f"h{i}", width) for i, width in enumerate(config["dense"])]
    return {**config, "dense": dense,
            "weights": [point[f"w{i}"] for i in range(weights)],
            "activations": [point[f"a{i}"] for i in range(hidden)]}


def evaluate_point(settings: ExploreSettings, point: dict, name: str) -> dict:
    """One trial, run in a worker: train, export, score, fold, estimate; the metrics, how far
    each constraint is broken (> 0: broken), the folding and the model file's bytes."""
    from .. import data
    from ..hw.fold import Folding
    from ..ir.export import export
    from ..ir.fileformat import to_bytes
    from ..ref import golden
    from ..train import TrainSettings, train

    start = time.perf_counter()
    dataset = data.load(settings.dataset, settings.data_path)
    training = TrainSettings(**{**settings.base["settings"], "seed": settings.seed})
    model = train(point_config(settings, point), dataset, training, progress=False)
    net = export(model, name, {"explore": {"point": point, "source": settings.source,
                                           "epochs": training.epochs,
                                           "seed": settings.seed}})
    metrics = {"accuracy": float((golden.predict(net, dataset.test_x)
                                  == dataset.test_y).mean())}
    violations = {}
    folding = Folding(net)
    if settings.target_fps:
        try:
            folding = Folding.auto(net, settings.target_fps * point.get("speed", 1),
                                   settings.clock)
        except HwbnnError:
            # Out of reach even fully unfolded: priced unfolded, and infeasible by its rate.
            folding = Folding.unfolded(net)
    metrics.update(cost_metrics(net, folding, settings))
    if settings.target_fps:
        violations["frames_per_s"] = (settings.target_fps - metrics["frames_per_s"]) \
            / settings.target_fps
    for key, limit in settings.limits.items():
        violations[key] = (metrics[key] - limit) / limit
    return {"point": point, "metrics": metrics, "violations": violations,
            "folding": folding.to_dict(), "model": to_bytes(net),
            "seconds": time.perf_counter() - start}


def cost_metrics(net, folding, settings: ExploreSettings) -> dict:
    """LUT, FF, block RAM, energy per frame, cycles and frames/s of ``net`` at ``folding``."""
    from ..cost.estimate import estimate

    clock = settings.clock
    fpga = estimate(net, settings.family, folding, clock_mhz=clock).totals()
    chip = estimate(net, "asic", folding, node=settings.node, clock_mhz=clock).totals()
    cycles = folding.cycles_per_frame
    return {"lut": round(fpga["lut"]), "ff": round(fpga["ff"]), "bram": fpga["bram"],
            "energy_pj_per_frame": round(chip["energy_pj_per_frame"], 1),
            "cycles_per_frame": cycles, "frames_per_s": round(clock * 1e6 / cycles, 1),
            "weight_bits": net.weight_bits}


def reference_rows(settings: ExploreSettings, models: list[str]) -> list[dict]:
    """Existing models (the zoo) under the same constraint: accuracy, costs, feasibility."""
    from .. import data, zoo
    from ..hw.fold import Folding
    from ..ref import golden

    dataset = data.load(settings.dataset, settings.data_path)
    rows = []
    for source in models:
        net = zoo.load(source)
        row = {"model": net.name, "model_path": source,
               "accuracy": float((golden.predict(net, dataset.test_x) == dataset.test_y).mean())}
        try:
            folding = (Folding.auto(net, settings.target_fps, settings.clock)
                       if settings.target_fps else Folding(net))
        except HwbnnError as error:
            rows.append({**row, "feasible": False, "why": str(error)})
            continue
        row.update(cost_metrics(net, folding, settings))
        broken = [key for key, limit in settings.limits.items() if row[key] > limit]
        row["feasible"] = not broken
        if broken:
            row["why"] = "exceeds the board's " + ", ".join(broken)
        rows.append(row)
    return rows


def default_references(settings: ExploreSettings) -> list[str]:
    """The shipped zoo models trained on the dataset being explored."""
    from ..zoo.recipes import RECIPES, dataset_of

    return [f"zoo:{name}" for name, entry in RECIPES.items()
            if dataset_of(entry) == settings.dataset]


# --- the study --------------------------------------------------------------------------

@dataclass
class ExploreResult:
    """The finished study: every trial's row, the Pareto front, the reference models."""

    settings: ExploreSettings
    study_name: str
    storage: str
    trials: list[dict]
    front: list[dict]
    references: list[dict]
    where: str
    seconds: float

    @property
    def best_reference(self) -> dict | None:
        feasible = [row for row in self.references if row.get("feasible")]
        return max(feasible, key=lambda row: row["accuracy"]) if feasible else None

    def to_dict(self) -> dict:
        s = self.settings
        return {"source": s.source, "dataset": s.dataset, "family": s.family,
                "board": s.board, "target_frames_per_s": s.target_fps, "clock_mhz": s.clock,
                "objectives": list(s.objectives), "study": self.study_name,
                "storage": self.storage, "where": self.where, "total_s": self.seconds,
                "trials": self.trials, "pareto": [row["trial"] for row in self.front],
                "references": self.references}


def directions(settings: ExploreSettings) -> list[str]:
    return [OBJECTIVES[name][1] for name in settings.objectives]


def make_sampler(settings: ExploreSettings):
    import optuna

    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=10, seed=settings.seed)
    return optuna.samplers.TPESampler(n_startup_trials=10, seed=settings.seed,
                                      multivariate=True, constant_liar=True)


def open_study(settings: ExploreSettings, storage: str, study_name: str,
               heartbeat_s: int = HEARTBEAT_S):
    """Create or load the study; stale running trials are queued again on the next ask."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Heartbeats are recorded by _drive itself (ask and tell, not Study.optimize).
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    for attempt in range(3):
        try:
            rdb = optuna.storages.RDBStorage(
                storage, heartbeat_interval=heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=3))
            study = optuna.create_study(study_name=study_name, storage=rdb,
                                        directions=directions(settings),
                                        sampler=make_sampler(settings), load_if_exists=True)
            break
        except ValueError as error:
            raise HwbnnError(f"study {study_name!r} in {storage}: {error}") from None
        except ImportError:  # SQLAlchemy found no driver for the URL's database
            raise HwbnnError(f"no database driver for {storage} (PostgreSQL: pip install "
                             f"'hwbnn[dist]', which brings psycopg)") from None
        except Exception as error:  # SQLAlchemy: a database that cannot be opened
            if not type(error).__module__.startswith("sqlalchemy"):
                raise
            # Two processes creating the same new database race on its tables: try again.
            if "already exists" in str(error) and attempt < 2:
                time.sleep(0.5)
                continue
            raise HwbnnError(f"cannot open the study database {storage}: "
                             f"{str(error).splitlines()[0]}") from None
    recorded = study.user_attrs.get("settings")
    mine = {"source": settings.source, "dataset": settings.dataset,
            "objectives": list(settings.objectives), "weights": list(settings.weights),
            "activations": list(settings.activations), "widths": list(settings.widths),
            "family": settings.family,
            "board": settings.board, "target_fps": settings.target_fps,
            "clock_mhz": settings.clock, "epochs": settings.base["settings"]["epochs"],
            "seed": settings.seed}
    if recorded is None:
        study.set_user_attr("settings", mine)
    elif recorded != mine:
        changed = sorted(key for key in mine if recorded.get(key) != mine[key])
        raise HwbnnError(f"study {study_name!r} in {storage} was made with other settings "
                         f"({', '.join(changed)} differ); name another --study")
    return study


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_explore(settings: ExploreSettings, trials: int, out_dir: Path,
                executor: Executor | None = None, storage: str | None = None,
                study_name: str | None = None, references: list[str] | None = None,
                heartbeat_s: int = HEARTBEAT_S) -> ExploreResult:
    """Run (or continue) the study until it holds ``trials`` finished trials; write every
    trial's model to ``OUT/trials/`` and return the trials, front and reference models."""
    settings = resolve(settings) if not settings.base else settings
    executor = executor or Executor()
    out_dir = Path(out_dir)
    start = time.perf_counter()
    # The cluster first: an unreachable one fails before anything is written.
    with executor:
        if storage is None:
            make_dir(out_dir)
            storage = f"sqlite:///{(out_dir / 'study.db').resolve()}"
        study_name = study_name or default_study_name(settings)
        study = open_study(settings, storage, study_name, heartbeat_s)
        make_dir(out_dir / "trials")
        where = executor.where  # while connected: it counts the cluster's workers
        with progress.step(f"explore {settings.source} on {where}",
                           total=max(trials - finished(study), 0)) as step:
            _drive(study, settings, trials, out_dir, executor, step, heartbeat_s)
    rows = trial_rows(study, out_dir)
    return ExploreResult(settings, study_name, storage, rows,
                         pareto_front(rows, settings.objectives),
                         reference_rows(settings, references if references is not None
                                        else default_references(settings)),
                         where, time.perf_counter() - start)


def synthesize_front(result: ExploreResult, executor: Executor | None = None) -> None:
    """Synthesize every front model at its folding (one job each); adds ``measured_lut``,
    ``measured_ff`` and ``measured_bram`` to the front's rows (and so to ``trials``)."""
    executor = executor or Executor()
    rows = [row for row in result.front if row["model_path"]]
    work = [(Path(row["model_path"]).read_bytes(), result.settings.family, row["folding"])
            for row in rows]
    with (progress.step(f"synthesize the Pareto front ({result.settings.family})",
                        total=len(work)) as step, executor):
        for index, counts in executor.map(synthesize_job, work):
            rows[index].update(counts)
            step.advance(f"trial {rows[index]['trial']}")


def synthesize_job(args) -> dict:
    """One front model (its file's bytes) through ``hwbnn gen`` + Yosys, in a worker."""
    import tempfile

    from .. import zoo
    from ..cost.sweep import synthesize_model

    model, family, folding = args
    with tempfile.TemporaryDirectory(prefix="hwbnn-explore-") as tmp:
        path = Path(tmp) / "model.hwbnn"
        path.write_bytes(model)
        net = zoo.load(str(path))
    return synthesize_model(net, family, folding)


def default_study_name(settings: ExploreSettings) -> str:
    constraint = settings.board or settings.family
    rate = f"-{settings.target_fps:g}fps" if settings.target_fps else ""
    return f"explore-{settings.source}-{constraint}{rate}"


def _drive(study, settings, trials, out_dir, executor, step, heartbeat_s) -> None:
    """Keep every worker busy with a trial until ``trials`` are finished."""
    import optuna

    running = {}  # future key -> (optuna trial, future)
    failures = []

    def launch():
        # Ask and tell does not fail stale trials by itself (Study.optimize does): trials of
        # a process that died are failed here, and the callback queues their points again.
        optuna.storages.fail_stale_trials(study)
        trial = study.ask()
        point = suggest(trial, settings)
        future = executor.submit(evaluate_point, settings, point, f"trial_{trial.number}")
        running[_key(future)] = (trial, future)

    while finished(study) + len(running) < trials or running:
        while finished(study) + len(running) < trials and len(running) < executor.workers:
            launch()
        if not running:
            break
        for future in _wait_first(executor, [f for _, f in running.values()], heartbeat_s):
            trial, _ = running.pop(_key(future))
            error = _tell(study, trial, future, out_dir)
            if error is None:
                step.advance(f"trial {trial.number}")
                continue
            failures.append(error)
            if len(failures) > max(3, trials // 4):
                raise HwbnnError(f"{len(failures)} trials failed; the last: {error}")
        for trial, _ in running.values():
            study._storage.record_heartbeat(trial._trial_id)


def _key(future):
    return getattr(future, "key", id(future))


def _wait_first(executor, futures, timeout):
    """The futures done within ``timeout`` seconds (none if none finished by then)."""
    if executor.inline:
        return futures
    from distributed import wait

    try:
        done, _ = wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return []
    return list(done)


def _tell(study, trial, future, out_dir: Path) -> None:
    """Record a finished job in the study (its model file goes to ``OUT/trials/``); the
    error of a job that failed with one, else None."""
    from optuna.trial import TrialState

    from ..dist import result as job_result

    try:
        outcome = job_result(future)
    except HwbnnError as error:
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=TrialState.FAIL)
        return str(error)
    trial.set_user_attr("point", outcome["point"])
    trial.set_user_attr("metrics", outcome["metrics"])
    trial.set_user_attr("seconds", round(outcome["seconds"], 2))
    (out_dir / "trials" / f"trial_{trial.number}.hwbnn").write_bytes(outcome["model"])
    trial.set_user_attr("folding", outcome["folding"])
    trial.set_user_attr("violations", outcome["violations"])
    for key, value in outcome["violations"].items():
        trial.set_constraint(key, value)
    values = [outcome["metrics"][OBJECTIVES[name][0]] for name in study.user_attrs[
        "settings"]["objectives"]]
    study.tell(trial, values)
    return None


def point_fields(point: dict) -> dict:
    """A point as per-layer lists: ``weights``, ``activations`` (and ``widths``, ``speed``
    where searched)."""
    def listed(prefix):
        keys = sorted((k for k in point if k[:1] == prefix and k[1:].isdigit()),
                      key=lambda k: int(k[1:]))
        return [point[k] for k in keys]

    fields = {"weights": listed("w"), "activations": listed("a")}
    if listed("h"):
        fields["widths"] = listed("h")
    if "speed" in point:
        fields["speed"] = point["speed"]
    return fields


def trial_rows(study, out_dir: Path) -> list[dict]:
    """Every finished trial of the study as a row (feasible or not), by trial number."""
    from optuna.trial import TrialState

    rows = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        violations = trial.user_attrs.get("violations", {})
        path = out_dir / "trials" / f"trial_{trial.number}.hwbnn"
        rows.append({"trial": trial.number, **point_fields(trial.user_attrs["point"]),
                     **trial.user_attrs["metrics"],
                     "feasible": all(value <= 0 for value in violations.values()),
                     "violations": violations,
                     "folding": trial.user_attrs.get("folding"),
                     "model_path": str(path) if path.is_file() else None,
                     "trial_s": trial.user_attrs.get("seconds")})
    return rows


def pareto_front(rows: list[dict], objectives) -> list[dict]:
    """The feasible rows no other feasible row dominates on ``objectives`` (of trials with the
    same figures, the first), most accurate first."""
    from ..pareto import non_dominated

    senses = {OBJECTIVES[name][0]: 1 if OBJECTIVES[name][1] == "maximize" else -1
              for name in objectives}
    feasible = sorted((row for row in rows if row["feasible"]), key=lambda row: row["trial"])
    return sorted(non_dominated(feasible, senses),
                  key=lambda row: (-row["accuracy"], row["trial"]))


def point_text(row: dict) -> str:
    """A trial's point in one cell: ``widths: weights / activations xspeed``."""
    text = f"{' '.join(row['weights'])} / {' '.join(row['activations'])}"
    if row.get("widths"):
        text = "-".join(str(width) for width in row["widths"]) + ": " + text
    return text + (f" x{row['speed']}" if "speed" in row else "")
