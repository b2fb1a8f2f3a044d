"""automl: one call finds, tunes and saves the best model for a table; models are plugins.

    >>> import automl
    >>> result = automl.fit_best(X, y, time_budget=60)
    >>> result.leaderboard
    >>> automl.load(result.path).predict(X_new)
    >>> automl.evaluate(result.path, X_new, y_new).verdict   # "ok", "drift" or "degraded"
    >>> automl.report(result.path, X, y)                     # RUN_DIR/report/report.html

Importing this package is cheap: the engine (scikit-learn, Optuna, pandas) loads on first use
of the names that need it, and TensorFlow only when a Keras model trains or loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._exceptions import AutoMLError, InputError, Interrupted, PluginError, RunDirectoryError, SearchError
from ._spec import ModelContext, ModelSpec, RunInfo, TrialRecord
from .hookspecs import hookimpl

__version__ = "0.1.0"

# name -> private module that defines it; imported when first touched (PEP 562)
_LAZY = {
    "fit_best": "._api",
    "evaluate": "._evaluate",
    "Evaluation": "._evaluate",
    "Result": "._result",
    "load": "._persist",
    "report": "._report",
    "list_models": "._plugins",
    "get_plugin_manager": "._plugins",
    "AutoMLClassifier": "._estimators",
    "AutoMLRegressor": "._estimators",
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
    from ._api import fit_best
    from ._estimators import AutoMLClassifier, AutoMLRegressor
    from ._evaluate import Evaluation, evaluate
    from ._persist import load
    from ._plugins import get_plugin_manager, list_models
    from ._report import report
    from ._result import Result


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'automl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
