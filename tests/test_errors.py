"""Bad input gets a clear, specific error, and nothing is written."""

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import KFold

import automl


@pytest.fixture
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :5], y


FAST = dict(models=["logistic_regression"], n_trials=1, cv=3)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X, y: (X, y[:-3]), r"X has 569 rows but y has 566 values"),
        (lambda X, y: (X.iloc[:0], y[:0]), r"X has no rows"),
        (lambda X, y: (X.iloc[:, :0], y), r"no feature columns"),
        (lambda X, y: (X.iloc[:, 0].to_numpy(), y), r"X must be 2-D .* X.reshape\(-1, 1\)"),
        (lambda X, y: (X.iloc[:, 0], y), r"X is a pandas Series"),
        (lambda X, y: (X, None), r"y is None"),
        (lambda X, y: (X, y.astype(float).where(y.index % 100 != 0)), r"y has 6 missing value\(s\)"),
        (lambda X, y: (X, np.zeros(len(y), dtype=int)), r"single class"),
        (lambda X, y: (X.set_axis(["a", "a", "b", "c", "d"], axis=1), y), r"duplicate column names \['a'\]"),
        (lambda X, y: (X.assign(**{c: np.nan for c in X.columns}), y), r"no usable feature column"),
    ],
    ids=["length", "empty", "no-columns", "1d", "series", "y-none", "nan-target", "single-class",
         "duplicate-columns", "all-empty-columns"],
)
def test_bad_data(data, change, message):
    X, y = change(*data)
    with pytest.raises(automl.InputError, match=message):
        automl.fit_best(X, y, **FAST)
    assert not os.path.exists("automl-runs"), "a failed call writes nothing"


def test_input_errors_are_value_errors_too(data):
    X, y = data
    with pytest.raises(ValueError):
        automl.fit_best(X, y[:10], **FAST)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "accuracy_score"}, r"unknown metric 'accuracy_score'; valid metrics for task 'binary': .*roc_auc"),
        ({"metric": "r2"}, r"metric 'r2' does not suit task 'binary'"),
        ({"models": ["xgbost"]}, r"unknown model\(s\) \['xgbost'\]; registered models: \[.*'logistic_regression'"),
        ({"models": ["ridge"]}, r"do not support task 'binary'; models that do"),
        ({"time_budget": 0}, r"time_budget must be a positive number"),
        ({"time_budget": -5}, r"time_budget must be a positive number"),
        ({"n_trials": 0}, r"n_trials must be a positive integer"),
        ({"time_budget": None, "n_trials": None}, r"set time_budget, n_trials or both"),
        ({"cv": 1}, r"cv must be at least 2 folds"),
        ({"cv": "five"}, r"cv must be 'auto', a number of folds"),
        ({"task": "ranking"}, r"unknown task 'ranking'"),
        ({"task": "multiclass"}, r"task 'multiclass' was requested but y has 2 classes"),
        ({"test_size": 2}, r"test_size must be a fraction"),
        ({"n_jobs": 0}, r"n_jobs must be a positive integer"),
    ],
)
def test_bad_arguments(data, kwargs, message):
    X, y = data
    with pytest.raises(automl.InputError, match=message):
        automl.fit_best(X, y, **{**FAST, **kwargs})
    assert not os.path.exists("automl-runs")


def test_metric_unsuited_to_multiclass():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(automl.InputError, match=r"metric 'roc_auc' does not suit task 'multiclass'.*roc_auc_ovr"):
        automl.fit_best(X, y, metric="roc_auc", **FAST)


def test_class_with_fewer_members_than_folds(data):
    X, y = data
    y = y.copy()
    y.iloc[:2] = 2  # a third class with two members
    with pytest.raises(automl.InputError, match=r"class\(es\) \{'2': 2\} have fewer members than the 3 CV folds; use cv=2"):
        automl.fit_best(X, y, **FAST)


