"""One Optuna study per model, and what its trials have shown so far."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import statistics
import zlib
from collections.abc import Sequence
import optuna
from optuna.trial import TrialState
from .._plugins import RegisteredModel
from ..data.preprocess import make_model_pipeline
from .._spec import ModelContext
from .portfolio import first_round_ranks

__all__ = ["ModelSearch", "Starts", "create_studies", "best_search", "lost_trial", "params_of", "build_pipeline", "quiet_optuna"]

logger = logging.getLogger(__name__)

#: A model with this many failed trials and no successful one is given no further trials.
MAX_FAILURES_WITHOUT_SUCCESS = 3
#: A model's first trial starts only with at least this many seconds left: less cannot train
#: and score a model on every fold of a table of any size.
MIN_SECONDS_FOR_FIRST_TRIAL = 2.0


@dataclasses.dataclass
class ModelSearch:
    """The search state of one model: its study and what its trials have shown so far."""

    model: RegisteredModel
    study: optuna.Study
    #: the first round tries models in this order (then cheapest first): a warm start's ranking
    first_round_rank: int = 0
    started: int = 0
    #: trials of this model in progress (several workers may run one model's trials at once)
    running: int = 0
    completed: int = 0
    failed: int = 0
    #: trials lost with their process and waiting to run again (counted by ``sync``)
    retries: int = 0
    best: float | None = None
    durations: list[float] = dataclasses.field(default_factory=list)
    fold_fit_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return self.model.spec.name

    def typical_trial_seconds(self) -> float:
        """Median duration of this model's trials; a floor for a model not tried yet."""
        return statistics.median(self.durations) if self.durations else MIN_SECONDS_FOR_FIRST_TRIAL

    def typical_refit_seconds(self, scale: float) -> float:
        """Expected seconds of the final refit, which sees ``scale`` times a trial fit's rows."""
        if not self.fold_fit_seconds:
            return 0.0
        return statistics.median(self.fold_fit_seconds) * scale

    def sync(self) -> None:
        """Recount from the study: other processes (``automl worker``) add trials to it too."""
        trials = [t for t in self.study.get_trials(deepcopy=False) if not lost_trial(t)]
        finished = [t for t in trials if t.state.is_finished()]
        values = [t.value for t in finished if t.state == TrialState.COMPLETE]
        self.started = sum(t.state != TrialState.WAITING for t in trials)
        # a trial lost with its process, enqueued again by the storage's retry callback
        self.retries = sum(t.state == TrialState.WAITING and "failed_trial" in t.system_attrs for t in trials)
        self.completed = len(values)
        self.failed = sum(t.state == TrialState.FAIL for t in finished)
        self.best = max(values) if values else None
        self.durations = [
            t.user_attrs["duration"] for t in finished if t.state != TrialState.FAIL and "duration" in t.user_attrs
        ] or self.durations

    def exhausted(self, n_trials: int | None) -> bool:
        if n_trials is not None and self.started >= n_trials:
            return True
        return self.completed == 0 and self.failed >= MAX_FAILURES_WITHOUT_SUCCESS


