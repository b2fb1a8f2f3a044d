"""The selection after the search: an ensemble of the best trials is one more candidate, saved
instead of the best single model only when it is clearly better on the folds and its members can
be refit in the time left."""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import pandas as pd

from ..search.ensemble import PredictionPool, Selection, prediction_scorer, prune_selection, select_ensemble
from ..search.leaderboard import REFIT_FAILED
from ..search.studies import ModelSearch, best_search, build_pipeline, params_of
from ..search.trial import too_slow
from ..search.trial_process import TrialFailure
from ..store.ensemble import ENSEMBLE, make_ensemble
from .budget import REFIT_MARGIN, SAVE_ALLOWANCE
from .refit import REFIT_FIT_SHARE, Refitted, Refitter, reason

__all__ = ["EnsembleOutcome", "refit_ensemble", "with_ensemble", "clearly_better", "prefer_faster"]

logger = logging.getLogger(__name__)

#: An ensemble is saved only when its mean fold gain over the best model is at least this many
#: standard errors of the gains.
ENSEMBLE_MIN_GAIN_SE = 0.5
#: Share of the time left after the search (less the best model's refit) that choosing an
#: ensemble may take.
SELECTION_SHARE = 0.25
#: Share of the selection's time left that pruning a winning ensemble may take.
PRUNE_SHARE = 0.5
#: A model tied with the best one (within fold noise) is saved instead when it predicts at
#: least this many times faster...
FASTER_FACTOR = 4.0
#: ...and the best one takes at least this long per 1,000 rows. The times are measured, so the
#: gap must be wide for the same seed and trial count to choose the same model on any machine.
FASTER_FLOOR_MS = 5.0


@dataclasses.dataclass
class EnsembleOutcome:
    """The ensemble considered at the end of a search: its leaderboard row, and, when it won and
    was refit, what was refit."""

    selection: Selection
    row: dict
    refitted: Refitted | None = None

    def manifest_entry(self) -> dict:
        return {
            "cv_score": self.selection.score, "fold_scores": self.selection.fold_scores,
            "members": self.selection.describe(), "saved": self.refitted is not None, "status": self.row["status"],
            "dropped": [{"model": c.model, "trial": c.number} for c in self.selection.dropped],
        }

    @property
    def refit_failure(self) -> str | None:
        status = self.row["status"]
        return status[len(REFIT_FAILED):] if status.startswith(REFIT_FAILED) else None


class _Costs:
    """Expected refit seconds of an ensemble's members, against the time it may take."""

    def __init__(self, searches: list[ModelSearch], refitter: Refitter, until: float):
        self.by_name = {s.name: s for s in searches}
        self.refitter, self.until = refitter, until
        # a trial stopped by force at the end of the search took its worker with it
        self.restart = refitter.runner.restart_seconds

    def member(self, member) -> float:
        # the trial's own slowest fold: a member may be far slower than its model's median trial
        typical = max(self.by_name[member.model].typical_refit_seconds(self.refitter.scale), 0.01)
        return max(member.fit_seconds * self.refitter.scale, typical)

    def needed(self, selection: Selection) -> float:
        return REFIT_MARGIN * self.refitter.refits * sum(self.member(m) for m in selection.members) + self.restart

    def affordable(self, selection: Selection) -> bool:
        return not math.isfinite(self.until) or self.needed(selection) <= self.refitter.budget.left(self.until)


def refit_ensemble(
    pool: PredictionPool, searches: list[ModelSearch], scorer, refitter: Refitter, max_predict_ms: float | None = None,
) -> EnsembleOutcome | None:
    """Select an ensemble from the pool; refit it on all rows if it beats the best model on the
    folds clearly (see ``clearly_better``), predicts within ``max_predict_ms`` (its members' times
    summed) and its members' refits fit in the time budget. When
    they do not fit, the model slowest to refit leaves the candidates and the selection runs
    again. Should the ensemble's refit fail, the best model is refit in the grace after the
    budget, as any winner may be. None when there is no ensemble to consider."""
    started = time.monotonic()
    best = best_search(searches)
    if best is None:
        return None
    budget = refitter.budget
    # optional, so within the budget itself, and leaving time to refit the best model should it
    # fail (a trial process replaced during the search must import its libraries again)
    fallback = REFIT_MARGIN * refitter.refits * best.typical_refit_seconds(refitter.scale)
    until = budget.deadline - fallback if math.isfinite(budget.deadline) else budget.hard_deadline
    spare = until - started - SAVE_ALLOWANCE
    if spare <= 0:
        logger.info("no time left to consider an ensemble")
        return None
    costs = _Costs(searches, refitter, until)
    best_folds = best.study.best_trial.user_attrs.get("fold_scores") or []

    def wins(selection: Selection | None) -> bool:
        return selection is not None and clearly_better(selection.fold_scores, best_folds, best.best)

    score = prediction_scorer(scorer, refitter.context.task, pool.classes)
    try:
        first, selection = _select_affordable(pool, score, costs, wins, SELECTION_SHARE * spare, refitter.context.seed)
    except Exception as exc:  # e.g. a metric undefined on some mix of predictions
        logger.warning("no ensemble: the selection failed (%s)", reason(exc))
        return None
    if first is None:
        return None
    # the loop ends on an ensemble that is better and fits, or on none: then the first is shown
    fits = wins(selection)
    outcome = _judged(selection if fits else first, best, wins, fits, started, max_predict_ms)
    if outcome.row["status"] == "ok" and fits:
        _refit_members(outcome, searches, refitter, costs, best.name)
        outcome.row["seconds"] = time.monotonic() - started
    return outcome


