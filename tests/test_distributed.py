"""Many processes, one search, on a real PostgreSQL server: a coordinator (`automl fit --storage
URL --study NAME`) and `automl worker` processes, one of them killed with SIGKILL mid-trial."""

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import automl
from automl.search.storage import SharedRun, open_storage
from automl.search.leaderboard import LOST

from postgres import postgres_server

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
HEARTBEAT = 2  # seconds; a dead worker's trial is failed and retried after 3 of them
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "AUTOML_HEARTBEAT_SECONDS": str(HEARTBEAT)}
HOST = socket.gethostname()


@pytest.fixture(scope="module")
def database():
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("data") / "cancer.csv"
    X.assign(diagnosis=y).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def larger_cancer_csv(tmp_path_factory):
    """The same table eight times over: a trial takes long enough that the test, polling the
    database, still finds it running when it kills its process (on a fast machine, a pruned
    logistic regression trial on 569 rows could end between the read and the kill)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("data") / "cancer-x8.csv"
    pd.concat([X.assign(diagnosis=y)] * 8, ignore_index=True).to_csv(path, index=False)
    return path


def _start(*args):
    return subprocess.Popen([AUTOML, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)


def _descendants(pid: int) -> set[int]:
    """pid and every process below it (the forkserver and the trial workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url)  # one engine: each poll of the database is quick


def _trials(url: str, name: str, models: list[str]) -> list[optuna.trial.FrozenTrial]:
    storage = _storage(url)
    trials = []
    for model in models:
        try:
            trials += optuna.load_study(study_name=f"{name}/{model}", storage=storage).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            pass
    return trials


def _lost(trial: optuna.trial.FrozenTrial) -> bool:
    """Failed by the heartbeat check: its process died without recording how it ended."""
    return trial.state == optuna.trial.TrialState.FAIL and "duration" not in trial.user_attrs


def _wait_for_run(url: str, name: str, process, timeout=60.0) -> None:
    storage = optuna.storages.RDBStorage(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            storage.get_study_id_from_name(name)
            return
        except KeyError:
            time.sleep(0.2)
    raise AssertionError(f"run {name} did not appear in the database")


def test_coordinator_and_two_workers_one_killed_mid_trial(database, larger_cancer_csv, tmp_path):
    name, models, run = "killed-worker", ["logistic_regression", "random_forest"], tmp_path / "run"
    coordinator = _start("fit", str(larger_cancer_csv), "--target", "diagnosis", "--models", ",".join(models),
                         "--time-budget", "60", "--storage", database, "--study", name, "--path", str(run),
                         "--no-ensemble",  # the search's whole budget goes to trials: the victim gets two
                         "--no-portfolio")  # TPE's draws, not the portfolio's run of sub-second LR entries
    _wait_for_run(database, name, coordinator)
    survivor = _start("worker", "--storage", database, "--study", name)
    victim = _start("worker", "--storage", database, "--study", name)
    # kill the victim once it has finished a trial and is in the middle of another
    pids = {"victim": set(), "survivor": set(), "coordinator": set()}
    killed_trial = model = None
    deadline = time.monotonic() + 45
    while killed_trial is None:
        assert time.monotonic() < deadline, "the victim never finished a trial and started another"
        for role, process in (("victim", victim), ("survivor", survivor), ("coordinator", coordinator)):
            pids[role] |= {f"{HOST}:{p}" for p in _descendants(process.pid)}
        # trial numbers count per model study, so a trial is known by (model, number)
        mine = [(m, t) for m in models for t in _trials(database, name, [m])
                if t.user_attrs.get("worker") in pids["victim"]]
        running = [(m, t) for m, t in mine if t.state == optuna.trial.TrialState.RUNNING]
        if any(t.state.is_finished() for _, t in mine) and running:
            model, killed_trial = running[0]
            os.killpg(victim.pid, signal.SIGKILL)
        time.sleep(0.05)
    victim.wait(timeout=10)
    # the trial seen running may have ended between that read and the kill (its next one then
    # started): the killed trial is the one the dead victim left running in the database
    # (still running, or already failed as lost: heartbeats stop 3 intervals after the kill)
    left_running = [(m, t) for m in models for t in _trials(database, name, [m])
                    if t.user_attrs.get("worker") in pids["victim"]
                    and (t.state == optuna.trial.TrialState.RUNNING or _lost(t))]
    assert left_running, "the victim was killed between two trials; no trial was left running"
    model, killed_trial = left_running[0]

    _, stderr = coordinator.communicate(timeout=120)
    assert coordinator.returncode == 0, stderr
    out, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    for role, process in (("survivor", survivor), ("coordinator", coordinator)):
        pids[role] |= {f"{HOST}:{p}" for p in _descendants(process.pid)}

    result = automl.load(run)
    trials = result.trials
    # the killed trial is failed as lost, and run again by another process
    row = trials[(trials["model"] == model) & (trials["number"] == killed_trial.number)].iloc[0]
    assert row["state"] == "fail" and row["error"] == LOST
    in_study = _trials(database, name, [model])
    # read back after the run: the snapshot taken while it ran may predate its last suggestion
    killed_trial = next(t for t in in_study if t.number == killed_trial.number)
    retried = [t for t in in_study if t.system_attrs.get("failed_trial") == killed_trial.number]
    # the retry takes every parameter the killed trial had recorded; a kill between two of its
    # suggestions (or before the first) leaves the rest to the retry to draw
    assert retried and killed_trial.params.items() <= retried[0].params.items()
    assert retried[0].state.is_finished() and retried[0].user_attrs.get("worker") not in pids["victim"]
    # nothing lost or repeated: the saved trials are the database's, once each
    in_database = [t for t in _trials(database, name, models) if t.state.is_finished()]
    assert len(trials) == len(in_database)
    assert not trials.duplicated(["model", "number"]).any()
    # every process contributed, the victim included (its finished trials are kept)
    workers = set(trials["worker"])
    for role in pids:
        assert workers & pids[role], f"no trial of the {role} in the result"
    assert "ran " in err and f"of run {name}" in err
    assert SharedRun.open(open_storage(database), name).settings["state"] == "finished"


def test_global_trial_cap_and_clear_errors(database, cancer_csv, tmp_path):
    name = "capped"
    coordinator = _start("fit", str(cancer_csv), "--target", "diagnosis", "--models", "logistic_regression",
                         "--n-trials", "12", "--time-budget", "60", "--storage", database, "--study", name,
                         "--path", str(tmp_path / "run"))
    _wait_for_run(database, name, coordinator)
    worker = _start("worker", "--storage", database, "--study", name)
    _, stderr = coordinator.communicate(timeout=120)
    assert coordinator.returncode == 0, stderr
    worker.communicate(timeout=60)
    counted = pd.read_csv(tmp_path / "run" / "trials.csv")
    # checked against the database before each trial: two processes overshoot by one at most
    assert 12 <= len(counted) <= 13

    again = _start("fit", str(cancer_csv), "--target", "diagnosis", "--n-trials", "1", "--storage", database,
                   "--study", name, "--path", str(tmp_path / "again"))
    _, stderr = again.communicate(timeout=60)
    assert again.returncode == 2 and f"already holds a run named '{name}'" in stderr
    assert not (tmp_path / "again").exists()
    nobody = _start("worker", "--storage", database, "--study", "no-such-run")
    _, stderr = nobody.communicate(timeout=60)
    assert nobody.returncode == 2 and "holds no run named 'no-such-run'" in stderr
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with pytest.raises(automl.InputError, match="study_name= needs storage= a database URL"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, save=False, study_name="x")
