"""Warm starts: a new run on new data begins with the saved run's best configurations."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

import automl
from conftest import TrialOrder
from automl._plugins import collect_models

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
MODELS = ["logistic_regression", "hist_gradient_boosting"]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def previous_run(cancer, tmp_path_factory):
    """The 'last training': a run on the older part of the data. With this seed the default of
    logistic_regression is among its 3 best configurations and that of hist_gradient_boosting is not."""
    X, y = cancer
    path = tmp_path_factory.mktemp("warm") / "previous"
    # from the defaults (no portfolio), so that the defaults are among the configurations tried
    automl.fit_best(X[:300], y[:300], models=MODELS, n_trials=5, cv=3, time_budget=None, path=path, seed=2,
                    portfolio=False)
    return path


def _best_params(result, model):
    own = result.trials[(result.trials["model"] == model) & (result.trials["state"] == "complete")]
    ranked = own.sort_values("score", ascending=False, kind="stable")["params"]
    unique = []
    for params in ranked:
        if params not in unique:
            unique.append(params)
    return unique


def test_new_run_starts_from_the_saved_best_configurations(cancer, previous_run, tmp_path):
    X, y = cancer
    previous = automl.load(previous_run)
    order = TrialOrder()
    result = automl.fit_best(
        X, y, models=MODELS, n_trials=4, cv=3, time_budget=None, path=tmp_path / "new", seed=1,
        warm_start=previous_run, plugins=[order], portfolio=False,
    )
    # the saved leaderboard's best model is tried first (the winner, or when an ensemble won, the
    # best of its models), with its best configuration
    assert order.records[0].model == next(m for m in previous.leaderboard["model"] if m != "ensemble")
    defaults = {name: dict(m.spec.default_params) for name, m in collect_models(automl.get_plugin_manager()).items()}
    # the saved run holds both cases: a model whose default was among its best, and one whose was not
    assert {defaults[m] in _best_params(previous, m)[:3] for m in MODELS} == {True, False}, "change the seed"
    for model in MODELS:
        saved_best = _best_params(previous, model)[:3]
        own = result.trials[result.trials["model"] == model].sort_values("number")
        params = list(own["params"])
        assert params[: len(saved_best)] == saved_best, model
        # after the warm configurations comes the model's default, unless it was among them
        if defaults[model] in saved_best:
            assert params.count(defaults[model]) == 1, f"{model}: the default ran again"
        else:
            assert params[len(saved_best)] == defaults[model], f"{model}: the default is not next"
    assert result.manifest["warm_start"] == {"from": str(previous_run), "enqueued": {m: 3 for m in MODELS}}
    assert automl.load(result.path).manifest["warm_start"]["from"] == str(previous_run)


def test_a_result_object_serves_as_warm_start_and_runs_repeat(cancer, previous_run):
    X, y = cancer
    previous = automl.load(previous_run)
    runs = [
        automl.fit_best(X, y, models=MODELS, n_trials=3, cv=3, time_budget=None, save=False, seed=4, warm_start=previous, ensemble=False)
        for _ in range(2)
    ]
    columns = ["model", "number", "state", "score", "params"]
    pd.testing.assert_frame_equal(runs[0].trials[columns], runs[1].trials[columns])
    assert runs[0].manifest["warm_start"]["from"] == str(previous_run)


def test_models_missing_from_the_saved_run_start_cold(cancer, tmp_path):
    X, y = cancer
    only_lr = automl.fit_best(X[:200], y[:200], models=["logistic_regression"], n_trials=2, cv=3, time_budget=None, path=tmp_path / "lr")
    result = automl.fit_best(
        X, y, models=MODELS, n_trials=2, cv=3, time_budget=None, save=False, warm_start=only_lr, ensemble=False,
        portfolio=False,
    )
    assert result.manifest["warm_start"]["enqueued"] == {"logistic_regression": 2}
    boosting = result.trials[result.trials["model"] == "hist_gradient_boosting"].sort_values("number")
    assert len(boosting) == 2 and (boosting["state"] == "complete").all()
    # a model the saved run did not try begins with its defaults, as in a cold run
    defaults = collect_models(automl.get_plugin_manager())["hist_gradient_boosting"].spec.default_params
    assert boosting["params"].iloc[0] == defaults


def test_warm_start_from_another_task_is_refused_before_anything_is_written(previous_run, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    with pytest.raises(automl.InputError, match="binary run, but this data is a regression"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, path=tmp_path / "new", warm_start=previous_run)
    assert not (tmp_path / "new").exists()


def test_warm_start_from_a_missing_or_damaged_run_is_a_clear_error(cancer, previous_run, tmp_path):
    X, y = cancer
    with pytest.raises(automl.InputError, match="no such run directory"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, save=False, warm_start=tmp_path / "nope")
    damaged = tmp_path / "damaged"
    shutil.copytree(previous_run, damaged)
    trials = damaged / "trials.csv"
    trials.write_bytes(trials.read_bytes()[:-20])
    with pytest.raises(automl.InputError, match="trials.csv does not match its checksum"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, save=False, warm_start=damaged)
    # the saved run itself is untouched by being used
    assert automl.load(previous_run).model_name


def test_cli_warm_start(cancer, previous_run, tmp_path):
    X, y = cancer
    data = tmp_path / "cancer.csv"
    X.assign(diagnosis=y).to_csv(data, index=False)
    run = tmp_path / "retrained"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [AUTOML, "fit", str(data), "--target", "diagnosis", "--models", ",".join(MODELS), "--n-trials", "2",
         "--cv", "3", "--path", str(run), "--warm-start", str(previous_run), "--no-ensemble"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "warm start from" in done.stderr
    assert automl.load(run).manifest["warm_start"]["enqueued"] == {m: 3 for m in MODELS}
    bad = subprocess.run(
        [AUTOML, "fit", str(data), "--target", "diagnosis", "--n-trials", "1", "--warm-start", str(tmp_path / "none")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert bad.returncode == 2 and "no such run directory" in bad.stderr


def test_a_warm_start_with_the_saved_runs_own_seed_repeats_no_configuration(cancer, tmp_path):
    """The saved run's configurations came from the sampler stream of its seed; a new run with
    that seed must not draw them again after enqueuing them (each trial of a run is new)."""
    X, y = cancer
    previous = automl.fit_best(
        X, y, models=["logistic_regression"], n_trials=3, cv=2, time_budget=None, save=False, seed=5, ensemble=False,
    )
    again = automl.fit_best(
        X, y, models=["logistic_regression"], n_trials=6, cv=2, time_budget=None, save=False, seed=5,
        warm_start=previous, ensemble=False,
    )
    params = [tuple(sorted(p.items())) for p in again.trials["params"]]
    assert len(params) == 6 and len(set(params)) == 6, again.trials[["number", "params"]]