def _select_affordable(pool, score, costs: _Costs, wins, max_seconds: float, seed: int):
    """The first selection, and the one after dropping, one at a time, the members too slow to
    refit; a selection that wins loses the members it does not need first (see ``_pruned``),
    in at most ``PRUNE_SHARE`` of the time left, so that a selection without a slow model
    still has time to run."""
    deadline = time.monotonic() + max_seconds

    def selected(excluded: set[str]) -> Selection | None:
        selection = select_ensemble(pool, score, max_seconds=deadline - time.monotonic(), seed=seed, exclude=excluded)
        return _pruned(selection, pool, score, wins, PRUNE_SHARE * (deadline - time.monotonic()), seed)

    excluded: set[str] = set()
    first = selection = selected(excluded)
    while wins(selection) and not costs.affordable(selection):
        slowest = max(selection.members, key=costs.member).model
        logger.info("refitting an ensemble with %s would not fit in the time left: choosing without it", slowest)
        excluded.add(slowest)
        selection = selected(excluded)
    return first, selection


def _pruned(selection: Selection | None, pool: PredictionPool, score, wins, max_seconds: float, seed: int) -> Selection | None:
    """A winning selection without the members whose loss is within fold noise: the whole is not
    ``clearly_better`` than the smaller ensemble, and that one still wins. Each member saved
    is a refit and a prediction fewer (the suite at 30 s with and without: benchmarks/README.md)."""
    if selection is None or not wins(selection):
        return selection
    whole = selection

    def keeps(smaller: Selection) -> bool:
        return wins(smaller) and not clearly_better(whole.fold_scores, smaller.fold_scores, smaller.score)

    pruned = prune_selection(whole, pool, score, keeps, max_seconds=max_seconds, seed=seed)
    if pruned.dropped:
        logger.info(
            "ensemble of %d members pruned to %d: CV %.4f (%.4f with all)", len(whole.members), len(pruned.members),
            pruned.score, whole.score,
        )
    return pruned


def _judged(
    selection: Selection, best: ModelSearch, wins, fits: bool, started: float, max_predict_ms: float | None,
) -> EnsembleOutcome:
    """The ensemble's leaderboard row, its status saying why it is not saved when it is not."""
    row = {
        "model": ENSEMBLE, "score": selection.score, "std": selection.std, "test_score": math.nan,
        "predict_ms": selection.predict_ms, "trials": len(selection.members), "complete": len(selection.members), "pruned": 0, "failed": 0,
        "seconds": time.monotonic() - started, "status": "ok",
    }
    members = ", ".join(f"{m.model} #{m.number} x{w:.2f}" for m, w in zip(selection.members, selection.weights))
    if not wins(selection):  # a candidate that lost, like any model below the winner
        if selection.score > best.best:  # by a hair: not saved, and said so (not at the top)
            row["status"] = f"not clearly better than {best.name} (within fold noise)"
        logger.info("ensemble of %s: CV %.4f, not clearly better than %s (%.4f)", members, selection.score, best.name, best.best)
    elif not fits:
        row["status"] = f"better, but no time left to refit its {len(selection.members)} members"
        logger.info("ensemble of %s: CV %.4f, but no time left to refit it", members, selection.score)
    elif max_predict_ms is not None and selection.predict_ms > max_predict_ms:
        row["status"] = too_slow(selection.predict_ms, max_predict_ms)
        logger.info("ensemble of %s: CV %.4f, but %s", members, selection.score, row["status"])
    else:
        logger.info("ensemble of %s: CV %.4f beats %s (%.4f); refitting it", members, selection.score, best.name, best.best)
    return EnsembleOutcome(selection, row)