def test_existing_run_directory_is_left_untouched(data, tmp_path):
    X, y = data
    run = tmp_path / "run"
    first = automl.fit_best(X, y, path=run, **FAST)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(automl.InputError, match="already exists and is not an empty directory"):
        automl.fit_best(X, y, path=run, **FAST)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert automl.load(first.path).model_name == "logistic_regression"


def test_splitter_object_and_numpy_and_list_input():
    X, y = load_breast_cancer(return_X_y=True)
    result = automl.fit_best(X[:, :4].tolist(), y.tolist(), models=["logistic_regression"], n_trials=1,
                             cv=KFold(3, shuffle=True, random_state=0), save=False)
    assert [c["name"] for c in result.manifest["columns"]] == ["x0", "x1", "x2", "x3"]
    assert result.predict(X[:5, :4]).shape == (5,)


def test_non_string_column_names_and_missing_values():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6].set_axis(range(6), axis=1).copy()
    X.iloc[::7, 2] = np.nan
    X[6] = pd.Series(np.where(y == 1, "yes", "no")).where(X.index % 5 != 0)
    result = automl.fit_best(X, y, models=["logistic_regression", "random_forest"], n_trials=1, cv=3, save=False)
    kinds = {c["name"]: c["kind"] for c in result.manifest["columns"]}
    assert kinds["6"] == "categorical" and kinds["2"] == "numeric"
    assert result.score > 0.9


def test_no_successful_trial_is_a_search_error_and_writes_no_model(data, tmp_path):
    class Broken:
        @automl.hookimpl
        def automl_models(self):
            return [automl.ModelSpec("broken", {"binary"}, lambda t, c: {}, lambda p, c: "not an estimator")]

    with pytest.raises(automl.SearchError, match=r"broken: all trials failed: TypeError: build\(\) of model 'broken' returned str"):
        automl.fit_best(*data, models=["broken"], plugins=[Broken()], n_trials=2, cv=3, path=tmp_path / "run")
    assert not (tmp_path / "run" / "model.joblib").exists()
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_numpy_integers_and_no_time_budget_with_a_random_forest():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X.iloc[:, :5], y, models=["random_forest"], n_trials=np.int64(1), cv=np.int64(3),
                             time_budget=None, save=False)
    assert result.model_name == "random_forest"
    assert result.manifest["n_trials"] == 1


def test_result_predicts_from_arrays_in_training_column_order(data):
    X, y = data
    result = automl.fit_best(X, y, save=False, **FAST)
    np.testing.assert_array_equal(result.predict(X.to_numpy()), result.predict(X))
    np.testing.assert_array_equal(result.predict(X.to_numpy().tolist()), result.predict(X))
    with pytest.raises(automl.InputError, match="2-D"):
        result.predict(X.to_numpy()[0])


def test_fractional_labels_for_a_classification_task():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(automl.InputError, match="fractional numbers but a classification task"):
        automl.fit_best(X, y + 0.5, task="binary", **FAST)


def test_a_single_split_splitter_is_a_holdout(data):
    from sklearn.model_selection import ShuffleSplit

    result = automl.fit_best(*data, models=["logistic_regression"], n_trials=2, time_budget=None, save=False,
                             cv=ShuffleSplit(n_splits=1, test_size=0.2, random_state=0), verbose=0)
    assert all(len(scores) == 1 for scores in result.trials["fold_scores"])
    assert result.manifest["validation"] is None and "ShuffleSplit" in result.manifest["cv"]


def test_memory_limit_below_an_idle_worker(data):
    with pytest.raises(automl.InputError, match="memory_limit=5 MB is below what a worker needs"):
        automl.fit_best(*data, memory_limit=5, save=False, **FAST)


def test_category_codes_read_as_floats_at_predict_time():
    """A code column that pandas reads as float when a batch has blanks keeps its levels."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :3].copy()
    X["code"] = np.where(y == 1, "101", "202")
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=1, cv=3, save=False)
    batch = X.iloc[:20].copy()
    batch["code"] = batch["code"].astype(float)
    batch.loc[batch.index[0], "code"] = np.nan
    np.testing.assert_array_equal(result.predict_proba(batch)[1:], result.predict_proba(X.iloc[:20])[1:])
