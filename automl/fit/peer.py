"""A peer worker: ``automl worker`` joins a run shared through a database and runs its trials.

It reads the same table the coordinator recorded, makes the same data plan from the run's
settings (the checksum proves the data is the same; the seeded split, schema and folds follow),
and runs trials on the shared studies until the coordinator stops searching.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from .._exceptions import InputError
from .._metrics import resolve_scorer
from .._plugins import RegisteredModel, collect_models, get_plugin_manager
from ..data.plan import DataPlan, PlanSpec, check_fingerprint, fingerprint
from ..data.schema import as_table, prepare_target
from ..data.tables import read_table
from ..data.validation import Validation
from ..search.payload import SharedData
from ..search.scheduler import run_search
from ..search.storage import SharedRun, open_storage
from ..search.studies import create_studies
from ..search.trial import TrialSetup
from ..search.trial_process import TrialProcess
from .processes import start_trial_processes
from .settings import available_cores

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)


def run_worker(storage_url: str, name: str, *, n_jobs: int = 1, memory_limit: float | None = None) -> int:
    """Join the run ``name`` in the database at ``storage_url`` and run its trials until its
    search ends; return the number of trials this process ran."""
    storage = open_storage(storage_url)
    run = SharedRun.open(storage, name)
    settings = run.settings
    if run.stop_at() <= time.monotonic():
        logger.info("run %s is not searching any more (%s); nothing to do", name, settings.get("state"))
        return 0
    plan = _replayed_plan(name, settings, read_table(_data_location(name, settings)))
    _, scorer = resolve_scorer(settings["metric"], plan.task)
    searches = create_studies(_models(name, settings), storage, f"{name}/", settings["seed"], join=True)
    n_processes = available_cores() if n_jobs == -1 else n_jobs
    context = plan.context(n_jobs=max(1, available_cores() // n_processes))
    shared_data = SharedData(plan.payload(), {"scorer": scorer, "classification": plan.task != "regression"})
    runners = [TrialProcess(shared_data.payload, threads=context.n_jobs, memory_limit=memory_limit) for _ in range(n_processes)]
    ran = 0

    def count(search, trial) -> None:
        nonlocal ran
        ran += 1
        logger.info("%s #%d %s", search.name, trial.number, f"score {trial.value:.4f}" if trial.value is not None else trial.state.name.lower())

    logger.info("joined run %s: %d model(s), %d rows; searching until the coordinator stops", name, len(searches), len(plan.table))
    try:
        start_trial_processes(runners, memory_limit)
        setup = TrialSetup(
            len(plan.folds), plan.schema, context, run.stop_at, on_trial=count, max_predict_ms=settings.get("max_predict_ms"),
        )
        run_search(searches, runners, setup, n_trials=settings["n_trials"], shared=True)
    finally:
        for runner in runners:
            runner.close()
        shared_data.close()
    logger.info("run %s: this worker ran %d trial(s)", name, ran)
    return ran


def _data_location(name: str, settings: dict) -> str:
    if not settings.get("data"):
        raise InputError(
            f"run {name!r} did not record where its data is, so workers cannot load it; start it with "
            "`automl fit DATA ...` or fit_best(..., data_location=...)"
        )
    return settings["data"]


def _replayed_plan(name: str, settings: dict, table: pd.DataFrame) -> DataPlan:
    """The coordinator's data plan, made again from the run's settings: same rows, schema, folds."""
    if settings["target"] not in table.columns:
        raise InputError(f"the run's target column {settings['target']!r} is not in {settings['data']}")
    y = table.pop(settings["target"])
    table = as_table(table)
    y_all, task = prepare_target(y, len(table), settings["task"])
    check_fingerprint(fingerprint(table, y_all), settings["data_sha256"], (
        f"{settings['data']} differs from the data run {name!r} was started with (checksums differ); "
        "every worker must read the same table"
    ))
    return DataPlan.make(table, y_all, PlanSpec(
        task, settings["seed"], settings["test_size"], cv=None, validation=Validation.from_dict(settings["validation"]),
    ))


def _models(name: str, settings: dict) -> list[RegisteredModel]:
    registered = collect_models(get_plugin_manager())
    missing = [m for m in settings["models"] if m not in registered]
    if missing:
        raise InputError(f"model(s) {missing} of run {name!r} are not installed here; install the same plugins as the coordinator")
    return [registered[m] for m in settings["models"]]
