"""The report's HTML document: the header with the verdict, the contents, the sections in their
order, and the footer. The style is inlined and the figures embedded, so the file stands alone."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from . import oof_sections, run_sections
from .markup import escape, installed_version, number, share, stylesheet
from .page import Page

NEEDS_DATA_TAG = ' <span class="tag">needs --data</span>'


def render(page: Page, skipped: dict[str, str]) -> str:
    """The whole page; ``skipped`` says why a model has no hyperparameter importances."""
    needs = page.oof is None
    task = page.result.task
    # (anchor, title, content, whether it needs the data)
    sections = [
        ("leaderboard", "Leaderboard", run_sections.leaderboard(page), False),
        ("out-of-fold", "Out-of-fold check", oof_sections.oof_check(page), needs),
        ("errors", "Errors of the winner" if task == "regression" else "Predictions of the winner",
         oof_sections.errors(page), needs),
        ("feature-importance", "Feature importance (permutation)", oof_sections.feature_importance(page), needs),
        ("history", "Optimization history", run_sections.history(page), False),
        ("hyperparameters", "Hyperparameter importances", run_sections.hyperparameters(page, skipped), False),
        ("data", "Data and column treatment", run_sections.data_columns(page), False),
        ("run", "Run settings and versions", run_sections.run_settings(page), False),
    ]
    toc = "".join(
        f'<li><a href="#{sid}">{escape(title)}</a>{NEEDS_DATA_TAG if missing else ""}</li>'
        for sid, title, _, missing in sections
    )
    body = "".join(f'<section id="{sid}"><h2>{escape(title)}</h2>{content}</section>' for sid, title, content, _ in sections)
    name = Path(page.result.path).name if page.result.path is not None else "unsaved run"
    made = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>automl report: {escape(name)}</title><style>\n{stylesheet()}</style></head><body><main>"
        f"{header(page, name)}"
        f'<nav class="toc" aria-label="contents"><h2>Contents</h2><ol>{toc}</ol></nav>'
        f"{body}"
        f'<footer>Made by automl {escape(installed_version("automl-select"))} with matplotlib '
        f'{escape(installed_version("matplotlib"))} on {escape(made)}. This file is self-contained (figures embedded); '
        "the figures are also saved as PNG files beside it.</footer>"
        "</main></body></html>\n"
    )


def header(page: Page, name: str) -> str:
    """The winner and its score in one sentence, the key numbers as cards, and without data the note
    on how to get the out-of-fold sections."""
    r, m = page.result, page.manifest
    n_models = len(r.leaderboard)
    target = m.get("target")
    classes = m.get("classes") or []
    what = f"{r.task}, {len(classes)} classes" if classes else r.task
    folds = page.validation() or (f"{page.n_folds}-fold cross-validation" if page.n_folds else "cross-validation")
    spread = f" ± {m['cv_std']:.4f}" if isinstance(m.get("cv_std"), float) and math.isfinite(m["cv_std"]) else ""
    sentence = (
        f"<strong>{escape(r.model_name)}</strong> is the best of {n_models} model{'s' if n_models != 1 else ''} "
        f"for predicting <strong>{escape(target if target is not None else 'the target')}</strong> ({escape(what)}) "
        f"from {number(m.get('n_rows'))} rows × {len(m.get('columns', []))} columns: "
        f"{escape(r.metric)} <strong>{number(r.score)}</strong>{escape(spread)} in {escape(folds)} (greater is better)."
    )
    kpis = [("best model", r.model_name), (f"CV {r.metric}", number(r.score))]
    if r.test_score is not None:
        kpis.append((f"held-out test ({share(m.get('test_size'))} of rows)", number(r.test_score)))
        sentence += f" On the held-out test rows: <strong>{number(r.test_score)}</strong>."
    if page.oof is not None:
        pooled = page.oof.pooled_score
        kpis.append(("out-of-fold, refit here", number(page.oof.mean_score)))
        sentence += (
            f" Refit on the same folds for this report: {number(page.oof.mean_score)} out of fold"
            + (f" ({number(pooled)} on all out-of-fold predictions pooled)." if pooled is not None else ".")
        )
    trials = r.trials
    complete = int((trials["state"] == "complete").sum()) if len(trials) else 0
    kpis.append(("trials (complete)", f"{len(trials)} ({complete})"))
    if m.get("seconds") is not None:
        kpis.append(("run time", f"{m['seconds']:.1f} s"))
    cards = "".join(f'<div class="kpi"><div class="label">{escape(k)}</div><div class="value">{escape(v)}</div></div>' for k, v in kpis)
    note = "" if page.oof is not None else f'<p class="note" id="needs-data">{page.needs_data_text()}</p>'
    created = m.get("created", "")
    return (
        f'<header><p class="kicker">automl report · run {escape(name)} · {escape(created)}</p>'
        f"<h1>{escape(r.model_name)} wins: {escape(r.metric)} {number(r.score)}</h1>"
        f'<p class="lead">{sentence}</p><div class="kpis">{cards}</div>{note}</header>'
    )

