"""Ctrl-C, SIGTERM and SIGKILL against a real `automl fit` process, then resume."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_breast_cancer

import automl

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
MODELS = "logistic_regression,random_forest"


@pytest.fixture
def csv(tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    path = tmp_path / "cancer.csv"
    X.assign(diagnosis=y).to_csv(path, index=False)
    return path


def _start(csv, run, *extra):
    return subprocess.Popen(
        [AUTOML, "fit", str(csv), "--target", "diagnosis", "--models", MODELS, "--path", str(run), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _journal_trials(run: Path) -> list[tuple[str, optuna.trial.FrozenTrial]]:
    """(study name, trial) for every trial in the run's journal, as it is on disk now."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.journal")))
    return [
        (summary.study_name, trial)
        for summary in optuna.get_all_study_summaries(storage)
        for trial in optuna.load_study(study_name=summary.study_name, storage=storage).trials
    ]


def _wait_for_finished_trials(run: Path, count: int, process, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (run / "study.journal").exists():
            if sum(trial.state.is_finished() for _, trial in _journal_trials(run)) >= count:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials finished in {timeout} s")


def _sigkill_while_a_trial_runs(run: Path, process, timeout=60.0) -> set[tuple[str, int]]:
    """SIGKILL the run's process group at a moment when a trial is running; return that trial.

    Trials end every fraction of a second, so a plain kill may fall between two of them. Here the
    group is frozen first (SIGSTOP, and waited for) so that the journal cannot change while it is
    read: with a trial running and no write under way (no lock file), the group is killed where
    it stands; otherwise it is let go on (SIGCONT) and looked at again a moment later.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        os.killpg(process.pid, signal.SIGSTOP)
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"automl fit ended (wait status {status}) before it could be killed"
        running = set()
        if not os.path.lexists(run / "study.journal.lock"):
            running = {(name, trial.number) for name, trial in _journal_trials(run) if trial.state == TrialState.RUNNING}
        if running:
            os.killpg(process.pid, signal.SIGKILL)  # no handler runs: power-loss-like
            return running
        os.killpg(process.pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"no moment with a trial running and the journal at rest in {timeout} s")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_saves_the_best_model_so_far(csv, tmp_path, signum, code):
    run = tmp_path / "run"
    process = _start(csv, run, "--time-budget", "300")
    _wait_for_finished_trials(run, 3, process)
    sent = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    else:
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    stopped_after = time.monotonic() - sent
    assert process.returncode == code, stderr
    assert stopped_after < 10, f"took {stopped_after:.1f} s to stop"
    assert f"the best model so far is saved in {run}" in stderr
    result = automl.load(run)
    assert result.manifest["interrupted"] == signal.Signals(signum).name
    assert result.predict(pd.read_csv(csv).drop(columns="diagnosis")).shape == (569,)


def test_resume_after_sigkill_keeps_finished_trials(csv, tmp_path):
    run = tmp_path / "run"
    process = _start(csv, run, "--time-budget", "600", "--n-trials", "6", "--cv", "3")
    _wait_for_finished_trials(run, 4, process)
    running_at_kill = _sigkill_while_a_trial_runs(run, process)
    process.wait(timeout=10)
    assert len(running_at_kill) == 1, "one worker: one trial at a time"
    assert not (run / "manifest.json").exists()

    journal = _journal_trials(run)
    before = {
        name: [(t.number, t.state, t.params) for model, t in journal if model == name and t.state.is_finished()]
        for name in MODELS.split(",")
    }
    assert sum(len(v) for v in before.values()) >= 4

    table = pd.read_csv(csv)
    y = table.pop("diagnosis")
    with pytest.raises(automl.InputError, match="data differs"):
        automl.fit_best(table.iloc[:-1], y.iloc[:-1], path=run, resume=True, n_trials=6, cv=3, models=MODELS.split(","))
    with pytest.raises(automl.InputError, match="seed differs"):
        automl.fit_best(table, y, path=run, resume=True, n_trials=6, cv=3, models=MODELS.split(","), seed=1)

    result = automl.fit_best(table, y, path=run, resume=True, n_trials=6, cv=3, models=MODELS.split(","), time_budget=600)
    trials = result.trials
    for name, finished in before.items():
        own = trials[trials["model"] == name].set_index("number")
        assert len(own) == 6, "n_trials counts the trials of the first session too"
        assert own.index.is_unique
        for number, state, params in finished:
            assert own.loc[number, "state"] == state.name.lower(), "a finished trial is not repeated"
            assert own.loc[number, "params"] == params
    # the trial that was running at the kill is failed, as abandoned; no other trial is
    abandoned = trials[trials["error"].str.startswith("abandoned", na=False)]
    assert set(zip(abandoned["model"], abandoned["number"])) == running_at_kill
    assert (abandoned["state"] == "fail").all()
    assert result.manifest["resumed"] is True
    assert automl.load(run).model_name == result.model_name


def test_resume_needs_a_run_directory(tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with pytest.raises(automl.InputError, match="nothing to resume"):
        automl.fit_best(X, y, path=tmp_path, resume=True, n_trials=1)
    with pytest.raises(automl.InputError, match="resume=True needs path="):
        automl.fit_best(X, y, resume=True, n_trials=1)
