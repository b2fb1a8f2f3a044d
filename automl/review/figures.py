"""The report's figures: matplotlib on its Agg canvas (no pyplot, no window), each returned as PNG bytes.

Every figure shares one style (``STYLE``) and one width: ``WIDTH`` inches at 100 px per inch is
the page's column, and they are saved at ``DPI`` (sharp on high-density screens) and shown at
that column width, so text reads the same size in every figure of the page.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "DPI", "WIDTH", "TOP_FEATURES", "short", "history", "hyperparameter_importances", "permutation_importance",
    "confusion_matrices", "roc_pr_curves", "predicted_vs_actual", "residuals",
]

#: Inches: the page's column at 100 px per inch.
WIDTH = 9.6
DPI = 150
#: The permutation importance plot shows at most this many columns.
TOP_FEATURES = 20
#: Labels (class names, column names) longer than this are cut with an ellipsis.
MAX_LABEL = 22
#: Above this many classes, one-vs-rest curves have no legend entry each (only the average).
MAX_LEGEND_CLASSES = 10
#: Above this many classes, confusion matrix cells are not annotated with their numbers.
MAX_ANNOTATED_CLASSES = 15

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]
MAIN, ACCENT, MUTED, BAD = PALETTE[0], PALETTE[1], "#8C8C8C", PALETTE[3]
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.edgecolor": "#555555",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def short(label: object, limit: int = MAX_LABEL) -> str:
    """``label`` as text, cut to ``limit`` characters with an ellipsis."""
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def _figure(height: float, nrows: int = 1, ncols: int = 1, width: float = WIDTH, **subplots) -> Iterator[tuple[Figure, np.ndarray]]:
    """A figure in the report's style and its axes (always a 2-D array)."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False, **subplots)
        yield figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        # tight: square panels (confusion matrices, equal-aspect curves) leave empty bands otherwise
        figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08)
    return buffer.getvalue()


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` small panels: two a row."""
    ncols = 1 if n == 1 else 2
    return math.ceil(n / ncols), ncols


def _hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


# -- the search ---------------------------------------------------------------------------------


def _focus(values: np.ndarray) -> tuple[float, float]:
    """y-limits for trial scores: all of them, unless a few very bad trials would squash the
    good ones into a line; then the upper part, with the rest drawn on the bottom edge."""
    low, high = float(np.min(values)), float(np.max(values))
    median = float(np.median(values))
    upper = high - median
    if upper > 0 and high - low > 5 * upper:
        low = median - 1.5 * upper
    pad = 0.06 * (high - low) if high > low else max(abs(high) * 0.05, 1e-3)
    return low - pad, high + pad


def history(trials: pd.DataFrame, models: Sequence[str], metric: str, winner: str) -> bytes:
    """Each model's trial scores against the trial number, with the best so far as a line.

    ``trials`` has the columns of ``Result.trials`` (model, number, state, score, fold_scores).
    Pruned trials are drawn hollow at the mean of the folds they finished; failed trials as
    crosses on the bottom edge. Each panel has its own y axis; its title gives the model's best score.
    """
    def partial_mean(scores) -> float:
        return float(np.mean(scores)) if isinstance(scores, list) and scores else math.nan

    frames = {m: trials[trials["model"] == m].sort_values("number") for m in models}
    nrows, ncols = _grid(len(models))
    with _figure(2.9 * nrows + 0.5, nrows, ncols) as (figure, axes):
        handles = {}
        for ax, model in zip(axes.flat, models):
            own = frames[model]
            complete = own[own["state"] == "complete"]
            pruned = own[own["state"] == "pruned"]
            failed = own[~own["state"].isin(["complete", "pruned"])]
            # each panel its own y axis: a shared one would squash a much weaker model out of sight
            shown = np.concatenate([
                complete["score"].to_numpy(float), np.array([partial_mean(s) for s in pruned["fold_scores"]], dtype=float),
            ])
            shown = shown[np.isfinite(shown)]
            low, high = _focus(shown) if len(shown) else (0.0, 1.0)
            edge = ax.get_xaxis_transform()  # x in data, y in axes units: the bottom edge
            if len(complete):
                x, y = complete["number"].to_numpy(), complete["score"].to_numpy(float)
                inside = y >= low
                handles["trial score"] = ax.scatter(x[inside], y[inside], s=22, color=MAIN, alpha=0.75, zorder=3)
                if (~inside).any():
                    handles["score below the axis"] = ax.scatter(
                        x[~inside], np.full((~inside).sum(), 0.015), transform=edge, marker="v", s=26,
                        color=MAIN, alpha=0.75, clip_on=False, zorder=3,
                    )
                best = np.fmax.accumulate(y)
                last = own["number"].max()
                handles["best so far"], = ax.step(
                    np.append(x, last), np.append(best, best[-1]), where="post", color=ACCENT, linewidth=2, zorder=2,
                )
                if model == winner:
                    top = int(np.argmax(y))
                    handles["the winner's trial"] = ax.scatter(
                        [x[top]], [y[top]], marker="*", s=180, color=BAD, edgecolor="white", linewidth=0.8, zorder=4,
                    )
            if len(pruned):
                x = pruned["number"].to_numpy()
                y = np.array([partial_mean(s) for s in pruned["fold_scores"]], dtype=float)
                inside = y >= low  # NaN (no fold finished) counts as below
                hollow = {"facecolor": "none", "edgecolor": MUTED, "linewidth": 1.2, "zorder": 3}
                handles["pruned (mean of its folds)"] = ax.scatter(x[inside], y[inside], s=22, **hollow)
                if (~inside).any():
                    handles["pruned, below the axis"] = ax.scatter(
                        x[~inside], np.full((~inside).sum(), 0.015), transform=edge, marker="v", s=26, clip_on=False, **hollow,
                    )
            if len(failed):
                handles["failed"] = ax.scatter(
                    failed["number"], np.full(len(failed), 0.015), transform=edge, marker="x", s=30,
                    color=BAD, clip_on=False, zorder=3,
                )
            best = f"best {complete['score'].max():.4g} · " if len(complete) else ""
            if not len(shown):
                ax.set_yticks([])
                ax.text(0.5, 0.55, "no trial finished", transform=ax.transAxes, ha="center", color=MUTED)
            counts = f"{best}{len(complete)} complete, {len(pruned)} pruned, {len(failed)} failed"
            ax.set_title(f"{short(model, 40)}{'  (winner)' if model == winner else ''}\n{counts}", loc="left")
            ax.set_ylim(low, high)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("trial number")
            if len(own):  # at least 5 trial numbers wide, so a model with 1 or 2 trials gets whole-number ticks
                first = int(own["number"].min())
                ax.set_xlim(first - 0.6, max(int(own["number"].max()), first + 4) + 0.6)
        for ax in axes[:, 0]:
            ax.set_ylabel(f"{metric}\n(greater is better)")
        _hide_unused(axes, len(models))
        order = [
            "trial score", "best so far", "the winner's trial", "pruned (mean of its folds)", "failed",
            "score below the axis", "pruned, below the axis",
        ]
        names = [n for n in order if n in handles]
        ncols = len(names) if len(names) <= 5 else math.ceil(len(names) / 2)
        figure.legend([handles[n] for n in names], names, loc="outside upper center", ncols=ncols)
        return _png(figure)


def hyperparameter_importances(importances: dict[str, dict[str, float]]) -> bytes:
    """One horizontal bar chart per model: each hyperparameter's share of the score's variation."""
    models = list(importances)
    nrows, ncols = _grid(len(models))
    most = max(len(v) for v in importances.values())
    with _figure(max(2.2, (0.32 * most + 1.0)) * nrows, nrows, ncols, sharex=True) as (figure, axes):
        for ax, model in zip(axes.flat, models):
            ranked = sorted(importances[model].items(), key=lambda item: item[1])
            names = [short(name) for name, _ in ranked]
            values = [value for _, value in ranked]
            bars = ax.barh(names, values, color=MAIN, height=0.6)
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=8)
            ax.set_title(short(model, 40), loc="left")
            ax.set_xlim(0, 1.12)
            ax.grid(axis="y", visible=False)
            ax.set_ylim(len(ranked) - most - 0.6, len(ranked) - 0.4)  # equal bar heights, top-aligned across panels
        for ax in axes[-1, :]:
            ax.set_xlabel("importance (share of the score's variation)")
        _hide_unused(axes, len(models))
        return _png(figure)


# -- the winner, out of fold ------------------------------------------------------------------


def permutation_importance(importances: pd.DataFrame, metric: str) -> bytes:
    """Horizontal bars of the metric's drop when a column is shuffled (``mean`` ± ``std``), the
    ``TOP_FEATURES`` most important columns, the most important on top."""
    top = importances.head(TOP_FEATURES).iloc[::-1]
    with _figure(0.3 * len(top) + 1.3) as (figure, axes):
        ax = axes[0, 0]
        colors = [MAIN if v >= 0 else MUTED for v in top["mean"]]
        ax.barh([short(c, 30) for c in top["column"]], top["mean"], xerr=top["std"], color=colors, height=0.65,
                error_kw={"ecolor": "#444444", "elinewidth": 1, "capsize": 2})
        ax.axvline(0, color="#555555", linewidth=0.8)
        ax.spines["left"].set_visible(False)  # the line at 0 is the axis the bars grow from
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.6, len(top) - 0.4)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"drop in {metric} when the column is shuffled")
        return _png(figure)


def _tick_labels(ax, classes: Sequence[object]) -> bool:
    """Class names on both axes, the x ones slanted (or upright, for many classes) when they
    would collide; returns whether they were turned."""
    labels = [short(c, 16) for c in classes]
    ticks = np.arange(len(classes))
    size = 9 if len(classes) <= 15 else 7
    ax.set_xticks(ticks, labels, fontsize=size)
    ax.set_yticks(ticks, labels, fontsize=size)
    turned = len(classes) > 4 or max(len(label) for label in labels) > 8
    if turned:
        ax.tick_params(axis="x", labelrotation=35 if len(classes) <= 15 else 90)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    return turned


def confusion_matrices(matrix: np.ndarray, classes: Sequence[object]) -> bytes:
    """The confusion matrix as counts and normalised by row (each actual class sums to 100%)."""
    k = len(classes)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    # the panels are square and half the width: the height follows from that, plus room for slanted labels
    longest = max(len(short(c, 16)) for c in classes)
    height = 4.4 if k <= 4 and longest <= 8 else 4.4 + min(1.3, 0.08 * longest)
    with _figure(height, 1, 2) as (figure, axes):
        for ax, values, title, text in (
            (axes[0, 0], matrix, "counts", lambda v: f"{int(v):,}"),
            (axes[0, 1], shares, "share of each actual class", lambda v: f"{v:.0%}" if v else "0"),
        ):
            scaled = values / values.max() if values.max() > 0 else values
            ax.imshow(scaled, cmap="Blues", vmin=0, vmax=1)
            ax.grid(False)
            ax.spines[:].set_visible(False)
            _tick_labels(ax, classes)
            ax.set_xlabel("predicted class")
            ax.set_ylabel("actual class")
            ax.set_title(title, loc="left")
            if k <= MAX_ANNOTATED_CLASSES:
                size = 10 if k <= 6 else 8
                for (i, j), v in np.ndenumerate(values):
                    ax.text(j, i, text(v), ha="center", va="center", fontsize=size,
                            color="white" if scaled[i, j] > 0.55 else "#222222")
        return _png(figure)


def roc_pr_curves(y_true: np.ndarray, scores: np.ndarray, classes: Sequence[object]) -> bytes:
    """ROC and precision-recall curves: binary, for ``classes[1]`` (``scores`` 1-D); multiclass,
    one-vs-rest per class (``scores`` one column per class), area under each in the legend."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    if scores.ndim == 1:
        curves = [(classes[1], y_true == classes[1], scores)]
    else:
        curves = [(c, y_true == c, scores[:, i]) for i, c in enumerate(classes)]
    legend = len(curves) <= MAX_LEGEND_CLASSES
    with _figure(4.9, 1, 2) as (figure, axes):
        roc, pr = axes[0, 0], axes[0, 1]
        aucs, aps = [], []
        for i, (label, positive, score) in enumerate(curves):
            color = PALETTE[i % len(PALETTE)] if legend else MUTED
            width = 1.8 if legend else 0.8
            fpr, tpr, _ = roc_curve(positive, score)
            precision, recall, _ = precision_recall_curve(positive, score)
            aucs.append(auc(fpr, tpr))
            aps.append(average_precision_score(positive, score))
            name = short(label, 18)
            roc.plot(fpr, tpr, color=color, linewidth=width, label=f"{name} (AUC {aucs[-1]:.3f})" if legend else None)
            pr.step(recall, precision, where="post", color=color, linewidth=width,
                    label=f"{name} (AP {aps[-1]:.3f})" if legend else None)
        roc.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="chance")
        if len(curves) == 1:
            prevalence = float(np.mean(curves[0][1]))
            pr.axhline(prevalence, linestyle="--", color=MUTED, linewidth=1, label=f"chance ({prevalence:.2f})")
        if not legend:
            roc.plot([], [], color=MUTED, label=f"{len(curves)} classes, mean AUC {np.mean(aucs):.3f}")
            pr.plot([], [], color=MUTED, label=f"{len(curves)} classes, mean AP {np.mean(aps):.3f}")
        suffix = "" if len(curves) == 1 else " (one class vs the rest)"
        roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.01, 1.01), ylim=(-0.01, 1.02))
        roc.set_title("ROC curve" + suffix, loc="left")
        pr.set(xlabel="recall", ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.02))
        pr.set_title("precision-recall curve" + suffix, loc="left")
        roc.set_aspect("equal")
        pr.set_aspect("equal")
        roc.legend(loc="lower right")
        pr.legend(loc="lower left")
        return _png(figure)


def _point_style(n: int) -> dict:
    """Marker size and opacity that keep a scatter readable from a few hundred to 100,000 points."""
    if n <= 1000:
        return {"s": 14, "alpha": 0.7, "linewidths": 0}
    if n <= 20000:
        return {"s": 6, "alpha": float(np.clip(3000 / n, 0.25, 0.6)), "linewidths": 0}
    return {"s": 4, "alpha": 0.15, "linewidths": 0}


def predicted_vs_actual(y_true: np.ndarray, predicted: np.ndarray, target: str) -> bytes:
    """Out-of-fold predictions against the actual values, the diagonal as perfect prediction."""
    error = predicted - y_true
    rmse, mae = float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1 - float(np.sum(error**2)) / spread if spread > 0 else math.nan
    with _figure(6.2, width=6.6) as (figure, axes):
        ax = axes[0, 0]
        ax.scatter(y_true, predicted, color=MAIN, **_point_style(len(y_true)))
        low = float(min(y_true.min(), predicted.min()))
        high = float(max(y_true.max(), predicted.max()))
        pad = 0.03 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color=ACCENT, linewidth=1.5, label="perfect prediction")
        ax.set(xlim=(low - pad, high + pad), ylim=(low - pad, high + pad), aspect="equal")
        ax.set_xlabel(f"actual {short(target, 40)}")
        ax.set_ylabel(f"predicted {short(target, 40)} (out of fold)")
        ax.text(0.03, 0.97, f"R² {r2:.3f}\nRMSE {rmse:.4g}\nMAE {mae:.4g}\n{len(y_true):,} rows", transform=ax.transAxes,
                va="top", ha="left", fontsize=9, bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#CCCCCC"})
        ax.legend(loc="lower right")
        return _png(figure)


def residuals(y_true: np.ndarray, predicted: np.ndarray, target: str) -> bytes:
    """Residuals (actual - predicted) against the prediction, and their histogram."""
    residual = y_true - predicted
    with _figure(4.2, 1, 2) as (figure, axes):
        scatter, histogram = axes[0, 0], axes[0, 1]
        scatter.scatter(predicted, residual, color=MAIN, **_point_style(len(residual)))
        scatter.axhline(0, color=ACCENT, linewidth=1.5)
        scatter.set_xlabel(f"predicted {short(target, 30)} (out of fold)")
        scatter.set_ylabel("residual (actual - predicted)")
        scatter.set_title("residuals vs prediction", loc="left")
        bins = min(60, max(10, int(np.sqrt(len(residual)))))
        # the middle 99% of the rows: a few huge errors would squeeze the rest into one bar
        low, high = np.percentile(residual, [0.5, 99.5]) if len(residual) >= 200 else (residual.min(), residual.max())
        outside = int(((residual < low) | (residual > high)).sum())
        histogram.hist(residual, bins=bins, range=(low, high), color=MAIN, alpha=0.85, edgecolor="white", linewidth=0.4)
        if outside:
            histogram.text(0.98, 0.97, f"{outside:,} rows beyond\nthe x range not shown", transform=histogram.transAxes,
                           ha="right", va="top", fontsize=8, color=MUTED)
        histogram.axvline(0, color=ACCENT, linewidth=1.5)
        histogram.set_xlabel("residual (actual - predicted)")
        histogram.set_ylabel("rows")
        histogram.set_title(f"distribution of residuals (mean {residual.mean():.3g}, sd {residual.std():.3g})", loc="left")
        return _png(figure)
