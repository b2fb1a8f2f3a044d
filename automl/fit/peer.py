"""A peer worker: ``automl worker`` joins a run shared through a database and runs its trials."""

from __future__ import annotations

import logging
import time
from .._exceptions import InputError
from ..search.storage import SharedRun, open_storage

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)

def run_worker(storage_url: str, name: str, *, n_jobs: int = 1, memory_limit: float | None = None) -> int:
    """Join the run ``name`` in the database at ``storage_url`` and run its trials until its
    search ends; return the number of trials this process ran."""
    from .api import _available_cores, _fingerprint, _split_test, _start_workers
    from ..data.tables import read_table
    from ..data.schema import as_table, infer_schema, prepare_target
    from .._metrics import resolve_scorer
    from .._plugins import collect_models, get_plugin_manager
    from ..search.trial_process import WorkerRunner
    from ..search.studies import create_studies
    from ..search.scheduler import run_search
    from ..search.payload import SharedData
    from .._spec import ModelContext
    from ..data.validation import Validation, make_folds, make_splitter

    import numpy as np

    storage = open_storage(storage_url)
    run = SharedRun.open(storage, name)
    settings = run.settings
    if run.stop_at() <= time.monotonic():
        logger.info("run %s is not searching any more (%s); nothing to do", name, settings.get("state"))
        return 0
    if not settings.get("data"):
        raise InputError(
            f"run {name!r} did not record where its data is, so workers cannot load it; start it with "
            "`automl fit DATA ...` or fit_best(..., data_location=...)"
        )
    table = read_table(settings["data"])
    if settings["target"] not in table.columns:
        raise InputError(f"the run's target column {settings['target']!r} is not in {settings['data']}")
    y = table.pop(settings["target"])
    table = as_table(table)
    y_all, task = prepare_target(y, len(table), settings["task"])
    if _fingerprint(table, y_all) != settings["data_sha256"]:
        raise InputError(
            f"{settings['data']} differs from the data run {name!r} was started with (checksums differ); "
            "every worker must read the same table"
        )
    _, scorer = resolve_scorer(settings["metric"], task)
    registered = collect_models(get_plugin_manager())
    missing = [m for m in settings["models"] if m not in registered]
    if missing:
        raise InputError(f"model(s) {missing} of run {name!r} are not installed here; install the same plugins as the coordinator")
    chosen = [registered[m] for m in settings["models"]]
    search_rows, test_rows = _split_test(y_all, settings["test_size"], task, settings["seed"])
    X_search, y_search = table.iloc[search_rows].reset_index(drop=True), y_all[search_rows]
    schema = infer_schema(X_search)  # as the coordinator types it: on the search rows only
    # the coordinator's validation plan, so that every process scores trials on the same folds
    validation = Validation.from_dict(settings["validation"])
    splitter = make_splitter(None, validation, task, settings["seed"])
    folds = make_folds(splitter, X_search, y_search, task, validation, settings["seed"])

    cores = _available_cores()
    n_workers = cores if n_jobs == -1 else n_jobs
    context = ModelContext(
        task=task, seed=settings["seed"], n_samples=len(X_search), n_features=table.shape[1],
        n_classes=len(np.unique(y_all)) if task != "regression" else 0, n_jobs=max(1, cores // n_workers),
    )
    searches = create_studies(chosen, storage, f"{name}/", settings["seed"], join=True)
    shared_data = SharedData(
        {"X": table, "y": y_all, "search_rows": search_rows, "test_rows": test_rows, "folds": folds},
        {"scorer": scorer, "classification": task != "regression"},
    )
    runners = [WorkerRunner(shared_data.payload, threads=context.n_jobs, memory_limit=memory_limit) for _ in range(n_workers)]
    ran = 0

    def count(search, trial) -> None:
        nonlocal ran
        ran += 1
        logger.info("%s #%d %s", search.name, trial.number, f"score {trial.value:.4f}" if trial.value is not None else trial.state.name.lower())

    logger.info("joined run %s: %d model(s), %d rows; searching until the coordinator stops", name, len(searches), len(table))
    try:
        _start_workers(runners, memory_limit)
        run_search(
            searches, runners, len(folds), schema, context, stop_at=run.stop_at, n_trials=settings["n_trials"],
            on_trial=count, shared=True,
        )
    finally:
        for runner in runners:
            runner.close()
        shared_data.close()
    logger.info("run %s: this worker ran %d trial(s)", name, ran)
    return ran
