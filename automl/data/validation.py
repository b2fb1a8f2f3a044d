"""How trials are validated: K-fold cross-validation, and for large tables fewer folds, a
holdout split and trials fitted on a sample of each training split.

``cv="auto"`` (the default) chooses from the table's size and the time budget, so that the
search can run enough trials before the budget ends: the cost of one trial grows with the
number of cells (rows x columns) times the number of folds. The choice is recorded in the
run's manifest (``validation``), and the report, ``automl worker`` processes and a resumed run
rebuild exactly the same folds from it. The final model is always refit on every row.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit, train_test_split

from .._exceptions import InputError

__all__ = ["Validation", "choose_validation", "make_folds", "make_splitter", "refit_scale", "sample_rows"]

AUTO = "auto"
DEFAULT_FOLDS = 5
#: Cells per second of budget above which 3 folds replace 5 (e.g. 50k rows x 20 columns in 60 s).
FEW_FOLDS_CELLS_PER_SECOND = 2e4
#: ...and above which one holdout split replaces the folds (e.g. 1M rows x 20 columns in 120 s).
HOLDOUT_CELLS_PER_SECOND = 1e5
#: Without a time budget, tables with more cells than this use a holdout split.
HOLDOUT_CELLS_UNTIMED = 1e7
HOLDOUT_FRACTION = 0.2
#: A trial fits on at most this many cells of a training split (never fewer than the rows below):
#: on large tables, more trials of models fitted on a sample beat a few on everything.
TRIAL_TRAIN_CELLS = 2e6
MIN_TRIAL_TRAIN_ROWS = 50_000
#: A trial is scored on at most this many validation rows: the score's noise is already small.
MAX_VALID_ROWS = 100_000


@dataclasses.dataclass(frozen=True)
class Validation:
    """A validation plan: ``folds`` splits (1: a holdout of ``holdout`` of the rows), trials
    fitted on at most ``max_train_rows`` rows of a split and scored on at most
    ``max_valid_rows`` (``None``: all)."""

    folds: int
    holdout: float | None = None
    max_train_rows: int | None = None
    max_valid_rows: int | None = None
    reason: str = ""

    def describe(self) -> str:
        scheme = f"holdout of {self.holdout:.0%} of the rows" if self.folds == 1 else f"{self.folds}-fold cross-validation"
        if self.max_train_rows is not None:
            scheme += f", trials fit on at most {self.max_train_rows:,} rows"
        return scheme

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Validation:
        return cls(**{f.name: recorded.get(f.name) for f in dataclasses.fields(cls) if f.name in recorded})


def choose_validation(cv: Any, n_rows: int, n_columns: int, time_budget: float | None) -> Validation | None:
    """The plan for ``cv`` (``"auto"`` or a number of folds); ``None`` for a user's splitter."""
    if isinstance(cv, str):
        if cv != AUTO:
            raise InputError(f"cv must be 'auto', a number of folds (int >= 2) or a scikit-learn splitter; got {cv!r}")
        return _auto(n_rows, max(n_columns, 1), time_budget)
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise InputError(f"cv must be at least 2 folds, got {cv}")
        return Validation(folds=int(cv), reason=f"cv={int(cv)}")
    if hasattr(cv, "split") and hasattr(cv, "get_n_splits"):
        return None
    raise InputError(
        f"cv must be 'auto', a number of folds (int >= 2) or a scikit-learn splitter such as KFold(5); got {cv!r}"
    )


def _auto(n_rows: int, n_columns: int, time_budget: float | None) -> Validation:
    cells = n_rows * n_columns
    if time_budget is None:
        density = None
        folds = 1 if cells > HOLDOUT_CELLS_UNTIMED else DEFAULT_FOLDS
    else:
        density = cells / time_budget
        folds = 1 if density > HOLDOUT_CELLS_PER_SECOND else 3 if density > FEW_FOLDS_CELLS_PER_SECOND else DEFAULT_FOLDS
    train_rows = n_rows * (1 - HOLDOUT_FRACTION) if folds == 1 else n_rows * (folds - 1) / folds
    cap = max(MIN_TRIAL_TRAIN_ROWS, int(TRIAL_TRAIN_CELLS / n_columns))
    valid_rows = n_rows * HOLDOUT_FRACTION if folds == 1 else n_rows / folds
    reason = f"{n_rows:,} rows x {n_columns} columns"
    reason += f" in {time_budget:g} s ({density:,.0f} cells/s)" if density is not None else " without a time budget"
    return Validation(
        folds=folds,
        holdout=HOLDOUT_FRACTION if folds == 1 else None,
        max_train_rows=cap if train_rows > cap else None,
        max_valid_rows=MAX_VALID_ROWS if valid_rows > MAX_VALID_ROWS else None,
        reason=reason,
    )


def make_splitter(cv: Any, validation: Validation | None, task: str, seed: int):
    """The scikit-learn splitter of a plan (or the user's own splitter ``cv``)."""
    if validation is None:
        return cv
    stratified = task != "regression"
    if validation.folds == 1:
        cls = StratifiedShuffleSplit if stratified else ShuffleSplit
        return cls(n_splits=1, test_size=validation.holdout, random_state=seed)
    cls = StratifiedKFold if stratified else KFold
    return cls(n_splits=validation.folds, shuffle=True, random_state=seed)


def make_folds(splitter, X, y, task: str, validation: Validation | None = None, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row positions of every split, each side sampled down to the plan's caps."""
    n_splits = splitter.get_n_splits(X, y)
    if n_splits < 1:
        raise InputError(f"the cv splitter {splitter!r} makes no split")
    needed = max(n_splits, 2)  # a stratified holdout needs two members of each class too
    if task != "regression":
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < needed:
            rare = {repr(l.item() if hasattr(l, "item") else l): int(c) for l, c in zip(labels, counts) if c < needed}
            raise InputError(
                f"class(es) {rare} have fewer members than the {needed} CV folds; "
                f"use cv={max(2, int(counts.min()))} or fewer folds, or drop or merge rare classes"
            )
    if len(y) < 2 * needed:
        raise InputError(f"{len(y)} rows are too few for {n_splits}-fold cross-validation")
    try:
        folds = list(splitter.split(X, y))
    except ValueError as exc:
        raise InputError(f"the cv splitter {splitter!r} cannot split this data: {exc}") from None
    if validation is None:
        return folds
    stratify = y if task != "regression" else None
    return [
        (sample_rows(train, validation.max_train_rows, stratify, seed + k), sample_rows(valid, validation.max_valid_rows, stratify, seed + k))
        for k, (train, valid) in enumerate(folds)
    ]


def sample_rows(rows: np.ndarray, limit: int | None, stratify, seed: int) -> np.ndarray:
    """A seeded sample of ``limit`` of ``rows`` (sorted; stratified on ``stratify`` when given)."""
    if limit is None or len(rows) <= limit:
        return rows
    try:
        kept, _ = train_test_split(rows, train_size=limit, random_state=seed, stratify=None if stratify is None else stratify[rows])
    except ValueError:  # a class too rare to stratify on: a plain sample
        kept = np.random.default_rng(seed).choice(rows, size=limit, replace=False)
    return np.sort(kept)


def refit_scale(folds: list[tuple[np.ndarray, np.ndarray]], n_rows: int) -> float:
    """How many times more rows the final refit sees than a trial's fit."""
    return n_rows / float(np.mean([len(train) for train, _ in folds]))
