"""Random forest for every task: robust with little tuning, the AutoML Benchmark's baseline."""

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import automl
from automl.plugins._forest import forest_spec


def _max_features(trial, context):
    return trial.suggest_float("max_features", 0.05, 1.0)


@automl.hookimpl
def automl_models():
    defaults = {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 1, "bootstrap": True}
    return [forest_spec(
        "random_forest", estimators=(RandomForestClassifier, RandomForestRegressor),
        max_features=_max_features, defaults=defaults, cost=5.0, description="random forest (scikit-learn)",
    )]
