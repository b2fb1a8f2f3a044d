"""A small summary of the training table, kept in the manifest for drift checks later.

``profile_table`` summarises every column the models use; nothing here is fitted into a model.
Values are read the way the model's preprocessing reads them (``inf`` is missing, category
levels are text, datetimes are days since 1970), so a drift check compares what the model
actually sees. Profile of one column (``"data_profile"["columns"][name]`` in the manifest)::

    kind       "numeric", "categorical" or "datetime"
    n          rows profiled
    missing    share of rows with no value (NaN, None, inf)
    numeric and datetime (datetimes as days since 1970):
      edges    bin edges (training deciles, deduplicated); bins are right-closed:
               (-inf, e0], (e0, e1], ..., (e_last, inf)
      shares   share of all rows in each bin (len(edges) + 1 values; with ``missing`` they sum to 1)
      min, max, mean, std   of the present values (None when there are none)
    categorical:
      levels   the 50 most frequent levels as text -> share of all rows
      other    share of rows in the other training levels
      n_levels number of distinct training levels (more than 50: the level list is incomplete)

A column whose summary fails is named in ``"data_profile"["skipped"]`` (name -> the error), so
that ``automl.evaluate`` can say why it does not check that column.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from .schema import Column
from .preprocess import _calendar, _coerce_column, level_text

__all__ = ["MAX_LEVELS", "PROFILE_FORMAT", "binned_shares", "column_values", "level_shares", "profile_table"]

logger = logging.getLogger(__name__)

PROFILE_FORMAT = 1
#: Quantile bins per numeric column (fewer when values repeat).
N_BINS = 10
#: Categorical levels kept by name; the rest share one "other" bin.
MAX_LEVELS = 50
#: Shares are stored rounded to this many decimals, to keep the manifest small.
DIGITS = 6


def profile_table(table: pd.DataFrame, schema: list[Column]) -> dict[str, Any]:
    """Summarise each non-dropped column of ``table`` (as described by ``schema``).

    :return: a JSON-serialisable dict ``{"format", "n_rows", "columns": {name: profile},
        "skipped": {name: error}}``; the profile of a column is described in this module's docstring.
    """
    columns, skipped = {}, {}
    for col in schema:
        if col.kind == "dropped":
            continue
        try:
            values = column_values(table[col.name], col)
            summary = _profile_categorical(values) if col.kind == "categorical" else _profile_numeric(values)
        except Exception as exc:  # noqa: BLE001 - a summary is never worth losing the finished search
            logger.warning("column %r is left out of the data profile (no drift check for it): %s", col.name, exc)
            skipped[col.name] = f"{type(exc).__name__}: {exc}"
            continue
        columns[col.name] = {"kind": col.kind, **summary}
    return {"format": PROFILE_FORMAT, "n_rows": len(table), "columns": columns, "skipped": skipped}


def column_values(series: pd.Series, col: Column) -> pd.Series | np.ndarray:
    """The values the model sees: floats with NaN for missing (numeric; datetime as days since
    1970), or, for a categorical column, the series itself (levels are read by ``level_shares``).

    :raises InputError: a value that cannot be read as the training type (names the column).
    """
    if col.kind == "categorical":
        return series
    if col.kind == "datetime":
        return _calendar(series, col)[f"{col.name}__days"]
    return _coerce_column(series, col)


def binned_shares(values: np.ndarray, edges: list[float]) -> tuple[np.ndarray, float]:
    """Shares of all rows in each right-closed bin of ``edges``, and the share missing (NaN)."""
    n = len(values)
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), present, side="left"), minlength=len(edges) + 1)
    return counts / max(n, 1), (n - len(present)) / max(n, 1)


def level_shares(series: pd.Series) -> tuple[dict[str, float], float]:
    """Share of all rows per level (as text, as the model reads it), most frequent first, and the
    share missing."""
    n = max(len(series), 1)
    try:
        counts = series.value_counts(dropna=True)
    except TypeError:  # unhashable cells: their text stands in for them
        counts = series.dropna().astype(str).value_counts()
    shares: dict[str, float] = {}
    for value, count in counts.items():
        level = level_text(value)
        shares[level] = shares.get(level, 0.0) + count / n
    ordered = dict(sorted(shares.items(), key=lambda item: (-item[1], item[0])))
    return ordered, float(series.isna().sum()) / n


def _profile_numeric(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    edges: list[float] = []
    if len(present):
        quantiles = np.quantile(present, np.arange(1, N_BINS) / N_BINS, method="lower")
        edges = [float(e) for e in np.unique(quantiles)]
    shares, missing = binned_shares(values, edges)
    stats = {"min": None, "max": None, "mean": None, "std": None}
    if len(present):
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: None, see _finite
            stats = {
                "min": float(present.min()), "max": float(present.max()),
                "mean": _finite(present.mean()), "std": _finite(present.std()),
            }
    return {
        "n": len(values), "missing": round(missing, DIGITS), "edges": edges,
        "shares": [round(float(s), DIGITS) for s in shares], **stats,
    }


def _profile_categorical(series: pd.Series) -> dict[str, Any]:
    shares, missing = level_shares(series)
    kept = dict(list(shares.items())[:MAX_LEVELS])
    return {
        "n": len(series), "missing": round(missing, DIGITS), "n_levels": len(shares),
        "levels": {level: round(share, DIGITS) for level, share in kept.items()},
        "other": round(max(0.0, 1.0 - missing - sum(kept.values())), DIGITS),
    }


def _finite(value) -> float | None:
    """JSON has no inf or NaN: an overflowing mean or std is recorded as None."""
    value = float(value)
    return value if np.isfinite(value) else None
