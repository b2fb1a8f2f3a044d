"""The plugin data types: what a plugin describes (ModelSpec) and what it is told (ModelContext)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ModelSpec", "ModelContext", "RunInfo", "TrialRecord", "TASKS", "PREPROCESSING"]

TASKS = frozenset({"binary", "multiclass", "regression"})

#: How a model wants its table prepared (always fitted inside each CV fold):
#: - "onehot": numeric columns imputed (median, with missing-value indicators where at least
#:   five rows miss a value) and
#:   standardized; categorical columns imputed and one-hot encoded. For linear models and
#:   neural networks.
#: - "ordinal": numeric columns imputed; categorical columns ordinal-encoded. For trees.
PREPROCESSING = ("onehot", "ordinal")


@dataclasses.dataclass(frozen=True)
class ModelContext:
    """Facts about the data a model is tuned on, handed to ``search_space`` and ``build``.

    :param task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
    :param seed: the run's seed; use it for ``random_state`` so results repeat.
    :param n_samples: rows in the data handed to the search (before the CV split).
    :param n_features: input columns (before encoding).
    :param n_classes: number of classes, 0 for regression.
    :param n_jobs: threads a model may use for one fit: the cores shared out between the
        run's parallel workers (``fit_best(n_jobs=...)``).
    :param time_limit: seconds one ``fit`` should take at most, or None for no limit. Models
        that train iteratively (epochs, boosting rounds) should stop early and keep what they
        have when it runs out; other models may ignore it. It shrinks as the budget is spent.
    """

    task: str
    seed: int
    n_samples: int
    n_features: int
    n_classes: int
    n_jobs: int = 1
    time_limit: float | None = None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One tunable model family, as a plugin returns it from ``automl_models``.

    :param name: unique, stable identifier (it is stored in saved runs), e.g. ``"random_forest"``.
    :param tasks: the tasks the model supports, drawn from ``{"binary", "multiclass", "regression"}``.
    :param search_space: ``search_space(trial, context) -> dict`` draws hyperparameters with
        ``trial.suggest_*`` and returns the keyword arguments that ``build`` takes. It may
        also put fixed values in the dict.
    :param build: ``build(params, context) -> estimator`` returns an unfitted
        scikit-learn-compatible estimator (``fit``/``predict``, plus ``predict_proba`` for
        classifiers when a probability metric is used).
    :param default_params: values for the first trial, keyed like the ``trial.suggest_*``
        names; a known-good configuration so even a tiny budget returns a sound model.
        Parameters missing from it are sampled.
    :param preprocessing: ``"onehot"`` (imputed, scaled numerics and one-hot categoricals; for
        linear models and networks) or ``"ordinal"`` (imputed numerics, ordinal-coded
        categoricals; for trees).
    :param cost: relative cost of one fit compared with a linear model (1.0). Cheaper models
        get their first trial earlier, which matters when the budget is small.
    :param description: one line shown by ``automl models``.
    :param requires: top-level names of modules the model needs that may be missing, e.g.
        ``("catboost",)`` for a library an optional extra installs. They are looked for with
        ``importlib.util.find_spec``, which imports nothing; when one is not found the model is
        not installed: ``fit_best`` and ``automl.list_models`` leave it out (a debug log says
        why), and ``automl models`` lists it as not installed, with ``install_hint``. Import the
        modules themselves in ``build`` or in the estimator's ``fit``, never at module level.
    :param install_hint: the command that installs what ``requires`` names, shown by
        ``automl models`` when something is missing, e.g. ``"pip install 'my-plugin[extra]'"``;
        empty: ``pip install`` and the missing modules.
    """

    name: str
    tasks: frozenset[str]
    search_space: Callable[[Any, ModelContext], dict[str, Any]]
    build: Callable[[dict[str, Any], ModelContext], Any]
    default_params: Mapping[str, Any] | None = None
    preprocessing: str = "onehot"
    cost: float = 1.0
    description: str = ""
    requires: tuple[str, ...] = ()
    install_hint: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"ModelSpec.name must be a non-empty string, got {self.name!r}")
        tasks = frozenset([self.tasks] if isinstance(self.tasks, str) else self.tasks)
        unknown = tasks - TASKS
        if not tasks or unknown:
            raise ValueError(
                f"ModelSpec {self.name!r}: tasks must be a non-empty subset of {sorted(TASKS)}, "
                f"got {sorted(map(str, tasks))}"
            )
        object.__setattr__(self, "tasks", tasks)
        for field in ("search_space", "build"):
            if not callable(getattr(self, field)):
                raise TypeError(f"ModelSpec {self.name!r}: {field} must be callable")
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(
                f"ModelSpec {self.name!r}: preprocessing must be one of {PREPROCESSING}, "
                f"got {self.preprocessing!r}"
            )
        if self.default_params is not None:
            object.__setattr__(self, "default_params", dict(self.default_params))
        requires = (self.requires,) if isinstance(self.requires, str) else tuple(self.requires)
        if not all(isinstance(m, str) and m and "." not in m for m in requires):
            raise TypeError(f"ModelSpec {self.name!r}: requires must hold top-level module names, got {requires!r}")
        object.__setattr__(self, "requires", requires)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What an observer hook is told about a run (see ``automl.hookspecs``)."""

    task: str
    metric: str
    models: tuple[str, ...]
    n_rows: int
    n_columns: int
    time_budget: float | None
    n_trials: int | None
    seed: int
    path: Any
    started: str


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as ``automl_trial_completed`` receives it."""

    model: str
    number: int
    state: str
    params: dict[str, Any]
    score: float | None
    duration: float
    error: str = ""