def _refit_members(outcome: EnsembleOutcome, searches, refitter: Refitter, costs: _Costs, best_name: str) -> None:
    """Refit the winning ensemble; on failure its row says why, and the best model is refit alone."""
    selection, until = outcome.selection, costs.until
    seconds = refitter.budget.left(until)
    member_seconds = [costs.member(m) for m in selection.members]
    by_name = {s.name: s for s in searches}
    try:
        pipelines = []
        for member, expected in zip(selection.members, member_seconds):
            # each member is told its share of the time, by its expected refit time
            timed = refitter.timed(REFIT_FIT_SHARE * seconds * expected / sum(member_seconds) / refitter.refits)
            model = by_name[member.model].model
            pipelines.append(build_pipeline(model, params_of(model.spec, member.params, timed), timed, refitter.schema))
        ensemble = make_ensemble(refitter.context.task, pipelines, selection.weights)
        test_score = refitter.fit(ensemble, until, on_search_rows=True)["test_score"] if refitter.with_test else None
        answer = refitter.fit(ensemble, until)
    except (TrialFailure, Exception) as exc:
        outcome.row["status"] = f"{REFIT_FAILED}{reason(exc)}"
        logger.warning("refitting the ensemble failed (%s); refitting %s alone", reason(exc), best_name)
        return
    outcome.refitted = Refitted(None, {"members": selection.describe()}, {**answer, "test_score": test_score})


def clearly_better(fold_scores: list[float], best_folds: list[float], best_score: float) -> bool:
    """Whether an ensemble beats the best model by more than fold-to-fold noise: its mean fold
    gain is at least ``ENSEMBLE_MIN_GAIN_SE`` standard errors of the gains (paired by fold).
    Its members were chosen on these very folds, so a small edge is mostly luck, and it costs
    more fits to refit and more time to predict."""
    if float(np.mean(fold_scores)) <= best_score:
        return False
    if len(best_folds) != len(fold_scores) or len(fold_scores) < 2:
        return True  # a holdout: no spread to judge by
    gains = np.subtract(fold_scores, best_folds)
    return float(gains.mean()) >= ENSEMBLE_MIN_GAIN_SE * float(gains.std(ddof=1)) / math.sqrt(len(gains))


def with_ensemble(leaderboard: pd.DataFrame, row: dict) -> pd.DataFrame:
    """The leaderboard with the ensemble's row: first when it beats every model (then it was
    refit: a better ensemble not refit has a status saying why), else above the first model it
    outscores but below the top one, which ``prefer_faster`` may have put there; the models keep
    their order. An ensemble that was not refit for a reason goes last."""
    ensemble = pd.DataFrame([row], columns=leaderboard.columns)
    if row["status"] != "ok":
        return pd.concat([leaderboard, ensemble], ignore_index=True)
    if not (leaderboard["score"] >= row["score"]).any():
        return pd.concat([ensemble, leaderboard], ignore_index=True)
    rest = leaderboard.iloc[1:]
    below = (rest["score"].isna() | (rest["score"] < row["score"])).to_numpy()
    at = 1 + (int(below.argmax()) if below.any() else len(rest))
    return pd.concat([leaderboard.iloc[:at], ensemble, leaderboard.iloc[at:]], ignore_index=True)


def prefer_faster(leaderboard: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with the model to refit at the top: the best, unless another model is tied
    with it (the best is not ``clearly_better`` on their best trials' folds) and predicts 1,000
    rows ``FASTER_FACTOR`` times faster, the best taking ``FASTER_FLOOR_MS`` or more; then the
    best-scoring such model goes first."""
    scored = leaderboard[leaderboard["score"].notna()]
    if len(scored) < 2 or not scored["predict_ms"].iloc[0] >= FASTER_FLOOR_MS:
        return leaderboard
    folds = {}
    for model, own in trials[trials["state"] == "complete"].groupby("model", sort=False):
        folds[model] = list(own.loc[own["score"].idxmax(), "fold_scores"])
    top = scored.iloc[0]
    for index, row in scored.iloc[1:].iterrows():
        faster = row["predict_ms"] * FASTER_FACTOR <= top["predict_ms"]
        if faster and not clearly_better(folds.get(top["model"], []), folds.get(row["model"], []), row["score"]):
            logger.info(
                "saving %s: tied with %s within fold noise (%.4f vs %.4f) and %.0fx faster to predict (%.1f vs %.1f ms per 1,000 rows)",
                row["model"], top["model"], row["score"], top["score"], top["predict_ms"] / max(row["predict_ms"], 1e-9),
                row["predict_ms"], top["predict_ms"],
            )
            return pd.concat([leaderboard.loc[[index]], leaderboard.drop(index)]).reset_index(drop=True)
    return leaderboard
