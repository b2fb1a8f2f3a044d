"""fit_best end to end on real data, with real Optuna studies, real Keras training and real files."""

import json
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

import automl
from automl.store.ensemble import ENSEMBLE

TREES = {"random_forest", "extra_trees", "hist_gradient_boosting", "lightgbm"}
#: every built-in classifier, with the boost extra's (the test extra installs it)
ALL_CLASSIFIERS = TREES | {"catboost", "xgboost", "logistic_regression", "keras_mlp"}


def _check_run_directory(result):
    files = {p.name for p in result.path.iterdir()}
    assert {"model.joblib", "manifest.json", "leaderboard.csv", "trials.csv", "study.journal"} <= files
    assert not [f for f in files if f.endswith(".tmp")], "no temporary files are left behind"
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["model"] == result.model_name
    assert manifest["cv_score"] == pytest.approx(result.score)
    assert manifest["versions"]["scikit-learn"] and manifest["versions"]["optuna"]
    assert len(manifest["artifacts"]["model.joblib"]["sha256"]) == 64
    return manifest


def test_binary_breast_cancer_all_models_save_and_load(tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, n_trials=2, cv=3, time_budget=300, path=tmp_path / "run")
    assert result.task == "binary" and result.metric == "roc_auc"
    assert result.score > 0.97
    board = result.leaderboard
    # every model, and an ensemble of the best trials if one was considered
    assert set(board["model"]) - {ENSEMBLE} == ALL_CLASSIFIERS
    assert list(board.columns[:3]) == ["model", "score", "std"]
    assert board["score"].is_monotonic_decreasing
    models = board[board["model"] != ENSEMBLE]
    assert (models["trials"] == 2).all(), "n_trials caps trials per model; the budget left room for all"
    assert result.model_name == board.iloc[0]["model"]
    assert set(result.trials.columns) >= {"model", "number", "state", "params", "score", "duration"}

    manifest = _check_run_directory(result)
    assert manifest["classes"] == [0, 1]
    assert [c["name"] for c in manifest["columns"]] == list(X.columns)

    loaded = automl.load(result.path)
    np.testing.assert_array_equal(loaded.predict(X), result.predict(X))
    # the same bytes (checksummed); BLAS may round the last bit differently per memory alignment
    np.testing.assert_allclose(loaded.predict_proba(X), result.predict_proba(X), rtol=1e-12)
    assert loaded.model_name == result.model_name and loaded.score == pytest.approx(result.score)
    pd.testing.assert_frame_equal(loaded.leaderboard, result.leaderboard, check_dtype=False)
    assert loaded.trials["params"].tolist() == result.trials["params"].tolist()

    # the study can be opened with Optuna's own tools
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(result.path / "study.journal")))
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == ALL_CLASSIFIERS


def test_multiclass_wine_keeps_string_labels():
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = y.map({0: "barolo", 1: "grignolino", 2: "barbera"})
    # (every model's multiclass fit is tested with the model; here: labels through the whole run)
    result = automl.fit_best(X, labels, n_trials=2, cv=3, time_budget=300,
                             models=["logistic_regression", "hist_gradient_boosting"])
    assert result.task == "multiclass" and result.metric == "neg_log_loss"
    assert result.score > -0.3
    assert sorted(result.classes_) == ["barbera", "barolo", "grignolino"]
    predictions = result.predict(X)
    assert set(predictions) <= {"barbera", "barolo", "grignolino"}
    assert (predictions == labels.to_numpy()).mean() > 0.9
    assert result.predict_proba(X).shape == (len(X), 3)
    manifest = _check_run_directory(result)
    assert sorted(manifest["classes"]) == ["barbera", "barolo", "grignolino"]
    assert str(result.path).startswith("automl-runs/"), "default run directory under the working directory"
    np.testing.assert_array_equal(automl.load(result.path).predict(X), predictions)


def test_regression_diabetes_with_held_out_test_score():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    # Keras is left out to keep the suite short: the binary test runs every model end to end
    regressors = sorted(TREES | {"ridge"})
    result = automl.fit_best(X, y, models=regressors, n_trials=2, cv=3, time_budget=300, test_size=0.2)
    assert result.task == "regression" and result.metric == "neg_root_mean_squared_error"
    assert set(result.leaderboard["model"]) - {ENSEMBLE} == set(regressors)
    assert -70 < result.score < -40  # RMSE of a sound model on diabetes is ~55
    assert result.test_score is not None and -75 < result.test_score < -40
    winner_row = result.leaderboard[result.leaderboard["model"] == result.model_name].iloc[0]
    assert winner_row["test_score"] == pytest.approx(result.test_score)
    assert result.manifest["test_score"] == pytest.approx(result.test_score)
    # the final model is refit on all rows: not on the 353 search rows (the test score's refit), nor a
    # fold's 235. Each pipeline's imputer learned the medians of all 442 (no subset has them all).
    assert result.manifest["refit_rows"] == len(X)
    pipelines = result.model.estimators_ if result.model_name == ENSEMBLE else [result.model]
    for pipeline in pipelines:
        imputer = pipeline.named_steps["prepare"].transformer_.named_transformers_["numeric"][0]
        np.testing.assert_allclose(imputer.statistics_, X.median().to_numpy(), rtol=1e-12, atol=0)
    assert result.predict(X).dtype == np.float64


def test_same_seed_and_trial_count_give_the_same_result():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    runs = [
        automl.fit_best(X, y, n_trials=2, cv=2, seed=7, time_budget=300, save=False,
                        models=["logistic_regression", "keras_mlp"])
        for _ in range(2)
    ]
    first, second = (r.trials[["model", "number", "state", "score", "params"]] for r in runs)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(
        # seconds and predict_ms are timings; everything else repeats
        *(run.leaderboard.drop(columns=["seconds", "predict_ms"]) for run in runs)
    )
    np.testing.assert_array_equal(runs[0].predict_proba(X), runs[1].predict_proba(X))


def test_bad_configurations_are_pruned_and_recorded_as_pruned():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=20, cv=5, save=False, time_budget=300)
    states = result.trials["state"].value_counts()
    assert states.get("pruned", 0) > 0
    pruned = result.trials[result.trials["state"] == "pruned"]
    assert pruned["score"].isna().all(), "a pruned trial has no CV score"
    assert all(len(f) < 5 for f in pruned["fold_scores"]), "pruned trials stop before the last fold"
    assert result.leaderboard.iloc[0]["pruned"] == states["pruned"]


def test_time_budget_covers_search_refit_and_save_on_adult(bundled):
    table = bundled("adult")
    y = table.pop("income")
    budget = 20.0
    started = time.monotonic()
    result = automl.fit_best(table, y, time_budget=budget)
    elapsed = time.monotonic() - started
    assert elapsed <= budget * 1.05 + 2.0, f"took {elapsed:.1f} s for a {budget} s budget"
    assert result.score > 0.85
    assert (result.path / "model.joblib").is_file()


def test_a_test_split_without_some_class_costs_the_test_score_not_the_model():
    X, y = load_iris(return_X_y=True, as_frame=True)
    keep = (y != 0) | (y.index < 6)  # six flowers of the first class
    X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=1, cv=3, test_size=0.05, save=False, seed=1)
    # stratified, 5% of 106 rows holds no flower of the rare class: log loss is undefined there
    assert result.model_name == "logistic_regression"
    assert result.test_score is None
    assert np.isnan(result.leaderboard.iloc[0]["test_score"])
    assert result.predict(X).shape == (len(X),)
