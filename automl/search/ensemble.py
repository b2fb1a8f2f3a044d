"""Ensemble selection: a weighted average of the search's best trials, one more candidate.

The greedy selection of Caruana et al. (2004), as auto-sklearn and AutoGluon use it: start
from the best trial's out-of-fold predictions, then repeatedly add (with replacement) the trial
whose predictions improve the average most; a trial added k times out of n rounds gets weight
k/n. It needs no more fits during the search, only the validation predictions that the folds
already make, which the worker sends back with each fold's score. The ensemble's CV score is
the mean of its fold scores, like a trial's, and it is saved only when that beats the best
single model (it is refit on all rows like any winner)."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
import numpy as np
from ..store.ensemble import aligned_proba

__all__ = ["PredictionPool", "Selection", "select_ensemble", "prune_selection", "prediction_scorer", "fold_predictions"]

logger = logging.getLogger(__name__)

#: The best trials of each model kept as candidates: a model's runners-up add diversity, more
#: add little but memory and selection time.
POOL_PER_MODEL = 3
#: No predictions are kept for tables with more rows x classes than this (8 bytes each, per
#: trial kept): such tables leave no time to refit several models anyway.
MAX_POOL_CELLS = 4_000_000
#: Rounds of greedy selection at most; the weights are multiples of 1/ROUNDS.
SELECTION_ROUNDS = 25
#: The selection stops after this many rounds that did not improve the ensemble.
PATIENCE = 5
#: The greedy rounds score a seeded sample of at most this many validation rows (a metric on
#: 50,000 rows takes ~20 ms, and a round scores every candidate); the chosen ensemble's fold
#: scores use every row.
SELECTION_ROWS = 10_000


def fold_predictions(model, X, classes) -> np.ndarray | None:
    """What a fold's model predicts for its validation rows, as the pool keeps it: the
    probability of every class of ``classes`` (columns in that order) for a classifier, the
    numbers for a regressor; None for a classifier without probabilities."""
    if classes is None:
        return np.asarray(model.predict(X), dtype=np.float64)
    if not hasattr(model, "predict_proba"):
        return None
    return aligned_proba(model, X, classes)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A completed trial and its validation predictions, one array per fold."""

    model: str
    number: int
    score: float
    params: dict
    predictions: tuple[np.ndarray, ...]
    #: seconds its slowest fold took to fit: what its refit is expected from
    fit_seconds: float = 0.0
    #: milliseconds its first fold's model took to predict 1,000 rows (NaN: not timed)
    predict_ms: float = math.nan


class PredictionPool:
    """The best completed trials of each model with their validation predictions. Thread-safe:
    several workers' trials arrive at once.

    :param fold_targets: the true values of each fold's validation rows, in the order the worker
        predicts them.
    :param classes: every class of the task, sorted (None for regression).
    """

    def __init__(self, fold_targets: list[np.ndarray], classes: list | None, per_model: int = POOL_PER_MODEL):
        self.fold_targets = [_plain_labels(t) for t in fold_targets] if classes is not None else list(fold_targets)
        self.classes = list(_plain_labels(np.asarray(classes, dtype=object))) if classes is not None else None
        self.per_model = per_model
        self._kept: dict[str, list[Candidate]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def affordable(n_rows: int, n_classes: int) -> bool:
        return n_rows * max(n_classes, 1) <= MAX_POOL_CELLS

    def add(
        self, model: str, number: int, score: float, params: dict, predictions: list[np.ndarray | None],
        *, fit_seconds: float = 0.0, predict_ms: float | None = None,
    ) -> None:
        """Keep the trial if it is among its model's ``per_model`` best; a trial with a fold
        that gave no predictions (or not one per fold) is not a candidate."""
        if len(predictions) != len(self.fold_targets) or any(p is None for p in predictions):
            return
        timed = math.nan if predict_ms is None else float(predict_ms)
        candidate = Candidate(model, number, score, dict(params), tuple(predictions), float(fit_seconds), timed)
        with self._lock:
            kept = self._kept.setdefault(model, [])
            kept.append(candidate)
            kept.sort(key=lambda c: (-c.score, c.number))
            del kept[self.per_model:]

    def candidates(self) -> list[Candidate]:
        """Every kept trial, best first (ties: the earlier model and trial)."""
        with self._lock:
            every = [c for kept in self._kept.values() for c in kept]
        return sorted(every, key=lambda c: (-c.score, c.model, c.number))


@dataclasses.dataclass
class Selection:
    """An ensemble: its members (candidates) with weights summing to 1, and its fold scores."""

    members: list[Candidate]
    weights: list[float]
    fold_scores: list[float]
    #: members of the greedy selection that ``prune_selection`` took out
    dropped: list[Candidate] = dataclasses.field(default_factory=list)

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))

    @property
    def predict_ms(self) -> float:
        """Its members' times to predict 1,000 rows, summed: the ensemble runs each of them."""
        return float(sum(c.predict_ms for c in self.members))

    def describe(self) -> list[dict]:
        return [
            {"model": c.model, "trial": c.number, "weight": float(w), "cv_score": c.score, "params": c.params}
            for c, w in zip(self.members, self.weights)
        ]


