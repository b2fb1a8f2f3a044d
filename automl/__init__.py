"""automl: one call finds, tunes and saves the best model for a table; models are plugins.

    >>> import automl
    >>> result = automl.fit_best(X, y, time_budget=60)
    >>> result.leaderboard
    >>> automl.load(result.path).predict(X_new)
    >>> automl.evaluate(result.path, X_new, y_new).verdict   # "ok", "drift" or "degraded"
    >>> automl.report(result.path, X, y)                     # RUN_DIR/report/report.html

Importing this package is cheap: the engine (scikit-learn, Optuna, pandas) loads on first use
of the names that need it, and TensorFlow only when a Keras model trains.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._exceptions import AutoMLError, InputError, Interrupted, PluginError, RunDirectoryError, SearchError
from ._spec import ModelContext, ModelSpec, RunInfo, TrialRecord
from .hookspecs import hookimpl

from ._version import __version__  # noqa: F401  (automl.__version__)

# name -> module that defines it; imported when first touched (PEP 562)
_LAZY = {
    "fit_best": ".fit.api",
    "evaluate": ".review.evaluate",
    "Evaluation": ".review.evaluate",
    "Result": ".store.result",
    "load": ".store.persist",
    "report": ".review.report",
    "list_models": "._plugins",
    "get_plugin_manager": "._plugins",
    "AutoMLClassifier": ".fit.estimators",
    "AutoMLRegressor": ".fit.estimators",
}

__all__ = [
    "AutoMLClassifier",
    "AutoMLError",
    "AutoMLRegressor",
    "Evaluation",
    "InputError",
    "Interrupted",
    "ModelContext",
    "ModelSpec",
    "PluginError",
    "Result",
    "RunDirectoryError",
    "RunInfo",
    "SearchError",
    "TrialRecord",
    "evaluate",
    "fit_best",
    "get_plugin_manager",
    "hookimpl",
    "list_models",
    "load",
    "report",
]

if TYPE_CHECKING:
    from .fit.api import fit_best
    from .fit.estimators import AutoMLClassifier, AutoMLRegressor
    from .review.evaluate import Evaluation, evaluate
    from .store.persist import load
    from ._plugins import get_plugin_manager, list_models
    from .review.report import report
    from .store.result import Result


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
