"""``fit_best``'s arguments, checked once: a bad one raises ``InputError`` before anything is
written or started."""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import InputError
from ..search.portfolio import Portfolio
from .._plugins import RegisteredModel

__all__ = ["FitSettings", "available_cores", "choose_models"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """The arguments of one ``fit_best`` call, as checked (see ``fit_best`` for their meaning)."""

    task: str = "auto"
    metric: str | None = None
    time_budget: float | None = 60.0
    n_trials: int | None = None
    cv: Any = "auto"
    models: Sequence[str] | None = None
    plugins: Iterable[object] = ()
    seed: int = 0
    n_jobs: int = 1
    storage: Any = None
    path: Path | None = None
    test_size: float | None = None
    save: bool = True
    memory_limit: float | None = None
    resume: bool = False
    warm_start: Any = None
    verbose: int = 1
    study_name: str | None = None
    data_location: str | None = None
    ensemble: bool = True
    max_predict_ms: float | None = None
    portfolio: Any = True
    #: ``portfolio`` as read: a Portfolio, or None for none
    chosen_portfolio: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_budget(self.time_budget, self.n_trials)
        if self.time_budget is not None:
            object.__setattr__(self, "time_budget", float(self.time_budget))
        if self.n_trials is not None:
            object.__setattr__(self, "n_trials", int(self.n_trials))
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise InputError(f"verbose must be 0 (no progress display) or 1, got {self.verbose!r}")
        n_jobs = self.n_jobs
        if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or not (n_jobs >= 1 or n_jobs == -1):
            raise InputError(f"n_jobs must be a positive integer (or -1 for one worker per core), got {n_jobs!r}")
        limit = self.memory_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
            raise InputError(f"memory_limit must be a positive number of megabytes (or None), got {limit!r}")
        ms = self.max_predict_ms
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, numbers.Real) or not ms > 0):
            raise InputError(f"max_predict_ms must be a positive number of milliseconds per 1,000 rows (or None), got {ms!r}")
        # read (and checked) once here: a bad file is an error before any work, not mid-run
        object.__setattr__(self, "chosen_portfolio", Portfolio.resolve(self.portfolio))
        if not isinstance(self.ensemble, bool):
            raise InputError(f"ensemble must be True or False, got {self.ensemble!r}")
        if self.resume and self.path is None:
            raise InputError("resume=True needs path=, the run directory to continue")
        if self.study_name is None and self.data_location is not None:
            raise InputError("data_location= is for runs with study_name=, which workers join")
        if self.n_processes > available_cores():
            logger.warning(
                "n_jobs=%d is more than the %d cores available: trials will compete for them",
                self.n_processes, available_cores(),
            )

    @property
    def n_processes(self) -> int:
        """Trial processes run side by side."""
        return available_cores() if self.n_jobs == -1 else int(self.n_jobs)

    @property
    def threads(self) -> int:
        """Threads each fit may use: the cores are shared out, so that N processes do not oversubscribe."""
        return max(1, available_cores() // self.n_processes)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_budget(time_budget, n_trials) -> None:
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, numbers.Real) or not time_budget > 0:
            raise InputError(f"time_budget must be a positive number of seconds (or None), got {time_budget!r}")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
            raise InputError(f"n_trials must be a positive integer (or None), got {n_trials!r}")
    if time_budget is None and n_trials is None:
        raise InputError("set time_budget, n_trials or both; with neither the search would never end")


def choose_models(registered: dict[str, RegisteredModel], models, task: str) -> list[RegisteredModel]:
    """The registered models to search: ``models`` by name, or every installed one that supports ``task``.

    ``registered`` may hold models that are not installed (``RegisteredModel.missing``): they are
    left out of the default choice, and naming one is an error that says how to install it.
    """
    if models is None:
        chosen = [m for m in registered.values() if task in m.spec.tasks and not m.missing]
        if not chosen:
            raise InputError(f"no registered model supports task {task!r}; install a plugin that does")
        return chosen
    if isinstance(models, str):
        models = [models]
    models = list(dict.fromkeys(models))
    if not models:
        raise InputError("models is empty; pass model names or None for all models")
    unknown = [m for m in models if m not in registered]
    if unknown:
        raise InputError(f"unknown model(s) {unknown}; registered models: {sorted(registered)}")
    missing = [registered[m] for m in models if registered[m].missing]
    if missing:
        raise InputError("; ".join(f"model {m.spec.name!r} is not installed: {', '.join(m.missing)} cannot be "
                                   f"imported; install it with {m.install_hint}" for m in missing))
    unsuited = [m for m in models if task not in registered[m].spec.tasks]
    if unsuited:
        suited = sorted(n for n, m in registered.items() if task in m.spec.tasks)
        raise InputError(f"model(s) {unsuited} do not support task {task!r}; models that do: {suited}")
    return [registered[m] for m in models]
