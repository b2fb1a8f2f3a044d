"""What the forest plugins (``random_forest``, ``extra_trees``) share: their ModelSpec, with
the search space around their differences and ``build``.

Not a plugin itself (it registers no hook).
"""

from __future__ import annotations

import functools

import automl
from automl.plugins._anytime import TimeLimitedEnsemble

__all__ = ["build_forest", "forest_space", "forest_spec"]


def forest_spec(name, *, estimators, max_features, defaults, cost, description, max_samples=False):
    """The ModelSpec of a scikit-learn forest for every task.

    :param estimators: the forest classes (for classes, for regression).
    :param max_features: ``max_features(trial, context)`` suggests the features tried per split.
    :param defaults: the first trial's values; the scikit-learn criterion and class weights
        are added for classification.
    :param max_samples: also tune the rows drawn per tree when trees are bootstrapped.
    """
    return automl.ModelSpec(
        name=name,
        tasks={"binary", "multiclass", "regression"},
        search_space=functools.partial(forest_space, max_features=max_features, max_samples=max_samples),
        build=functools.partial(build_forest, classifier=estimators[0], regressor=estimators[1]),
        default_params={**defaults, "criterion": "gini", "class_weight": None},
        preprocessing="ordinal",
        cost=cost,
        description=description,
    )


def forest_space(trial, context, *, max_features, max_samples: bool = False):
    """A forest's hyperparameters (``forest_spec`` tells the arguments)."""
    params = {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "max_features": max_features(trial, context),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "bootstrap": trial.suggest_categorical("bootstrap", [True, False]),
    }
    if max_samples and params["bootstrap"]:
        params["max_samples"] = trial.suggest_float("max_samples", 0.5, 1.0)
    if context.task != "regression":
        params["criterion"] = trial.suggest_categorical("criterion", ["gini", "entropy"])
        params["class_weight"] = trial.suggest_categorical("class_weight", [None, "balanced_subsample"])
    return params


def build_forest(params, context, *, classifier, regressor):
    """``classifier`` or ``regressor`` as the task asks, seeded, on ``context.n_jobs`` threads,
    grown in batches so that a fit stops in time on large tables (with fewer trees)."""
    cls = regressor if context.task == "regression" else classifier
    forest = cls(**params, random_state=context.seed, n_jobs=context.n_jobs)
    return TimeLimitedEnsemble(forest, max_seconds=context.time_limit)
