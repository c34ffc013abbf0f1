"""The execution layer on a real Dask cluster: a scheduler and two worker processes on
loopback, started the way a lab would (``python -m distributed.cli.dask_scheduler`` /
``dask_worker``), with exploration and sweep jobs across them, and a worker killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed import Client

from hwbnn.cost.calibrate import CALIBRATION_DIR, family_configs, run_synthesis
from hwbnn.cost.sweep import SweepSettings, run_sweep
from hwbnn.dist import Executor
from hwbnn.errors import HwbnnError
from hwbnn.exploration import (
    ExploreSettings,
    open_study,
    point_fields,
    resolve,
    run_explore,
    suggest,
)

ROOT = Path(__file__).resolve().parents[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-threaded worker processes (no nanny: a killed worker stays
    dead), on 127.0.0.1; yields the scheduler file and the worker processes."""
    scheduler_file = tmp_path / "scheduler.json"
    processes = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                         "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                        tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.is_file(), (tmp_path / "scheduler.log").read_text()
        workers = [_start(["distributed.cli.dask_worker", "--scheduler-file",
                           str(scheduler_file), "--nthreads", "1", "--no-nanny",
                           "--no-dashboard", "--name", f"w{n}"], tmp_path / f"w{n}.log")
                   for n in range(2)]
        processes += workers
        with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield str(scheduler_file), workers
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _executed(scheduler_file: str) -> dict[str, int]:
    """Tasks each live worker has executed (by worker name)."""
    with Client(scheduler_file=scheduler_file, timeout=30) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
        names = {address: info["name"] for address, info in
                 client.scheduler_info()["workers"].items()}
    return {names[address]: count for address, count in counts.items()}


SMALL = dict(source="mlp:32,32", board="icebreaker", target_fps=1000.0,
             weights=("binary", "ternary", "w2"), activations=("binary", "ternary"), epochs=8)


def test_explore_and_sweep_run_across_two_workers(cluster, tmp_path):
    scheduler_file, _ = cluster
    result = run_explore(ExploreSettings(**SMALL), 6, tmp_path / "explore",
                         Executor(cluster=scheduler_file))
    assert len(result.trials) == 6
    assert all(Path(row["model_path"]).is_file() for row in result.trials)
    assert result.front and all(row["feasible"] for row in result.front)
    rows = run_sweep(SweepSettings("zoo:digits_mlp_w2"), ["1", "1.4", "2", "ternary"],
                     Executor(cluster=scheduler_file))
    assert [row["mix"] for row in rows] == ["1", "1.4", "2", "ternary"]
    # cost calibrate's synthesis jobs: the cluster measures what the stored calibration holds.
    configs = [c for c in family_configs("ice40")
               if c.name in ("c23_fifo_8x2", "c22_fifo_8x6", "c47_fifo_24x2")]
    measured = run_synthesis(configs, "ice40", Executor(cluster=scheduler_file))
    stored = json.loads((CALIBRATION_DIR / "synth_ice40.json").read_text())["measured"]
    assert measured == {c.name: stored[c.name] for c in configs}
    executed = _executed(scheduler_file)
    # Both workers took jobs (6 trials + 4 mixes + 3 syntheses; neither did them all).
    assert sorted(executed) == ["w0", "w1"] and min(executed.values()) >= 1
    assert sum(executed.values()) == 13


def test_a_worker_killed_mid_trial_loses_no_finished_result(cluster, tmp_path):
    scheduler_file, workers = cluster
    victim = workers[0]
    seen = {}

    def kill_when_busy():
        """Kill worker w0 (SIGKILL) as soon as it is running a job and one trial finished."""
        with Client(scheduler_file=scheduler_file, timeout=30) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                processing = client.processing()
                names = {address: info["name"] for address, info in
                         client.scheduler_info()["workers"].items()}
                busy = [address for address, keys in processing.items()
                        if keys and names.get(address) == "w0"]
                study = open_study(settings, storage, "kill")
                finished = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
                if busy and finished:
                    seen["finished"] = {t.number: t.params for t in finished}
                    seen["busy"] = processing[busy[0]]
                    os.kill(victim.pid, signal.SIGKILL)
                    return
                time.sleep(0.05)

    settings = resolve(ExploreSettings(**SMALL))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    open_study(settings, storage, "kill")
    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    result = run_explore(settings, 6, tmp_path / "out", Executor(cluster=scheduler_file),
                         storage=storage, study_name="kill")
    killer.join()
    assert seen, "the worker was never caught running a trial"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    # The study went on to 6 finished trials on the surviving worker, and every trial that
    # had finished before the kill is still there, unchanged.
    assert len(result.trials) == 6
    study = open_study(settings, storage, "kill")
    after = {t.number: t.params for t in study.get_trials() if t.state.name == "COMPLETE"}
    assert all(after[number] == params for number, params in seen["finished"].items())
    assert list(_executed(scheduler_file)) == ["w1"]


