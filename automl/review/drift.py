"""Drift of a column between its training profile (kept in the manifest) and new rows: the
population stability index (PSI) over the training bins plus one bin for missing values, the
share of unseen category levels, and a short description of the largest change.

    PSI = sum over bins of (new share - training share) * ln(new share / training share)

with empty bins counted as ``EPSILON``. A training column without a drift measure is named by
:func:`unchecked_columns`, with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..data.profile import binned_shares, column_values, level_shares
from ..data.schema import Column

__all__ = [
    "DRIFT_COLUMNS", "EPSILON", "NOT_CHECKED_COLUMNS", "drift_table", "population_stability_index", "unchecked_columns",
]

#: Stands in for the share of an empty bin in the PSI, which would otherwise be infinite.
EPSILON = 1e-4
#: Columns of :attr:`Evaluation.drift`.
DRIFT_COLUMNS = ["column", "kind", "psi", "missing_train", "missing_new", "unseen", "status", "detail"]
#: Columns of :attr:`Evaluation.not_checked`.
NOT_CHECKED_COLUMNS = ["column", "kind", "reason"]


def population_stability_index(expected: Any, actual: Any, epsilon: float = EPSILON) -> float:
    """PSI between two distributions over the same bins (shares that each sum to about 1).

    Shares below ``epsilon`` (empty bins) count as ``epsilon``. 0 for identical distributions;
    it grows as they separate (two distributions with no bin in common: about 17 with the
    default ``epsilon``).
    """
    expected = np.maximum(np.asarray(expected, dtype=float), epsilon)
    actual = np.maximum(np.asarray(actual, dtype=float), epsilon)
    if expected.shape != actual.shape:
        raise ValueError(f"the distributions have different bins: {expected.shape} vs {actual.shape}")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def unchecked_columns(manifest: dict[str, Any]) -> pd.DataFrame:
    """The run's training columns that have no drift measure, and why (columns ``NOT_CHECKED_COLUMNS``,
    in training order): dropped at fit time, or no training profile (failed, or not recorded)."""
    profile = manifest.get("data_profile")
    profiled = profile["columns"] if profile is not None else {}
    failed = profile.get("skipped", {}) if profile is not None else {}  # older runs did not record it
    rows = []
    for column in manifest.get("columns", []):
        name, kind = column["name"], column["kind"]
        if name in profiled:
            continue
        if kind == "dropped":
            reason = f"not used by the model (dropped at fit time: {column.get('note') or 'no reason recorded'})"
        elif profile is None:
            reason = "the run has no data profile (saved by an older automl)"
        elif name in failed:
            reason = f"its training profile failed at fit time: {failed[name]}"
        else:
            reason = "no training profile was recorded for it at fit time"
        rows.append({"column": name, "kind": kind, "reason": reason})
    return pd.DataFrame(rows, columns=NOT_CHECKED_COLUMNS)


def drift_table(
    profile: dict[str, Any], schema: list[Column], table: pd.DataFrame, psi_threshold: float, unseen_threshold: float
) -> pd.DataFrame:
    """One row per profiled column of ``table`` (columns ``DRIFT_COLUMNS``), highest PSI first."""
    by_name = {c.name: c for c in schema}
    rows = []
    for name, trained in profile["columns"].items():
        col = by_name[name]
        if col.kind == "categorical":
            row = _categorical_drift(table[name], trained)
        else:
            row = _numeric_drift(column_values(table[name], col), trained, as_dates=col.kind == "datetime")
        drifted = row["psi"] > psi_threshold or row["unseen"] > unseen_threshold
        rows.append({"column": name, "kind": col.kind, **row, "status": "drift" if drifted else "ok"})
    frame = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return frame.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _numeric_drift(values: np.ndarray, trained: dict[str, Any], as_dates: bool) -> dict[str, Any]:
    shares, missing = binned_shares(values, trained["edges"])
    psi = population_stability_index([*trained["shares"], trained["missing"]], [*shares, missing])
    present = values[~np.isnan(values)]
    mean = float(present.mean()) if len(present) else math.nan
    show = _as_date if as_dates else "{:.4g}".format
    detail = "no values" if not len(present) else (
        f"mean {show(trained['mean'])} → {show(mean)}" if trained["mean"] is not None else f"mean {show(mean)}"
    )
    return {
        "psi": psi, "missing_train": trained["missing"], "missing_new": missing, "unseen": math.nan, "detail": detail,
    }


def _categorical_drift(series: pd.Series, trained: dict[str, Any]) -> dict[str, Any]:
    shares, missing = level_shares(series)
    known = trained["levels"]
    kept = [shares.get(level, 0.0) for level in known]
    other = max(0.0, 1.0 - missing - sum(kept))
    psi = population_stability_index([*known.values(), trained["other"], trained["missing"]], [*kept, other, missing])
    complete = trained["n_levels"] <= len(known)  # else a level not named may be a rare training level
    new_levels = [level for level in shares if level not in known]
    unseen = sum(shares[level] for level in new_levels) if complete else math.nan
    changes = {level: (share, shares.get(level, 0.0)) for level, share in known.items()}
    changes["(other)"] = (trained["other"], other)
    level, (before, after) = max(changes.items(), key=lambda item: abs(item[1][1] - item[1][0]))
    detail = f"{level!r} {before:.1%} → {after:.1%}" if level != "(other)" else f"other levels {before:.1%} → {after:.1%}"
    if complete and new_levels:
        detail += "; new: " + ", ".join(repr(level) for level in new_levels[:3]) + (", …" if len(new_levels) > 3 else "")
    return {"psi": psi, "missing_train": trained["missing"], "missing_new": missing, "unseen": unseen, "detail": detail}


def _as_date(days: float) -> str:
    return (pd.Timestamp(0) + pd.Timedelta(days=days)).date().isoformat()
