"""Experiment tracking in MLflow: a parent run per search, a nested run per trial, the winner as a model.

Two ways to turn it on (both need ``pip install "automl-select[mlflow]"``):

- per call: ``automl.fit_best(X, y, plugins=[MLflowTracker("sqlite:///mlflow.db")])``, or
  ``automl fit DATA.csv --target COL --mlflow sqlite:///mlflow.db``;
- without code: set ``AUTOML_MLFLOW_TRACKING_URI=sqlite:///mlflow.db`` (or ``AUTOML_MLFLOW=1``
  to log wherever MLflow's own ``MLFLOW_TRACKING_URI`` or default points). This module is
  registered through the ``automl.plugins`` entry-point group; its module-level hooks do nothing
  unless one of those variables is set. ``AUTOML_MLFLOW=0`` turns it off. A run that is also
  given an explicit ``MLflowTracker`` is logged once, by that tracker.

mlflow is imported when a run starts, never at ``import automl`` or ``automl models``. Whatever
fails in MLflow (an unreachable server, an unwritable store) is a ``RuntimeWarning``: tracking
never stops a search.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import json
import logging
import math
import os
import time
import warnings
import weakref

import automl

__all__ = ["MLflowTracker"]

logger = logging.getLogger(__name__)

ENV_URI = "AUTOML_MLFLOW_TRACKING_URI"
ENV_SWITCH = "AUTOML_MLFLOW"
URI_VARIABLE = "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT = "automl"
MODEL_NAME = "model"
PARENT_TAG = "mlflow.parentRunId"
#: MLflow run status of a nested trial run, by trial state
TRIAL_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "fail": "FAILED"}
#: MLflow column types by the pandas dtype recorded in the manifest; other dtypes: no signature
_COLUMN_TYPES = {"bool": "boolean", "boolean": "boolean", "object": "string", "str": "string", "string": "string"}
_TAG_LIMIT = 5000  # MLflow caps tag values at 8000 characters, param values at 6000

# runs that a tracker passed per call logs: the environment's tracker stands aside for them
_explicit_runs: weakref.WeakValueDictionary[int, automl.RunInfo] = weakref.WeakValueDictionary()
# parent runs not ended yet (fit_best raised before automl_run_finished): ended FAILED at exit
_open_parents: dict[str, object] = {}


@dataclasses.dataclass
class _Search:
    """One search as a tracker follows it."""

    run: automl.RunInfo
    started: float  # time.time()
    clock: float  # time.monotonic()
    client: object = None
    parent_id: str | None = None
    experiment_id: str | None = None
    trials: int = 0
    best: float | None = None
    broken: bool = False


class MLflowTracker:
    """Logs every search to MLflow; pass it with ``automl.fit_best(..., plugins=[MLflowTracker()])``.

    The parent run holds the settings (params ``task``, ``metric``, ``models``, ``n_rows``,
    ``n_columns``, ``time_budget``, ``n_trials``, ``seed``; tag ``automl.run_dir``), the running
    best CV score per finished trial (metric ``best_score``), and at the end the winner (params
    ``best_model`` and ``best.<param>``), metrics ``cv_score``, ``cv_std``, ``test_score``,
    ``seconds``, ``trials``, ``trials_complete``, ``trials_pruned``, ``trials_failed``, artifacts
    ``leaderboard.csv``, ``trials.csv``, ``manifest.json``, and the refit winner as the MLflow model
    ``model`` (``mlflow.sklearn``, cloudpickle; loading it needs automl-select installed). Each
    finished trial is a nested run (tag ``mlflow.parentRunId``) with its hyperparameters as params,
    metrics ``score`` (mean CV score, complete trials only) and ``duration``, and tags
    ``automl.model``, ``automl.trial``, ``automl.state`` and ``automl.error``.

    :param tracking_uri: where to log, e.g. ``"sqlite:///mlflow.db"`` or ``"http://host:5000"``;
        None: MLflow's default (``MLFLOW_TRACKING_URI``, ``mlflow.set_tracking_uri``).
    :param experiment: the experiment's name, created when missing. None: the caller's active
        run's experiment if the parent is nested under it, else ``MLFLOW_EXPERIMENT_NAME``, else
        ``"automl"``.
    :param log_model: log the refit winner as an MLflow model.
    :param run_name: the parent run's name; None: the run directory's name (or MLflow's choice).

    The runs are written through ``MlflowClient`` with explicit run ids: the caller's active run
    is never started, ended or switched. When the calling thread has an active run
    (``with mlflow.start_run():``) in the same tracking store, the parent run is nested under it.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None,
                 log_model: bool = True, run_name: str | None = None):
        if importlib.util.find_spec("mlflow") is None:
            raise ImportError("MLflowTracker needs mlflow: pip install 'automl-select[mlflow]'")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.log_model = log_model
        self.run_name = run_name
        self._from_environment = False
        self._searches: dict[int, _Search] = {}

    def __repr__(self) -> str:
        return f"MLflowTracker(tracking_uri={self.tracking_uri!r}, experiment={self.experiment!r})"

    # -- the observer hooks -------------------------------------------------------------------

    @automl.hookimpl
    def automl_run_started(self, run):
        search = self._searches[id(run)] = _Search(run, time.time(), time.monotonic())
        if not self._from_environment:
            _explicit_runs[id(run)] = run
            self._open(search)
        # the environment's tracker opens its parent run at the first trial, once every
        # automl_run_started has been called and an explicit tracker would have claimed the run

    @automl.hookimpl
    def automl_trial_completed(self, run, record):
        search = self._search(run)
        if search is not None:
            try:
                self._log_trial(search, record)
            except Exception as exc:
                self._give_up(search, f"could not log trial {record.model} #{record.number}", exc)

    @automl.hookimpl
    def automl_run_finished(self, run, result):
        search = self._search(run)
        self._searches.pop(id(run), None)
        if search is not None:
            try:
                self._finish(search, result)
            except Exception as exc:
                self._give_up(search, "could not log the end of the run", exc)

    # -- the parent run -----------------------------------------------------------------------

    def _search(self, run) -> _Search | None:
        """The search this tracker logs for ``run``, its parent run open; None to log nothing."""
        search = self._searches.get(id(run))
        if search is None or search.run is not run or search.broken:
            return None
        if self._from_environment and _explicit_runs.get(id(run)) is run:
            del self._searches[id(run)]
            return None
        if search.parent_id is None:
            self._open(search)
        return None if search.broken else search

    def _open(self, search: _Search) -> None:
        try:
            import mlflow
            from mlflow.entities import Param

            client = mlflow.MlflowClient(self.tracking_uri)
            active = mlflow.active_run()
            if active is not None and self.tracking_uri not in (None, mlflow.get_tracking_uri()):
                active = None  # the caller's run is in another store: nothing to nest under
            search.experiment_id = self._experiment_id(client, active)
            run = search.run
            tags = {"automl.started": run.started, "automl.version": automl.__version__}
            if run.path is not None:
                tags["automl.run_dir"] = str(run.path)
            if active is not None:
                tags[PARENT_TAG] = active.info.run_id
            name = self.run_name or (os.path.basename(str(run.path)) if run.path is not None else None)
            parent = client.create_run(search.experiment_id, start_time=int(search.started * 1000), tags=tags, run_name=name)
            search.client, search.parent_id = client, parent.info.run_id
            _open_parents[search.parent_id] = client
            params = {
                "task": run.task, "metric": run.metric, "models": ",".join(run.models), "n_rows": run.n_rows,
                "n_columns": run.n_columns, "time_budget": run.time_budget, "n_trials": run.n_trials, "seed": run.seed,
            }
            client.log_batch(search.parent_id, params=[Param(k, str(v)) for k, v in params.items()])
        except Exception as exc:
            self._give_up(search, "could not start the run", exc)

    def _experiment_id(self, client, active) -> str:
        name = self.experiment
        if name is None:
            if active is not None:
                return active.info.experiment_id
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name)
        except Exception:
            experiment = client.get_experiment_by_name(name)  # another process created it meanwhile
            if experiment is None:
                raise
            return experiment.experiment_id

    def _log_trial(self, search: _Search, record) -> None:
        from mlflow.entities import Metric, Param

        client, now = search.client, _now_ms()
        duration = record.duration if math.isfinite(record.duration) else 0.0
        tags = {PARENT_TAG: search.parent_id, "automl.model": record.model, "automl.trial": str(record.number),
                "automl.state": record.state}
        if record.error:
            tags["automl.error"] = record.error[:_TAG_LIMIT]
        child = client.create_run(
            search.experiment_id, start_time=now - int(duration * 1000), tags=tags,
            run_name=f"{record.model}-{record.number}",
        ).info.run_id
        metrics = [Metric("duration", duration, now, 0)]
        score = record.score if record.score is not None and math.isfinite(record.score) else None
        if score is not None:
            metrics.append(Metric("score", score, now, 0))
        client.log_batch(child, metrics=metrics, params=[Param(k, str(v)) for k, v in record.params.items()])
        client.set_terminated(child, status=TRIAL_STATUS.get(record.state, "FINISHED"), end_time=now)
        search.trials += 1
        if score is not None and (search.best is None or score > search.best):
            search.best = score
        if search.best is not None:
            client.log_metric(search.parent_id, "best_score", search.best, timestamp=now, step=search.trials)

    def _finish(self, search: _Search, result) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client, run_id, now = search.client, search.parent_id, _now_ms()
        manifest = result.manifest or {}
        states = result.trials["state"]
        metrics = {
            "cv_score": result.score, "cv_std": manifest.get("cv_std"), "test_score": result.test_score,
            "seconds": time.monotonic() - search.clock, "trials": len(states),
            "trials_complete": (states == "complete").sum(), "trials_pruned": (states == "pruned").sum(),
            "trials_failed": (states == "fail").sum(),
        }
        params = {"best_model": result.model_name, **{f"best.{k}": v for k, v in _winner_params(result).items()}}
        interrupted = manifest.get("interrupted")
        tags = {"automl.interrupted": interrupted} if interrupted else {}
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        client.log_text(run_id, result.leaderboard.to_csv(index=False), "leaderboard.csv")
        client.log_text(run_id, result.trials.to_csv(index=False), "trials.csv")
        client.log_text(run_id, json.dumps(manifest, indent=2, default=str), "manifest.json")
        if self.log_model:
            self._log_winner(search, result)
        client.set_terminated(run_id, status="KILLED" if interrupted else "FINISHED")
        _open_parents.pop(run_id, None)

    def _log_winner(self, search: _Search, result) -> None:
        """The refit winner as the MLflow model ``model``; a failure is a warning, the run goes on."""
        logged = None
        try:
            import mlflow
            import mlflow.sklearn

            # a LoggedModel of our own, so that it lands in this run's experiment whatever the
            # caller's active run or experiment; log_model then writes it through the global URI
            logged = search.client.create_logged_model(
                search.experiment_id, name=MODEL_NAME, source_run_id=search.parent_id,
                params=_winner_params(result),
            )
            with _global_tracking_uri(mlflow, self.tracking_uri):
                info = mlflow.sklearn.log_model(
                    result.model, name=MODEL_NAME, model_id=logged.model_id, run_id=search.parent_id,
                    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                    signature=_signature(result.manifest), pip_requirements=_requirements(),
                )
            search.client.set_tag(search.parent_id, "automl.model_uri", info.model_uri)
        except Exception as exc:
            if logged is not None:
                with contextlib.suppress(Exception):
                    search.client.finalize_logged_model(logged.model_id, "FAILED")
            warnings.warn(
                f"automl: MLflow could not log the winning model to {self._where()}: "
                f"{type(exc).__name__}: {exc}; the rest of the run is logged",
                RuntimeWarning, stacklevel=2,
            )

    def _give_up(self, search: _Search, what: str, exc: Exception) -> None:
        """Stop logging this search: one warning, and the parent run (if any) ended as FAILED."""
        search.broken = True
        warnings.warn(
            f"automl: MLflow {what} ({self._where()}): {type(exc).__name__}: {exc}; "
            "nothing more of this search is logged to MLflow, the search goes on",
            RuntimeWarning, stacklevel=3,
        )
        if search.parent_id is not None:
            _end_quietly(search.parent_id, search.client)

    def _where(self) -> str:
        return f"tracking URI {self.tracking_uri!r}" if self.tracking_uri else "MLflow's default tracking URI"


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.contextmanager
def _global_tracking_uri(mlflow, uri: str | None):
    """MLflow's global tracking URI pointed at ``uri`` for the block (``log_model`` has no URI
    argument), then put back as it was: unset stays unset, and ``MLFLOW_TRACKING_URI`` (which
    ``mlflow.set_tracking_uri`` also writes) keeps its value."""
    if uri is None or uri == mlflow.get_tracking_uri():
        yield
        return
    from mlflow.tracking._tracking_service import utils  # private: where set_tracking_uri keeps it

    previous, previous_env = getattr(utils, "_tracking_uri", mlflow.get_tracking_uri()), os.environ.get(URI_VARIABLE)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is None:
            os.environ.pop(URI_VARIABLE, None)
        else:
            os.environ[URI_VARIABLE] = previous_env


