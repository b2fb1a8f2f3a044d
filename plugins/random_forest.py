"""Random forest for every task: robust with little tuning, the AutoML Benchmark's baseline."""

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import automl
from automl.plugins._anytime import TimeLimitedEnsemble


def _search_space(trial, context):
    params = {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "max_features": trial.suggest_float("max_features", 0.05, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "bootstrap": trial.suggest_categorical("bootstrap", [True, False]),
    }
    if context.task != "regression":
        params["criterion"] = trial.suggest_categorical("criterion", ["gini", "entropy"])
        params["class_weight"] = trial.suggest_categorical("class_weight", [None, "balanced_subsample"])
    return params


def _build(params, context):
    cls = RandomForestRegressor if context.task == "regression" else RandomForestClassifier
    forest = cls(**params, random_state=context.seed, n_jobs=context.n_jobs)
    # grown in batches so that a fit stops in time on large tables, with fewer trees
    return TimeLimitedEnsemble(forest, max_seconds=context.time_limit)


@automl.hookimpl
def automl_models():
    defaults = {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 1, "bootstrap": True}
    return [
        automl.ModelSpec(
            name="random_forest",
            tasks={"binary", "multiclass", "regression"},
            search_space=_search_space,
            build=_build,
            # criterion and class_weight (classification only) are sampled in the first trial
            # unless given here; the scikit-learn defaults are the known-good choice.
            default_params={**defaults, "criterion": "gini", "class_weight": None},
            preprocessing="ordinal",
            cost=5.0,
            description="random forest (scikit-learn)",
        )
    ]
