"""Fault injection: plugins that raise, hang, abort, eat memory or predict NaN fail only their
own trials, the run goes on, and the time budget holds."""

import os
import threading
import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer

import automl

SLACK = 5.0  # the promise: time_budget * 1.05 + 5 s


class FaultyClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, fault="raise"):
        self.fault = fault

    def fit(self, X, y):
        if self.fault == "raise":
            raise RuntimeError("injected failure in fit")
        if self.fault == "hang":
            time.sleep(3600)
        if self.fault == "abort":
            os.abort()
        if self.fault == "segfault":
            import ctypes

            ctypes.string_at(0)
        if self.fault == "memory":
            hoard = []
            for _ in range(60):  # up to 6 GB, 100 MB at a time, each page touched
                hoard.append(np.ones(100 * 2**20 // 8))
                time.sleep(0.02)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class FaultyPlugin:
    """Not picklable (it holds a lock), with lambdas for search_space and build: neither matters,
    because both run in the parent and only the built estimator goes to the worker."""

    def __init__(self, fault):
        self.fault = fault
        self.lock = threading.Lock()

    @automl.hookimpl
    def automl_models(self):
        return [
            automl.ModelSpec(
                name=f"faulty_{self.fault}",
                tasks={"binary"},
                search_space=lambda trial, ctx: {"fault": trial.suggest_categorical("fault", [self.fault])},
                build=lambda params, ctx: FaultyClassifier(**params),
            )
        ]


@pytest.fixture(scope="module")
def data():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def _fit_with(data, fault, budget, **kwargs):
    started = time.monotonic()
    result = automl.fit_best(
        *data, models=["logistic_regression", f"faulty_{fault}"], plugins=[FaultyPlugin(fault)],
        time_budget=budget, cv=3, **kwargs,
    )
    elapsed = time.monotonic() - started
    assert elapsed <= budget * 1.05 + SLACK, f"{fault}: {elapsed:.1f} s for a {budget} s budget"
    assert result.model_name == "logistic_regression"
    row = result.leaderboard.set_index("model").loc[f"faulty_{fault}"]
    errors = result.trials.loc[result.trials["model"] == f"faulty_{fault}", "error"].tolist()
    return result, row, errors, elapsed


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("raise", "RuntimeError: injected failure in fit"),
        ("abort", "crash: the worker process died, killed by SIGABRT"),
        ("segfault", "crash: the worker process died, killed by SIGSEGV"),
        ("nan", "Input contains NaN"),
    ],
)
def test_failing_plugin_fails_only_its_trials(data, fault, reason):
    result, row, errors, _ = _fit_with(data, fault, 60, n_trials=2)
    assert row["status"].startswith("all trials failed") and reason in row["status"]
    assert row["failed"] == row["trials"] == 2
    assert all(reason in e for e in errors)
    assert result.leaderboard.set_index("model").loc["logistic_regression", "complete"] >= 1
    assert automl.load(result.path).predict(data[0]).shape == (len(data[0]),)


def test_hanging_plugin_is_stopped_and_does_not_starve_the_others(data):
    budget = 15
    result, row, errors, elapsed = _fit_with(data, "hang", budget)
    assert row["complete"] == 0 and row["failed"] == 1
    assert errors[0].startswith("timeout: still running at the trial's time limit")
    assert result.leaderboard.set_index("model").loc["logistic_regression", "trials"] > 1, (
        "the hanging trial is stopped at its share of the budget, and the search goes on"
    )
    assert (result.path / "model.joblib").is_file()
    print(f"hanging plugin: {elapsed:.1f} s for a {budget} s budget")


def test_memory_hungry_plugin_is_stopped_at_the_limit(data):
    result, row, errors, _ = _fit_with(data, "memory", 60, n_trials=1, memory_limit=1500)
    assert row["failed"] == 1
    assert "memory limit exceeded" in errors[0] and "memory_limit=1500 MB" in errors[0]
    assert result.leaderboard.set_index("model").loc["logistic_regression", "complete"] == 1


def test_exception_in_search_space_fails_the_trial(data):
    class BadSpace:
        @automl.hookimpl
        def automl_models(self):
            def space(trial, ctx):
                raise KeyError("no such parameter")

            return [automl.ModelSpec("bad_space", {"binary"}, space, lambda p, c: FaultyClassifier())]

    result = automl.fit_best(*data, models=["logistic_regression", "bad_space"], plugins=[BadSpace()],
                             n_trials=2, cv=3, save=False)
    own = result.trials[result.trials["model"] == "bad_space"]
    assert len(own) >= 1, "the model with the broken search space was tried"
    assert (own["state"] == "fail").all()
    assert (own["error"] == "KeyError: 'no such parameter'").all()
