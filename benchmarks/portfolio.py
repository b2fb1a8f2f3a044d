"""Choose a portfolio of starting configurations from the score matrix of ``benchmarks.meta_learn``:
greedy, as auto-sklearn 2 and TabRepo do, judged by leave-datasets-out validation.

    python -m benchmarks.portfolio [--scores benchmarks/results/meta] [--size 16] [--folds 5]
        [--write automl/search/portfolio.json]

Per dataset, each candidate's score is normalized so that the dataset's best candidate is 1 and
its median candidate 0 (clipped at 0; a failed candidate is 0): a candidate is judged against
what the other candidates reach on that dataset, whatever the metric. A portfolio's value on a
dataset, at k, is the best normalized score among its first k entries: what a search that runs
them first has found after k trials.

The portfolio starts with each family's defaults, cheapest first, so that the first round is
the one a search without a portfolio runs: the defaults are strong ensemble members, and
entries chosen on single holdout scores in their place lost at 30 s, where the first round is
most of the search (the first two versions, ``results/portfolio/``). The learned entries come
after them, in place of the first random draws of the search.

The learned entries are chosen greedily, per task, by gain per cost (the cost-benefit greedy of budgeted coverage problems): each
step adds the candidate whose rise of the mean value over the datasets, divided by its cost, is the
largest. A candidate's cost is its median fit seconds over the datasets, relative to each dataset's
median candidate, plus ``OVERHEAD`` for what every trial costs besides its fit; among candidates
within ``NEAR`` (relative) of the best ratio the cheapest comes first, and once nothing gains, the
cheapest remaining. Gain alone would put slow configurations first, and a search with 15 or 30
seconds would then see only a few of them (a first version did, and lost to the defaults at 30 s).

Validation: the datasets of a task are cut into ``--folds`` groups; a portfolio chosen on the
other groups is valued on each group in turn, so every number is on datasets it was not chosen
on. The baseline is the families' defaults in cost order (the cheapest family first), which is
what the search runs first without a portfolio. Both are valued after k entries and after a
cost spent (the entries whose summed costs fit in it): short budgets are bounded by time, not
by a count of trials.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from .meta_learn import RESULTS, read_scores

#: Candidates whose gain per cost is within this fraction of the best step's count as equal; the cheapest wins.
NEAR = 0.02
#: What a trial costs besides its fit (process, folds, scoring), in units of a dataset's median fit.
OVERHEAD = 0.1
#: Costs, in those units, at which the validation values the portfolio and the defaults.
COSTS = (1, 2, 4, 8, 16, 32)
PACKAGE_FILE = Path(__file__).resolve().parent.parent / "automl" / "search" / "portfolio.json"


class Matrix:
    """One task's normalized scores: ``values[d, c]`` for dataset d and candidate c, and relative costs."""

    def __init__(self, records: list[dict], candidates: dict):
        scored = {r["model"] for r in records}  # a model left out of the scoring is left out here
        self.candidates = [(m, i) for m in sorted(candidates) if m in scored for i in range(len(candidates[m]))]
        self.params = {(m, i): candidates[m][i] for m, i in self.candidates}
        self.datasets = sorted({r["dataset"] for r in records})
        column = {c: j for j, c in enumerate(self.candidates)}
        row = {d: i for i, d in enumerate(self.datasets)}
        scores = np.full((len(self.datasets), len(self.candidates)), np.nan)
        fit = np.full_like(scores, np.nan)
        self.recorded = np.zeros(scores.shape, dtype=bool)  # scored or failed: a row is done when all are
        for r in records:
            j = column.get((r["model"], r["candidate"]))
            if j is not None:
                self.recorded[row[r["dataset"]], j] = True
            if j is not None and r.get("score") is not None and np.isfinite(r["score"]):
                scores[row[r["dataset"]], j] = r["score"]
                fit[row[r["dataset"]], j] = r["fit_seconds"]
        self.values = _normalized(scores)
        median_fit = np.nanmedian(fit, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = fit / np.where(median_fit > 0, median_fit, 1.0)
        self.cost = np.nan_to_num(np.nanmedian(relative, axis=0), nan=np.inf)

    def complete_rows(self) -> np.ndarray:
        """Datasets scored on every candidate (a partial run leaves the last one half done)."""
        return np.flatnonzero(self.recorded.all(axis=1) & ~np.isnan(self.values).any(axis=1))


def _normalized(scores: np.ndarray) -> np.ndarray:
    best = np.nanmax(scores, axis=1, keepdims=True)
    median = np.nanmedian(scores, axis=1, keepdims=True)
    spread = np.where(best > median, best - median, 1.0)
    out = np.clip((scores - median) / spread, 0.0, 1.0)
    out[np.isnan(scores)] = 0.0
    out[np.isnan(scores).all(axis=1)] = np.nan  # a dataset not scored at all
    return out


def greedy(values: np.ndarray, cost: np.ndarray, size: int, start: list[int] = ()) -> list[int]:
    """Candidate columns in portfolio order (see the module's docstring): ``start``, then ``size``
    more chosen to add the most to what ``start`` reaches."""
    chosen: list[int] = list(start)
    reached = values[:, chosen].max(axis=1) if chosen else np.zeros(values.shape[0])
    for _ in range(min(size, values.shape[1] - len(chosen))):
        gains = np.maximum(values, reached[:, None]).mean(axis=0) - reached.mean()
        ratio = gains / (cost + OVERHEAD)
        ratio[chosen] = -np.inf
        best = ratio.max()
        near = np.flatnonzero(ratio >= best * (1 - NEAR)) if best > 1e-12 else np.flatnonzero(ratio > -np.inf)
        pick = int(near[np.argmin(cost[near])])
        chosen.append(pick)
        reached = np.maximum(reached, values[:, pick])
    return chosen


def curve(values: np.ndarray, order: list[int]) -> list[float]:
    """Mean over datasets of the best value among the first k entries, for k = 1..len(order)."""
    reached = np.zeros(values.shape[0])
    out = []
    for column in order:
        reached = np.maximum(reached, values[:, column])
        out.append(float(reached.mean()))
    return out


def curve_by_cost(values: np.ndarray, order: list[int], cost: np.ndarray, budgets=COSTS) -> list[float]:
    """Mean over datasets of the best value among the first entries whose summed cost (with
    ``OVERHEAD`` each) is within each budget (0 where not even the first fits)."""
    spent = np.cumsum([cost[j] + OVERHEAD for j in order])
    out = []
    for budget in budgets:
        within = [j for j, total in zip(order, spent) if total <= budget]
        out.append(float(values[:, within].max(axis=1).mean()) if within else 0.0)
    return out


def defaults_order(matrix: Matrix) -> list[int]:
    """Each family's default (candidate 0), the cheapest family first."""
    defaults = [j for j, (_, i) in enumerate(matrix.candidates) if i == 0]
    return sorted(defaults, key=lambda j: matrix.cost[j])


def choose(matrix: Matrix, rows: np.ndarray, size: int) -> list[int]:
    """The portfolio chosen on ``rows``: the defaults, cheapest first, then ``size`` entries
    chosen greedily to add to them."""
    return greedy(matrix.values[rows], matrix.cost, size, start=defaults_order(matrix))


def validate(matrix: Matrix, size: int, folds: int, seed: int = 0) -> dict | None:
    """Leave-datasets-out curves of the greedy portfolio and of the defaults, on unseen datasets
    (None with fewer than two datasets: nothing to leave out)."""
    rows = matrix.complete_rows()
    if len(rows) < 2:
        return None
    groups = np.array_split(np.random.default_rng(seed).permutation(rows), min(folds, len(rows)))
    ours, baseline, ours_cost, baseline_cost = [], [], [], []
    base = defaults_order(matrix)
    for k, test in enumerate(groups):
        train = np.concatenate([g for j, g in enumerate(groups) if j != k])
        order = choose(matrix, train, size)
        ours += [curve(matrix.values[[d]], order) for d in test]
        baseline += [curve(matrix.values[[d]], base) for d in test]
        ours_cost += [curve_by_cost(matrix.values[[d]], order, matrix.cost) for d in test]
        baseline_cost += [curve_by_cost(matrix.values[[d]], base, matrix.cost) for d in test]
    return {"datasets": len(rows), "portfolio": np.mean(ours, axis=0).tolist(),
            "defaults": np.mean(baseline, axis=0).tolist(),
            "portfolio_by_cost": np.mean(ours_cost, axis=0).tolist(),
            "defaults_by_cost": np.mean(baseline_cost, axis=0).tolist()}


def _load(folder: Path) -> tuple[list[dict], dict]:
    records = read_scores(folder / "scores.jsonl")
    return records, json.loads((folder / "candidates.json").read_text())


def _report(task: str, matrix: Matrix, check: dict | None, order: list[int]) -> list[str]:
    if check is None:
        return [f"## {task}: {len(matrix.complete_rows())} dataset(s), too few to validate", ""]
    ours, base = check["portfolio"], check["defaults"]
    ks = [k for k in (1, 2, 3, 5, len(base), 10, len(ours)) if k <= len(ours)]
    lines = [f"## {task}: {check['datasets']} datasets", "",
             "Leave-datasets-out, mean best normalized score among the first k trials:", "",
             "| k | " + " | ".join(map(str, sorted(set(ks)))) + " |", "|---|" + "---:|" * len(set(ks)),
             "| portfolio | " + " | ".join(f"{ours[k - 1]:.3f}" for k in sorted(set(ks))) + " |",
             "| defaults, cheapest first | " + " | ".join(
                 f"{base[min(k, len(base)) - 1]:.3f}" for k in sorted(set(ks))) + " |", "",
             "Leave-datasets-out, mean best normalized score within a cost (in units of a dataset's "
             f"median fit, {OVERHEAD} more per entry):", "",
             "| cost | " + " | ".join(map(str, COSTS)) + " |", "|---|" + "---:|" * len(COSTS),
             "| portfolio | " + " | ".join(f"{v:.3f}" for v in check["portfolio_by_cost"]) + " |",
             "| defaults, cheapest first | " + " | ".join(f"{v:.3f}" for v in check["defaults_by_cost"]) + " |", "",
             "The portfolio chosen on every dataset (the defaults, then the learned entries):", ""]
    for rank, j in enumerate(order, 1):
        model, i = matrix.candidates[j]
        lines.append(f"{rank}. {model} #{i}{' (default)' if i == 0 else ''}: relative fit cost "
                     f"{matrix.cost[j]:.2f}, {json.dumps(matrix.params[model, i], sort_keys=True)}")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, default=RESULTS, help="the meta_learn output folder")
    parser.add_argument("--size", type=int, default=16, help="entries per task")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--write", type=Path, default=None, help=f"write the portfolio here (the package's: {PACKAGE_FILE})")
    args = parser.parse_args(argv)
    records, candidates = _load(args.scores)
    command = "python -m benchmarks.portfolio " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Portfolio of starting configurations", "", f"`{command}`", "", __doc__.split("\n\n", 2)[2], ""]
    portfolio = {}
    for task in sorted(candidates):
        task_records = [r for r in records if r["task"] == task]
        if not task_records:
            continue
        matrix = Matrix(task_records, candidates[task])
        rows = matrix.complete_rows()
        order = choose(matrix, rows, args.size)
        portfolio[task] = [{"model": matrix.candidates[j][0], "params": matrix.params[matrix.candidates[j]]}
                           for j in order]
        lines += _report(task, matrix, validate(matrix, args.size, args.folds), order)
    (args.scores / "portfolio.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.write:
        tables = {task: len({r["dataset"] for r in records if r["task"] == task}) for task in portfolio}
        held_out = args.scores / "held_out.json"
        provenance = {"corpus": "PMLB tables of the team's meta corpus (none in the benchmark suite)",
                      "tables": tables, "held_out": json.loads(held_out.read_text()) if held_out.exists() else [],
                      "date": datetime.date.today().isoformat(), "command": command,
                      "scoring": "benchmarks/meta_learn.py: one seeded 75/25 split per table, at most 5,000 rows"}
        args.write.write_text(json.dumps({"provenance": provenance, "tasks": portfolio}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.write} ({statistics.fmean(len(v) for v in portfolio.values()):.0f} entries per task)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
