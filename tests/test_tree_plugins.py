"""The tree-ensemble built-ins extra_trees and hist_gradient_boosting: their search spaces, their
time limit, and fit_best tuning them on real data for every task."""

import pickle
import time

import numpy as np
import optuna
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import automl
from automl._plugins import collect_models, get_plugin_manager
from automl.plugins._anytime import PARALLEL_PREDICT_ROWS, TimeLimitedBoosting, TimeLimitedEnsemble, prediction_threads

MODELS = ["extra_trees", "hist_gradient_boosting"]
SPECS = {name: model.spec for name, model in collect_models(get_plugin_manager()).items() if name in MODELS}


def context(task, **kwargs):
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task]
    return automl.ModelContext(**{"task": task, "seed": 0, "n_samples": 500, "n_features": 8, "n_classes": n_classes, **kwargs})


def replay(spec, values, ctx):
    return spec.search_space(optuna.trial.FixedTrial(values), ctx)


def _built(name, task, size):
    """What the plugin's build returns for its defaults, made smaller, with a time limit."""
    spec = SPECS[name]
    ctx = context(task, time_limit=30.0)
    return spec.build({**replay(spec, spec.default_params, ctx), **size}, ctx)


# both wrappers, each as a classifier and as a regressor
@parametrize_with_checks([
    _built("hist_gradient_boosting", "binary", {"max_iter": 20}),
    _built("hist_gradient_boosting", "regression", {"max_iter": 20}),
    _built("extra_trees", "binary", {"n_estimators": 20}),
    _built("extra_trees", "regression", {"n_estimators": 20}),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("task, max_features", [("binary", "sqrt"), ("regression", 1.0)])
def test_extra_trees_starts_from_scikit_learns_defaults(task, max_features):
    spec = SPECS["extra_trees"]
    params = replay(spec, spec.default_params, context(task))
    assert params["max_features"] == max_features and params["bootstrap"] is False
    assert "max_samples" not in params
    assert ("class_weight" in params) == (task != "regression")
    model = spec.build(params, context(task, n_jobs=2, time_limit=5.0))
    assert isinstance(model, TimeLimitedEnsemble) and model.max_seconds == 5.0
    assert isinstance(model.estimator, ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier)
    assert model.estimator.random_state == 0 and model.estimator.n_jobs == 2

    bagged = {**spec.default_params, "max_features_rule": "fraction", "max_features": 0.3, "bootstrap": True, "max_samples": 0.7}
    params = replay(spec, bagged, context(task))
    assert params["max_features"] == 0.3 and params["max_samples"] == 0.7


def test_hist_gradient_boosting_starts_from_scikit_learns_defaults():
    spec = SPECS["hist_gradient_boosting"]
    params = replay(spec, spec.default_params, context("binary"))
    sklearn_defaults = HistGradientBoostingClassifier().get_params()
    for name in ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "max_features", "class_weight"):
        assert params[name] == sklearn_defaults[name], name
    assert params["l2_regularization"] <= 1e-6
    assert "class_weight" not in replay(spec, spec.default_params, context("regression"))
    # early stopping and threads follow the table's size, the same for every fold and the refit
    small, large = context("binary", n_jobs=2), context("binary", n_jobs=2, n_samples=50_000)
    assert replay(spec, spec.default_params, small)["early_stopping"] is False
    assert replay(spec, spec.default_params, large)["early_stopping"] is True
    assert spec.build(params, small).n_threads == 1
    assert spec.build(params, large).n_threads == 2


def test_balanced_classes_weigh_the_gradients_but_not_the_bin_edges():
    X, y = load_breast_cancer(return_X_y=True)
    spec = SPECS["hist_gradient_boosting"]
    ctx = context("binary", n_samples=len(y))
    built = spec.build({**replay(spec, spec.default_params, ctx), "class_weight": "balanced", "max_iter": 20}, ctx).fit(X, y)
    balanced = built.estimator_
    plain = HistGradientBoostingClassifier(max_iter=20, random_state=0, early_stopping=False).fit(X, y)
    weighted = HistGradientBoostingClassifier(max_iter=20, random_state=0, early_stopping=False, class_weight="balanced").fit(X, y)
    # bins cut as for unweighted rows (scikit-learn's weighted cut costs ~0.1 s a column per fit)
    for ours, unweighted in zip(balanced._bin_mapper.bin_thresholds_, plain._bin_mapper.bin_thresholds_):
        np.testing.assert_array_equal(ours, unweighted)
    assert any(not np.array_equal(u, t) for u, t in zip(plain._bin_mapper.bin_thresholds_, weighted._bin_mapper.bin_thresholds_))
    # ...while the class weights still shape the model: the minority class gains probability
    minority = np.argmin(np.bincount(y))
    assert balanced.predict_proba(X)[:, minority].mean() > plain.predict_proba(X)[:, minority].mean()
    assert pickle.loads(pickle.dumps(built)).predict(X).tolist() == built.predict(X).tolist()


@pytest.mark.parametrize("name, size", [("extra_trees", "n_estimators"), ("hist_gradient_boosting", "max_iter")])
def test_a_fit_told_one_second_stops_near_it_and_keeps_what_it_grew(name, size):
    X, y = load_diabetes(return_X_y=True)
    spec = SPECS[name]
    ctx = context("regression", n_samples=len(X), time_limit=1.0)
    # 100,000 trees or boosting iterations: unbounded, this fit takes minutes
    params = {**replay(spec, spec.default_params, ctx), size: 100_000}
    model = spec.build(params, ctx)
    started = time.monotonic()
    model.fit(X, y)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"{name} took {elapsed:.1f} s when told 1 s"
    assert 8 <= model.n_estimators_ < 100_000
    assert r2_score(y, model.predict(X)) > 0.3
    # as the worker and the run directory need it: a clone-able, pickle-able estimator
    assert clone(model).get_params()["max_seconds"] == 1.0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X))


