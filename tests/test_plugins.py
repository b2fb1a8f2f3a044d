"""Plugin discovery through the real entry-point machinery, per-call plugins, and broken plugins."""

import sys
import textwrap

import optuna
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import load_breast_cancer
from sklearn.neighbors import KNeighborsClassifier

import automl
from automl._plugins import collect_models, get_plugin_manager

BUILT_INS = {"logistic_regression", "ridge", "random_forest", "extra_trees", "hist_gradient_boosting", "keras_mlp", "lightgbm"}


def test_built_ins_come_through_the_entry_point_group():
    pm = get_plugin_manager()
    for name in BUILT_INS:
        assert pm.get_plugin(name) is not None
        assert pm.distributions[name] == "automl-select"
    models = collect_models(pm)
    assert BUILT_INS <= set(models)
    assert models["keras_mlp"].distribution == "automl-select"


def test_every_task_has_at_least_three_families():
    for task in ("binary", "multiclass", "regression"):
        assert len(automl.list_models(task)) >= 3, task


class KnnPlugin:
    """A plugin object (not a module), as a user would pass it with plugins=[...]."""

    @automl.hookimpl
    def automl_models(self):
        return [
            automl.ModelSpec(
                name="knn",
                tasks={"binary", "multiclass"},
                search_space=lambda trial, ctx: {"n_neighbors": trial.suggest_int("n_neighbors", 1, 30)},
                build=lambda params, ctx: KNeighborsClassifier(**params),
                default_params={"n_neighbors": 5},
            )
        ]


def test_plugin_object_passed_per_call_is_searched_and_can_win():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=["knn"], plugins=[KnnPlugin()], n_trials=3, cv=3, save=False)
    assert result.model_name == "knn"
    assert isinstance(result.model.named_steps["model"], KNeighborsClassifier)
    assert set(result.trials["model"]) == {"knn"}
    assert result.trials.iloc[0]["params"] == {"n_neighbors": 5}, "the first trial is the default"
    # per call only: the next manager does not have it
    assert "knn" not in automl.list_models()


def test_duplicate_model_name_names_both_providers():
    class Again:
        @automl.hookimpl
        def automl_models(self):
            return [automl.ModelSpec("ridge", {"regression"}, lambda t, c: {}, lambda p, c: None)]

    with pytest.raises(automl.PluginError, match=r"'ridge' is provided twice: by plugin 'ridge' and by plugin"):
        collect_models(get_plugin_manager([Again()]))


def test_misspelled_hook_is_an_error_at_start_up():
    class Typo:
        @automl.hookimpl
        def automl_model(self):  # missing "s"
            return []

    with pytest.raises(automl.PluginError, match="automl_model"):
        get_plugin_manager([Typo()])


def test_hook_that_raises_is_skipped_with_a_warning():
    class Raises:
        @automl.hookimpl
        def automl_models(self):
            raise RuntimeError("boom")

    with pytest.warns(RuntimeWarning, match="raised in automl_models.*boom"):
        models = collect_models(get_plugin_manager([Raises()]))
    assert BUILT_INS <= set(models)


def test_hook_returning_wrong_type_is_a_plugin_error():
    class Wrong:
        @automl.hookimpl
        def automl_models(self):
            return [{"name": "x"}]

    with pytest.raises(automl.PluginError, match="returned a dict where an automl.ModelSpec was expected"):
        collect_models(get_plugin_manager([Wrong()]))


@pytest.fixture
def installed_distribution(tmp_path, monkeypatch):
    """Install a real (unpacked) distribution on sys.path, found by importlib.metadata."""

    def install(dist: str, module: str, source: str):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[automl.plugins]\n{module} = {module}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, module, raising=False)

    return install


def test_third_party_entry_point_plugin_is_discovered(installed_distribution):
    installed_distribution(
        "automl-extra-trees",
        "automl_extra_trees_plugin",
        """
        import automl
        from sklearn.ensemble import ExtraTreesClassifier

        @automl.hookimpl
        def automl_models():
            return [automl.ModelSpec(
                name="extra_trees_test",
                tasks={"binary"},
                search_space=lambda trial, ctx: {"n_estimators": trial.suggest_int("n_estimators", 10, 50)},
                build=lambda params, ctx: ExtraTreesClassifier(**params, random_state=ctx.seed),
                preprocessing="ordinal",
            )]
        """,
    )
    models = collect_models(get_plugin_manager())
    assert models["extra_trees_test"].distribution == "automl-extra-trees"
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=["extra_trees_test"], n_trials=2, cv=3, save=False, ensemble=False)
    assert result.model_name == "extra_trees_test"


def test_plugin_that_fails_to_import_is_skipped_with_a_warning(installed_distribution):
    installed_distribution("automl-broken", "automl_broken_plugin", "raise ImportError('needs libfoo')\n")
    with pytest.warns(RuntimeWarning, match=r"plugin 'automl_broken_plugin'.*automl-broken.*needs libfoo"):
        names = automl.list_models()
    assert BUILT_INS <= set(names)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_built_in_search_space_under_fixed_trial(task):
    """Defaults and a random draw of every built-in space build an estimator of the right kind."""
    models = collect_models(get_plugin_manager())
    context = automl.ModelContext(task=task, seed=0, n_samples=500, n_features=8, n_classes=0 if task == "regression" else 3)
    for name, registered in models.items():
        spec = registered.spec
        if task not in spec.tasks:
            continue
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        # the defaults, completed with the space's own choices where the defaults are silent
        probe = study.ask()
        drawn = spec.search_space(probe, context)
        fixed = {**probe.params, **{k: v for k, v in (spec.default_params or {}).items() if k in probe.params}}
        for params in (spec.search_space(optuna.trial.FixedTrial(fixed), context), drawn):
            estimator = spec.build(params, context)
            assert is_regressor(estimator) if task == "regression" else is_classifier(estimator), name
            assert estimator.get_params()


def test_model_spec_rejects_bad_fields():
    with pytest.raises(ValueError, match="tasks must be a non-empty subset"):
        automl.ModelSpec("x", {"ranking"}, lambda t, c: {}, lambda p, c: None)
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        automl.ModelSpec("x", {"binary"}, lambda t, c: {}, lambda p, c: None, preprocessing="raw")
    with pytest.raises(TypeError, match="build must be callable"):
        automl.ModelSpec("x", {"binary"}, lambda t, c: {}, None)


def test_an_entry_point_whose_name_is_taken_is_skipped_with_a_warning(monkeypatch):
    import importlib.metadata

    from automl import _plugins

    real = importlib.metadata.entry_points(group=_plugins.ENTRY_POINT_GROUP)
    taken = next(ep for ep in real if ep.name == "lightgbm")

    class Impostor:
        name, value, group = "lightgbm", "automl_impostor", _plugins.ENTRY_POINT_GROUP
        dist = type("Dist", (), {"name": "automl-impostor"})()

        def load(self):
            raise AssertionError("a skipped entry point is not imported")

    monkeypatch.setattr(_plugins.importlib.metadata, "entry_points", lambda group: [*real, Impostor()])
    with pytest.warns(RuntimeWarning, match="'lightgbm' from distribution 'automl-impostor' is skipped: distribution 'automl-select'"):
        pm = _plugins.get_plugin_manager()
    assert pm.distributions["lightgbm"] == taken.dist.name == "automl-select"
