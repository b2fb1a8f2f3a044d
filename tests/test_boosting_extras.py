"""The built-in catboost and xgboost models (the ``boost`` extra, in the test extra too): early
stopping on held-out rows, the time limit, determinism, pickling, scikit-learn's estimator
checks, fit_best tuning each on real data, and what happens where the library is not installed."""

import importlib
import subprocess
import sys
import time

import joblib
import optuna
import pytest
from automl.plugins import (  # they import without their libraries
    catboost_boost,
    xgboost_boost,
)
from automl.plugins._boosting import MIN_ROWS_FOR_EARLY_STOPPING
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_import import loaded_to_predict

import automl
from automl._plugins import collect_models, get_plugin_manager
from automl.fit.settings import choose_models

catboost = pytest.importorskip("catboost", reason="the catboost model needs CatBoost (the boost extra)")
xgboost = pytest.importorskip("xgboost", reason="the xgboost model needs XGBoost (the boost extra)")

# XGBoost's note when scikit-learn's checks hand it a sparse format other than CSR
pytestmark = pytest.mark.filterwarnings("ignore:Unknown data type:UserWarning")

PLUGINS = {"catboost": catboost_boost, "xgboost": xgboost_boost}
#: each model's cap on boosting rounds
SIZE = {"catboost": "iterations", "xgboost": "n_estimators"}
MODELS = collect_models(get_plugin_manager())


def context(task, **changes):
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task]
    return automl.ModelContext(**{"task": task, "seed": 7, "n_samples": 300, "n_features": 10, "n_classes": n_classes, **changes})


def built(name, task, **params):
    """The model as fit_best builds it: the spec's build, on its defaults changed by ``params``."""
    spec = MODELS[name].spec
    return spec.build({**spec.default_params, **params}, context(task))


#: What scikit-learn's checks ask that a library does otherwise, with the reason
EXPECTED_FAILED_CHECKS = {
    "EarlyStoppedCatBoost": {
        "check_fit2d_1sample": "CatBoost refuses a table whose features are all constant (as one row's are) with its own error",
    },
}


