"""The time budget of a ``fit_best`` call: its deadlines, and when the search must stop so that the
refit and the save still fit in it."""

from __future__ import annotations

import dataclasses
import math
import time

from ..search.studies import best_search

__all__ = ["Budget", "SearchStop", "SAVE_ALLOWANCE", "REFIT_MARGIN"]

#: Seconds kept back for writing the run directory.
SAVE_ALLOWANCE = 1.0
#: Safety factor on the expected refit time when deciding to stop searching.
REFIT_MARGIN = 1.3
#: Seconds kept for the refit however fast the model: process round trips and pickling.
MIN_REFIT_RESERVE = 0.5
#: The search keeps at most this share of the budget for the final refit.
MAX_REFIT_SHARE = 0.35
#: The search keeps time to refit this many of the best models besides the winner, the likely
#: members of an ensemble.
ENSEMBLE_RESERVE_MODELS = 3
#: After Ctrl-C or SIGTERM, seconds at most for refitting the best model before saving it.
INTERRUPT_REFIT_SECONDS = 10.0


@dataclasses.dataclass
class Budget:
    """The call's clock: ``deadline`` ends the budget; ``hard_deadline`` is the promise (the call
    returns by then whatever a plugin does), ``time_budget * 1.05 + 5`` seconds after the start."""

    time_budget: float | None
    started: float = dataclasses.field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        finite = self.time_budget is not None
        self.deadline = self.started + self.time_budget if finite else math.inf
        self.hard_deadline = self.started + self.time_budget * 1.05 + 5.0 if finite else math.inf

    @staticmethod
    def left(until: float) -> float:
        """Seconds from now to ``until``, less what saving the run needs (negative once past)."""
        return until - time.monotonic() - SAVE_ALLOWANCE

    def seconds_until(self, until: float) -> float:
        """``left(until)``, at least 0.1: a timeout for a request that must still be tried."""
        return max(0.1, self.left(until))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def cut_short(self) -> None:
        """After an interrupt: a short refit window, since the user wants control back within seconds."""
        self.deadline = self.hard_deadline = min(self.hard_deadline, time.monotonic() + INTERRUPT_REFIT_SECONDS)

    @staticmethod
    def interrupt_window() -> float:
        """The deadline of a refit after a second interrupt."""
        return time.monotonic() + INTERRUPT_REFIT_SECONDS


class SearchStop:
    """``stop_at()``: when the search must stop, re-read before every trial and fold. It keeps
    time to refit the best model, or the one being tried (which may become the best), and, with an
    ensemble, its likely members; a worker lost at the end must be replaced before the refit."""

    def __init__(self, budget: Budget, searches: list, scale: float, n_refits: int, *, ensemble: bool):
        self.budget, self.searches, self.scale, self.n_refits = budget, searches, scale, n_refits
        self.ensemble = ensemble
        self.runner = None  # the trial process that refits: the seconds it takes to start are kept too

    def __call__(self) -> float:
        best = best_search(self.searches)
        contenders = [s for s in self.searches if s.running or s is best]
        refit = max((s.typical_refit_seconds(self.scale) for s in contenders), default=0.0) * self.n_refits
        if self.ensemble:
            refit += ensemble_reserve(self.searches, self.scale) * self.n_refits
        # a refit that would take more is told less time (ModelContext.time_limit): trials fitted
        # on a sample of a large table must not make the search stop at once
        budget = self.budget.time_budget
        refit = min(max(refit, MIN_REFIT_RESERVE), MAX_REFIT_SHARE * budget if budget else math.inf)
        # kept with save=False too: the model is compressed either way, and the refit and the
        # ensemble measure their time by Budget.left, which always keeps it
        start = self.runner.start_seconds if self.runner is not None else 0.0
        return self.budget.deadline - REFIT_MARGIN * refit - start - SAVE_ALLOWANCE


def ensemble_reserve(searches: list, scale: float) -> float:
    """Expected seconds to refit an ensemble of the best models: the best one again (its own
    refit stays reserved, should the ensemble fail) and the next ``ENSEMBLE_RESERVE_MODELS``."""
    scored = sorted((s for s in searches if s.best is not None), key=lambda s: -s.best)
    return sum(s.typical_refit_seconds(scale) for s in scored[:1 + ENSEMBLE_RESERVE_MODELS])
