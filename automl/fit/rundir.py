"""Opening a run: its directory (new, or one to resume), and where its studies are stored (the
journal file inside it, a storage the user gave, or a database shared with peer workers)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import numbers
import secrets
from pathlib import Path
from typing import Any

import optuna

from .._exceptions import InputError
from ..data.plan import DataPlan, check_fingerprint
from ..data.validation import AUTO, Validation
from ..search.storage import is_database_url, open_storage
from ..store.persist import RUN_FILE, STUDY_FILE, read_json, write_json
from .settings import FitSettings

__all__ = ["RunPlace", "now", "recorded_validation", "run_record"]

logger = logging.getLogger(__name__)

#: The settings a resumed run must share with the run it continues.
SAME_ON_RESUME = ("task", "metric", "seed", "cv", "test_size", "models")


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def run_record(plan: DataPlan, metric: str, models: list[str]) -> dict[str, Any]:
    """The settings a run is started with (``run.json``): what resume and peers check against."""
    validation = plan.validation
    return {
        "task": plan.task, "metric": metric, "cv": str(plan.splitter), "seed": plan.seed, "test_size": plan.test_size,
        "validation": validation.to_dict() if validation is not None else None,
        "models": models, "data_sha256": plan.fingerprint,
    }


def recorded_validation(settings: FitSettings) -> Validation | None:
    """The validation plan of the run being resumed, so that it continues on the same folds."""
    if not settings.resume or settings.cv != AUTO:
        return None
    file = Path(settings.path) / RUN_FILE
    recorded = read_json(file) if file.is_file() else {}
    return Validation.from_dict(recorded["validation"]) if recorded.get("validation") else None


@dataclasses.dataclass
class RunPlace:
    """Where a run lives: its directory (None with ``save=False``), the storage of its studies,
    the prefix of their names, and, for a run shared with peer workers, its name."""

    directory: Path | None
    storage: Any
    prefix: str
    embedded: bool
    storage_label: str | None
    shared_name: str | None

    @classmethod
    def open(cls, settings: FitSettings, record: dict[str, Any]) -> RunPlace:
        """Check the storage, then create (or check, to resume) the run directory; a new one
        gets ``run.json`` at once, so that it can be resumed whatever happens next."""
        storage = settings.storage
        label = describe_storage(storage) if storage is not None else None
        if is_database_url(storage):
            storage = open_storage(storage)  # with heartbeats: a peer that dies has its trial retried
        shared_name = _check_shared_run(settings, storage) if settings.study_name is not None else None
        directory = None
        if settings.resume:
            directory = _resume_directory(Path(settings.path), record)
        elif settings.save:
            directory = _new_run_directory(settings.path)
        embedded = storage is None and directory is not None
        if embedded:
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(directory / STUDY_FILE)))
        place = cls(directory, storage, "", embedded, label, shared_name)
        place.prefix = place._study_prefix(settings.resume)
        if directory is not None and not settings.resume:
            write_json(directory / RUN_FILE, {**record, "created": now(), "study_prefix": place.prefix, "embedded_storage": embedded})
        return place

    def _study_prefix(self, resume: bool) -> str:
        if resume:
            recorded = read_json(self.directory / RUN_FILE)
            kept_inside = recorded.get("embedded_storage", True)
            if kept_inside != self.embedded:
                raise InputError(
                    f"the run in {self.directory} kept its studies {'in the run directory' if kept_inside else 'in a storage URL'}; "
                    "resume it with the same storage= as the first call"
                )
            return recorded.get("study_prefix", "")
        if self.shared_name is not None:
            return f"{self.shared_name}/"
        # a shared database may hold many runs: keep this run's study names apart
        return "" if self.embedded else f"{self.directory.name if self.directory else 'run'}-{secrets.token_hex(4)}/"

    @property
    def storage_in_manifest(self) -> str | None:
        return STUDY_FILE if self.embedded else self.storage_label


def _resume_directory(directory: Path, record: dict[str, Any]) -> Path:
    if not (directory / RUN_FILE).is_file():
        raise InputError(f"nothing to resume in {directory}: it holds no {RUN_FILE} (start it with path= and without resume)")
    recorded = read_json(directory / RUN_FILE)
    check_fingerprint(record["data_sha256"], recorded.get("data_sha256"), (
        f"the data differs from the data the run in {directory} was started with; resume it with the "
        "same X and y, or start a new run"
    ))
    for key in SAME_ON_RESUME:
        if recorded.get(key) != record[key]:
            raise InputError(
                f"{key} differs from the run in {directory}: it was {recorded.get(key)!r}, now {record[key]!r}; "
                "resume with the same settings, or start a new run"
            )
    return directory


def _new_run_directory(path) -> Path:
    if path is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = Path("automl-runs") / f"{stamp}-{secrets.token_hex(3)}"
    else:
        directory = Path(path)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise InputError(
                f"{directory} already exists and is not an empty directory; choose a new path "
                "so the earlier run stays untouched"
            )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _check_shared_run(settings: FitSettings, storage) -> str:
    """The run's name in a shared database, once it is known that peer workers can join it."""
    name = settings.study_name
    if not isinstance(storage, optuna.storages.RDBStorage):
        raise InputError(
            "study_name= needs storage= a database URL (e.g. postgresql://user:password@host/db) that the "
            "workers can reach"
        )
    if not isinstance(name, str) or not name or "/" in name:
        raise InputError(f"study_name must be a non-empty name without '/', got {name!r}")
    if settings.resume:
        raise InputError("resume=True does not combine with study_name=; start a new run with a new name")
    cv = settings.cv
    if not (cv == AUTO or isinstance(cv, numbers.Integral) and not isinstance(cv, bool)):
        raise InputError("study_name= needs cv='auto' or a number of folds, so that workers make the same folds")
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return name
    raise InputError(
        f"the storage already holds a run named {name!r}; choose another --study name (workers join a run by its name)"
    )


def describe_storage(storage) -> str:
    """The storage as the manifest names it (a URL without its password)."""
    if isinstance(storage, str):
        from sqlalchemy.engine import make_url

        try:
            return make_url(storage).render_as_string(hide_password=True)
        except Exception:
            return "(storage URL)"
    return type(storage).__name__
