"""n_jobs: trials in parallel worker processes that share the run's studies."""

import os
import signal
import time

import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import automl
from automl import hookimpl

from test_interrupt_resume import _start, _wait_for_finished_trials


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


class _ThreadsSeen:
    """A model plugin that records the thread count its builds are given."""

    def __init__(self):
        self.threads = set()

    @hookimpl
    def automl_models(self):
        def build(params, context):
            self.threads.add(context.n_jobs)
            return LogisticRegression(C=params["C"], max_iter=500)

        return [automl.ModelSpec(
            name="threads_seen", tasks={"binary"}, build=build,
            search_space=lambda trial, context: {"C": trial.suggest_float("C", 1e-2, 1e2, log=True)},
        )]


def test_two_workers_share_the_studies(cancer, tmp_path):
    X, y = cancer
    seen = _ThreadsSeen()
    result = automl.fit_best(
        X, y, models=["logistic_regression", "threads_seen"], plugins=[seen], n_trials=8, cv=3,
        time_budget=None, path=tmp_path / "run", n_jobs=2,
    )
    trials = result.trials
    # the cap holds across workers: exactly n_trials per model, none lost or repeated
    assert trials.groupby("model").size().to_dict() == {"logistic_regression": 8, "threads_seen": 8}
    assert trials.groupby("model")["number"].apply(sorted).map(list).to_dict() == {
        m: list(range(8)) for m in ("logistic_regression", "threads_seen")
    }
    assert trials["state"].isin(["complete", "pruned"]).all()
    assert trials["worker"].nunique() == 2  # host:pid of each worker process
    # the cores are shared out between the workers
    cores = len(os.sched_getaffinity(0))
    assert seen.threads == {max(1, cores // 2)}
    saved = automl.load(result.path)
    assert saved.manifest["n_jobs"] == 2
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(result.path / "study.journal")))
    in_journal = sum(len(optuna.load_study(study_name=name, storage=storage).trials) for name in saved.manifest["studies"].values())
    assert in_journal == len(trials)


def test_n_jobs_minus_one_is_one_worker_per_core(cancer):
    X, y = cancer
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=4, cv=3, time_budget=None, save=False, n_jobs=-1)
    assert result.manifest["n_jobs"] == len(os.sched_getaffinity(0))
    assert len(result.trials) == 4
    with pytest.raises(automl.InputError, match="n_jobs must be a positive integer"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, save=False, n_jobs=-2)


def test_ctrl_c_with_two_workers_saves_and_leaves_no_trial_running(cancer, tmp_path):
    X, y = cancer
    csv = tmp_path / "cancer.csv"
    X.assign(diagnosis=y).to_csv(csv, index=False)
    run = tmp_path / "run"
    process = _start(csv, run, "--time-budget", "300", "--n-jobs", "2")
    _wait_for_finished_trials(run, 6, process)
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert time.monotonic() - sent < 10
    result = automl.load(run)
    assert result.manifest["interrupted"] == "SIGINT"
    assert result.predict(X).shape == (len(X),)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.journal")))
    for name in result.manifest["studies"].values():
        states = {t.state for t in optuna.load_study(study_name=name, storage=storage).trials}
        assert optuna.trial.TrialState.RUNNING not in states
    # both workers ran trials (a worker replaced after a trial timed out has a new pid, so >= 2)
    assert pd.read_csv(run / "trials.csv")["worker"].nunique() >= 2