@parametrize_with_checks([
    catboost_boost.EarlyStoppedCatBoost(catboost.CatBoostClassifier(iterations=10, thread_count=1, random_state=0, verbose=False, allow_writing_files=False)),
    catboost_boost.EarlyStoppedCatBoost(catboost.CatBoostRegressor(iterations=10, thread_count=1, random_state=0, verbose=False, allow_writing_files=False)),
    xgboost_boost.EarlyStoppedXGB(xgboost.XGBClassifier(n_estimators=10, n_jobs=1, random_state=0)),
    xgboost_boost.EarlyStoppedXGB(xgboost.XGBRegressor(n_estimators=10, n_jobs=1, random_state=0)),
], expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name", PLUGINS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_defaults_are_a_whole_configuration_with_the_contexts_seed_threads_and_time(name, task):
    spec, defaults = MODELS[name].spec, PLUGINS[name].DEFAULT_PARAMS
    params = spec.search_space(optuna.trial.FixedTrial(defaults), context(task))
    assert params == defaults == spec.default_params
    model = spec.build(params, context(task, n_jobs=2, n_samples=50_000, time_limit=4.0))
    booster = model.estimator.get_params()
    threads = "thread_count" if name == "catboost" else "n_jobs"
    assert (booster["random_state"], booster[threads], model.max_seconds) == (7, 2, 4.0)
    assert spec.build(params, context(task, n_jobs=2)).estimator.get_params()[threads] == 1  # 300 rows: one thread


@pytest.mark.parametrize("name", PLUGINS)
def test_boosting_stops_early_on_the_held_out_rows_and_repeats_for_a_seed(name):
    X, y = load_breast_cancer(return_X_y=True)
    assert len(y) >= MIN_ROWS_FOR_EARLY_STOPPING
    model = built(name, "binary", **{SIZE[name]: 3000, "learning_rate": 0.3}).fit(X, y)
    assert model.n_estimators_ < 3000 and model.score(X, y) > 0.95
    again = built(name, "binary", **{SIZE[name]: 3000, "learning_rate": 0.3}).fit(X, y)
    assert again.n_estimators_ == model.n_estimators_
    assert (again.predict_proba(X) == model.predict_proba(X)).all(), "the held-out rows and the model are seeded"


@pytest.mark.parametrize("name", PLUGINS)
def test_the_time_limit_ends_boosting_and_keeps_the_trees(name):
    X, y = load_diabetes(return_X_y=True)  # 442 rows: no early stopping, only the clock stops it
    model = built(name, "regression", **{SIZE[name]: 100_000})
    model.max_seconds = 0.3
    started = time.monotonic()
    model.fit(X, y)
    assert time.monotonic() - started < 5 and 0 < model.n_estimators_ < 100_000
    assert model.score(X, y) > 0.3


@pytest.mark.parametrize("name", PLUGINS)
def test_labels_come_back_as_given_and_the_model_pickles(name, tmp_path):
    X, y = load_iris(return_X_y=True)
    labels = y.astype(str).astype(object)
    labels[labels == "2"] = "virginica"
    model = built(name, "multiclass", **{SIZE[name]: 30}).fit(X, labels)
    predicted = model.predict(X)
    assert predicted.shape == (150,) and set(predicted) == {"0", "1", "virginica"}
    assert list(model.classes_) == ["0", "1", "virginica"] and model.predict_proba(X).shape == (150, 3)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert (loaded.predict(X) == predicted).all() and (loaded.predict_proba(X) == model.predict_proba(X)).all()
    assert not list(tmp_path.glob("catboost_info*")), "CatBoost wrote its training folder"  # the working directory


@pytest.mark.parametrize("name", PLUGINS)
def test_fit_best_tunes_it_from_its_defaults_and_saves_it(name, tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X, y = X.iloc[::2], y.iloc[::2]  # 285 rows: quick folds
    result = automl.fit_best(
        X, y, models=[name], n_trials=1, cv=2, time_budget=None, ensemble=False, path=tmp_path / "run", verbose=0,
        portfolio=False,
    )
    row = result.leaderboard.set_index("model").loc[name]
    assert result.model_name == name and row["complete"] == 1 and row["score"] > 0.95
    assert result.trials.iloc[0]["params"] == PLUGINS[name].DEFAULT_PARAMS, "the first trial is the default"
    assert type(result.model.named_steps["model"]).__module__ == PLUGINS[name].__name__
    # saved and loaded in a fresh process, it predicts without TensorFlow (or anything else heavy)
    assert loaded_to_predict(result.path, "from sklearn.datasets import load_breast_cancer as load") == set()


def test_listing_models_imports_neither_library():
    code = "import sys, automl; automl.list_models(); print(sorted({'catboost', 'xgboost'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture
def not_installed(monkeypatch):
    """CatBoost and XGBoost made unimportable (``import catboost`` raises ImportError), and their
    plugin modules forgotten, so that discovery imports them again without the libraries."""
    for library in PLUGINS:
        monkeypatch.setitem(sys.modules, library, None)
    for plugin in PLUGINS.values():
        monkeypatch.delitem(sys.modules, plugin.__name__)
        monkeypatch.delattr(sys.modules["automl.plugins"], plugin.__name__.rpartition(".")[2])
    with pytest.raises(ImportError):
        importlib.import_module("catboost")


def test_without_the_libraries_fit_best_leaves_them_out(not_installed, caplog):
    with caplog.at_level("DEBUG", logger="automl._plugins"):
        registered = collect_models(get_plugin_manager())  # the plugin modules import without them
    assert "lightgbm" in registered and not set(PLUGINS) & set(registered)
    assert "model 'catboost' is not used: catboost not installed (pip install 'automl-select[boost]')" in caplog.text
    assert not set(PLUGINS) & set(automl.list_models())
    chosen = {m.spec.name for m in choose_models(registered, None, "binary")}  # as fit_best chooses
    assert "lightgbm" in chosen and not set(PLUGINS) & chosen
    listed = collect_models(get_plugin_manager(), include_missing=True)
    assert listed["xgboost"].missing == ("xgboost",) and MODELS["xgboost"].missing == ()


def test_naming_a_model_that_is_not_installed_says_how_to_install_it(not_installed):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    listed = collect_models(get_plugin_manager(), include_missing=True)  # as fit_best collects
    chosen = {m.spec.name for m in choose_models(listed, None, "binary")}
    assert "lightgbm" in chosen and not set(PLUGINS) & chosen
    with pytest.raises(automl.InputError, match=r"model 'catboost' is not installed: catboost cannot be "
                       r"imported; install it with pip install 'automl-select\[boost\]'"):
        automl.fit_best(X, y, models=["catboost", "lightgbm"], n_trials=1, cv=2)


def test_automl_models_lists_them_as_not_installed_with_the_pip_command():
    code = (
        "import sys; sys.modules.update(catboost=None, xgboost=None)\n"
        "from automl._cli import main; sys.exit(main(['models']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    by_name = {line.split()[0]: line for line in done.stdout.splitlines()}
    for name in PLUGINS:
        assert by_name[name].endswith("[not installed: pip install 'automl-select[boost]']"), by_name[name]
        assert "automl-select" in by_name[name] and "binary,multiclass,regression" in by_name[name]
    assert "not installed" not in by_name["lightgbm"]
