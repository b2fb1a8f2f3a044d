"""Extremely randomized trees for every task: a forest whose split thresholds are drawn at
random, faster to grow than the random forest and often as accurate."""

from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

import automl
from automl.plugins._forest import forest_spec


def _max_features(trial, context):
    # scikit-learn's choice ("sqrt" of the features for classes, all of them for regression)
    # is the known-good start; the search also tries fractions
    if trial.suggest_categorical("max_features_rule", ["scikit-learn", "fraction"]) == "fraction":
        return trial.suggest_float("max_features", 0.1, 1.0)
    return 1.0 if context.task == "regression" else "sqrt"


@automl.hookimpl
def automl_models():
    # scikit-learn's defaults (no bootstrap: every tree sees every row), with 200 trees
    defaults = {"n_estimators": 200, "max_features_rule": "scikit-learn", "min_samples_leaf": 1, "bootstrap": False}
    return [forest_spec(
        "extra_trees", estimators=(ExtraTreesClassifier, ExtraTreesRegressor), max_features=_max_features,
        max_samples=True, defaults=defaults, cost=4.0, description="extremely randomized trees (scikit-learn)",
    )]
