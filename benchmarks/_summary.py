"""The numbers of a benchmark run, from its JSONL records, and their Markdown summary.

Normalized score (AMLB's): ``(score - const) / (rf - const)`` per dataset, so the constant
predictor is 0 and the default random forest 1, whatever the metric; greater is better. A failed
run counts as the constant predictor (0), as the AMLB does for its aggregates; a dataset where
rf or const failed has no normalized scores. automl against another framework, per dataset: a
win if its normalized score is greater by more than ``TIE``, a loss if smaller by more, else a tie.
"""

from __future__ import annotations

import math
import statistics

from ._bench_one import BUDGET_FREE

TIE = 0.005
METRIC_LABELS = {"binary": "ROC AUC ↑", "multiclass": "log loss ↓", "regression": "RMSE ↓"}


class Records:
    """The last record of each (dataset, framework, budget); records of rf and const serve every budget."""

    def __init__(self, records: list[dict]):
        self.by_key: dict[tuple, dict] = {}
        self.free: dict[tuple, dict] = {}
        for record in records:  # later lines (a rerun on --resume) replace earlier ones
            self.by_key[record["dataset"], record["framework"], record["budget"]] = record
            if record["framework"] in BUDGET_FREE:
                self.free[record["dataset"], record["framework"]] = record
        self.datasets = list(dict.fromkeys(r["dataset"] for r in records))
        self.frameworks = list(dict.fromkeys(r["framework"] for r in records))
        self.budgets = sorted({r["budget"] for r in records if r["framework"] not in BUDGET_FREE}) or sorted(
            {r["budget"] for r in records}
        )

    def get(self, dataset: str, framework: str, budget: float) -> dict | None:
        record = self.by_key.get((dataset, framework, budget))
        if record is None and framework in BUDGET_FREE:
            record = self.free.get((dataset, framework))
        return record

    def normalized(self, dataset: str, framework: str, budget: float) -> float | None:
        """The normalized score (0 for a failed run); None without a successful rf and const, or no run."""
        record, rf, const = (self.get(dataset, f, budget) for f in (framework, "rf", "const"))
        if record is None or not _ok(rf) or not _ok(const) or rf["score"] == const["score"]:
            return None
        if not _ok(record):
            return 0.0
        return (record["score"] - const["score"]) / (rf["score"] - const["score"])


def _ok(record: dict | None) -> bool:
    return record is not None and record.get("error") is None and record.get("score") is not None


def wins_ties_losses(records: Records, other: str, budget: float, ours: str = "automl") -> tuple[int, int, int]:
    wins = ties = losses = 0
    for dataset in records.datasets:
        a, b = records.normalized(dataset, ours, budget), records.normalized(dataset, other, budget)
        if a is None or b is None:
            continue
        if abs(a - b) <= TIE:
            ties += 1
        elif a > b:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses


def framework_stats(records: Records, framework: str, budget: float) -> dict:
    """Mean normalized score, failures and time against the budget of one framework."""
    runs = [r for d in records.datasets if (r := records.get(d, framework, budget)) is not None]
    normalized = [n for d in records.datasets if (n := records.normalized(d, framework, budget)) is not None]
    fit_ratio = [r["fit_seconds"] / r["budget"] for r in runs if r.get("fit_seconds") is not None]
    wall_ratio = [r["wall_seconds"] / r["budget"] for r in runs if r.get("wall_seconds") is not None]
    predict = [r["predict_seconds"] for r in runs if r.get("predict_seconds") is not None]
    return {
        "runs": len(runs),
        "failures": sum(not _ok(r) for r in runs),
        "mean_normalized": statistics.fmean(normalized) if normalized else None,
        "normalized_datasets": len(normalized),
        "fit_budget_median": statistics.median(fit_ratio) if fit_ratio else None,
        "fit_budget_max": max(fit_ratio) if fit_ratio else None,
        "wall_budget_max": max(wall_ratio) if wall_ratio else None,
        "predict_median": statistics.median(predict) if predict else None,
        "version": next((r["version"] for r in runs if r.get("version")), None),
    }


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _value(record: dict | None) -> str:
    if record is None:
        return "–"
    if not _ok(record):
        return "failed"
    return f"{record['value']:.4g}"


