"""The search's trials and models as tables: the trials frame, the leaderboard, and what was saved."""

from __future__ import annotations

import dataclasses
import math
import numpy as np
import pandas as pd
from optuna.trial import TrialState
from .trial import BUDGET_STOP
from .studies import lost_trial
from .._spec import TrialRecord

__all__ = ["trials_frame", "leaderboard_frame", "trial_record", "mark_saved", "REFIT_FAILED", "LOST"]

LOST = "lost: the process running it stopped sending heartbeats; it was run again as a new trial"
TRIAL_COLUMNS = ["model", "number", "state", "score", "params", "duration", "fold_scores", "predict_ms", "error", "worker"]
#: ``predict_ms``: milliseconds the model of the row's best trial takes to predict 1,000 rows
#: (timed on its first fold's validation rows, in the form that is saved)
LEADERBOARD_COLUMNS = [
    "model", "score", "std", "test_score", "predict_ms", "trials", "complete", "pruned", "failed", "seconds", "status",
    "saved",
]
#: The status of a model (or the ensemble) that won but could not be refit on all rows.
REFIT_FAILED = "refit failed: "


def trial_record(model: str, trial) -> TrialRecord:
    """A finished Optuna trial as automl reports it (to observers, and as a ``trials`` row)."""
    complete = trial.state == TrialState.COMPLETE
    return TrialRecord(
        model=model, number=trial.number, state=trial.state.name.lower(), params=dict(trial.params),
        score=trial.value if complete else None, duration=float(trial.user_attrs.get("duration", math.nan)),
        error=trial.user_attrs.get("error", "") or (LOST if lost_trial(trial) else ""),
    )


def trials_frame(searches) -> pd.DataFrame:
    rows = []
    for search in searches:
        for t in search.study.get_trials(deepcopy=False):
            if not t.state.is_finished():  # enqueued (waiting) or running
                continue
            row = dataclasses.asdict(trial_record(search.name, t))
            row["score"] = math.nan if row["score"] is None else row["score"]
            row["fold_scores"] = list(t.user_attrs.get("fold_scores", []))
            row["predict_ms"] = float(t.user_attrs.get("predict_ms", math.nan))
            row["worker"] = t.user_attrs.get("worker", "")
            rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def leaderboard_frame(searches, trials: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for search in searches:
        own = trials[trials["model"] == search.name]
        complete = own[own["state"] == "complete"]
        row = {
            "model": search.name,
            "score": math.nan,
            "std": math.nan,
            "test_score": math.nan,
            "predict_ms": math.nan,
            "trials": len(own),
            "complete": len(complete),
            "pruned": int((own["state"] == "pruned").sum()),
            "failed": int((own["state"] == "fail").sum()),
            "seconds": float(own["duration"].sum()) if len(own) else 0.0,
            "status": "ok",
            "saved": False,
        }
        if len(complete):
            best = complete.loc[complete["score"].idxmax()]
            row["score"] = float(best["score"])
            row["std"] = float(np.std(best["fold_scores"])) if best["fold_scores"] else math.nan
            row["predict_ms"] = float(best["predict_ms"])
        elif len(own):
            errors = [e for e in own["error"] if e]
            if errors and all(e.startswith(BUDGET_STOP) for e in errors):
                row["status"] = "no trial finished within the time budget"
            else:
                real = [e for e in errors if not e.startswith(BUDGET_STOP)]
                row["status"] = f"all trials failed: {real[0]}" if real else "no complete trial"
        else:
            row["status"] = "not run (time budget)"
        rows.append(row)
    board = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    return board.sort_values("score", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def mark_saved(leaderboard: pd.DataFrame, saved: str, refit_failures: dict[str, str]) -> pd.DataFrame:
    """The leaderboard as saved: ``saved`` is the model in ``model.joblib``, at the top; a model
    whose refit failed (``refit_failures``: model -> reason) says so in its status."""
    board = leaderboard.copy()
    board["saved"] = board["model"] == saved
    for model, reason in refit_failures.items():
        board.loc[board["model"] == model, "status"] = f"{REFIT_FAILED}{reason}"
    # the top row is always the model that was saved; the rest keep their order by score
    return pd.concat([board[board["saved"]], board[~board["saved"]]]).reset_index(drop=True)
