"""Optuna's hyperparameter importances (fANOVA) per model, read from a copy of the run's study
journal, and for each model without them the reason."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..store.ensemble import ENSEMBLE
from ..store.persist import STUDY_FILE
from ..store.result import Result


def searched_models(result: Result) -> list[str]:
    """The leaderboard's models in its order, without the ensemble (it has no trials of its own)."""
    return [m for m in result.leaderboard["model"] if m != ENSEMBLE]


def hyperparameter_importances(result: Result) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Optuna's fANOVA importances per model from the run's study journal, and why models were skipped."""
    manifest = result.manifest
    studies: dict[str, str] = manifest.get("studies") or {}
    models = searched_models(result)
    journal = Path(result.path) / STUDY_FILE if result.path is not None else None
    if manifest.get("storage") != STUDY_FILE or journal is None or not journal.is_file():
        where = manifest.get("storage") or "the run's storage"
        return {}, {m: f"the studies are not in the run directory ({where})" for m in models}
    import optuna

    from ..search.studies import quiet_optuna

    importances, skipped = {}, {}
    with tempfile.TemporaryDirectory() as tmp, quiet_optuna():
        # Optuna opens a journal for appending: read a copy, so the run stays untouched (even read-only)
        copy = Path(tmp) / STUDY_FILE
        shutil.copyfile(journal, copy)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(copy)))
        for model in models:
            if model not in studies:
                skipped[model] = "its study is not named in the manifest"
                continue
            study = optuna.load_study(study_name=studies[model], storage=storage)
            found, why = _study_importances(study, manifest.get("seed", 0))
            if found:
                importances[model] = found
            else:
                skipped[model] = why
    return importances, skipped


def _study_importances(study, seed) -> tuple[dict[str, float], str]:
    """One study's importances, or none and why."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = {name for t in complete for name in t.params}
    if len(complete) < 2:
        return {}, f"{len(complete)} complete trial{'s' if len(complete) != 1 else ''} (importances need 2 or more)"
    if len(names) < 2:
        return {}, "a single hyperparameter (it explains everything)" if names else "no hyperparameters"
    try:
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=int(seed)))
    except Exception as exc:  # too few distinct values, a search space that changed, ...
        return {}, f"Optuna could not compute them ({type(exc).__name__}: {exc})"
    if not found:
        return {}, "no hyperparameter present in every complete trial"
    return {str(k): float(v) for k, v in found.items()}, ""
