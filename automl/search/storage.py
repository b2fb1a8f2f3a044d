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
Kubernetes)."""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any
import optuna
from .._exceptions import InputError

__all__ = ["SharedRun", "open_storage", "is_database_url", "wait_for_running_trials", "REREAD_SECONDS"]

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