def _header(title: str, command: str, environment: str) -> list[str]:
    return [f"# {title}", "", f"`{command}`", "", environment, ""]


def _split_warnings(records: Records) -> list[str]:
    """Every framework of a dataset must have scored the same test rows (a hash of their positions)."""
    lines = []
    for dataset in records.datasets:
        splits = {r["split"] for k, r in records.by_key.items() if k[0] == dataset and r.get("split")}
        if len(splits) > 1:
            lines.append(f"- **warning**: {dataset}: the frameworks scored different test splits "
                         f"({', '.join(sorted(splits))}).")
    return lines


#: What the prediction section shows per framework: record field, heading, digits.
PREDICTION_FIELDS = (
    ("warm_predict_seconds", "warm s", 4), ("fresh_predict_seconds", "fresh load+predict s", 3),
    ("model_bytes", "size MB", 2),
)


def _prediction(records: Records, frameworks: list[str], budget: float) -> list[str]:
    """Per dataset, each framework's warm prediction, fresh-process load and prediction, and size
    on disk of the test split; then their medians, and automl's median over each peer's."""
    timed = [f for f in frameworks if any(r.get("model_bytes") is not None for k, r in records.by_key.items() if k[1] == f)]
    if not timed:
        return []

    def cell(record, field, digits):
        value = None if record is None else record.get(field)
        return _num(value / 1e6 if field == "model_bytes" and value is not None else value, digits)

    heads = [f"{f} {head}" for f in timed for _, head, _ in PREDICTION_FIELDS]
    lines = ["## Prediction of the test split", "", "| dataset | " + " | ".join(heads) + " |",
             "|---|" + "---:|" * len(heads)]
    for dataset in records.datasets:
        cells = [cell(records.get(dataset, f, budget), field, d) for f in timed for field, _, d in PREDICTION_FIELDS]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    medians = {}
    for f in timed:
        for field, _, _ in PREDICTION_FIELDS:
            values = [r[field] for d in records.datasets if (r := records.get(d, f, budget)) and r.get(field) is not None]
            medians[f, field] = statistics.median(values) if values else None
    cells = [cell({field: medians[f, field]}, field, d) for f in timed for field, _, d in PREDICTION_FIELDS]
    lines += ["| **median** | " + " | ".join(cells) + " |", ""]
    if "automl" in timed:
        for f in (f for f in timed if f != "automl"):
            ratios = [
                f"{head} {medians['automl', field] / medians[f, field]:.2f}x"
                for field, head, _ in PREDICTION_FIELDS if medians["automl", field] and medians[f, field]
            ]
            lines.append(f"- automl's median over {f}'s: " + ", ".join(ratios) + ".")
        lines.append("")
    return lines


def _failures(records: Records) -> list[str]:
    lines = []
    for (dataset, framework, budget), record in records.by_key.items():
        if not _ok(record):
            error = (record.get("error") or "no score").strip().splitlines()[0][:300]
            lines.append(f"- {dataset} / {framework} ({budget:g} s): {error}")
    return ["## Failures", "", *lines, ""] if lines else []


PROTOCOL = (
    "Protocol: per dataset one seeded 75/25 train/test split (stratified for classification), the same for "
    "every framework; each framework on each dataset in its own process, killed at its timeout; the test split "
    "scored by the harness with the same code for all (ROC AUC of the positive class, log loss over all classes "
    "of the table, RMSE). Normalized score: `(score - const) / (rf - const)` (const 0, rf 1, greater is "
    f"better); a failed run counts as const (0). automl wins or loses when the normalized scores differ by more "
    f"than {TIE}, else ties. fit/budget: seconds of the framework's fit call over the budget; wall: the whole "
    "process (start-up, data loading, fit, prediction)."
)


