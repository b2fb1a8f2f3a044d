"""A portfolio of starting configurations: the first trials follow its order across models, a
model without entries keeps its defaults, ``portfolio=False`` starts from the defaults, and a
bad portfolio is refused before anything is written."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

import automl
from conftest import TrialOrder
from automl import InputError
from automl._plugins import collect_models
from automl.search.portfolio import PACKAGE_FILE, Portfolio, first_round_ranks, later_queue

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"

FOREST_A = {"n_estimators": 60, "max_features": 0.3, "min_samples_leaf": 3, "bootstrap": True,
            "criterion": "entropy", "class_weight": None}
FOREST_B = {"n_estimators": 50, "max_features": 0.8, "min_samples_leaf": 1, "bootstrap": False,
            "criterion": "gini", "class_weight": "balanced_subsample"}
LOGISTIC_A = {"C": 0.05, "class_weight": "balanced"}
LOGISTIC_B = {"C": 20.0, "class_weight": None}
PORTFOLIO = {
    "provenance": {"corpus": "written by hand for this test"},
    "tasks": {"binary": [
        {"model": "random_forest", "params": FOREST_A},
        {"model": "logistic_regression", "params": LOGISTIC_A},
        {"model": "random_forest", "params": FOREST_B},
        {"model": "random_forest", "params": FOREST_A},  # a repeat: run once
        {"model": "logistic_regression", "params": LOGISTIC_B},
        {"model": "keras_mlp", "params": {"units": 8}},  # a model this run does not search
    ]},
}


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def _run(cancer, portfolio, models, **kwargs):
    order = TrialOrder()
    result = automl.fit_best(*cancer, models=models, n_trials=3, cv=3, time_budget=None, save=False, verbose=0,
                             seed=4, plugins=[order], portfolio=portfolio, ensemble=False, **kwargs)
    return result, [(r.model, r.params) for r in order.records]


def test_first_trials_follow_the_portfolio_across_models_and_repeat(cancer):
    models = ["logistic_regression", "random_forest", "extra_trees"]
    result, order = _run(cancer, PORTFOLIO, models)
    defaults = {n: dict(m.spec.default_params) for n, m in collect_models(automl.get_plugin_manager()).items()}
    # first round: the models in the order of their first entry, then extra_trees (no entries)
    # with its defaults; then the portfolio's later entries in order; then TPE's own
    assert order[:5] == [
        ("random_forest", FOREST_A), ("logistic_regression", LOGISTIC_A), ("extra_trees", defaults["extra_trees"]),
        ("random_forest", FOREST_B), ("logistic_regression", LOGISTIC_B),
    ]
    assert len(order) == 9 and all(p != defaults[m] for m, p in order if m != "extra_trees"), "no default ran"
    assert result.manifest["portfolio"] == {
        "source": "given", "entries": 4, "models": ["logistic_regression", "random_forest"], "from_plugins": [],
        "provenance": {"corpus": "written by hand for this test"},
    }
    again, order_again = _run(cancer, PORTFOLIO, models)
    assert order_again == order
    assert again.leaderboard["score"].tolist() == result.leaderboard["score"].tolist()


class NeighboursPlugin:
    """A third-party model with portfolio entries of its own, and one entry for a model it does not own."""

    @automl.hookimpl
    def automl_models(self):
        from sklearn.neighbors import KNeighborsClassifier

        return [automl.ModelSpec(
            name="knn", tasks={"binary", "multiclass"}, default_params={"n_neighbors": 5},
            search_space=lambda trial, ctx: {"n_neighbors": trial.suggest_int("n_neighbors", 1, 50)},
            build=lambda params, ctx: KNeighborsClassifier(**params),
        )]

    @automl.hookimpl
    def automl_portfolio(self, task):
        if task != "binary":
            return []
        return [{"model": "knn", "params": {"n_neighbors": 15}},
                {"model": "random_forest", "params": FOREST_B},  # not its own: skipped
                {"model": "knn", "params": {"n_neighbors": 30}}]


def test_a_plugin_adds_portfolio_entries_for_its_own_models(cancer):
    order = TrialOrder()
    with pytest.warns(RuntimeWarning, match="plugin .* returned a portfolio entry that is not .*random_forest"):
        result = automl.fit_best(*cancer, models=["logistic_regression", "random_forest", "knn"], n_trials=3, cv=3,
                                 time_budget=None, save=False, verbose=0, seed=4, ensemble=False,
                                 plugins=[order, NeighboursPlugin()], portfolio=PORTFOLIO)
    trials = [(r.model, r.params) for r in order.records]
    # the plugin's model comes after the portfolio's own in the first round, its second entry after theirs
    assert trials[:6] == [
        ("random_forest", FOREST_A), ("logistic_regression", LOGISTIC_A), ("knn", {"n_neighbors": 15}),
        ("random_forest", FOREST_B), ("logistic_regression", LOGISTIC_B), ("knn", {"n_neighbors": 30}),
    ]
    assert result.manifest["portfolio"]["from_plugins"] == ["knn"]
    assert result.manifest["portfolio"]["entries"] == 6
    # without a portfolio the plugin's entries are not used either: the knn default first
    order = TrialOrder()
    automl.fit_best(*cancer, models=["knn"], n_trials=1, cv=3, time_budget=None, save=False, verbose=0,
                    plugins=[order, NeighboursPlugin()], portfolio=False)
    assert [r.params for r in order.records] == [{"n_neighbors": 5}]


def test_without_a_portfolio_every_model_starts_from_its_defaults(cancer):
    result, order = _run(cancer, False, ["random_forest", "logistic_regression"])
    defaults = {n: dict(m.spec.default_params) for n, m in collect_models(automl.get_plugin_manager()).items()}
    assert order[:2] == [("logistic_regression", defaults["logistic_regression"]),
                         ("random_forest", defaults["random_forest"])], "cheapest first"
    assert result.manifest["portfolio"] is None


def test_the_portfolio_helpers():
    portfolio = Portfolio.resolve(PORTFOLIO)
    entries = portfolio.entries("binary", ["random_forest", "logistic_regression"])
    assert [m for m, _ in entries] == ["random_forest", "logistic_regression", "random_forest", "logistic_regression"]
    assert first_round_ranks(entries) == {"random_forest": 0, "logistic_regression": 1}
    assert later_queue(entries) == ["random_forest", "logistic_regression"]
    assert portfolio.entries("regression", ["random_forest"]) == []
    assert Portfolio.resolve(False) is None and Portfolio.resolve(None) is None


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_built_in_portfolio_ships_and_replays_through_each_models_space(task):
    """Every entry names a built-in model of its task, and its parameters are ones the model's
    search space takes back (what the study is given to enqueue)."""
    from automl._spec import ModelContext
    from automl.search.studies import params_of

    assert PACKAGE_FILE.exists(), "the built-in portfolio is package data"
    builtin = Portfolio.resolve(True)
    assert builtin.source == "built-in"
    assert builtin.provenance["command"] and builtin.provenance["tables"][task] > 0
    models = collect_models(automl.get_plugin_manager(), include_missing=True)
    entries = builtin.tasks[task]
    assert len(entries) >= 8 and len({m for m, _ in entries}) >= 2
    context = ModelContext(task=task, seed=0, n_samples=500, n_features=8,
                           n_classes={"binary": 2, "multiclass": 4}.get(task, 0), n_jobs=1)
    for model, params in entries:
        assert task in models[model].spec.tasks
        assert params_of(models[model].spec, params, context), (model, params)


@pytest.mark.parametrize(("portfolio", "message"), [
    ("missing.json", "portfolio file missing.json does not exist"),
    ({"tasks": {"ranking": []}}, "unknown task 'ranking'"),
    ({"tasks": {"binary": [{"model": "random_forest"}]}}, "an entry of 'binary' must be"),
    ({"entries": []}, "expected a 'tasks' mapping"),
    (3, "portfolio must be True, False, a path"),
])
def test_a_bad_portfolio_is_refused_before_anything_is_written(cancer, tmp_path, portfolio, message):
    with pytest.raises(InputError, match=message):
        automl.fit_best(*cancer, n_trials=1, path=tmp_path / "run", portfolio=portfolio)
    assert not (tmp_path / "run").exists()


def test_cli_takes_a_portfolio_file_or_none(tmp_path):
    data = tmp_path / "cancer.csv"
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.assign(target=y).to_csv(data, index=False)
    (tmp_path / "portfolio.json").write_text(json.dumps(PORTFOLIO))
    done = subprocess.run(
        [AUTOML, "fit", str(data), "--target", "target", "--models", "logistic_regression", "--n-trials", "2",
         "--time-budget", "60", "--portfolio", str(tmp_path / "portfolio.json"), "--path", str(tmp_path / "run"),
         "--quiet", "--no-ensemble"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["portfolio"]["source"] == str(tmp_path / "portfolio.json")
    assert manifest["portfolio"]["entries"] == 2
    both = subprocess.run([AUTOML, "fit", str(data), "--target", "target", "--no-portfolio", "--portfolio", "x.json"],
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