def _signature(manifest: dict):
    """The model's input signature from the column dtypes in the manifest; None when unsure."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    specs = []
    for column in manifest.get("columns") or []:
        dtype = str(column.get("dtype", "")).lower()
        if dtype.startswith(("int", "uint")):
            kind = "long"
        elif dtype.startswith("float"):
            kind = "double"
        elif dtype.startswith("datetime64"):
            kind = "datetime"
        else:
            kind = _COLUMN_TYPES.get(dtype)  # "category" and the rest: unknown value types
        if kind is None:
            return None
        specs.append(ColSpec(kind, column["name"]))
    return ModelSignature(inputs=Schema(specs)) if specs else None


def _requirements() -> list[str]:
    """Pinned rather than inferred: MLflow's inference loads the model in a subprocess."""
    import cloudpickle
    import sklearn

    return [f"automl-select=={automl.__version__}", f"scikit-learn=={sklearn.__version__}",
            f"cloudpickle=={cloudpickle.__version__}"]


def _end_quietly(run_id: str, client) -> None:
    _open_parents.pop(run_id, None)
    try:
        client.set_terminated(run_id, status="FAILED")
    except Exception:  # the store is what failed in the first place
        logger.debug("could not end MLflow run %s", run_id, exc_info=True)


def _end_open_parents() -> None:
    """At exit: a parent run still open belongs to a fit_best that raised; end it as FAILED."""
    for run_id, client in list(_open_parents.items()):
        _end_quietly(run_id, client)


