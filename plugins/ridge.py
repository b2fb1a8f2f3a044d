"""Ridge regression: the linear baseline for regression."""

from sklearn.linear_model import Ridge

import automl


def _search_space(trial, context):
    return {"alpha": trial.suggest_float("alpha", 1e-4, 1e4, log=True)}


def _build(params, context):
    return Ridge(**params)


@automl.hookimpl
def automl_models():
    return [
        automl.ModelSpec(
            name="ridge",
            tasks={"regression"},
            search_space=_search_space,
            build=_build,
            default_params={"alpha": 1.0},
            preprocessing="onehot",
            cost=0.5,
            description="L2-regularized linear regression (scikit-learn)",
        )
    ]
