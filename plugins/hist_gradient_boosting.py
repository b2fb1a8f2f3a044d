"""Histogram gradient boosting for every task: scikit-learn's boosted trees, strong with its
defaults and fast on large tables."""

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import automl
from automl.plugins._anytime import TimeLimitedBoosting

#: Tables with more rows than this stop boosting when a 10% validation split stops improving
#: (scikit-learn's threshold for early_stopping="auto"). On smaller tables the rows held out cost
#: more accuracy than the time saved is worth; the time limit bounds their fits anyway.
EARLY_STOPPING_ROWS = 10_000
#: One OpenMP thread per this many rows, up to context.n_jobs: a smaller table gains little from
#: more, and loses much on a busy machine (100 iterations on 300 rows: 0.1 s with one thread,
#: 2.7 s with two while another process keeps one of two cores busy).
ROWS_PER_THREAD = 10_000


def _search_space(trial, context):
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_iter": trial.suggest_int("max_iter", 100, 1000, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
        # decided on the whole table, not per fit ("auto" would decide per fold and refit)
        "early_stopping": context.n_samples > EARLY_STOPPING_ROWS,
    }
    if context.task != "regression":
        params["class_weight"] = trial.suggest_categorical("class_weight", [None, "balanced"])
    return params


class ClassWeightedBoostingClassifier(HistGradientBoostingClassifier):
    """scikit-learn's classifier, but its bins are cut at the quantiles of the rows as they are.

    scikit-learn 1.9 cuts the bins at weighted quantiles whenever rows are weighted, as
    ``class_weight="balanced"`` does: about 0.1 s per numeric column with more distinct values
    than bins, in every fit, however few the rows (a fit on 380 rows x 30 columns: 4.5 s
    instead of 0.35 s). The weights still weigh every gradient; only the bin edges ignore them.
    """

    def _bin_data(self, X, sample_weight, is_training_data):
        return super()._bin_data(X, None, is_training_data)


def _build(params, context):
    cls = HistGradientBoostingRegressor if context.task == "regression" else ClassWeightedBoostingClassifier
    threads = max(1, min(context.n_jobs, context.n_samples // ROWS_PER_THREAD))
    # boosted in batches of iterations, so that a fit stops in time with fewer of them
    return TimeLimitedBoosting(cls(**params, random_state=context.seed), max_seconds=context.time_limit, n_threads=threads)


@automl.hookimpl
def automl_models():
    # scikit-learn's defaults (its l2_regularization of 0 is the bottom of the log scale here)
    defaults = {
        "learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
        "l2_regularization": 1e-6, "max_features": 1.0,
    }
    return [
        automl.ModelSpec(
            name="hist_gradient_boosting",
            tasks={"binary", "multiclass", "regression"},
            search_space=_search_space,
            build=_build,
            default_params={**defaults, "class_weight": None},
            # missing values arrive imputed and categories as ordinal codes, which trees split on
            preprocessing="ordinal",
            cost=3.0,
            description="histogram gradient boosting (scikit-learn)",
        )
    ]
