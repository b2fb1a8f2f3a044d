"""What a model costs to predict: every trial's time for 1,000 rows in the trials and the
leaderboard, ``max_predict_ms`` dropping what is slower, the saved model's time and size in the
manifest, and a tied model that is much faster saved instead of the best."""

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import automl
from automl.fit.select import FASTER_FLOOR_MS, prefer_faster, with_ensemble

#: The slow model's pause per predict call: far above the limit below on any machine, as a
#: linear model's time for 1,000 rows (a few ms here) is far below it.
PAUSE_S = 0.25
LIMIT_MS = 60.0


class SlowToPredict(ClassifierMixin, BaseEstimator):
    """Logistic regression that pauses before every prediction."""

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        time.sleep(PAUSE_S)
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class SlowPlugin:
    @automl.hookimpl
    def automl_models(self):
        return [automl.ModelSpec(
            name="slow", tasks={"binary"}, search_space=lambda trial, ctx: {"c": trial.suggest_float("c", 0.1, 10)},
            build=lambda params, ctx: SlowToPredict(), cost=0.1,
        )]


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def test_a_model_slower_than_max_predict_ms_is_dropped_and_the_manifest_says_what_was_saved(cancer, tmp_path):
    X, y = cancer
    result = automl.fit_best(
        X, y, models=["slow", "logistic_regression"], plugins=[SlowPlugin()], n_trials=2, cv=3, time_budget=None,
        path=tmp_path / "run", verbose=0, max_predict_ms=LIMIT_MS,
    )
    trials = result.trials.set_index(["model", "number"])
    slow = trials.loc["slow"]
    assert (slow["state"] == "fail").all() and (slow["predict_ms"] >= PAUSE_S * 1000).all()
    assert slow["error"].str.startswith("predicts too slowly: ").all(), slow["error"]
    assert (slow["duration"] < 3 * PAUSE_S + 5).all()  # stopped after its first fold
    board = result.leaderboard.set_index("model")
    assert board.loc["slow", "status"].startswith("all trials failed: predicts too slowly")
    assert result.model_name == "logistic_regression" and 0 < board.loc["logistic_regression", "predict_ms"] < LIMIT_MS
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["max_predict_ms"] == LIMIT_MS and 0 < manifest["predict_ms"] < LIMIT_MS
    assert manifest["model_bytes"] == (tmp_path / "run" / "model.joblib").stat().st_size
    saved = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    assert saved.loc[saved["model"] == "logistic_regression", "predict_ms"].iloc[0] > 0


def test_without_a_limit_every_trial_is_timed_and_kept(cancer):
    X, y = cancer
    result = automl.fit_best(
        X, y, models=["slow", "logistic_regression"], plugins=[SlowPlugin()], n_trials=1, cv=2, time_budget=None,
        save=False, verbose=0, ensemble=False,
    )
    assert (result.trials["state"] == "complete").all()
    board = result.leaderboard.set_index("model")
    assert board.loc["slow", "predict_ms"] >= PAUSE_S * 1000 > board.loc["logistic_regression", "predict_ms"] > 0
    assert result.manifest["max_predict_ms"] is None


@pytest.mark.parametrize("bad", [0, -5, "fast", True])
def test_max_predict_ms_must_be_a_positive_number(cancer, bad):
    with pytest.raises(automl.InputError, match="max_predict_ms must be a positive number"):
        automl.fit_best(*cancer, n_trials=1, save=False, max_predict_ms=bad)


def _board(rows):
    """A leaderboard and trials frame: (model, fold scores, predict_ms) per model, best first."""
    board = pd.DataFrame([
        {"model": m, "score": float(np.mean(f)), "predict_ms": ms, "status": "ok"} for m, f, ms in rows
    ])
    trials = pd.DataFrame([
        {"model": m, "state": "complete", "score": float(np.mean(f)), "fold_scores": f} for m, f, _ in rows
    ])
    return board, trials


def test_a_tied_model_far_faster_to_predict_goes_first():
    board, trials = _board([
        ("forest", [0.951, 0.962, 0.948], 80.0),
        ("boosting", [0.945, 0.966, 0.949], 30.0),  # tied, but not FASTER_FACTOR times faster
        ("linear", [0.941, 0.968, 0.951], 2.0),  # tied (a mean gain under half its standard error), 40 times faster
    ])
    assert list(prefer_faster(board, trials)["model"]) == ["linear", "forest", "boosting"]


@pytest.mark.parametrize("rows", [
    # the best is clearly better on every fold
    [("forest", [0.96, 0.97, 0.95], 80.0), ("linear", [0.90, 0.91, 0.89], 2.0)],
    # the best is already fast: millisecond timings are too noisy to decide on
    [("forest", [0.951, 0.962, 0.948], FASTER_FLOOR_MS / 2), ("linear", [0.941, 0.968, 0.951], 0.01)],
])
def test_the_best_stays_first_when_clearly_better_or_already_fast(rows):
    board, trials = _board(rows)
    assert list(prefer_faster(board, trials)["model"]) == [m for m, _, _ in rows]


def test_an_ensemble_row_goes_above_the_first_model_it_outscores_below_the_one_to_refit():
    # linear went first, as prefer_faster had it
    board, _ = _board([("linear", [0.95], 2.0), ("forest", [0.96], 80.0), ("boosting", [0.90], 30.0)])
    row = {"model": "ensemble", "score": 0.955, "predict_ms": 82.0, "status": "ok"}
    assert list(with_ensemble(board, row)["model"]) == ["linear", "forest", "ensemble", "boosting"]
    assert list(with_ensemble(board, {**row, "score": 0.97})["model"]) == ["ensemble", "linear", "forest", "boosting"]
    unsaved = {**row, "score": 0.99, "status": "predicts too slowly"}
    assert list(with_ensemble(board, unsaved)["model"]) == ["linear", "forest", "boosting", "ensemble"]


def test_a_limit_no_model_meets_is_a_clear_error(cancer):
    X, y = cancer
    with pytest.raises(automl.SearchError, match="predicts too slowly: .*Raise max_predict_ms, or leave it unset"):
        automl.fit_best(X, y, models=["logistic_regression"], n_trials=1, cv=2, save=False, verbose=0, max_predict_ms=1e-6)
