"""The plugin's own tests: its search space, its estimator and its place in automl."""

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.utils.estimator_checks import parametrize_with_checks

import automl
import automl_lightgbm
from automl_lightgbm import DEFAULT_PARAMS, TimeLimitedLGBM, build, search_space

TASKS = ["binary", "multiclass", "regression"]

# LightGBM's note when scikit-learn's checks hand it a sparse array (here, not in pyproject.toml:
# automl-select's own test run collects this module too)
pytestmark = pytest.mark.filterwarnings("ignore:Converting data to scipy sparse matrix:UserWarning")


def context(task, **changes):
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task]
    return automl.ModelContext(task=task, seed=7, n_samples=300, n_features=10, n_classes=n_classes, **changes)


@pytest.mark.parametrize("task", TASKS)
def test_defaults_build_the_right_kind_of_model(task):
    """The defaults are a complete configuration: FixedTrial needs no other value."""
    params = search_space(optuna.trial.FixedTrial(DEFAULT_PARAMS), context(task))
    assert params == DEFAULT_PARAMS
    model = build(params, context(task, n_jobs=2, time_limit=4.0))
    assert is_regressor(model) if task == "regression" else is_classifier(model)
    booster = model.estimator
    assert type(booster).__name__ == ("LGBMRegressor" if task == "regression" else "LGBMClassifier")
    assert (booster.random_state, booster.n_jobs, booster.verbose) == (7, 2, -1)
    assert booster.num_leaves == 31 and booster.subsample_freq == 1 and booster.boosting_type == "dart"
    assert model.max_seconds == 4.0


def test_search_space_stays_in_range():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = search_space(trial, context("binary"))
        assert 50 <= params["n_estimators"] <= 1000
        assert 0.01 <= params["learning_rate"] <= 0.3
        assert 4 <= params["num_leaves"] <= 256
        assert 1e-3 <= params["reg_lambda"] <= 10.0
        assert set(params) == set(DEFAULT_PARAMS)
        study.tell(trial, 0.0)


def test_plugin_import_does_not_import_lightgbm():
    code = "import automl_lightgbm, sys; assert 'lightgbm' not in sys.modules, 'imported at load'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(automl_lightgbm.__file__).parent)


def _small(task):
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if task == "regression" else LGBMClassifier
    return TimeLimitedLGBM(cls(n_estimators=20, min_child_samples=2, verbose=-1, random_state=0), max_seconds=30)


@parametrize_with_checks([_small("binary"), _small("regression")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_time_limit_stops_boosting_and_keeps_the_trees():
    from lightgbm import LGBMRegressor

    X, y = load_diabetes(return_X_y=True)
    model = TimeLimitedLGBM(LGBMRegressor(n_estimators=100_000, verbose=-1, random_state=0), max_seconds=0.2)
    started = time.monotonic()
    model.fit(X, y)
    assert time.monotonic() - started < 5
    assert 0 < model.n_estimators_ < 100_000
    assert model.score(X, y) > 0.3


def test_fit_best_tunes_and_can_pick_it():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    # passed per call, unless the installed distribution already registers it
    plugins = [] if "lightgbm_dart" in automl.list_models() else [automl_lightgbm]
    result = automl.fit_best(
        X, y, models=["lightgbm_dart"], plugins=plugins, n_trials=2, cv=3, time_budget=None, save=False
    )
    row = result.leaderboard.set_index("model").loc["lightgbm_dart"]
    assert row["complete"] == 2 and row["score"] > 0.95
    assert result.trials.iloc[0]["params"] == DEFAULT_PARAMS, "the first trial is the default"
    assert isinstance(result.model.named_steps["model"], TimeLimitedLGBM)
