"""The report's sections drawn from out-of-fold predictions: the score check fold by fold, the
winner's errors, and permutation feature importance. Without data each says how to get it."""

from __future__ import annotations

import math

import numpy as np

from .markup import difference, escape, number, table
from .page import Page


def confusion(oof) -> np.ndarray:
    """Counts of actual (rows) against predicted (columns) classes, in the order of ``oof.classes``."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(oof.y, oof.predictions, labels=np.asarray(oof.classes, dtype=oof.y.dtype))


def oof_check(page: Page) -> str:
    """The winner refit on each of the run's folds, next to each fold's score in the search."""
    if page.oof is None:
        return page.needs_data()
    oof, r = page.oof, page.result
    rows = []
    for k, (here, there, n) in enumerate(zip(oof.fold_scores, oof.search_fold_scores or [None] * len(oof.fold_scores), oof.fold_rows), 1):
        rows.append([f"fold {k}", number(n), number(here), number(there), difference(here, there)])
    mean_search = float(np.mean(oof.search_fold_scores)) if oof.search_fold_scores else None
    rows.append(["mean", number(sum(oof.fold_rows)), number(oof.mean_score), number(mean_search),
                 difference(oof.mean_score, mean_search)])
    folds = table(["", "validation rows", "refit here", "in the search", "difference"], rows, range(1, 5),
                  [""] * len(oof.fold_scores) + ["total"])
    pooled = (
        f" Scored on all {sum(oof.fold_rows):,} out-of-fold predictions at once (not fold by fold), "
        f"{escape(r.metric)} is <strong>{number(oof.pooled_score)}</strong>."
        if oof.pooled_score is not None else ""
    )
    test = (f" The {oof.n_test_rows:,} rows held out for the test score are not used in this report's figures."
            if oof.n_test_rows else "")
    gaps = [abs(a - b) for a, b in zip(oof.fold_scores, oof.search_fold_scores)]
    if gaps and max(gaps) > 1e-6 * max(1.0, abs(oof.mean_score)):
        budget = page.manifest.get("time_budget")
        test += (
            f" Here they differ: the search ran within a time budget ({budget:g} s), so its fits were told to "
            "stop early (a forest grows fewer trees, a network trains fewer epochs), while the refits here have "
            "no time limit." if budget is not None else
            " Here they differ: the model is not fully deterministic, or the library versions changed."
        )
    return folds + (
        f'<p class="caption">The winner ({escape(r.model_name)}, with its winning hyperparameters) refit for this report '
        f"on each of the run's {len(oof.fold_scores)} validation split(s) (the same splitter, seed and rows) and "
        f"scored on the fold it did not see, next to the same fold's score in the search. For a deterministic model "
        f"they match; a model cut short by the search's time limit, or one with randomness it does not seed, may "
        f"differ a little.{pooled}{test} Every figure below uses these out-of-fold predictions: each row was "
        "predicted by a model that did not see it in training.</p>"
    )


def errors(page: Page) -> str:
    """Predicted against actual and residuals (regression), or the confusion matrix and ROC/PR curves."""
    if page.oof is None:
        return page.needs_data()
    oof = page.oof
    if page.result.task == "regression":
        return page.figure(
            "predicted_vs_actual.png",
            "Out-of-fold predictions against the actual values: each point is a row, predicted by the model of "
            "the fold that did not train on it. Points on the diagonal are predicted exactly; R², RMSE and MAE "
            "are computed on all out-of-fold predictions.",
            "scatter plot of out-of-fold predicted against actual values",
        ) + page.figure(
            "residuals.png",
            "Left: residuals (actual − predicted) against the prediction; a pattern or a funnel shape means the "
            "errors depend on the size of the prediction. Right: their distribution; centred on 0 when the model "
            "is unbiased. Out-of-fold predictions.",
            "residuals against predictions and a histogram of residuals",
        )
    matrix = confusion(oof)
    accuracy = np.trace(matrix) / matrix.sum() if matrix.sum() else math.nan
    parts = [page.figure(
        "confusion_matrix.png",
        f"Confusion matrix of the out-of-fold predictions ({int(matrix.sum()):,} rows, accuracy {accuracy:.1%}): "
        "each row was predicted by the model of the fold that did not train on it. Left: counts; right: the share "
        "of each actual class that went to each predicted class (rows sum to 100%). Correct predictions lie on "
        "the diagonal.",
        "confusion matrix of out-of-fold predictions, counts and row shares",
    )]
    if "roc_pr.png" in page.figures:
        kind = "predicted probabilities" if oof.score_kind == "probability" else "decision values"
        which = (f"for the class {escape(oof.classes[1])} against {escape(oof.classes[0])}" if len(oof.classes) == 2
                 else "one class against the rest, a curve per class")
        parts.append(page.figure(
            "roc_pr.png",
            f"ROC and precision-recall curves of the out-of-fold {kind}, {which}. The area under the ROC curve "
            "(AUC) and the average precision (AP) are in the legends; the dashed lines show a model that guesses.",
            "ROC and precision-recall curves of out-of-fold predictions",
        ))
    else:
        parts.append('<p class="caption">No ROC or precision-recall curves: the model gives neither '
                     "probabilities nor decision values.</p>")
    return "".join(parts)


def feature_importance(page: Page) -> str:
    """Permutation importance of the input columns, measured on the out-of-fold rows."""
    if page.oof is None:
        return page.needs_data()
    from .figures import TOP_FEATURES
    from .oof import IMPORTANCE_REPEATS, MAX_IMPORTANCE_ROWS

    oof = page.oof
    if "permutation_importance.png" not in page.figures:
        return '<p class="caption">No column is used by the model.</p>'
    shown = min(TOP_FEATURES, len(oof.importances))
    dropped = (f" Columns the run dropped (the model never sees them) are left out: {escape(', '.join(oof.dropped))}."
               if oof.dropped else "")
    more = f" The {shown} most important of {len(oof.importances)} columns are shown." if len(oof.importances) > shown else ""
    return page.figure(
        "permutation_importance.png",
        f"How much {escape(page.result.metric)} drops when one input column's values are shuffled among the rows of a "
        f"validation fold, breaking its link with the target: the mean over the {len(oof.fold_scores)} folds × "
        f"{IMPORTANCE_REPEATS} shuffles (at most {MAX_IMPORTANCE_ROWS:,} rows of a fold each), the bars' whiskers "
        "± one standard deviation. Measured on the input columns as given (before encoding), with the fold "
        "models on rows they did not see. A bar near 0 or below means the model does not rely on the column; "
        f"correlated columns share their importance.{more}{dropped}",
        "bar chart of permutation feature importances",
    )
