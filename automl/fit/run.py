"""One ``fit_best`` call, stage by stage: prepare → plan → open the run → search → select →
refit → save (the manifest that records what was run and found, the run directory, peers and
observers told). ``FitRun.run`` names the stages; each stage keeps what the next ones need."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import pandas as pd

from .._exceptions import Interrupted
from .._metrics import resolve_scorer
from .._plugins import collect_models, collect_portfolio_entries, get_plugin_manager
from .._spec import RunInfo
from ..data.plan import DataPlan, PlanSpec
from ..data.profile import profile_table
from ..data.schema import as_table, prepare_target
from ..search.ensemble import PredictionPool
from ..search.leaderboard import leaderboard_frame, mark_saved, trial_record, trials_frame
from ..search.payload import SharedData
from ..search.scheduler import run_search
from ..search.storage import SharedRun
from ..search.portfolio import later_queue
from ..search.studies import Starts, create_studies
from ..search.trial import TrialSetup
from ..search.trial_process import TrialProcess
from ..store.ensemble import ENSEMBLE
from ..store.model_file import compress_model
from ..store.persist import library_versions, save_run
from ..store.result import Result
from .budget import Budget, SearchStop
from .display import ProgressDisplay, choose_mode
from .processes import gather_peers, signals_as_interrupts, start_trial_processes
from .progress import Observers, TrialLog
from .refit import Refitted, Refitter
from .rundir import RunPlace, now, recorded_validation, run_record
from .select import EnsembleOutcome, prefer_faster, refit_ensemble, with_ensemble
from .settings import FitSettings, choose_models
from .warm_start import read_warm_start

__all__ = ["FitRun"]

#: The manifest's format; ``automl.load`` reads every format written so far.
MANIFEST_FORMAT = 1

logger = logging.getLogger(__name__)


class FitRun:
    """The state of one ``fit_best`` call between its stages (see the module docstring)."""

    def __init__(self, settings: FitSettings, X: Any, y: Any):
        self.settings, self.X, self.y = settings, X, y
        self.budget = Budget(settings.time_budget)
        self.interrupted: str | None = None
        self.outcome: EnsembleOutcome | None = None
        self.refit_failures: dict[str, str] = {}  # model -> why its refit failed, in the order tried

    def run(self) -> Result:
        self.prepare()
        self.plan()
        self.open()
        try:
            with signals_as_interrupts():
                self.display.start()
                self.search()
                self.select()
                self.refit()
        finally:
            self.close()
        return self.save()

    def prepare(self) -> None:
        """The table, the target and the task; the metric; the models and a warm start."""
        s = self.settings
        self.table = as_table(self.X)
        self.y_all, self.task = prepare_target(self.y, len(self.table), s.task)
        self.metric, self.scorer = resolve_scorer(s.metric, self.task)
        self.plugin_manager = get_plugin_manager(s.plugins)
        self.models = choose_models(collect_models(self.plugin_manager, include_missing=True), s.models, self.task)
        names = [m.spec.name for m in self.models]
        self.warm = read_warm_start(s.warm_start, self.task, names) if s.warm_start is not None else None

    def plan(self) -> None:
        """The rows, schema and folds; the profile for drift checks (inside the budget, as it is
        made before the search); the pool of validation predictions for an ensemble."""
        s = self.settings
        self.data = plan = DataPlan.make(self.table, self.y_all, PlanSpec(
            self.task, s.seed, s.test_size, cv=s.cv, time_budget=s.time_budget, validation=recorded_validation(s),
        ))
        self.data_profile = profile_table(plan.X_search, plan.schema)
        if plan.validation is not None and plan.validation.reason != f"cv={s.cv}":
            logger.info("validation: %s (%s)", plan.validation.describe(), plan.validation.reason)
        self.pool = None
        classes = plan.classes
        if s.ensemble and not plan.sampled and PredictionPool.affordable(len(plan.search_rows), len(classes or ())):
            # the true values of each fold's validation rows, in the order the trial process predicts them
            self.pool = PredictionPool([plan.y_search[valid] for _, valid in plan.folds], classes)
        self.context = plan.context(n_jobs=s.threads)
        self.record = run_record(plan, self.metric, [m.spec.name for m in self.models])

    def open(self) -> None:
        """The run directory and storage, the studies, the shared run, the trial processes."""
        s, plan = self.settings, self.data
        self.place = place = RunPlace.open(s, self.record)
        self.shared_run = self._share() if place.shared_name is not None else None
        # a resumed run's studies hold their portfolio entries already (the waiting trials)
        self.portfolio = portfolio = None if s.resume else s.chosen_portfolio
        if portfolio is not None:  # with the entries plugins give for their own models
            self.portfolio = portfolio = portfolio.extended(self.task, collect_portfolio_entries(
                self.plugin_manager, self.task, {m.spec.name: m for m in self.models}))
        self.portfolio_entries = portfolio.entries(self.task, [m.spec.name for m in self.models]) if portfolio else []
        self.searches = create_studies(
            self.models, place.storage, place.prefix, s.seed, resume=s.resume,
            starts=Starts(self.warm, self.portfolio_entries),
        )
        n_refits = 2 if plan.test_rows is not None else 1
        self.stop_at = SearchStop(
            self.budget, self.searches, plan.refit_scale, n_refits, ensemble=self.pool is not None,
        )
        # one payload for every trial process; a large table is mapped from one file, not copied to each
        self.shared_data = SharedData(plan.payload(), {
            "scorer": self.scorer, "classification": self.task != "regression", "collect_predictions": self.pool is not None,
        })
        self.runners = [
            TrialProcess(self.shared_data.payload, threads=self.context.n_jobs, memory_limit=s.memory_limit)
            for _ in range(s.n_processes)
        ]
        self.stop_at.runner = self.runners[0]  # it also refits the winner
        self.run_info = RunInfo(
            task=self.task, metric=self.metric, models=tuple(x.name for x in self.searches), n_rows=len(self.table),
            n_columns=self.table.shape[1], time_budget=s.time_budget, n_trials=s.n_trials, seed=s.seed,
            path=place.directory, started=now(),
        )
        self.observe = Observers(self.plugin_manager, self.run_info)
        self.display = ProgressDisplay(
            self.searches, self.metric, self.budget.started, s.time_budget, mode=choose_mode(s.verbose, sys.stderr),
        )

    def _share(self) -> SharedRun:
        s, deadline = self.settings, self.budget.deadline
        return SharedRun.create(self.place.storage, self.place.shared_name, {
            **self.record, "n_trials": s.n_trials, "data": s.data_location, "max_predict_ms": s.max_predict_ms,
            "target": str(self.y.name) if getattr(self.y, "name", None) is not None else None,
            "search_until": time.time() + (deadline - time.monotonic() if math.isfinite(deadline) else 365 * 86400),
        })

    def search(self) -> None:
        """Trials until the budget or every model's trials are used up; an interrupt ends it early."""
        plan, s = self.data, self.settings
        logger.info(
            "searching %d model(s) for %s on %d rows x %d columns, metric %s, budget %s",
            len(self.searches), self.task, len(self.table), self.table.shape[1], self.metric,
            f"{s.time_budget:g} s" if s.time_budget is not None else "none",
        )
        self.observe("automl_run_started")
        trial_log = TrialLog(self.searches, self.budget.started, s.time_budget)

        def on_trial(search, trial) -> None:
            if self.shared_run is not None:  # the peers stop when this process stops searching
                self.shared_run.update(search_until=time.time() + (self.stop_at() - time.monotonic()))
            trial_log(search, trial)
            self.observe("automl_trial_completed", record=trial_record(search.name, trial))

        try:
            start_trial_processes(self.runners, s.memory_limit)
            setup = TrialSetup(
                len(plan.folds), plan.schema, self.context, self.stop_at, on_trial=on_trial,
                refit_fits=self.stop_at.n_refits * plan.refit_scale, pool=self.pool, max_predict_ms=s.max_predict_ms,
            )
            run_search(
                self.searches, self.runners, setup, n_trials=s.n_trials, shared=self.shared_run is not None,
                queue=later_queue(self.portfolio_entries),
            )
        except KeyboardInterrupt as exc:
            self.interrupted = getattr(exc, "signal_name", "SIGINT")
            self.runners[0].kill()  # whatever it was fitting is abandoned
            logger.warning("interrupted (%s): refitting the best model found so far", self.interrupted)
            self.budget.cut_short()
        if self.shared_run is not None:
            gather_peers(self.shared_run, self.searches, self.stop_at, self.interrupted)

    def select(self) -> None:
        """The trials and the leaderboard; an ensemble of the best trials as one more candidate."""
        self.trials = trials_frame(self.searches)
        self.leaderboard = prefer_faster(leaderboard_frame(self.searches, self.trials), self.trials)
        self.display.phase = "refitting the best model"
        plan = self.data
        self.refitter = Refitter(
            self.context, plan.schema, self.runners[0], self.budget, plan.test_rows is not None, plan.refit_scale,
            len(self.table), plan.sampled,
        )
        if self.pool is not None and not self.interrupted:
            self.outcome = refit_ensemble(self.pool, self.searches, self.scorer, self.refitter, self.settings.max_predict_ms)
        if self.outcome is not None:
            self.leaderboard = with_ensemble(self.leaderboard, self.outcome.row)
            if self.outcome.refit_failure is not None:
                self.refit_failures[ENSEMBLE] = self.outcome.refit_failure

    def refit(self) -> None:
        """The ensemble when it was refit, else the best model on all rows (with fallbacks)."""
        if self.outcome is not None and self.outcome.refitted is not None:
            self._saving(self.outcome.refitted, ENSEMBLE, self.outcome.selection.score)
            return
        try:
            refitted = self.refitter.winner(self.searches, self.leaderboard, self.budget.deadline, self.budget.hard_deadline)
        except KeyboardInterrupt as exc:
            if self.interrupted:
                raise  # a second interrupt: stop now; the study is intact for resume=True
            self.interrupted = getattr(exc, "signal_name", "SIGINT")
            self.runners[0].kill()
            logger.warning("interrupted (%s) during the refit: refitting within a few seconds", self.interrupted)
            window = self.budget.interrupt_window()
            refitted = self.refitter.winner(self.searches, self.leaderboard, window, window)
        self._saving(refitted, refitted.search.name, float(refitted.search.best))

    def _saving(self, refitted: Refitted, name: str, score: float) -> None:
        self.refitted, self.winner, self.winner_score = refitted, name, score
        self.refit_failures.update(refitted.failures)
        self.display.saved = (name, score)

    def close(self) -> None:
        self.display.stop()
        for runner in self.runners:
            runner.close()
        self.shared_data.close()
        if self.shared_run is not None and self.shared_run.settings.get("state") == "searching":
            self.shared_run.update(state="stopped")  # whatever went wrong, the peers stop too

    def save(self) -> Result:
        """The Result, with the leaderboard as saved; the run directory; the observers told."""
        answer = self.refitted.answer
        leaderboard: pd.DataFrame = self.leaderboard
        if answer.get("test_score") is not None:
            leaderboard.loc[leaderboard["model"] == self.winner, "test_score"] = answer["test_score"]
        leaderboard = mark_saved(leaderboard, self.winner, self.refit_failures)
        result = Result(
            model_bytes=compress_model(answer["model"]), model_name=self.winner, params=self.refitted.params, score=self.winner_score,
            test_score=answer.get("test_score"), metric=self.metric, task=self.task, leaderboard=leaderboard,
            trials=self.trials, path=self.place.directory,
        )
        result.manifest = self._manifest(result)
        self._write(result)
        return result

    def _manifest(self, result: Result) -> dict[str, Any]:
        """What ``manifest.json`` holds (README documents its fields)."""
        s, answer, failures = self.settings, self.refitted.answer, self.refit_failures
        board = result.leaderboard
        return {
            "format": MANIFEST_FORMAT,
            "model": result.model_name,
            "params": result.params,
            **{k: v for k, v in self.record.items() if k != "models"},
            "cv_score": result.score,
            "refit_rows": answer.get("rows"),
            # the saved model's milliseconds to predict 1,000 rows (timed after its refit) and its pickle's size
            "predict_ms": answer.get("predict_ms"),
            "model_bytes": len(result.model_bytes()),
            "max_predict_ms": s.max_predict_ms,
            # the portfolio whose entries started the search (None: each model from its defaults)
            "portfolio": (
                self.portfolio.describe(self.task, [x.name for x in self.searches]) if self.portfolio_entries else None
            ),
            # the models (or the ensemble) that ranked above the saved one, but whose refit failed
            "refit_fallback": (
                {"failed": [{"model": m, "reason": r} for m, r in failures.items()], "saved": result.model_name}
                if failures else None
            ),
            "cv_std": float(board.loc[board["model"] == result.model_name, "std"].iloc[0]),
            # the ensemble considered (saved or not): its members, weights and fold scores
            "ensemble": self.outcome.manifest_entry() if self.outcome is not None else None,
            "test_score": result.test_score,
            "target": str(self.y.name) if getattr(self.y, "name", None) is not None else None,
            "classes": answer.get("classes"),
            "columns": [c.to_dict() for c in self.data.schema],
            "data_profile": self.data_profile,
            "n_rows": len(self.table),
            "time_budget": s.time_budget,
            "n_trials": s.n_trials,
            "memory_limit": s.memory_limit,
            "n_jobs": s.n_processes,
            "models": [x.name for x in self.searches],
            "studies": {x.name: x.study.study_name for x in self.searches},
            "storage": self.place.storage_in_manifest,
            "study_name": self.place.shared_name,
            "interrupted": self.interrupted,
            "resumed": bool(s.resume),
            "warm_start": self.warm.describe() if self.warm is not None else None,
            "created": now(),
            "versions": library_versions(),
        }

    def _write(self, result: Result) -> None:
        """Write the run directory (when the run has one), then tell the peers and the observers;
        after an interrupt, raise :class:`Interrupted` now that the best model so far is saved."""
        directory = self.place.directory
        if directory is not None:
            result.manifest["seconds"] = round(self.budget.elapsed(), 3)
            result.manifest = save_run(directory, result, result.manifest)
            logger.info("saved the run to %s", directory)
        if self.shared_run is not None:
            self.shared_run.update(state="finished", model=result.model_name, cv_score=result.score)
        self.observe("automl_run_finished", result=result)
        if self.interrupted:
            where = f"saved in {directory}" if directory is not None else "not saved (save=False)"
            raise Interrupted(self.interrupted, directory, f"interrupted by {self.interrupted}; the best model so far is {where}")
        logger.info("best model: %s, %s %.4f (%.1f s in all)", result.model_name, self.metric, result.score, self.budget.elapsed())
