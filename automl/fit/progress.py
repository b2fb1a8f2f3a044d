"""What a run tells as it goes: the observer hooks of every plugin, and log lines of its trials."""

from __future__ import annotations

import logging
import time

import optuna

from .._plugins import call_each
from .._spec import RunInfo
from ..search.studies import ModelSearch, best_search

__all__ = ["Observers", "TrialLog"]

logger = logging.getLogger(__name__)


class Observers:
    """Calls an observer hook on every plugin; one that raises is reported, not fatal."""

    def __init__(self, plugin_manager, run: RunInfo):
        self.plugin_manager = plugin_manager
        self.run = run

    def __call__(self, hook: str, **kwargs) -> None:
        for _ in call_each(self.plugin_manager, hook, run=self.run, **kwargs):
            pass


class TrialLog:
    """Logs the search's progress: every model's first trial and every new best at INFO,
    other trials at DEBUG, each with elapsed/budget time."""

    def __init__(self, searches: list[ModelSearch], started: float, time_budget: float | None):
        self.searches = searches
        self.started = started
        self.time_budget = time_budget
        self.best_value: float | None = None

    def __call__(self, search: ModelSearch, trial: optuna.trial.FrozenTrial) -> None:
        elapsed = time.monotonic() - self.started
        clock = f"{elapsed:6.1f}s" + (f"/{self.time_budget:g}s" if self.time_budget else "")
        outcome = f"score {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        best = best_search(self.searches)
        improved = best is not None and (self.best_value is None or best.best > self.best_value)
        if improved:
            self.best_value = best.best
        lead = f" | best {best.name} {best.best:.4f}" if best else ""
        level = logging.INFO if improved or search.started == 1 else logging.DEBUG
        logger.log(level, "[%s] %s #%d %s%s", clock, search.name, trial.number, outcome, lead)
