"""The Markdown summary of a fair-harness folder: scores, normalized scores over seeds, automl
against each peer with the win/tie/loss rule and a paired bootstrap interval, and each
framework's time, cores, memory and prediction cost (the numbers come from _records.py)."""

from __future__ import annotations

import math
import statistics

from ._bench_one import BUDGET_FREE
from ._records import TIE, Records, RunFiles, _ok, duels, median_of, tally

METRIC_LABELS = {"binary": "ROC AUC ↑", "multiclass": "log loss ↓", "regression": "RMSE ↓"}

PROTOCOL = (
    "Protocol: per dataset and seed one seeded 75/25 train/test split (stratified for classification), the "
    "same for every framework; each framework on each (dataset, seed) in its own process, one at a time, killed "
    "at its timeout; the test split scored by the harness with the same code for all (ROC AUC of the positive "
    "class, log loss over all classes of the table, RMSE). Normalized score: `(score - const) / (rf - const)` "
    "with that seed's rf and const (const 0, rf 1, greater is better); a failed run counts as const (0). "
    f"automl against a peer per dataset: d = mean over seeds of the difference of normalized scores; a win if "
    f"d > {TIE} and most seed differences are > 0, a loss if d < -{TIE} and most are < 0, else a tie. "
    "The interval is the paired bootstrap 95 % interval of the mean d over datasets. fit/budget: the "
    "framework's fit call alone over the budget; start-up and prediction are apart. Cores busy: the machine's "
    "CPU counters (/proc/stat) during the fit call. Peak RSS: the largest summed resident memory of the run's "
    "process tree, sampled every 0.25 s."
)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _mean_value(records: Records, dataset: str, name: str, budget: float) -> str:
    runs = [records.get(dataset, name, budget, s) for s in records.seeds]
    runs = [r for r in runs if r is not None]
    if not runs:
        return "–"
    values = [r["value"] for r in runs if _ok(r)]
    failed = len(runs) - len(values)
    text = f"{statistics.fmean(values):.4g}" if values else "failed"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.2g}"
    return text + (f" ({failed} failed)" if failed and values else "")


def _names(records: Records, ours: str) -> list[str]:
    return [ours] + [n for n in records.names if n != ours and n not in BUDGET_FREE] + [
        n for n in ("rf", "const") if n in records.names
    ]


