"""``automl.report``: a self-contained HTML report of a saved run, with its figures as PNG files.

From the run directory alone: the leaderboard, each model's optimization history, Optuna's
hyperparameter importances and the run's metadata. With the data the run was fitted on (the
run keeps no copy of it): the winner refit on each of the run's own CV folds, and from its
out-of-fold predictions the score check, the error figures (confusion matrix and ROC/PR
curves, or predicted-vs-actual and residuals) and permutation feature importance
(``automl.report.oof``). The figures are drawn by ``automl.report.figures``.

The HTML needs nothing else to open: the figures are embedded as base64 PNG, the style is
inline, no font, script or stylesheet is fetched.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import importlib.metadata
import importlib.util
import logging
import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..store.ensemble import ENSEMBLE
from .._exceptions import InputError
from ..store.persist import STUDY_FILE, atomic_write, load
from ..store.result import Result
from ..data.validation import Validation

__all__ = ["report", "REPORT_FILE", "FIGURE_FILES"]

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
#: Every figure a report may write; a figure not made this time is removed from the output
#: folder, so that the PNG files always match the HTML beside them.
FIGURE_FILES = (
    "history.png", "hyperparameter_importances.png", "permutation_importance.png", "confusion_matrix.png",
    "roc_pr.png", "predicted_vs_actual.png", "residuals.png",
)
INSTALL_HINT = "pip install 'automl-select[report]'"


def report(
    run: str | os.PathLike | Result,
    X: Any = None,
    y: Any = None,
    *,
    output: str | os.PathLike | None = None,
    cv: Any = None,
    plugins: Iterable[object] = (),
) -> Path:
    """Write an HTML report of a saved run, and its figures as PNG files; return the HTML's path.

    :param run: a run directory (loaded with :func:`automl.load`) or a :class:`automl.Result`.
    :param X: the table the run was fitted on, for the out-of-fold sections (score check,
        error figures, permutation importance). It may hold the target column (the
        manifest's ``target``); columns are matched by name. Without it those sections say how
        to get them.
    :param y: the target, when it is not a column of ``X``.
    :param output: the folder to write ``report.html`` and the PNG files to (created if needed);
        default ``RUN_DIR/report/``. Only files of the report are written there, each atomically.
    :param cv: the run's scikit-learn splitter, needed with ``X`` only for runs made with one.
    :param plugins: plugin objects providing the winning model, if it is not installed.
    :raises InputError: ``X``/``y`` are not the run's data (checked against its checksum), or
        there is no folder to write to.
    :raises RunDirectoryError: ``run`` is not a loadable run directory.
    :raises ImportError: matplotlib is not installed.

    With data, the winner is refit once per CV fold, in this process (not in a worker process
    as in :func:`automl.fit_best`): a plugin's model runs here, and a Keras winner imports
    TensorFlow. Progress is logged at INFO.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(f"automl.report needs matplotlib: {INSTALL_HINT}")
    from . import figures as _figures

    result = run if isinstance(run, Result) else load(run)
    if output is None and result.path is None:
        raise InputError("this Result was not saved, so there is no run directory to write into; pass output=")
    folder = Path(output) if output is not None else Path(result.path) / "report"
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write the report to {folder}: it is a file, not a folder")

    oof = None
    if X is not None:
        from .oof import out_of_fold

        oof = out_of_fold(result, X, y, cv=cv, plugins=plugins)
    elif y is not None:
        raise InputError("y was given without X; pass the table the run was fitted on as X")

    page = _Page(result, oof)
    trials = result.trials
    models = _searched_models(result)
    if len(trials):
        page.figures["history.png"] = _figures.history(trials, models, result.metric, result.model_name)
    importances, skipped = _hyperparameter_importances(result)
    if importances:
        page.figures["hyperparameter_importances.png"] = _figures.hyperparameter_importances(importances)
    if oof is not None:
        if len(oof.importances):
            page.figures["permutation_importance.png"] = _figures.permutation_importance(oof.importances, result.metric)
        if result.task == "regression":
            target = str(result.manifest.get("target") or "target")
            page.figures["predicted_vs_actual.png"] = _figures.predicted_vs_actual(oof.y, oof.predictions, target)
            page.figures["residuals.png"] = _figures.residuals(oof.y, oof.predictions, target)
        else:
            page.figures["confusion_matrix.png"] = _figures.confusion_matrices(_confusion(oof), oof.classes)
            if oof.scores is not None:
                page.figures["roc_pr.png"] = _figures.roc_pr_curves(oof.y, oof.scores, oof.classes)
    document = page.render(skipped)

    folder.mkdir(parents=True, exist_ok=True)
    for name, png in page.figures.items():
        atomic_write(folder / name, png)
    for name in set(FIGURE_FILES) - set(page.figures):
        stale = folder / name
        if stale.is_file():
            stale.unlink()
    path = folder / REPORT_FILE
    atomic_write(path, document.encode("utf-8"))
    logger.info("wrote the report and %d figure(s) to %s", len(page.figures), folder)
    return path


def _confusion(oof) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(oof.y, oof.predictions, labels=np.asarray(oof.classes, dtype=oof.y.dtype))


def _searched_models(result: Result) -> list[str]:
    """The leaderboard's models in its order, without the ensemble (it has no trials of its own)."""
    return [m for m in result.leaderboard["model"] if m != ENSEMBLE]


def _hyperparameter_importances(result: Result) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Optuna's fANOVA importances per model from the run's study journal, and why models were skipped."""
    manifest = result.manifest
    studies: dict[str, str] = manifest.get("studies") or {}
    models = _searched_models(result)
    journal = Path(result.path) / STUDY_FILE if result.path is not None else None
    if manifest.get("storage") != STUDY_FILE or journal is None or not journal.is_file():
        where = manifest.get("storage") or "the run's storage"
        return {}, {m: f"the studies are not in the run directory ({where})" for m in models}
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

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
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            names = {name for t in complete for name in t.params}
            if len(complete) < 2:
                skipped[model] = f"{len(complete)} complete trial{'s' if len(complete) != 1 else ''} (importances need 2 or more)"
            elif len(names) < 2:
                skipped[model] = "a single hyperparameter (it explains everything)" if names else "no hyperparameters"
            else:
                try:
                    found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=int(manifest.get("seed", 0))))
                except Exception as exc:  # too few distinct values, a search space that changed, ...
                    skipped[model] = f"Optuna could not compute them ({type(exc).__name__}: {exc})"
                    continue
                if found:
                    importances[model] = {str(k): float(v) for k, v in found.items()}
                else:
                    skipped[model] = "no hyperparameter present in every complete trial"
    return importances, skipped


# -- the page ------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if value != 0 and abs(value) < 0.5 * 10**-digits:
        return f"{value:.{digits - 1}e}"  # not a misleading -0.0000
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), classes: Sequence[str] = ()) -> str:
    """An HTML table; cells are escaped; columns numbered in ``numeric`` are right-aligned."""
    numeric = set(numeric)

    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="num"' if i in numeric else ""
        return f"<{tag}{css}>{_e(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = []
    for n, row in enumerate(rows):
        css = f' class="{_e(classes[n])}"' if n < len(classes) and classes[n] else ""
        body.append(f"<tr{css}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _pairs(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<div class="table"><table class="pairs"><tbody>{body}</tbody></table></div>'


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class _Page:
    """Builds the HTML; ``figures`` (file name -> PNG bytes) is filled before ``render``."""

    def __init__(self, result: Result, oof):
        self.result = result
        self.manifest = result.manifest
        self.oof = oof
        self.figures: dict[str, bytes] = {}
        #: the run directory as a shell argument, for the commands the page suggests
        self.run_arg = _e(shlex.quote(str(result.path))) if result.path is not None else "RUN_DIR"
        from .oof import winning_trial

        if result.model_name == ENSEMBLE:
            fold_scores = (self.manifest.get("ensemble") or {}).get("fold_scores")
        else:
            winning = winning_trial(result)
            fold_scores = winning["fold_scores"] if winning is not None else None
        self.n_folds = len(fold_scores) if fold_scores else None

    def render(self, skipped: dict[str, str]) -> str:
        needs = self.oof is None
        task = self.result.task
        sections = [
            ("leaderboard", "Leaderboard", self._leaderboard(), False),
            ("out-of-fold", "Out-of-fold check", self._oof_check(), needs),
            ("errors", "Errors of the winner" if task == "regression" else "Predictions of the winner",
             self._errors(), needs),
            ("feature-importance", "Feature importance (permutation)", self._feature_importance(), needs),
            ("history", "Optimization history", self._history(), False),
            ("hyperparameters", "Hyperparameter importances", self._hyperparameters(skipped), False),
            ("data", "Data and column treatment", self._data(), False),
            ("run", "Run settings and versions", self._run(), False),
        ]
        tag = ' <span class="tag">needs --data</span>'
        toc = "".join(
            f'<li><a href="#{sid}">{_e(title)}</a>{tag if missing else ""}</li>' for sid, title, _, missing in sections
        )
        body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>' for sid, title, content, _ in sections)
        name = Path(self.result.path).name if self.result.path is not None else "unsaved run"
        made = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        return (
            "<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>automl report: {_e(name)}</title><style>{CSS}</style></head><body><main>"
            f"{self._header(name)}"
            f'<nav class="toc" aria-label="contents"><h2>Contents</h2><ol>{toc}</ol></nav>'
            f"{body}"
            f'<footer>Made by automl {_e(_version("automl-select"))} with matplotlib {_e(_version("matplotlib"))} '
            f"on {_e(made)}. This file is self-contained (figures embedded); the figures are also saved as PNG "
            "files beside it.</footer>"
            "</main></body></html>\n"
        )

    # -- header

    def _validation(self) -> str | None:
        recorded = self.manifest.get("validation")
        return Validation.from_dict(recorded).describe() if recorded else None

    def _header(self, name: str) -> str:
        r, m = self.result, self.manifest
        n_models = len(r.leaderboard)
        target = m.get("target")
        classes = m.get("classes") or []
        what = f"{r.task}, {len(classes)} classes" if classes else r.task
        folds = self._validation() or (f"{self.n_folds}-fold cross-validation" if self.n_folds else "cross-validation")
        spread = f" ± {m['cv_std']:.4f}" if isinstance(m.get("cv_std"), float) and math.isfinite(m["cv_std"]) else ""
        sentence = (
            f"<strong>{_e(r.model_name)}</strong> is the best of {n_models} model{'s' if n_models != 1 else ''} "
            f"for predicting <strong>{_e(target if target is not None else 'the target')}</strong> ({_e(what)}) "
            f"from {_num(m.get('n_rows'))} rows × {len(m.get('columns', []))} columns: "
            f"{_e(r.metric)} <strong>{_num(r.score)}</strong>{_e(spread)} in {_e(folds)} (greater is better)."
        )
        kpis = [("best model", r.model_name), (f"CV {r.metric}", _num(r.score))]
        if r.test_score is not None:
            kpis.append((f"held-out test ({_share(m.get('test_size'))} of rows)", _num(r.test_score)))
            sentence += f" On the held-out test rows: <strong>{_num(r.test_score)}</strong>."
        if self.oof is not None:
            pooled = self.oof.pooled_score
            kpis.append(("out-of-fold, refit here", _num(self.oof.mean_score)))
            sentence += (
                f" Refit on the same folds for this report: {_num(self.oof.mean_score)} out of fold"
                + (f" ({_num(pooled)} on all out-of-fold predictions pooled)." if pooled is not None else ".")
            )
        trials = r.trials
        complete = int((trials["state"] == "complete").sum()) if len(trials) else 0
        kpis.append(("trials (complete)", f"{len(trials)} ({complete})"))
        if m.get("seconds") is not None:
            kpis.append(("run time", f"{m['seconds']:.1f} s"))
        cards = "".join(f'<div class="kpi"><div class="label">{_e(k)}</div><div class="value">{_e(v)}</div></div>' for k, v in kpis)
        note = "" if self.oof is not None else f'<p class="note" id="needs-data">{self._needs_data_text()}</p>'
        created = m.get("created", "")
        return (
            f'<header><p class="kicker">automl report · run {_e(name)} · {_e(created)}</p>'
            f"<h1>{_e(r.model_name)} wins: {_e(r.metric)} {_num(r.score)}</h1>"
            f'<p class="lead">{sentence}</p><div class="kpis">{cards}</div>{note}</header>'
        )

    def _needs_data_text(self) -> str:
        target = self.manifest.get("target")
        column = f" (with its target column <code>{_e(target)}</code>)" if target is not None else " (and --target COL)"
        return (
            "<strong>The out-of-fold sections need the data.</strong> The run directory keeps no copy of the "
            "table, and these sections refit the winner on each of the run's CV folds to judge it on rows it "
            f"did not see. Run <code>automl report {self.run_arg} --data DATA.csv</code> with the same table the run "
            f"was fitted on{column}, or in Python <code>automl.report(run_dir, X, y)</code>."
        )

    def _needs_data(self) -> str:
        return (
            f'<p class="note">Needs the data the run was fitted on: <code>automl report {self.run_arg} --data DATA.csv</code> '
            '(see <a href="#needs-data">why</a>).</p>'
        )

    def _figure(self, name: str, caption: str, alt: str) -> str:
        png = self.figures[name]
        width, height = _png_size(png)
        scale = 100 / 150  # saved at 150 dpi, shown at 100 px per inch
        data = base64.b64encode(png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" width="{round(width * scale)}" '
            f'height="{round(height * scale)}" alt="{_e(alt)}">'
            f"<figcaption>{caption} <span class=\"file\">({_e(name)})</span></figcaption></figure>"
        )

    # -- sections

    def _leaderboard(self) -> str:
        board = self.result.leaderboard
        with_test = "test_score" in board and board["test_score"].notna().any()
        header = ["model", "CV score", "std", *(["test score"] if with_test else []), "trials", "complete", "pruned",
                  "failed", "seconds", "status"]
        rows, marks = [], []
        for row in board.itertuples(index=False):
            rows.append([
                row.model, _num(row.score), _num(row.std), *([_num(row.test_score)] if with_test else []),
                _num(int(row.trials)), _num(int(row.complete)), _num(int(row.pruned)), _num(int(row.failed)),
                _num(row.seconds, 1), row.status,
            ])
            marks.append("winner" if row.model == self.result.model_name else "")
        numeric = range(1, len(header) - 1)
        return _table(header, rows, numeric, marks) + (
            f"<p class=\"caption\">One row per model, best first. <em>CV score</em>: the mean {_e(self.result.metric)} "
            "of the model's best trial over the cross-validation folds (greater is better); <em>std</em>: the spread "
            "of that trial's fold scores; <em>seconds</em>: time spent in the model's trials. The highlighted row "
            "is the winner, refit on all rows and saved as <code>model.joblib</code>.</p>"
        )

    def _oof_check(self) -> str:
        if self.oof is None:
            return self._needs_data()
        oof, r = self.oof, self.result
        rows = []
        for k, (here, there, n) in enumerate(zip(oof.fold_scores, oof.search_fold_scores or [None] * len(oof.fold_scores), oof.fold_rows), 1):
            rows.append([f"fold {k}", _num(n), _num(here), _num(there), _difference(here, there)])
        mean_search = float(np.mean(oof.search_fold_scores)) if oof.search_fold_scores else None
        rows.append(["mean", _num(sum(oof.fold_rows)), _num(oof.mean_score), _num(mean_search),
                     _difference(oof.mean_score, mean_search)])
        table = _table(["", "validation rows", "refit here", "in the search", "difference"], rows, range(1, 5),
                       [""] * len(oof.fold_scores) + ["total"])
        pooled = (
            f" Scored on all {sum(oof.fold_rows):,} out-of-fold predictions at once (not fold by fold), "
            f"{_e(r.metric)} is <strong>{_num(oof.pooled_score)}</strong>."
            if oof.pooled_score is not None else ""
        )
        test = (f" The {oof.n_test_rows:,} rows held out for the test score are not used in this report's figures."
                if oof.n_test_rows else "")
        gaps = [abs(a - b) for a, b in zip(oof.fold_scores, oof.search_fold_scores)]
        if gaps and max(gaps) > 1e-6 * max(1.0, abs(oof.mean_score)):
            budget = self.manifest.get("time_budget")
            test += (
                f" Here they differ: the search ran within a time budget ({budget:g} s), so its fits were told to "
                "stop early (a forest grows fewer trees, a network trains fewer epochs), while the refits here have "
                "no time limit." if budget is not None else
                " Here they differ: the model is not fully deterministic, or the library versions changed."
            )
        return table + (
            f'<p class="caption">The winner ({_e(r.model_name)}, with its winning hyperparameters) refit for this report '
            f"on each of the run's {len(oof.fold_scores)} validation split(s) (the same splitter, seed and rows) and "
            f"scored on the fold it did not see, next to the same fold's score in the search. For a deterministic model "
            f"they match; a model cut short by the search's time limit, or one with randomness it does not seed, may "
            f"differ a little.{pooled}{test} Every figure below uses these out-of-fold predictions: each row was "
            "predicted by a model that did not see it in training.</p>"
        )

    def _errors(self) -> str:
        if self.oof is None:
            return self._needs_data()
        oof = self.oof
        if self.result.task == "regression":
            return self._figure(
                "predicted_vs_actual.png",
                "Out-of-fold predictions against the actual values: each point is a row, predicted by the model of "
                "the fold that did not train on it. Points on the diagonal are predicted exactly; R², RMSE and MAE "
                "are computed on all out-of-fold predictions.",
                "scatter plot of out-of-fold predicted against actual values",
            ) + self._figure(
                "residuals.png",
                "Left: residuals (actual − predicted) against the prediction; a pattern or a funnel shape means the "
                "errors depend on the size of the prediction. Right: their distribution; centred on 0 when the model "
                "is unbiased. Out-of-fold predictions.",
                "residuals against predictions and a histogram of residuals",
            )
        matrix = _confusion(oof)
        accuracy = np.trace(matrix) / matrix.sum() if matrix.sum() else math.nan
        parts = [self._figure(
            "confusion_matrix.png",
            f"Confusion matrix of the out-of-fold predictions ({int(matrix.sum()):,} rows, accuracy {accuracy:.1%}): "
            "each row was predicted by the model of the fold that did not train on it. Left: counts; right: the share "
            "of each actual class that went to each predicted class (rows sum to 100%). Correct predictions lie on "
            "the diagonal.",
            "confusion matrix of out-of-fold predictions, counts and row shares",
        )]
        if "roc_pr.png" in self.figures:
            kind = "predicted probabilities" if oof.score_kind == "probability" else "decision values"
            which = (f"for the class {_e(oof.classes[1])} against {_e(oof.classes[0])}" if len(oof.classes) == 2
                     else "one class against the rest, a curve per class")
            parts.append(self._figure(
                "roc_pr.png",
                f"ROC and precision-recall curves of the out-of-fold {kind}, {which}. The area under the ROC curve "
                "(AUC) and the average precision (AP) are in the legends; the dashed lines show a model that guesses.",
                "ROC and precision-recall curves of out-of-fold predictions",
            ))
        else:
            parts.append('<p class="caption">No ROC or precision-recall curves: the model gives neither '
                         "probabilities nor decision values.</p>")
        return "".join(parts)

    def _feature_importance(self) -> str:
        if self.oof is None:
            return self._needs_data()
        from .figures import TOP_FEATURES
        from .oof import IMPORTANCE_REPEATS, MAX_IMPORTANCE_ROWS

        oof = self.oof
        if "permutation_importance.png" not in self.figures:
            return '<p class="caption">No column is used by the model.</p>'
        shown = min(TOP_FEATURES, len(oof.importances))
        dropped = (f" Columns the run dropped (the model never sees them) are left out: {_e(', '.join(oof.dropped))}."
                   if oof.dropped else "")
        more = f" The {shown} most important of {len(oof.importances)} columns are shown." if len(oof.importances) > shown else ""
        return self._figure(
            "permutation_importance.png",
            f"How much {_e(self.result.metric)} drops when one input column's values are shuffled among the rows of a "
            f"validation fold, breaking its link with the target: the mean over the {len(oof.fold_scores)} folds × "
            f"{IMPORTANCE_REPEATS} shuffles (at most {MAX_IMPORTANCE_ROWS:,} rows of a fold each), the bars' whiskers "
            "± one standard deviation. Measured on the input columns as given (before encoding), with the fold "
            "models on rows they did not see. A bar near 0 or below means the model does not rely on the column; "
            f"correlated columns share their importance.{more}{dropped}",
            "bar chart of permutation feature importances",
        )

    def _history(self) -> str:
        if "history.png" not in self.figures:
            return '<p class="caption">The run holds no trials.</p>'
        return self._figure(
            "history.png",
            f"Each model's trials in the order they ran: a dot is a trial's mean {_e(self.result.metric)} over the "
            "CV folds, the line the best score so far. Hollow circles are trials pruned after a few folds (at the mean "
            "of the folds they finished), crosses on the bottom edge failed trials; a few very poor scores may sit on "
            "the bottom edge so that the good ones stay readable. Each panel has its own y axis; its title gives the "
            "model's best score.",
            "optimization history per model",
        )

    def _hyperparameters(self, skipped: dict[str, str]) -> str:
        notes = "".join(f"<li><strong>{_e(m)}</strong>: {_e(why)}</li>" for m, why in skipped.items())
        skipped_html = f'<p class="caption">Not shown:</p><ul class="caption">{notes}</ul>' if notes else ""
        if "hyperparameter_importances.png" not in self.figures:
            return '<p class="caption">No model has importances to show.</p>' + skipped_html
        return self._figure(
            "hyperparameter_importances.png",
            "Optuna's hyperparameter importances (fANOVA) for each model: the share of the variation in the complete "
            "trials' scores that each hyperparameter explains (they sum to 1 per model). Computed from the run's study "
            "journal; with few trials they are rough.",
            "bar charts of hyperparameter importances per model",
        ) + skipped_html

    def _data(self) -> str:
        m = self.manifest
        columns = m.get("columns", [])
        used = [c for c in columns if c.get("kind") != "dropped"]
        classes = m.get("classes") or []
        shown_classes = ", ".join(str(c) for c in classes[:20]) + (f", … ({len(classes)} in all)" if len(classes) > 20 else "")
        rows = [
            ("rows", _num(m.get("n_rows"))),
            ("columns", f"{len(columns)} ({len(used)} used, {len(columns) - len(used)} dropped)"),
            ("target", m.get("target") if m.get("target") is not None else "(not named)"),
            ("task", self.result.task),
        ]
        if classes:
            rows.append(("classes", shown_classes))
        if m.get("test_size") is not None:
            rows.append(("held out for the test score", f"{_share(m['test_size'])} of the rows"))
        summary, drift_checks = self._drift_checks(used)
        rows.append(("drift checks (automl evaluate)", summary))
        table = _table(
            ["column", "dtype", "treatment", "note", "drift check"],
            [[c.get("name"), c.get("dtype"), _treatment(c), c.get("note") or "", drift_checks[c.get("name")]] for c in columns],
            classes=["dropped" if c.get("kind") == "dropped" else "" for c in columns],
        )
        return _pairs(rows) + "<h3>Columns</h3>" + table + (
            '<p class="caption">How the run prepared each input column (inside every model\'s pipeline, fitted per '
            "fold): <em>numeric</em> columns are imputed with the median (plus a missing-value indicator where 5 or more rows miss it), "
            "<em>categorical</em> ones encoded (one-hot or ordinal, by model), <em>datetime</em> ones turned into "
            "calendar parts; <em>dropped</em> columns (greyed) are not used. <em>drift check</em>: whether "
            "<code>automl evaluate</code> can compare the column with its training profile, and if not, why.</p>"
        )

    def _drift_checks(self, used: list[dict]) -> tuple[str, dict[str, str]]:
        """One line on the drift checks ``automl evaluate`` can make, and column name -> "yes" or why
        it does not check that column."""
        from .evaluate import unchecked_columns

        unchecked = unchecked_columns(self.manifest)
        checks = {c.get("name"): "yes" for c in self.manifest.get("columns", [])}
        checks.update(zip(unchecked["column"], "no: " + unchecked["reason"]))
        missing = unchecked.loc[unchecked["kind"] != "dropped", "column"].tolist()
        if self.manifest.get("data_profile") is None:
            summary = "none: the run has no data profile (saved by an older automl)"
        elif missing:
            summary = f"{len(used) - len(missing)} of {len(used)} used columns; not checked: {', '.join(missing)}"
        else:
            summary = f"all {len(used)} used columns"
        return summary, checks

    def _run(self) -> str:
        m, r = self.manifest, self.result
        budget = f"{m['time_budget']:g} s" if m.get("time_budget") is not None else "none"
        warm = m.get("warm_start")
        if isinstance(warm, dict):
            enqueued = ", ".join(f"{k} {v}" for k, v in (warm.get("enqueued") or {}).items())
            warm = f"from {warm.get('from')} (configurations enqueued: {enqueued or 'none'})"
        trials = r.trials
        counts = ", ".join(f"{int((trials['state'] == s).sum())} {s}" for s in ("complete", "pruned", "fail")) if len(trials) else "none"
        settings = [
            ("metric", f"{r.metric} (greater is better)"),
            ("validation", self._validation() or m.get("cv")),
            ("seed", m.get("seed")),
            ("time budget", budget),
            ("trials per model, at most", m.get("n_trials") if m.get("n_trials") is not None else "no limit"),
            ("trials run", f"{len(trials)} ({counts.replace('fail', 'failed')})"),
            ("run time", f"{m['seconds']:.1f} s" if m.get("seconds") is not None else "–"),
            ("memory limit per trial", f"{m['memory_limit']:g} MB" if m.get("memory_limit") is not None else "none"),
            ("models tried", ", ".join(m.get("models") or [])),
            ("warm start", warm or "no"),
            ("resumed", "yes" if m.get("resumed") else "no"),
            ("interrupted", m.get("interrupted") or "no"),
            ("studies stored in", m.get("storage")),
            ("created", m.get("created")),
        ]
        params = m.get("params") or {}
        versions = []
        for dist, then in (m.get("versions") or {}).items():
            then, now = then if then is not None else "not installed", _now_version(dist)
            versions.append(([dist, then, now], "differs" if then != now else ""))
        return (
            _pairs(settings)
            + f"<h3>Winning hyperparameters ({_e(r.model_name)})</h3>"
            + (_pairs((k, _json_text(v)) for k, v in params.items()) if params else '<p class="caption">none</p>')
            + "<h3>Library versions</h3>"
            + _table(["library", "at fit time", "making this report"], [row for row, _ in versions],
                     classes=[css for _, css in versions])
            + '<p class="caption">Highlighted: a library whose version differs now; the fold models refit for '
            "this report may then differ a little from the search's.</p>"
        )


def _difference(here: float, there: float | None) -> str:
    if there is None:
        return "–"
    text = f"{here - there:+.4f}"
    return "0.0000" if text in ("+0.0000", "-0.0000") else text


def _treatment(column: dict) -> str:
    kind = column.get("kind", "")
    parts = column.get("parts") or []
    return f"{kind}: {', '.join(parts)}" if parts else kind


def _share(value: Any) -> str:
    return f"{float(value):.0%}" if value is not None else "–"


def _json_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "None" if value is None else str(value)


def _now_version(dist: str) -> str:
    if dist == "python":
        import platform

        return platform.python_version()
    return _version(dist)


CSS = """
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; --win: #fff8c5; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 20px 60px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 18px; }
.kicker { color: var(--muted); font-size: 13px; margin: 0 0 6px; overflow-wrap: anywhere; }
h1 { font-size: 28px; line-height: 1.25; margin: 0 0 10px; overflow-wrap: anywhere; }
h2 { font-size: 21px; margin: 44px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 26px 0 8px; }
.lead { font-size: 16px; margin: 0 0 16px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 6px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 140px; background: var(--soft); }
.kpi .label { color: var(--muted); font-size: 12px; }
.kpi .value { font-size: 19px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.note { background: #ddf4ff; border-left: 4px solid var(--accent); padding: 10px 14px; border-radius: 4px; margin: 16px 0; }
nav.toc { margin-top: 8px; }
nav.toc h2 { border: 0; margin: 22px 0 4px; font-size: 16px; }
nav.toc ol { margin: 0; padding-left: 22px; columns: 2; column-gap: 40px; }
nav.toc li { margin: 2px 0; break-inside: avoid; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.tag { font-size: 11px; color: #7d4e00; background: #fff1c2; border: 1px solid #f2d388; border-radius: 10px;
  padding: 0 7px; white-space: nowrap; }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); white-space: nowrap; }
td { overflow-wrap: anywhere; }
.num { text-align: right; white-space: nowrap; }
tr.winner td { background: var(--win); font-weight: 600; }
tr.total td { border-top: 2px solid var(--line); font-weight: 600; }
tr.dropped td { color: var(--muted); }
tr.differs td { background: #fff1e5; }
table.pairs th { width: 32%; font-weight: 600; color: var(--muted); background: none; border-bottom: 1px solid var(--line); }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption, .caption { color: var(--muted); font-size: 14px; margin: 8px 0 0; }
ul.caption { margin-top: 2px; }
.file { color: #8c959f; font-size: 12px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; background: var(--soft);
  padding: 1px 5px; border-radius: 4px; overflow-wrap: anywhere; }
footer { margin-top: 48px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
@media (max-width: 640px) { nav.toc ol { columns: 1; } h1 { font-size: 23px; } }
@media print { main { max-width: none; } section { break-inside: avoid-page; } }
"""
