"""The run directory: atomic writes, the manifest with checksums, and loading it back.

Layout of a run directory::

    model.joblib       the refit winner (a scikit-learn Pipeline), written with joblib
    manifest.json      what was run and found, library versions, sha256 of every artifact
    leaderboard.csv    one row per model
    trials.csv         one row per trial (params and fold scores as JSON)
    study.journal      the Optuna studies (JournalStorage), one per model, unless storage= was given
    run.json           the run's settings and a checksum of its data, written first (for resume)

``manifest.json`` is written last: a directory without it holds no finished run.
joblib files run code when loaded: load only run directories you trust. The checksums detect
corruption and truncation, not tampering.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .._exceptions import RunDirectoryError
from .result import Result

__all__ = [
    "MODEL_FILE", "MANIFEST_FILE", "STUDY_FILE", "RUN_FILE", "atomic_file", "atomic_write", "write_json", "read_json",
    "save_run", "load", "library_versions",
]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
LEADERBOARD_FILE = "leaderboard.csv"
TRIALS_FILE = "trials.csv"
STUDY_FILE = "study.journal"
RUN_FILE = "run.json"

_VERSIONED = ["automl-select", "scikit-learn", "optuna", "pandas", "numpy", "joblib", "pluggy", "keras", "tensorflow"]
# Loading a model needs the same versions of these; a difference is worth a warning.
_VERSIONS_THAT_MATTER_FOR_LOADING = ["scikit-learn", "numpy", "joblib", "keras", "tensorflow"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


@contextlib.contextmanager
def atomic_file(path: Path):
    """Yield a temporary path beside ``path``; once the block succeeds, it replaces ``path``.

    ``path`` holds either its old content or all of the new, whatever fails in between.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide runs from other users
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def atomic_write(path: Path, data: bytes) -> str:
    """Write ``data`` so that ``path`` holds either its old content or all of the new; return sha256."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    frame = frame.copy()
    for column in ("params", "fold_scores"):
        if column in frame:
            frame[column] = [json.dumps(v, default=_json_default) for v in frame[column]]
    return frame.to_csv(index=False).encode()


def _json_default(value: Any):
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return str(value)


def write_json(path: Path, data: dict[str, Any]) -> str:
    return atomic_write(path, json.dumps(data, indent=2, default=_json_default).encode())


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path} is not valid JSON ({exc}); the file is damaged") from None


def save_run(directory: Path, result: Result, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the run's artifacts, then the manifest that lists their checksums."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {
        MODEL_FILE: atomic_write(directory / MODEL_FILE, result.model_bytes()),
        LEADERBOARD_FILE: atomic_write(directory / LEADERBOARD_FILE, _csv_bytes(result.leaderboard)),
        TRIALS_FILE: atomic_write(directory / TRIALS_FILE, _csv_bytes(result.trials)),
    }
    manifest = {**manifest, "artifacts": {name: {"sha256": digest} for name, digest in artifacts.items()}}
    write_json(directory / MANIFEST_FILE, manifest)
    return manifest


def load(path: str | os.PathLike) -> Result:
    """Load a saved run directory, verifying the checksum of every artifact.

    joblib files run code when loaded: load only run directories you trust.
    """
    directory = Path(path)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise RunDirectoryError(
            f"{directory} holds no finished run: {MANIFEST_FILE} is missing "
            "(the run failed or was interrupted before saving, or this is not a run directory)"
        )
    manifest = read_json(manifest_path)
    contents = {}
    for name, entry in manifest.get("artifacts", {}).items():
        file = directory / name
        if not file.is_file():
            raise RunDirectoryError(f"{file} is missing; the run directory is incomplete")
        contents[name] = file.read_bytes()
        digest = hashlib.sha256(contents[name]).hexdigest()
        if digest != entry["sha256"]:
            raise RunDirectoryError(
                f"{file} does not match its checksum in {MANIFEST_FILE} (expected sha256 "
                f"{entry['sha256'][:12]}…, found {digest[:12]}…): the file is truncated or "
                "corrupted. Restore it from a backup or re-run the search."
            )
    _warn_on_version_differences(manifest.get("versions", {}))
    return Result(
        model_bytes=contents[MODEL_FILE],
        model_name=manifest["model"],
        params=manifest["params"],
        score=manifest["cv_score"],
        test_score=manifest.get("test_score"),
        metric=manifest["metric"],
        task=manifest["task"],
        leaderboard=_read_csv(directory / LEADERBOARD_FILE),
        trials=_read_csv(directory / TRIALS_FILE),
        path=directory,
        manifest=manifest,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=True)
    for column in ("params", "fold_scores"):
        if column in frame:
            frame[column] = [json.loads(v) for v in frame[column]]
    if "error" in frame:
        frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), "")
    return frame


def _warn_on_version_differences(recorded: dict[str, str | None]) -> None:
    installed = library_versions()
    differences = [
        f"{dist} {recorded.get(dist)} (saved) vs {installed.get(dist)} (installed)"
        for dist in _VERSIONS_THAT_MATTER_FOR_LOADING
        if recorded.get(dist) and recorded.get(dist) != installed.get(dist)
    ]
    if differences:
        warnings.warn(
            "this run was saved with other library versions: " + "; ".join(differences)
            + ". The model may fail to load or predict differently; re-run the search to be safe.",
            UserWarning,
            stacklevel=3,
        )
