"""Logistic regression (binary and multiclass): a fast, well-calibrated linear baseline."""

from sklearn.linear_model import LogisticRegression

import automl


def _search_space(trial, context):
    return {
        "C": trial.suggest_float("C", 1e-4, 1e3, log=True),
        "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
    }


def _build(params, context):
    return LogisticRegression(**params, max_iter=2000, random_state=context.seed)


@automl.hookimpl
def automl_models():
    return [
        automl.ModelSpec(
            name="logistic_regression",
            tasks={"binary", "multiclass"},
            search_space=_search_space,
            build=_build,
            default_params={"C": 1.0, "class_weight": None},
            preprocessing="onehot",
            cost=1.0,
            description="L2-regularized logistic regression (scikit-learn)",
        )
    ]