def _scores(records: Records, names: list[str], budget: float) -> list[str]:
    lines = ["## Test scores (mean ± sd over seeds)", "", "| dataset | metric | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for dataset in records.datasets:
        task = next(r["task"] for k, r in records.by_key.items() if k[0] == dataset)
        cells = [_mean_value(records, dataset, n, budget) for n in names]
        lines.append(f"| {dataset} | {METRIC_LABELS[task]} | " + " | ".join(cells) + " |")
    return lines + [""]


def _normalized(records: Records, names: list[str], budget: float) -> list[str]:
    lines = ["## Normalized scores (mean over seeds; lowest and highest seed)", "",
             "| dataset | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for dataset in records.datasets:
        cells = []
        for n in names:
            scores = records.seed_scores(dataset, n, budget)
            cell = _num(statistics.fmean(scores.values())) if scores else "–"
            if len(scores) > 1:
                cell += f" ({min(scores.values()):.3f}–{max(scores.values()):.3f})"
            cells.append(cell)
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return lines + [""]


def _versus(records: Records, ours: str, names: list[str], budget: float) -> list[str]:
    peers = [n for n in names if n != ours]
    lines = [f"## {ours} against each framework", "",
             "| vs | wins | ties | losses | mean d | 95 % interval | losses at |", "|---|---:|---:|---:|---:|---|---|"]
    for peer in peers:
        results = duels(records, ours, peer, budget)
        t = tally(results)
        interval = f"{t['interval'][0]:+.3f} to {t['interval'][1]:+.3f}" if t["interval"] else "–"
        lost = ", ".join(f"{r.dataset} ({r.d:+.3f})" for r in results if r.outcome == "loss") or "–"
        lines.append(f"| {peer} | {t['win']} | {t['tie']} | {t['loss']} | {_num(t['mean_d'], 4)} | {interval} | {lost} |")
    return lines + [""]


def _versus_other_budgets(records: Records, ours: str, budget: float) -> list[str]:
    """``ours`` at ``budget`` against each peer at the other budgets it was run at: what a short
    run gives against a peer's longer one."""
    peers = [n for n in records.names if not n.startswith("automl") and n not in BUDGET_FREE]
    rows = []
    for peer in peers:
        for other in (b for b in records.budgets(peer) if b != budget):
            results = duels(records, ours, peer, budget, peer_budget=other)
            if not results:
                continue
            t = tally(results)
            interval = f"{t['interval'][0]:+.3f} to {t['interval'][1]:+.3f}" if t["interval"] else "–"
            # a duel exists only where both have scores, so neither mean is None
            mine = statistics.fmean(records.dataset_mean(r.dataset, ours, budget) for r in results)
            theirs = statistics.fmean(records.dataset_mean(r.dataset, peer, other) for r in results)
            rows.append(f"| {peer} at {other:g} s | {len(results)} | {_num(mine)} | {_num(theirs)} | "
                        f"{t['win']} | {t['tie']} | {t['loss']} | {_num(t['mean_d'], 4)} | {interval} |")
    if not rows:
        return []
    head = [f"## {ours} at {budget:g} s against the peers at other budgets", "",
            f"| vs | datasets | {ours} mean | peer mean | wins | ties | losses | mean d | 95 % interval |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    return head + rows + [""]


def framework_row(records: Records, name: str, budget: float) -> str:
    runs = records.runs(name, budget)
    fit_ratio = [r["fit_seconds"] / r["budget"] for r in runs if r.get("fit_seconds") is not None]
    over = [r["fit_seconds"] - (1.05 * r["budget"] + 5) for r in runs if r.get("fit_seconds") is not None]
    spread = records.seed_spread(name, budget)
    size = median_of(runs, "model_bytes")
    cells = [
        name, next((r["version"] for r in runs if r.get("version")), "–"), str(len(runs)),
        str(sum(not _ok(r) for r in runs)), _num(records.suite_mean(name, budget)),
        f"{spread[0]:.3f}–{spread[1]:.3f}" if spread else "–",
        _num(statistics.median(fit_ratio), 2) if fit_ratio else "–", _num(max(fit_ratio), 2) if fit_ratio else "–",
        _num(max(over), 1) if over else "–", _num(median_of(runs, "startup_seconds"), 2),
        _num(statistics.fmean(b) if (b := [r["cores_busy"] for r in runs if r.get("cores_busy") is not None]) else None, 2),
        _num(median_of(runs, "peak_rss_mb"), 0), _num(size / 1e6 if size is not None else None, 2),
        _num(median_of(runs, "warm_predict_seconds"), 4), _num(median_of(runs, "fresh_predict_seconds"), 3),
    ]
    return "| " + " | ".join(cells) + " |"


FRAMEWORK_HEADS = (
    "framework", "version", "runs", "failures", "mean normalized", "seed range", "fit/budget median",
    "fit/budget max", "fit − (1.05·budget+5) max s", "start-up s", "cores busy", "peak RSS MB", "size MB",
    "warm predict s", "fresh load+predict s",
)


def _per_framework(records: Records, names: list[str], budget: float) -> list[str]:
    lines = ["## Per framework (medians over runs; cores busy: mean)", "", "| " + " | ".join(FRAMEWORK_HEADS) + " |",
             "|---|---|" + "---:|" * (len(FRAMEWORK_HEADS) - 2)]
    return lines + [framework_row(records, n, budget) for n in names] + [""]


def _prediction_ratios(records: Records, ours: str, names: list[str], budget: float) -> list[str]:
    lines = []
    mine = records.runs(ours, budget)
    for peer in (n for n in names if n != ours and n not in BUDGET_FREE):
        theirs = records.runs(peer, budget)
        ratios = []
        for field, label in (("warm_predict_seconds", "warm"), ("fresh_predict_seconds", "fresh"),
                             ("model_bytes", "size")):
            a, b = median_of(mine, field), median_of(theirs, field)
            if a and b:
                ratios.append(f"{label} {a / b:.2f}x")
        if ratios:
            lines.append(f"- {ours}'s median prediction cost over {peer}'s: " + ", ".join(ratios) + ".")
    return lines + [""] if lines else []


def _saved(records: Records, ours: str, budget: float) -> list[str]:
    lines = [f"## What {ours} saved", "", "| dataset | " + " | ".join(f"seed {s}" for s in records.seeds) + " |",
             "|---|" + "---|" * len(records.seeds)]
    for dataset in records.datasets:
        cells = []
        for seed in records.seeds:
            saved = (records.get(dataset, ours, budget, seed) or {}).get("saved")
            members = saved and saved.get("members")
            cells.append("–" if not saved else f"{saved['model']} ({', '.join(members)})" if members else saved["model"])
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return lines + [""]


def _failures(records: Records) -> list[str]:
    lines = []
    for (dataset, name, budget, seed), record in records.by_key.items():
        if not _ok(record):
            error = (record.get("error") or "no score").strip().splitlines()[0][:300]
            lines.append(f"- {dataset} / {name} / seed {seed} ({record['budget']:g} s): {error}")
    return ["## Failures", "", *lines, ""] if lines else []


def suite_markdown(files: RunFiles, budget: float, variant: str | None, command: str, environment: str) -> str:
    """The summary at one budget, with ``automl`` (or ``automl@variant``) as the one compared."""
    every = files.records()
    raw = [r for r in every if r["framework"] in BUDGET_FREE or r["budget"] == budget]
    records = Records(raw)
    ours = f"automl@{variant}" if variant else "automl"
    names = _names(records, ours)
    lines = [f"# Fair benchmark suite, {budget:g} s budget", "", f"`{command}`", "", environment, "", PROTOCOL, ""]
    if not raw:
        return "\n".join(lines + ["No runs recorded yet."])
    lines += _scores(records, names, budget) + _normalized(records, names, budget)
    if ours in records.names:
        lines += _versus(records, ours, names, budget) + _versus_other_budgets(Records(every), ours, budget)
    lines += _per_framework(records, names, budget) + _prediction_ratios(records, ours, names, budget)
    if ours in records.names:
        lines += _saved(records, ours, budget)
    return "\n".join(lines + _failures(records))


def scaling_markdown(files: RunFiles, budgets: list[float], command: str, environment: str,
                     reference: float = 60.0) -> str:
    """automl's normalized scores by budget; the peers at ``reference`` seconds, when recorded, beside them."""
    records = Records(files.records())
    heads = " | ".join(f"{b:g} s" for b in budgets)
    peers = [n for n in records.names if n != "automl" and n not in BUDGET_FREE
             and records.runs(n, reference)]
    lines = ["# Scaling with the time budget", "", f"`{command}`", "", environment, "", PROTOCOL, "",
             f"Peers at {reference:g} s for reference.", "",
             "## Normalized score by budget (mean over seeds)", "",
             f"| dataset | {heads} | " + " | ".join(f"{p} {reference:g} s" for p in peers) + " |",
             "|---|" + "---:|" * (len(budgets) + len(peers))]
    scaled = [d for d in records.datasets if any(records.seed_scores(d, "automl", b) for b in budgets)]
    for dataset in scaled:
        cells = [_num(records.dataset_mean(dataset, "automl", b)) for b in budgets]
        cells += [_num(records.dataset_mean(dataset, p, reference)) for p in peers]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    means = []
    for b in budgets:
        values = [m for d in scaled if (m := records.dataset_mean(d, "automl", b)) is not None]
        means.append(_num(statistics.fmean(values)) if values else "–")
    refs = []
    for p in peers:
        values = [m for d in scaled if (m := records.dataset_mean(d, p, reference)) is not None]
        refs.append(_num(statistics.fmean(values)) if values else "–")
    lines += ["| **mean** | " + " | ".join(means + refs) + " |", ""]
    lines += ["## Fit seconds by budget (median over seeds)", "", f"| dataset | {heads} |", "|---|" + "---:|" * len(budgets)]
    for dataset in scaled:
        cells = []
        for b in budgets:
            runs = [r for s in records.seeds if (r := records.get(dataset, "automl", b, s)) is not None]
            cells.append(_num(median_of(runs, "fit_seconds"), 1))
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + _failures(records))
