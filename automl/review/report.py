"""``automl.report``: a self-contained HTML report of a saved run, with its figures as PNG files.

From the run directory alone: the leaderboard, each model's optimization history, Optuna's
hyperparameter importances and the run's metadata. With the data the run was fitted on (the
run keeps no copy of it): the winner refit on each of the run's own CV folds, and from its
out-of-fold predictions the score check, the error figures (confusion matrix and ROC/PR
curves, or predicted-vs-actual and residuals) and permutation feature importance
(``automl.review.oof``).

The work is shared out: ``figures`` draws the PNGs, ``importances`` reads Optuna's
hyperparameter importances, ``page`` holds what the sections share, ``run_sections`` and
``oof_sections`` write the sections, ``document`` puts the page together with the stylesheet
``report.css``, and ``markup`` holds the HTML building blocks.

The HTML needs nothing else to open: the figures are embedded as base64 PNG, the style is
inline, no font, script or stylesheet is fetched.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._exceptions import InputError
from ..store.persist import atomic_write, load
from ..store.result import Result
from .document import render
from .importances import hyperparameter_importances, searched_models
from .oof_sections import confusion
from .page import Page

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

    page = Page(result, oof)
    skipped = _draw_figures(page)
    document = render(page, skipped)
    _write(folder, page.figures, document)
    logger.info("wrote the report and %d figure(s) to %s", len(page.figures), folder)
    return folder / REPORT_FILE


def _draw_figures(page: Page) -> dict[str, str]:
    """Fill ``page.figures``; return why models have no hyperparameter importances."""
    from . import figures

    result, oof = page.result, page.oof
    if len(result.trials):
        page.figures["history.png"] = figures.history(result.trials, searched_models(result), result.metric, result.model_name)
    importances, skipped = hyperparameter_importances(result)
    if importances:
        page.figures["hyperparameter_importances.png"] = figures.hyperparameter_importances(importances)
    if oof is None:
        return skipped
    if len(oof.importances):
        page.figures["permutation_importance.png"] = figures.permutation_importance(oof.importances, result.metric)
    if result.task == "regression":
        target = str(result.manifest.get("target") or "target")
        page.figures["predicted_vs_actual.png"] = figures.predicted_vs_actual(oof.y, oof.predictions, target)
        page.figures["residuals.png"] = figures.residuals(oof.y, oof.predictions, target)
    else:
        page.figures["confusion_matrix.png"] = figures.confusion_matrices(confusion(oof), oof.classes)
        if oof.scores is not None:
            page.figures["roc_pr.png"] = figures.roc_pr_curves(oof.y, oof.scores, oof.classes)
    return skipped


def _write(folder: Path, figures: dict[str, bytes], document: str) -> None:
    """The figures and the page, each atomically; figures of an earlier report not made this time are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        atomic_write(folder / name, png)
    for name in set(FIGURE_FILES) - set(figures):
        stale = folder / name
        if stale.is_file():
            stale.unlink()
    atomic_write(folder / REPORT_FILE, document.encode("utf-8"))