def suite_markdown(raw: list[dict], command: str, environment: str) -> str:
    records = Records(raw)
    budget = records.budgets[0] if records.budgets else 0.0
    frameworks = records.frameworks
    lines = _header(f"Benchmark suite, {budget:g} s budget", command, environment)
    lines += [PROTOCOL, ""]
    lines += _split_warnings(records)

    lines += ["## Test scores", "", "| dataset | task | metric | " + " | ".join(frameworks) + " |",
              "|---|---|---|" + "---:|" * len(frameworks)]
    for dataset in records.datasets:
        row = [records.get(dataset, f, budget) for f in frameworks]
        first = next(r for r in row if r is not None)
        scores = [r["score"] for r in row if _ok(r)]
        best = max(scores) if scores else None
        cells = [f"**{_value(r)}**" if _ok(r) and r["score"] == best else _value(r) for r in row]
        lines.append(f"| {dataset} | {first['task']} | {METRIC_LABELS[first['task']]} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += ["## Normalized scores", "", "| dataset | " + " | ".join(frameworks) + " |",
              "|---|" + "---:|" * len(frameworks)]
    for dataset in records.datasets:
        cells = []
        for f in frameworks:
            n = records.normalized(dataset, f, budget)
            cells.append(_num(n) + (" (failed)" if n is not None and not _ok(records.get(dataset, f, budget)) else ""))
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += ["## Per framework", "",
              ("| framework | version | runs | failures | mean normalized score | fit/budget median "
               "| fit/budget max | wall/budget max | predict s median |"),
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in frameworks:
        s = framework_stats(records, f, budget)
        lines.append(
            f"| {f} | {s['version'] or '–'} | {s['runs']} | {s['failures']} | {_num(s['mean_normalized'])} "
            f"({s['normalized_datasets']} datasets) | {_num(s['fit_budget_median'], 2)} | {_num(s['fit_budget_max'], 2)} "
            f"| {_num(s['wall_budget_max'], 2)} | {_num(s['predict_median'], 3)} |"
        )
    lines.append("")

    if "automl" in frameworks:
        lines += ["## automl against each framework", "", "| automl vs | wins | ties | losses |", "|---|---:|---:|---:|"]
        for f in frameworks:
            if f != "automl":
                w, t, l_ = wins_ties_losses(records, f, budget)
                lines.append(f"| {f} | {w} | {t} | {l_} |")
        lines.append("")
    lines += _prediction(records, frameworks, budget)
    lines += _failures(records)
    return "\n".join(lines)


def scaling_markdown(raw: list[dict], command: str, environment: str) -> str:
    records = Records(raw)
    budgets = records.budgets
    heads = " | ".join(f"{b:g} s" for b in budgets)
    searched = [f for f in records.frameworks if f not in BUDGET_FREE]
    lines = _header("Scaling with the time budget", command, environment)
    lines += [PROTOCOL, "", "rf and const do not depend on the budget: they ran once per dataset.", ""]
    lines += _split_warnings(records)

    lines += ["## Test score by budget", "", f"| dataset | metric | framework | {heads} |",
              "|---|---|---|" + "---:|" * len(budgets)]
    for dataset in records.datasets:
        for f in records.frameworks:
            row = [records.get(dataset, f, b) for b in budgets]
            if all(r is None for r in row):
                continue
            task = next(r for r in row if r is not None)["task"]
            lines.append(f"| {dataset} | {METRIC_LABELS[task]} | {f} | " + " | ".join(_value(r) for r in row) + " |")
    lines.append("")

    lines += ["## Fit seconds by budget", "", f"| dataset | framework | {heads} |", "|---|---|" + "---:|" * len(budgets)]
    for dataset in records.datasets:
        for f in searched:
            row = [records.get(dataset, f, b) for b in budgets]
            if any(r is not None for r in row):
                lines.append(f"| {dataset} | {f} | " + " | ".join(_num(r and r.get("fit_seconds"), 1) for r in row) + " |")
    lines.append("")

    lines += ["## Per framework and budget", "", f"| framework | measure | {heads} |", "|---|---|" + "---:|" * len(budgets)]
    for f in searched:
        stats = [framework_stats(records, f, b) for b in budgets]
        lines.append(f"| {f} | mean normalized score | " + " | ".join(_num(s["mean_normalized"]) for s in stats) + " |")
        lines.append(f"| {f} | fit/budget median | " + " | ".join(_num(s["fit_budget_median"], 2) for s in stats) + " |")
        lines.append(f"| {f} | fit/budget max | " + " | ".join(_num(s["fit_budget_max"], 2) for s in stats) + " |")
        lines.append(f"| {f} | failures | " + " | ".join(str(s["failures"]) for s in stats) + " |")
    lines.append("")
    lines += _failures(records)
    return "\n".join(lines)
