"""The report's sections read from the run directory alone: the leaderboard, the optimization
history, hyperparameter importances, the data and its column treatment, the run's settings."""

from __future__ import annotations

from .markup import escape, json_text, number, pairs, share, table, version_now
from .page import Page


def leaderboard(page: Page) -> str:
    """One row per model, the winner highlighted."""
    board = page.result.leaderboard
    with_test = "test_score" in board and board["test_score"].notna().any()
    header = ["model", "CV score", "std", *(["test score"] if with_test else []), "trials", "complete", "pruned",
              "failed", "seconds", "status"]
    rows, marks = [], []
    for row in board.itertuples(index=False):
        rows.append([
            row.model, number(row.score), number(row.std), *([number(row.test_score)] if with_test else []),
            number(int(row.trials)), number(int(row.complete)), number(int(row.pruned)), number(int(row.failed)),
            number(row.seconds, 1), row.status,
        ])
        marks.append("winner" if row.model == page.result.model_name else "")
    numeric = range(1, len(header) - 1)
    return table(header, rows, numeric, marks) + (
        f"<p class=\"caption\">One row per model, best first. <em>CV score</em>: the mean {escape(page.result.metric)} "
        "of the model's best trial over the cross-validation folds (greater is better); <em>std</em>: the spread "
        "of that trial's fold scores; <em>seconds</em>: time spent in the model's trials. The highlighted row "
        "is the winner, refit on all rows and saved as <code>model.joblib</code>.</p>"
    )


def history(page: Page) -> str:
    """Each model's trials in the order they ran (the figure and how to read it)."""
    if "history.png" not in page.figures:
        return '<p class="caption">The run holds no trials.</p>'
    return page.figure(
        "history.png",
        f"Each model's trials in the order they ran: a dot is a trial's mean {escape(page.result.metric)} over the "
        "CV folds, the line the best score so far. Hollow circles are trials pruned after a few folds (at the mean "
        "of the folds they finished), crosses on the bottom edge failed trials; a few very poor scores may sit on "
        "the bottom edge so that the good ones stay readable. Each panel has its own y axis; its title gives the "
        "model's best score.",
        "optimization history per model",
    )


def hyperparameters(page: Page, skipped: dict[str, str]) -> str:
    """Optuna's importances per model, and why the models in ``skipped`` have none."""
    notes = "".join(f"<li><strong>{escape(m)}</strong>: {escape(why)}</li>" for m, why in skipped.items())
    skipped_html = f'<p class="caption">Not shown:</p><ul class="caption">{notes}</ul>' if notes else ""
    if "hyperparameter_importances.png" not in page.figures:
        return '<p class="caption">No model has importances to show.</p>' + skipped_html
    return page.figure(
        "hyperparameter_importances.png",
        "Optuna's hyperparameter importances (fANOVA) for each model: the share of the variation in the complete "
        "trials' scores that each hyperparameter explains (they sum to 1 per model). Computed from the run's study "
        "journal; with few trials they are rough.",
        "bar charts of hyperparameter importances per model",
    ) + skipped_html


def data_columns(page: Page) -> str:
    """The table the run was fitted on, and how each input column was prepared and is checked for drift."""
    m = page.manifest
    columns = m.get("columns", [])
    used = [c for c in columns if c.get("kind") != "dropped"]
    classes = m.get("classes") or []
    shown_classes = ", ".join(str(c) for c in classes[:20]) + (f", … ({len(classes)} in all)" if len(classes) > 20 else "")
    rows = [
        ("rows", number(m.get("n_rows"))),
        ("columns", f"{len(columns)} ({len(used)} used, {len(columns) - len(used)} dropped)"),
        ("target", m.get("target") if m.get("target") is not None else "(not named)"),
        ("task", page.result.task),
    ]
    if classes:
        rows.append(("classes", shown_classes))
    if m.get("test_size") is not None:
        rows.append(("held out for the test score", f"{share(m['test_size'])} of the rows"))
    summary, drift_checks = _drift_checks(page, used)
    rows.append(("drift checks (automl evaluate)", summary))
    columns_table = table(
        ["column", "dtype", "treatment", "note", "drift check"],
        [[c.get("name"), c.get("dtype"), _treatment(c), c.get("note") or "", drift_checks[c.get("name")]] for c in columns],
        classes=["dropped" if c.get("kind") == "dropped" else "" for c in columns],
    )
    return pairs(rows) + "<h3>Columns</h3>" + columns_table + (
        '<p class="caption">How the run prepared each input column (inside every model\'s pipeline, fitted per '
        "fold): <em>numeric</em> columns are imputed with the median (plus a missing-value indicator where 5 or more rows miss it), "
        "<em>categorical</em> ones encoded (one-hot or ordinal, by model), <em>datetime</em> ones turned into "
        "calendar parts; <em>dropped</em> columns (greyed) are not used. <em>drift check</em>: whether "
        "<code>automl evaluate</code> can compare the column with its training profile, and if not, why.</p>"
    )


def _drift_checks(page: Page, used: list[dict]) -> tuple[str, dict[str, str]]:
    """One line on the drift checks ``automl evaluate`` can make, and column name -> "yes" or why
    it does not check that column."""
    from .drift import unchecked_columns

    unchecked = unchecked_columns(page.manifest)
    checks = {c.get("name"): "yes" for c in page.manifest.get("columns", [])}
    checks.update(zip(unchecked["column"], "no: " + unchecked["reason"]))
    missing = unchecked.loc[unchecked["kind"] != "dropped", "column"].tolist()
    if page.manifest.get("data_profile") is None:
        summary = "none: the run has no data profile (saved by an older automl)"
    elif missing:
        summary = f"{len(used) - len(missing)} of {len(used)} used columns; not checked: {', '.join(missing)}"
    else:
        summary = f"all {len(used)} used columns"
    return summary, checks


def run_settings(page: Page) -> str:
    """The run's settings, the winning hyperparameters, and library versions then and now."""
    m, r = page.manifest, page.result
    budget = f"{m['time_budget']:g} s" if m.get("time_budget") is not None else "none"
    warm = m.get("warm_start")
    if isinstance(warm, dict):
        enqueued = ", ".join(f"{k} {v}" for k, v in (warm.get("enqueued") or {}).items())
        warm = f"from {warm.get('from')} (configurations enqueued: {enqueued or 'none'})"
    trials = r.trials
    counts = ", ".join(f"{int((trials['state'] == s).sum())} {s}" for s in ("complete", "pruned", "fail")) if len(trials) else "none"
    settings = [
        ("metric", f"{r.metric} (greater is better)"),
        ("validation", page.validation() or m.get("cv")),
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
        then, now = then if then is not None else "not installed", version_now(dist)
        versions.append(([dist, then, now], "differs" if then != now else ""))
    return (
        pairs(settings)
        + f"<h3>Winning hyperparameters ({escape(r.model_name)})</h3>"
        + (pairs((k, json_text(v)) for k, v in params.items()) if params else '<p class="caption">none</p>')
        + "<h3>Library versions</h3>"
        + table(["library", "at fit time", "making this report"], [row for row, _ in versions],
                classes=[css for _, css in versions])
        + '<p class="caption">Highlighted: a library whose version differs now; the fold models refit for '
        "this report may then differ a little from the search's.</p>"
    )


def _treatment(column: dict) -> str:
    kind = column.get("kind", "")
    parts = column.get("parts") or []
    return f"{kind}: {', '.join(parts)}" if parts else kind