def test_an_unreachable_cluster_is_one_error():
    with pytest.raises(HwbnnError, match="cannot reach the Dask scheduler"):
        with Executor(cluster="tcp://127.0.0.1:9"):
            pass


def test_a_resumed_study_continues_where_it_stopped(tmp_path):
    settings = resolve(ExploreSettings(**{**SMALL, "epochs": 2}))
    first = run_explore(settings, 2, tmp_path, heartbeat_s=1)
    assert [row["trial"] for row in first.trials] == [0, 1]
    # A command that crashed mid-trial: a trial left running, its heartbeat going stale.
    storage = f"sqlite:///{(tmp_path / 'study.db').resolve()}"
    study = open_study(settings, storage, first.study_name, heartbeat_s=1)
    crashed = study.ask()
    point = suggest(crashed, settings)
    study._storage.record_heartbeat(crashed._trial_id)
    time.sleep(4)  # past the grace period (2 heartbeats), at whole-second resolution
    resumed = run_explore(settings, 4, tmp_path, heartbeat_s=1)
    trials = {row["trial"]: row for row in resumed.trials}
    # The two finished trials are kept as they were; the crashed one failed and its point
    # was run again; four finished trials in all.
    assert len(trials) == 4
    for row in first.trials:
        assert {k: trials[row["trial"]][k] for k in ("accuracy", "lut")} == \
            {k: row[k] for k in ("accuracy", "lut")}
    states = {t.number: t.state.name for t in open_study(settings, storage,
                                                         first.study_name).get_trials()}
    assert states[crashed.number] == "FAIL"
    retried = [row for row in resumed.trials if row["trial"] > crashed.number]
    expected = point_fields(point)
    assert any(all(row[key] == value for key, value in expected.items()) for row in retried)
    assert json.loads(json.dumps(resumed.to_dict()))["study"] == first.study_name


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's binaries; initdb refuses root, so
    as root the server runs as the postgres user); yields its URL of database ``explore``."""
    import glob
    import shutil
    import tempfile

    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not binaries:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (make tools installs it)")
        pytest.skip("PostgreSQL is not installed")
    # A folder of its own under /tmp: the postgres user cannot enter pytest's (mode 700).
    bin_dir, port = Path(binaries[-1]), _free_port()
    folder = Path(tempfile.mkdtemp(prefix="hwbnn-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A",
                    "trust", "-U", "hwbnn"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-l",
                    str(folder / "log"), "-o", f"-p {port} -k {folder} "
                    "-c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        import psycopg

        # autocommit: CREATE DATABASE runs outside a transaction.
        with psycopg.connect(host="127.0.0.1", port=port, user="hwbnn", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute("CREATE DATABASE explore")
        yield f"postgresql://hwbnn@127.0.0.1:{port}/explore"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_machines_add_trials_to_one_postgresql_study(postgres, tmp_path):
    """Two explore commands at once (two machines, each with its own output folder) share
    one study in PostgreSQL: both add trials, and together they stop at the trial count."""
    argv = [sys.executable, "-m", "hwbnn.cli", "explore", "mlp:16", "--board", "icebreaker",
            "--target-fps", "1000", "--epochs", "2", "--weights", "binary,ternary,w2",
            "--jobs", "1", "--trials", "8", "--storage", postgres, "--study", "shared"]
    runs = [subprocess.Popen([*argv, "--out", str(tmp_path / name), "--json"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("a", "b")]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    settings = resolve(ExploreSettings("mlp:16", board="icebreaker", target_fps=1000.0,
                                       epochs=2, weights=("binary", "ternary", "w2")))
    study = open_study(settings, postgres, "shared")
    finished = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    # Each command stops once the study holds 8; both may finish their last trial at once.
    assert 8 <= len(finished) <= 9
    mine = [{int(p.stem.split("_")[1]) for p in (tmp_path / name / "trials").glob("*.hwbnn")}
            for name in ("a", "b")]
    assert mine[0] and mine[1] and not mine[0] & mine[1]
    assert mine[0] | mine[1] == {t.number for t in finished}
    # Both print the whole study, the other machine's trials included.
    assert {len(json.loads(out)["trials"]) for out, _ in outputs} <= {8, 9}



def _worker_environment(_):
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_workers_keep_glibcs_adaptive_mmap_threshold():
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_ (page faults on every large tensor: a
    training job 2.5x slower); the local cluster unsets it and keeps one OpenMP thread."""
    with Executor(jobs=2) as executor:
        assert [row for _, row in executor.map(_worker_environment, [0])] == [(None, "1")]