def lost_trial(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial failed by Optuna's heartbeat check: its process died before telling how it
    ended (every trial failed here gets an ``error``; a process killed between writing a trial's
    other attributes and its end leaves those without one). It is retried as a new trial."""
    return trial.state == TrialState.FAIL and "error" not in trial.user_attrs


def best_search(searches: list[ModelSearch]) -> ModelSearch | None:
    """The model with the best completed trial so far, or None."""
    scored = [s for s in searches if s.best is not None]
    return max(scored, key=lambda s: s.best) if scored else None


def params_of(spec, trial_params: dict, context: ModelContext) -> dict:
    """The ``build`` arguments of a finished trial, replayed through the model's search space."""
    return spec.search_space(optuna.trial.FixedTrial(dict(trial_params)), context)


def build_pipeline(model: RegisteredModel, params: dict, context: ModelContext, schema):
    estimator = model.spec.build(params, context)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(
            f"build() of model {model.spec.name!r} returned {type(estimator).__name__}, "
            "which is not an estimator (it needs fit and predict)"
        )
    return make_model_pipeline(schema, model.spec.preprocessing, estimator)


@contextlib.contextmanager
def quiet_optuna():
    """Optuna logs every trial at INFO on its own handler; our progress lines replace that."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


@dataclasses.dataclass(frozen=True)
class Starts:
    """Where new studies begin: a warm start (an :class:`automl.fit.warm_start.WarmStart`) and
    portfolio entries (``(model, params)`` in order, see ``automl.search.portfolio``)."""

    warm_start: object = None
    portfolio: Sequence[tuple[str, dict]] = ()


def create_studies(
    models: Sequence[RegisteredModel], storage, prefix: str, seed: int, *, resume: bool = False, join: bool = False,
    starts: Starts = Starts(),
) -> list[ModelSearch]:
    """One study per model; with ``resume``, existing studies are loaded and their state restored.
    With ``join`` (an ``automl worker`` joining a run), they are loaded as they are: trials
    running elsewhere are left running.

    A new study's first trials are the warm start's configurations of its model (``starts``),
    best first, then its portfolio entries or, without any, the model's default parameters. The
    first round follows the warm start's ranking, else the portfolio's.
    """
    warm_start, portfolio = starts.warm_start, starts.portfolio
    warm = warm_start.configurations if warm_start is not None else {}
    ranking = list(warm_start.ranking) if warm_start is not None else []
    ranks = {} if ranking else first_round_ranks(list(portfolio))
    searches = []
    for model in models:
        name = model.spec.name
        sampler = optuna.samplers.TPESampler(seed=_sampler_seed(seed, name, warm.get(name, [])))
        with quiet_optuna():
            study = optuna.create_study(
                storage=storage,
                study_name=f"{prefix}{name}",
                direction="maximize",
                sampler=sampler,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
                load_if_exists=resume or join,
            )
        rank = ranking.index(name) if name in ranking else len(ranking) if ranking else ranks.get(name, len(ranks))
        search = ModelSearch(model, study, first_round_rank=rank)
        if join:
            search.sync()
        elif not study.get_trials(deepcopy=False):
            study.set_user_attr("model", name)
            with quiet_optuna():
                for params in warm.get(name, []):
                    study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
                entries = [params for m, params in portfolio if m == name]
                for params in entries:
                    study.enqueue_trial(dict(params), user_attrs={"portfolio": True}, skip_if_exists=True)
                if model.spec.default_params and not entries:
                    study.enqueue_trial(dict(model.spec.default_params), skip_if_exists=True)
        else:
            _restore(search)
        searches.append(search)
    return searches


def _sampler_seed(seed: int, name: str, warm: list[dict]) -> int:
    """A per-model seed, stable across processes (str hash() is salted per process). A warm
    start's configurations shift it: they were drawn from the stream of the saved run's seed, and
    with that same stream the new run would draw them again right after enqueuing them."""
    shift = zlib.crc32(json.dumps(warm, sort_keys=True, default=str).encode()) if warm else 0
    return (seed * 1_000_003 + zlib.crc32(name.encode()) + shift) % 2**32


def _restore(search: ModelSearch) -> None:
    """Rebuild a model's search state from its study; fail trials whose process died mid-way."""
    study = search.study
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "error", "abandoned: the process running it stopped")
        study.tell(trial.number, state=TrialState.FAIL)
    for trial in study.get_trials(deepcopy=False):
        if not trial.state.is_finished():
            continue
        search.started += 1
        search.fold_fit_seconds.extend(trial.user_attrs.get("fold_fit_seconds", []))
        duration = trial.user_attrs.get("duration")
        if trial.state == TrialState.COMPLETE:
            search.completed += 1
            search.best = trial.value if search.best is None else max(search.best, trial.value)
        elif trial.state == TrialState.FAIL:
            search.failed += 1
        if duration is not None and trial.state != TrialState.FAIL:
            search.durations.append(duration)
    logger.info("%s: resuming after %d finished trial(s)", search.name, search.started)