atexit.register(_end_open_parents)


# -- activation through the environment (this module is the entry-point plugin) -----------------

_environment_trackers: dict[int, MLflowTracker] = {}
_reported_missing = False


def _tracker_from_environment() -> MLflowTracker | None:
    global _reported_missing
    uri = os.environ.get(ENV_URI, "").strip()
    switch = os.environ.get(ENV_SWITCH, "").strip().lower()
    if switch in ("0", "false", "no", "off") or not (uri or switch in ("1", "true", "yes", "on")):
        return None
    if importlib.util.find_spec("mlflow") is None:
        if not _reported_missing:
            _reported_missing = True
            logger.warning("%s is set but mlflow is not installed: pip install 'automl-select[mlflow]'",
                           ENV_URI if uri else ENV_SWITCH)
        return None
    tracker = MLflowTracker(uri or None)
    tracker._from_environment = True
    return tracker


@automl.hookimpl
def automl_run_started(run):
    tracker = _tracker_from_environment()
    if tracker is not None:
        _environment_trackers[id(run)] = tracker
        tracker.automl_run_started(run)


@automl.hookimpl
def automl_trial_completed(run, record):
    tracker = _environment_trackers.get(id(run))
    if tracker is not None:
        tracker.automl_trial_completed(run, record)


@automl.hookimpl
def automl_run_finished(run, result):
    tracker = _environment_trackers.pop(id(run), None)
    if tracker is not None:
        tracker.automl_run_finished(run, result)


def _winner_params(result) -> dict[str, str]:
    """The winner's params as MLflow params; an ensemble's as one per member (its full
    configuration is in the manifest artifact), since MLflow limits a param's length."""
    members = result.params.get("members") if result.model_name == "ensemble" else None
    if members:
        return {f"member{i}": f"{m['model']} trial {m['trial']}, weight {m['weight']:.3f}" for i, m in enumerate(members)}
    return {k: str(v) for k, v in result.params.items()}
