"""The final refit: the chosen model on all rows, in a trial process, with the next best as its
fallback should it fail or run out of time."""

from __future__ import annotations

import dataclasses
import logging
import math

import pandas as pd

from .._exceptions import SearchError
from .._spec import ModelContext
from ..search.studies import ModelSearch, build_pipeline, params_of
from ..search.trial import TOO_SLOW
from ..search.trial_process import TrialFailure, TrialProcess
from .budget import Budget

__all__ = ["Refitter", "Refitted", "reason"]

logger = logging.getLogger(__name__)

#: Share of the refit's time its model is told it may use (ModelContext.time_limit): the rest is
#: for what no time limit stops, preparing the columns (5 s for 500,000 mixed rows) and pickling.
REFIT_FIT_SHARE = 0.6
#: A refit on a large table's sample is sized to take this share of its time limit.
REFIT_ROWS_SAFETY = 0.5


@dataclasses.dataclass
class Refitted:
    """What was refit: the model's search (None for an ensemble), its ``build`` params, the trial
    process's answer (the model's bytes, classes, rows, test score), and the models tried first
    whose refit failed, with why."""

    search: ModelSearch | None
    params: dict
    answer: dict
    failures: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Refitter:
    """Refits pipelines on all rows (and, with a test split, on the search rows to score them on
    the held-out rows) in ``runner``'s trial process, within ``budget``.

    ``scale``: how many times a trial fit's rows the refit sees. ``sampled``: the trials fitted on
    samples of a large table; then a refit expected to take longer than its time is made on as
    many rows as fit in it (never fewer than a trial's)."""

    context: ModelContext
    schema: list
    runner: TrialProcess
    budget: Budget
    with_test: bool
    scale: float
    n_rows: int
    sampled: bool

    @property
    def refits(self) -> int:
        """Fits per refit: all rows, and the search rows too with a test split."""
        return 2 if self.with_test else 1

    def timed(self, seconds: float) -> ModelContext:
        """The context of a refit that may take ``seconds`` (``ModelContext.time_limit``)."""
        return dataclasses.replace(self.context, time_limit=max(0.5, seconds) if math.isfinite(seconds) else None)

    def fit(self, estimator, until: float, *, on_search_rows: bool = False, max_rows: int | None = None) -> dict:
        """Refit ``estimator`` in the trial process, stopped by force at ``until``."""
        return self.runner.refit(
            estimator, on_search_rows=on_search_rows, timeout=self.budget.seconds_until(until),
            max_rows=max_rows, seed=self.context.seed,
        )

    def winner(self, searches: list[ModelSearch], leaderboard: pd.DataFrame, until: float, hard_until: float) -> Refitted:
        """Refit the best model of ``leaderboard``; if that fails or runs out of time, the next
        best whose refit is expected to fit in the time left (else the quickest). The winner may
        use half the grace between ``until`` and ``hard_until``; a fallback the rest."""
        ranked = _ranked(searches, leaderboard)
        failures: dict[str, str] = {}
        for attempt in range(len(ranked)):
            end = until + 0.5 * (hard_until - until) if attempt == 0 and math.isfinite(until) else hard_until
            seconds = self.budget.left(end)
            if attempt > 0 and seconds <= 0:
                break
            search = ranked[0] if attempt == 0 else self._fallback(ranked, seconds)
            ranked.remove(search)
            try:
                return self._refit_one(search, end, seconds, failures)
            except (TrialFailure, Exception) as exc:
                failures[search.name] = reason(exc)
                logger.warning("refitting %s on all rows failed (%s); trying the next model", search.name, reason(exc))
        raise SearchError(
            "no model could be refit on all rows in the time left: "
            + "; ".join(f"{name}: {why}" for name, why in failures.items())
        )

    def _fallback(self, candidates: list[ModelSearch], seconds: float) -> ModelSearch:
        fitting = [s for s in candidates if s.typical_refit_seconds(self.scale) <= seconds]
        return fitting[0] if fitting else min(candidates, key=lambda s: s.typical_refit_seconds(self.scale))

    def _refit_one(self, search: ModelSearch, until: float, seconds: float, failures: dict) -> Refitted:
        limit = REFIT_FIT_SHARE * seconds / self.refits
        timed = self.timed(limit)
        params = params_of(search.model.spec, search.study.best_trial.params, timed)
        test_score = self.test_score(search, params, timed, until) if self.with_test else None
        pipeline = build_pipeline(search.model, params, timed, self.schema)
        max_rows = _refit_rows(search, self.scale, self.n_rows, limit) if self.sampled else None
        answer = self.fit(pipeline, until, max_rows=max_rows)
        return Refitted(search, params, {**answer, "test_score": test_score}, failures)

    def test_score(self, search: ModelSearch, params: dict, context: ModelContext, until: float) -> float | None:
        """The model's score on the held-out rows; a failure there costs the score, not the model."""
        try:
            pipeline = build_pipeline(search.model, params, context, self.schema)
            return self.fit(pipeline, until, on_search_rows=True)["test_score"]
        except (TrialFailure, Exception) as exc:
            logger.warning("no test score for %s: %s", search.name, reason(exc))
            return None


def _ranked(searches: list[ModelSearch], leaderboard: pd.DataFrame) -> list[ModelSearch]:
    """The models with a successful trial, in leaderboard order; a SearchError when there is none."""
    by_name = {s.name: s for s in searches}
    ranked = [by_name[name] for name in leaderboard["model"] if name in by_name and by_name[name].best is not None]
    if ranked:
        return ranked
    summary = "; ".join(f"{row.model}: {row.status}" for row in leaderboard.itertuples())
    failed = [row.status for row in leaderboard.itertuples() if row.status.startswith("all trials failed")]
    if failed and all(TOO_SLOW in status for status in failed):
        advice = "Raise max_predict_ms, or leave it unset: no model predicted 1,000 rows within it"
    elif failed:
        advice = "Fix the errors named above (run with logging at DEBUG for tracebacks)"
    else:
        advice = "Raise time_budget"
    raise SearchError(f"no trial of any model succeeded, so there is no model to save ({summary}). {advice}.")


def _refit_rows(search: ModelSearch, scale: float, n_rows: int, seconds: float) -> int | None:
    """``None`` (every row) when the refit is expected to take at most ``REFIT_ROWS_SAFETY`` of
    ``seconds``; else the number of rows expected to, and never fewer than a trial fitted on."""
    expected = search.typical_refit_seconds(scale)
    if not math.isfinite(seconds) or expected <= REFIT_ROWS_SAFETY * seconds:
        return None
    rows = int(max(n_rows / scale, n_rows * REFIT_ROWS_SAFETY * seconds / expected))
    if rows >= n_rows:
        return None
    logger.warning(
        "refitting %s on every row would take about %.0f s, more than the %.0f s left: refitting on a sample of "
        "%d of the %d rows (raise time_budget to use them all)", search.name, expected, seconds, rows, n_rows,
    )
    return rows


def reason(exc: Exception) -> str:
    """Why a refit failed, in one line."""
    return exc.reason if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}"
