"""Many processes on many machines, one search: Optuna's model, a shared relational database.

A run started with ``storage=<database URL>`` and ``study_name=NAME`` (the coordinator:
``automl fit ... --storage URL --study NAME``) records itself in the database, as a study
named ``NAME`` whose user attributes hold the run's settings and where its data lies; its
models' studies are ``NAME/<model>``. ``automl worker --storage URL --study NAME``, on any
machine, reads that record, loads the same data (checked against the run's checksum), makes
the same folds, and runs trials in the same studies until the coordinator's search time ends.
The coordinator then refits the best configuration found by anyone and saves the run.

Trials keep heartbeats in the database: the trial of a process that died (power loss,
``kill -9``, a pre-empted node) is failed by the next process that looks, and run again.
There is no scheduler of our own: start workers with whatever you have (a shell loop, SLURM,
Kubernetes).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any

import optuna

from ._exceptions import InputError

__all__ = [
    "HEARTBEAT_SECONDS", "SharedRun", "open_storage", "is_database_url", "run_worker", "wait_for_running_trials",
]

logger = logging.getLogger(__name__)

#: Seconds between a running trial's heartbeats (``AUTOML_HEARTBEAT_SECONDS`` overrides it).
HEARTBEAT_SECONDS = 10
#: A trial whose heartbeat is this many intervals old belongs to a process that died.
GRACE_INTERVALS = 3
#: How often a stale trial is run again before it counts as failed for good.
MAX_RETRIES = 2
RUN_ATTR = "automl_run"
#: Seconds a worker keeps the coordinator's "search until" time before reading it again.
REREAD_SECONDS = 2.0


def is_database_url(storage: Any) -> bool:
    return isinstance(storage, str) and "://" in storage


def heartbeat_seconds() -> int:
    value = os.environ.get("AUTOML_HEARTBEAT_SECONDS")
    if value is None:
        return HEARTBEAT_SECONDS
    try:
        seconds = int(value)
    except ValueError:
        raise InputError(f"AUTOML_HEARTBEAT_SECONDS must be a whole number of seconds, got {value!r}") from None
    if seconds < 1:
        raise InputError(f"AUTOML_HEARTBEAT_SECONDS must be at least 1, got {seconds}")
    return seconds


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeats and retries of trials whose process died."""
    interval = heartbeat_seconds()
    try:
        with warnings.catch_warnings():
            # heartbeats and their retry callback are marked experimental since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb_storage(url, interval)
    except ImportError as exc:
        driver = "pip install 'automl-select[postgres]'" if url.startswith("postgres") else "install its database driver"
        raise InputError(f"cannot open storage {_redacted(url)}: {exc}; {driver}") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's many connection errors
        raise InputError(f"cannot open storage {_redacted(url)}: {type(exc).__name__}: {exc}") from None


def _rdb_storage(url: str, interval: int) -> optuna.storages.RDBStorage:
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=interval,
            grace_period=GRACE_INTERVALS * interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
            engine_kwargs={"pool_pre_ping": True},
        )
    finally:
        optuna.logging.set_verbosity(previous)


def _redacted(url: str) -> str:
    """The URL without its password, for messages and the manifest."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse: show only its scheme
        return url.split("://", 1)[0] + "://…"


class SharedRun:
    """A run's record in a shared database: its settings, its state, when its search ends."""

    def __init__(self, storage: optuna.storages.BaseStorage, name: str, study_id: int):
        self.storage = storage
        self.name = name
        self._study_id = study_id
        self._cached: tuple[float, dict] | None = None

    @classmethod
    def create(cls, storage, name: str, settings: dict[str, Any]) -> SharedRun:
        """Record a new run; refuses a name already taken (each run needs its own)."""
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
        try:
            study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
        except optuna.exceptions.DuplicatedStudyError:
            raise InputError(
                f"the storage already holds a run named {name!r}; choose another --study name "
                "(workers join a run by its name)"
            ) from None
        finally:
            optuna.logging.set_verbosity(previous)
        run = cls(storage, name, study_id)
        storage.set_study_user_attr(study_id, RUN_ATTR, {**settings, "state": "searching"})
        return run

    @classmethod
    def open(cls, storage, name: str) -> SharedRun:
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            raise InputError(
                f"the storage holds no run named {name!r}; start it with "
                f"`automl fit DATA --target COL --storage URL --study {name}`"
            ) from None
        run = cls(storage, name, study_id)
        if RUN_ATTR not in storage.get_study_user_attrs(study_id):
            raise InputError(f"the study {name!r} in this storage is not an automl run")
        return run

    @property
    def settings(self) -> dict[str, Any]:
        return self.storage.get_study_user_attrs(self._study_id)[RUN_ATTR]

    def update(self, **changes) -> None:
        self.storage.set_study_user_attr(self._study_id, RUN_ATTR, {**self.settings, **changes})
        self._cached = None

    def stop_at(self) -> float:
        """The coordinator's end of the search on this process's monotonic clock (re-read every
        few seconds); now, once the coordinator has stopped searching."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > REREAD_SECONDS:
            self._cached = (now, self.settings)
        settings = self._cached[1]
        if settings.get("state") != "searching":
            return now
        return now + (settings["search_until"] - time.time())


def wait_for_running_trials(studies: list[optuna.Study], until: float, poll: float = 0.2) -> int:
    """Wait until no trial of ``studies`` is running in another process, or ``time.monotonic()``
    passes ``until``; return how many still run then. A dead process's trial is failed (its
    heartbeat stopped) rather than waited for."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import fail_stale_trials

    while True:
        running = 0
        for study in studies:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(study)
            running += len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
        if running == 0 or time.monotonic() >= until:
            return running
        time.sleep(poll)


def run_worker(storage_url: str, name: str, *, n_jobs: int = 1, memory_limit: float | None = None) -> int:
    """Join the run ``name`` in the database at ``storage_url`` and run its trials until its
    search ends; return the number of trials this process ran."""
    from ._api import _available_cores, _fingerprint, _split_test, _start_workers
    from ._batch import read_table
    from ._data import as_table, infer_schema, prepare_target
    from ._metrics import resolve_scorer
    from ._plugins import collect_models, get_plugin_manager
    from ._runner import WorkerRunner
    from ._search import create_studies, run_search
    from ._shared_data import SharedData
    from ._spec import ModelContext
    from ._validation import Validation, make_folds, make_splitter

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