@pytest.mark.parametrize(
    "load, task, floor",
    [(load_breast_cancer, "binary", 0.97), (load_iris, "multiclass", -0.4), (load_diabetes, "regression", -70)],
    ids=["binary", "multiclass", "regression"],
)
def test_fit_best_tunes_both_on_real_data(load, task, floor):
    X, y = load(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=MODELS, n_trials=2, cv=3, time_budget=None, save=False, verbose=0, ensemble=False,
                             portfolio=False)
    assert result.task == task
    board = result.leaderboard.set_index("model")
    for name in MODELS:
        assert board.loc[name, "complete"] == 2, name
        assert board.loc[name, "score"] > floor, name
        first = result.trials[result.trials["model"] == name].sort_values("number").iloc[0]["params"]
        assert first.items() <= SPECS[name].default_params.items(), "the first trial is the default"
    wrapper = TimeLimitedBoosting if result.model_name == "hist_gradient_boosting" else TimeLimitedEnsemble
    assert type(result.model.named_steps["model"]) is wrapper
    assert len(result.predict(X.iloc[:10])) == 10


def test_a_forest_predicts_a_few_rows_in_one_thread_and_many_on_every_core(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    X, y = load_breast_cancer(return_X_y=True)
    forest = TimeLimitedEnsemble(ExtraTreesClassifier(n_estimators=40, n_jobs=1, random_state=0)).fit(X, y)
    few = X[: PARALLEL_PREDICT_ROWS - 1]
    assert forest._predictor(few) is forest.estimator_, "one thread: the fitted model itself"
    cores = prediction_threads(len(X))
    many = forest._predictor(X)
    assert many.n_jobs == cores and many.estimators_ is forest.estimator_.estimators_
    assert forest.estimator_.n_jobs == 1, "a copy: requests served side by side never see each other's threads"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as a trial process sets it for its share of the cores
    assert prediction_threads(len(X)) == 1 and forest._predictor(X) is forest.estimator_


@pytest.mark.parametrize("rows", [1, PARALLEL_PREDICT_ROWS, 2000])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_forests_own_prediction_is_scikit_learns_in_the_same_order_on_any_threads(task, rows):
    # the wrapper averages the trees on threads of its own, not through joblib's pool
    load = load_iris if task == "multiclass" else load_diabetes
    X, y = load(return_X_y=True)
    X = np.tile(X, (int(np.ceil(rows / len(X))), 1))[:rows]
    cls = ExtraTreesClassifier if task == "multiclass" else ExtraTreesRegressor
    forest = TimeLimitedEnsemble(cls(n_estimators=30, n_jobs=2, random_state=0)).fit(*load(return_X_y=True))
    sklearn_forest = forest.estimator_
    np.testing.assert_allclose(forest.predict(X), sklearn_forest.predict(X), rtol=1e-12, atol=1e-12)
    if task == "multiclass":
        np.testing.assert_allclose(forest.predict_proba(X), sklearn_forest.predict_proba(X), rtol=0, atol=1e-12)
        assert forest.predict(X).dtype == sklearn_forest.predict(X).dtype
    twice = [forest.predict(X) for _ in range(3)]
    assert all(np.array_equal(twice[0], p) for p in twice), "the same numbers whatever thread ends first"


def test_a_forest_keeps_its_prediction_threads_between_calls_and_a_forked_child_predicts(monkeypatch):
    import multiprocessing
    import threading

    from automl.plugins import _anytime

    monkeypatch.setattr(_anytime, "prediction_threads", lambda rows: 3)  # two pool threads on any machine
    X, y = load_iris(return_X_y=True)
    forest = TimeLimitedEnsemble(ExtraTreesClassifier(n_estimators=30, random_state=0)).fit(X, y)
    expected = forest.estimator_.predict_proba(X)
    np.testing.assert_allclose(forest.predict_proba(X), expected, rtol=0, atol=1e-12)
    pool = _anytime._pool
    for _ in range(3):
        np.testing.assert_allclose(forest.predict_proba(X), expected, rtol=0, atol=1e-12)
    assert _anytime._pool is pool, "one pool for every call"
    assert sum(t.name.startswith("automl-predict") for t in threading.enumerate()) <= 2
    # a child forked with the pool's threads running has none of them: it starts its own pool
    with multiprocessing.get_context("fork").Pool(1) as child:
        np.testing.assert_allclose(child.apply(forest.predict_proba, (X,)), expected, rtol=0, atol=1e-12)


def test_boosting_fitted_on_one_thread_predicts_a_batch_on_every_core(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    X, y = load_breast_cancer(return_X_y=True)
    model = TimeLimitedBoosting(HistGradientBoostingClassifier(max_iter=10, random_state=0), n_threads=1).fit(X, y)
    expected = model.estimator_.predict_proba(X)
    seen, own = [], model.estimator_.predict_proba

    def recording(rows):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"))
        return own(rows)

    monkeypatch.setattr(model.estimator_, "predict_proba", recording)
    model.predict_proba(X[:10])
    np.testing.assert_array_equal(model.predict_proba(X), expected)
    assert seen == [1, prediction_threads(len(X))]


def test_a_forest_predicts_with_scikit_learns_checks():
    X, y = load_iris(return_X_y=True)
    forest = TimeLimitedEnsemble(ExtraTreesClassifier(n_estimators=5, random_state=0)).fit(X, y)
    with pytest.raises(ValueError, match="4 features"):
        forest.predict(X[:, :3])