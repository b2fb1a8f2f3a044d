"""The built-in lightgbm model: early stopping on held-out rows, the time limit, its search space,
scikit-learn's estimator checks, and fit_best tuning it on real data."""

import subprocess
import sys
import time
import warnings

import numpy as np
import optuna
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.utils.estimator_checks import parametrize_with_checks

import automl
from automl._plugins import collect_models, get_plugin_manager
from automl.plugins._anytime import PARALLEL_PREDICT_ROWS, prediction_threads
from automl.plugins.lightgbm_boost import DEFAULT_PARAMS, MIN_ROWS_FOR_EARLY_STOPPING, EarlyStoppedLGBM

SPEC = collect_models(get_plugin_manager())["lightgbm"].spec

# LightGBM's note when scikit-learn's checks hand it a sparse array
pytestmark = pytest.mark.filterwarnings("ignore:Converting data to scipy sparse matrix:UserWarning")


def context(task, **changes):
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task]
    return automl.ModelContext(**{"task": task, "seed": 7, "n_samples": 300, "n_features": 10, "n_classes": n_classes, **changes})


@parametrize_with_checks([
    EarlyStoppedLGBM(LGBMClassifier(n_estimators=20, min_child_samples=2, verbose=-1, random_state=0)),
    EarlyStoppedLGBM(LGBMRegressor(n_estimators=20, min_child_samples=2, verbose=-1, random_state=0)),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_defaults_are_a_whole_configuration_with_the_contexts_seed_threads_and_time(task):
    params = SPEC.search_space(optuna.trial.FixedTrial(DEFAULT_PARAMS), context(task))
    assert params == DEFAULT_PARAMS
    model = SPEC.build(params, context(task, n_jobs=2, n_samples=50_000, time_limit=4.0))
    booster = model.estimator
    assert type(booster).__name__ == ("LGBMRegressor" if task == "regression" else "LGBMClassifier")
    assert (booster.random_state, booster.n_jobs, booster.subsample_freq, model.max_seconds) == (7, 2, 1, 4.0)
    assert SPEC.build(params, context(task, n_jobs=2)).estimator.n_jobs == 1  # 300 rows: one thread


def test_boosting_stops_early_on_the_held_out_rows():
    X, y = load_breast_cancer(return_X_y=True)
    assert len(y) >= MIN_ROWS_FOR_EARLY_STOPPING
    model = EarlyStoppedLGBM(LGBMClassifier(n_estimators=5000, learning_rate=0.3, verbose=-1, random_state=0)).fit(X, y)
    assert model.n_estimators_ < 5000 and model.estimator_.best_iteration_ == model.n_estimators_
    assert model.score(X, y) > 0.95
    again = EarlyStoppedLGBM(LGBMClassifier(n_estimators=5000, learning_rate=0.3, verbose=-1, random_state=0)).fit(X, y)
    assert (again.predict_proba(X) == model.predict_proba(X)).all(), "the held-out rows are seeded"


def test_early_stopping_scores_string_labels_without_lightgbms_deprecation_warning():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # LightGBM 4.7's note on eval_set is one
        model = EarlyStoppedLGBM(LGBMClassifier(n_estimators=5000, learning_rate=0.3, verbose=-1, random_state=0))
        model.fit(X, labels)
    assert model.n_estimators_ < 5000 and model.score(X, labels) > 0.95
    assert list(model.classes_) == ["benign", "malignant"]


def test_a_small_table_boosts_every_round_and_a_rare_class_is_not_split():
    X, y = load_diabetes(return_X_y=True)  # 442 rows: too few to hold any out
    model = EarlyStoppedLGBM(LGBMRegressor(n_estimators=60, verbose=-1, random_state=0)).fit(X, y)
    assert model.n_estimators_ == 60
    X, y = load_iris(return_X_y=True)
    X, y = X.repeat(5, axis=0), y.repeat(5)  # 750 rows
    y[:5] = 3  # a class of 5 rows: a tenth of them is not one row
    model = EarlyStoppedLGBM(LGBMClassifier(n_estimators=40, verbose=-1, random_state=0)).fit(X, y)
    assert model.n_estimators_ == 40 and list(model.classes_) == [0, 1, 2, 3]


def test_the_time_limit_ends_boosting_and_keeps_the_trees():
    X, y = load_diabetes(return_X_y=True)
    model = EarlyStoppedLGBM(LGBMRegressor(n_estimators=100_000, verbose=-1, random_state=0), max_seconds=0.2)
    started = time.monotonic()
    model.fit(X, y)
    assert time.monotonic() - started < 5 and 0 < model.n_estimators_ < 100_000
    assert model.score(X, y) > 0.3


def test_a_model_fitted_on_one_thread_predicts_many_rows_on_every_core_and_the_same_numbers():
    # a small table fits on one thread (ROWS_PER_THREAD), but a batch of predictions is parallel
    X, y = load_iris(return_X_y=True)
    model = EarlyStoppedLGBM(LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1, random_state=0)).fit(X, y)
    batch = np.tile(X, (2, 1))
    predictor = model._predictor(batch)
    assert predictor.n_jobs == prediction_threads(len(batch)) and predictor.booster_ is model.estimator_.booster_
    assert model._predictor(X[:PARALLEL_PREDICT_ROWS - 1]) is model.estimator_
    assert model.estimator_.n_jobs == 1
    np.testing.assert_array_equal(model.predict_proba(batch), model.estimator_.predict_proba(batch))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_it_predicts_through_its_booster_with_the_wrappers_numbers_and_checks(task):
    import pandas as pd

    load = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[task]
    X, y = load(return_X_y=True)
    if task != "regression":
        y = np.array(["a", "b", "c"])[y]  # labels the booster never sees: the wrapper decodes them
    cls = LGBMRegressor if task == "regression" else LGBMClassifier
    model = EarlyStoppedLGBM(cls(n_estimators=5000, learning_rate=0.3, verbose=-1, random_state=0)).fit(X, y)
    wrapper = model.estimator_
    for rows in (X[:1], X[:PARALLEL_PREDICT_ROWS - 1], X, X.astype(np.float32)):
        assert model._booster_values(rows) is not None, "a float array goes to the booster itself"
        np.testing.assert_array_equal(model.predict(rows), wrapper.predict(rows))
        if task != "regression":
            np.testing.assert_array_equal(model.predict_proba(rows), wrapper.predict_proba(rows))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    assert model._booster_values(frame) is None and model._booster_values(X.astype(int)) is None
    np.testing.assert_array_equal(model.predict(X.astype(int)), wrapper.predict(X.astype(int)))
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])  # the wrapper's own check
    assert hasattr(model, "predict_proba") == (task != "regression")


def test_listing_models_does_not_import_lightgbm():
    code = "import sys, automl; automl.list_models(); print('lightgbm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_fit_best_tunes_it_from_its_defaults():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=["lightgbm"], n_trials=2, cv=3, time_budget=None, save=False, verbose=0,
                             portfolio=False)
    row = result.leaderboard.set_index("model").loc["lightgbm"]
    assert row["complete"] == 2 and row["score"] > 0.97
    assert result.trials.iloc[0]["params"] == DEFAULT_PARAMS, "the first trial is the default"
    assert isinstance(result.model.named_steps["model"], EarlyStoppedLGBM)