def select_ensemble(
    pool: PredictionPool, score: Callable[[np.ndarray, np.ndarray], float], rounds: int = SELECTION_ROUNDS,
    *, max_seconds: float = math.inf, max_rows: int = SELECTION_ROWS, seed: int = 0, exclude: Collection[str] = (),
) -> Selection | None:
    """Greedy ensemble selection with replacement on the pooled validation predictions.

    :param score: the run's metric, greater is better, of (true values, predictions as the pool
        keeps them).
    :param max_seconds: no round starts after this many seconds; the best ensemble so far counts.
    :param max_rows: the rounds score a seeded sample of this many pooled rows at most.
    :param exclude: models whose trials are not candidates.
    :returns: the best ensemble of two or more trials found, or None (fewer than two candidates,
        or no mix beats the best trial alone on the pooled predictions).
    """
    candidates = [c for c in pool.candidates() if c.model not in exclude]
    return _greedy(candidates, pool, score, rounds, max_seconds, max_rows, seed)


def _greedy(
    candidates: Sequence[Candidate], pool: PredictionPool, score, rounds: int, max_seconds: float, max_rows: int, seed: int,
) -> Selection | None:
    """``select_ensemble`` among these candidates (best first)."""
    started = time.monotonic()
    if len(candidates) < 2:
        return None
    y = np.concatenate(pool.fold_targets)
    rows = slice(None)
    if len(y) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), size=max_rows, replace=False))
    y = y[rows]
    stacked = [np.concatenate(c.predictions)[rows] for c in candidates]
    total = np.zeros_like(stacked[0])
    counts = np.zeros(len(candidates), dtype=int)
    best_counts, best_value, since_best = None, -np.inf, 0
    for round_ in range(1, rounds + 1):
        if since_best >= PATIENCE or time.monotonic() - started > max_seconds:
            break
        values = [score(y, (total + s) / round_) for s in stacked]
        # the first of equals: candidates are best first, so a tie keeps the better trial
        chosen = int(np.nanargmax(values))
        total += stacked[chosen]
        counts[chosen] += 1
        since_best += 1
        if values[chosen] > best_value + 1e-12:
            best_value, best_counts, since_best = values[chosen], counts.copy(), 0
    if best_counts is None or np.count_nonzero(best_counts) < 2:
        return None
    used = np.flatnonzero(best_counts)
    members = [candidates[i] for i in used]
    weights = [float(best_counts[i] / best_counts.sum()) for i in used]
    fold_scores = [
        float(score(target, sum(w * m.predictions[k] for m, w in zip(members, weights))))
        for k, target in enumerate(pool.fold_targets)
    ]
    return Selection(members, weights, fold_scores)


def prune_selection(
    selection: Selection, pool: PredictionPool, score: Callable[[np.ndarray, np.ndarray], float],
    keeps: Callable[[Selection], bool], *, max_seconds: float = math.inf, seed: int = 0,
) -> Selection:
    """The selection with the members it does not need taken out (backward elimination): each
    round chooses again among the members less one, for each member in turn, and keeps the
    best-scoring result on the folds as long as ``keeps`` accepts it.

    Greedy selection adds a member for any gain on the pooled rows, however small, and every
    member costs a refit and a prediction; ``keeps`` says which loss against the whole is noise.
    Choosing again (rather than scaling the other weights up) lets a member's twin take its
    weight, and may leave out more than the one member. An ensemble keeps two members at least.
    A round that ``max_seconds`` cuts short is not used, so what comes out depends on the
    folds and the seed, not on the machine's speed: at worst pruning stops earlier.
    """
    deadline = time.monotonic() + max_seconds
    current = selection
    while len(current.members) > 2:
        smaller = []
        for drop in range(len(current.members)):
            if time.monotonic() > deadline:
                return current
            rest = current.members[:drop] + current.members[drop + 1:]
            chosen = _greedy(rest, pool, score, SELECTION_ROUNDS, math.inf, SELECTION_ROWS, seed)
            if chosen is not None:
                smaller.append(chosen)
        if not smaller:
            break
        best = max(smaller, key=lambda s: s.score)  # the first of equals: the same for the same folds
        if not keeps(best):
            break
        kept = {(m.model, m.number) for m in best.members}
        best.dropped = [*current.dropped, *(m for m in current.members if (m.model, m.number) not in kept)]
        current = best
    return current


def _plain_labels(labels: np.ndarray) -> np.ndarray:
    """Class labels as a numpy array of their own type (str, int, ...) instead of Python objects
    when nothing changes: scikit-learn's metrics check object labels several times slower."""
    try:
        plain = np.asarray(labels.tolist())
    except (TypeError, ValueError):
        return labels
    if plain.dtype.kind not in "biufUS" or plain.shape != labels.shape or not bool(np.all(plain == labels)):
        return labels
    return plain


def prediction_scorer(scorer, task: str, classes: list | None) -> Callable[[np.ndarray, np.ndarray], float]:
    """The run's scikit-learn scorer as a function of (true values, pooled-style predictions)."""
    from .._metrics import ReplayClassifier, ReplayRegressor

    labels = None if classes is None else np.asarray(classes)

    def score(y: np.ndarray, predictions: np.ndarray) -> float:
        rows = np.arange(len(y))[:, None]
        if task == "regression":
            replay = ReplayRegressor(predictions)
        else:
            replay = ReplayClassifier(labels[np.argmax(predictions, axis=1)], predictions, "probability")
            replay.classes_ = labels
        return float(scorer(replay, rows, y))

    return score
