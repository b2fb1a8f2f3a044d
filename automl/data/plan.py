"""The data plan of a run: which rows are searched and which held out, how the columns are typed,
the validation plan and its folds.

``fit_best`` makes it once; a peer worker joining a shared run, a resumed run and the report's
out-of-fold predictions make it again from the run's recorded settings, and get the same rows,
schema and folds, because every step is seeded and the checksum proves the data is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .._exceptions import InputError
from .._spec import ModelContext
from .schema import Column, infer_schema
from .validation import Validation, choose_validation, make_folds, make_splitter, refit_scale

__all__ = ["DataPlan", "PlanSpec", "check_fingerprint", "fingerprint", "split_test"]


@dataclasses.dataclass(frozen=True)
class PlanSpec:
    """What a data plan is made from: the task, the seed, the share held out, and ``cv``.

    :param validation: a recorded plan to replay (a resumed run, a peer worker); else one is
        chosen from ``cv``, the table's size and ``time_budget``.
    :param schema: a recorded schema to replay; else it is inferred from the search rows only,
        so that held-out rows cannot decide which columns are kept or how they are read.
    """

    task: str
    seed: int = 0
    test_size: float | None = None
    cv: Any = "auto"
    time_budget: float | None = None
    validation: Validation | None = None
    schema: list[Column] | None = None


@dataclasses.dataclass(frozen=True)
class DataPlan:
    """The rows, schema and folds of a run (see the module docstring)."""

    table: pd.DataFrame
    y: np.ndarray
    task: str
    seed: int
    test_size: float | None
    search_rows: np.ndarray
    test_rows: np.ndarray | None
    schema: list[Column]
    validation: Validation | None
    splitter: Any
    folds: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def make(cls, table: pd.DataFrame, y: np.ndarray, how: PlanSpec) -> DataPlan:
        """Split, type and fold ``table`` → ``y`` as ``how`` says."""
        search_rows, test_rows = split_test(y, how.test_size, how.task, how.seed)
        X_search, y_search = table.iloc[search_rows].reset_index(drop=True), y[search_rows]
        schema = how.schema if how.schema is not None else infer_schema(X_search)
        validation = how.validation
        if validation is None:
            validation = choose_validation(how.cv, len(X_search), table.shape[1], how.time_budget)
        splitter = make_splitter(how.cv, validation, how.task, how.seed)
        folds = make_folds(splitter, X_search, y_search, how.task, validation, how.seed)
        return cls(table, y, how.task, how.seed, how.test_size, search_rows, test_rows, schema, validation, splitter, folds)

    @functools.cached_property
    def X_search(self) -> pd.DataFrame:
        return self.table.iloc[self.search_rows].reset_index(drop=True)

    @property
    def y_search(self) -> np.ndarray:
        return self.y[self.search_rows]

    @functools.cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.table, self.y)

    @property
    def classes(self) -> list | None:
        """Every class of the target, held-out rows included (None for a regression)."""
        return list(np.unique(self.y)) if self.task != "regression" else None

    @property
    def sampled(self) -> bool:
        """Whether trials fit on samples of their training rows (a large table)."""
        return self.validation is not None and self.validation.max_train_rows is not None

    @property
    def refit_scale(self) -> float:
        """How many times more rows the final refit sees than a trial's fit."""
        return refit_scale(self.folds, len(self.search_rows))

    def context(self, n_jobs: int) -> ModelContext:
        """What a model's plugin is told about the data (``n_jobs``: threads a fit may use)."""
        classes = self.classes
        return ModelContext(
            task=self.task, seed=self.seed, n_samples=len(self.search_rows), n_features=self.table.shape[1],
            n_classes=len(classes) if classes is not None else 0, n_jobs=n_jobs,
        )

    def payload(self) -> dict[str, Any]:
        """What every trial process needs of the data (see ``automl.search.payload``)."""
        return {"X": self.table, "y": self.y, "search_rows": self.search_rows, "test_rows": self.test_rows, "folds": self.folds}



def split_test(y: np.ndarray, test_size: float | None, task: str, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Row positions for the search and for the held-out test (None without ``test_size``):
    a seeded split, stratified for classification."""
    rows = np.arange(len(y))
    if test_size is None:
        return rows, None
    if isinstance(test_size, bool) or not isinstance(test_size, float) or not 0 < test_size < 1:
        raise InputError(f"test_size must be a fraction between 0 and 1 (e.g. 0.2), got {test_size!r}")
    stratify = y if task != "regression" else None
    try:
        search_rows, test_rows = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise InputError(f"cannot hold out test_size={test_size}: {exc}") from None
    return np.sort(search_rows), np.sort(test_rows)


def fingerprint(table: pd.DataFrame, y: np.ndarray) -> str:
    """A checksum of the data, so that a resumed run or a peer is known to work on the same table."""
    digest = hashlib.sha256()
    digest.update(",".join(table.columns).encode())
    try:
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): their text stands in for them
        digest.update(pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(pd.Series(y), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def check_fingerprint(actual: str, recorded: str | None, problem: str) -> None:
    """Raise ``InputError(problem)`` unless the data's checksum is the one a run recorded: a
    resumed run, a peer worker and out-of-fold predictions must all see the run's own data."""
    if actual != recorded:
        raise InputError(problem)
