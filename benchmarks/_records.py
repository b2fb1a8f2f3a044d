"""The records of the fair harness: their files, normalized scores, and automl against a peer.

Normalized score (AMLB's), per dataset and seed: ``(score - const) / (rf - const)`` with that
seed's rf and const, so the constant predictor is 0 and the default random forest 1, whatever
the metric; greater is better. A failed run counts as the constant predictor (0), as the AMLB
does for its aggregates; a (dataset, seed) where rf or const failed has no normalized scores.

automl against a peer on one dataset: ``d`` is the mean over the seeds of the difference of
their normalized scores. A win when ``d > TIE`` and most seed differences are above 0; a loss
when ``d < -TIE`` and most are below 0; anything else a tie. Over the suite: the mean of ``d``
and its paired bootstrap 95 % interval, resampling datasets.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._bench_one import BUDGET_FREE

TIE = 0.005
BOOTSTRAP_SAMPLES = 10_000


def record_name(record: dict) -> str:
    """The column a record belongs to: its framework, or ``automl@variant`` for a variant of automl."""
    variant = record.get("variant")
    return f"{record['framework']}@{variant}" if variant else record["framework"]


class RunFiles:
    """One JSONL file per framework (or automl variant) in a results folder, appended run by run."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def append(self, record: dict) -> None:
        with self.path(record_name(record)).open("a") as sink:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            os.fsync(sink.fileno())

    def records(self) -> list[dict]:
        out = []
        for path in sorted(self.folder.glob("*.jsonl")):
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return out

    def frameworks(self) -> list[str]:
        return list(dict.fromkeys(r["framework"] for r in self.records()))

    def done(self) -> set[tuple]:
        """``(name, (dataset, budget or None, seed))`` of every run recorded without an error."""
        return {(record_name(r), run_key(r)) for r in self.records() if r.get("error") is None}


def run_key(record: dict) -> tuple:
    budget = None if record["framework"] in BUDGET_FREE else record["budget"]
    return record["dataset"], budget, record["seed"]


def _ok(record: dict | None) -> bool:
    return record is not None and record.get("error") is None and record.get("score") is not None


class Records:
    """The last record of each (dataset, name, budget, seed); rf and const serve every budget."""

    def __init__(self, records: list[dict]):
        self.by_key: dict[tuple, dict] = {}
        for record in records:  # later lines (a rerun) replace earlier ones
            dataset, budget, seed = run_key(record)
            self.by_key[dataset, record_name(record), budget, seed] = record
        self.datasets = list(dict.fromkeys(r["dataset"] for r in records))
        self.names = list(dict.fromkeys(record_name(r) for r in records))
        self.seeds = sorted({r["seed"] for r in records})

    def get(self, dataset: str, name: str, budget: float, seed: int) -> dict | None:
        if name in BUDGET_FREE:
            budget = None
        return self.by_key.get((dataset, name, budget, seed))

    def runs(self, name: str, budget: float) -> list[dict]:
        return [r for d in self.datasets for s in self.seeds if (r := self.get(d, name, budget, s)) is not None]

    def budgets(self, name: str) -> list[float]:
        """The budgets ``name`` was run at (none for rf and const, which have no budget)."""
        return sorted({key[2] for key in self.by_key if key[1] == name and key[2] is not None})

    def normalized(self, dataset: str, name: str, budget: float, seed: int) -> float | None:
        """The normalized score (0 for a failed run); None without a successful rf and const, or no run."""
        record, rf, const = (self.get(dataset, n, budget, seed) for n in (name, "rf", "const"))
        if record is None or not _ok(rf) or not _ok(const) or rf["score"] == const["score"]:
            return None
        if not _ok(record):
            return 0.0
        return (record["score"] - const["score"]) / (rf["score"] - const["score"])

    def seed_scores(self, dataset: str, name: str, budget: float) -> dict[int, float]:
        """``{seed: normalized score}`` for the seeds that have one."""
        return {s: n for s in self.seeds if (n := self.normalized(dataset, name, budget, s)) is not None}

    def dataset_mean(self, dataset: str, name: str, budget: float) -> float | None:
        scores = self.seed_scores(dataset, name, budget)
        return statistics.fmean(scores.values()) if scores else None

    def suite_mean(self, name: str, budget: float) -> float | None:
        """The mean over datasets of each dataset's mean over seeds."""
        means = [m for d in self.datasets if (m := self.dataset_mean(d, name, budget)) is not None]
        return statistics.fmean(means) if means else None

    def seed_spread(self, name: str, budget: float) -> tuple[float, float] | None:
        """The lowest and highest suite mean when each seed is taken alone: the split-to-split noise."""
        per_seed = []
        for seed in self.seeds:
            scores = [n for d in self.datasets if (n := self.normalized(d, name, budget, seed)) is not None]
            if scores:
                per_seed.append(statistics.fmean(scores))
        return (min(per_seed), max(per_seed)) if per_seed else None


@dataclass(frozen=True)
class Duel:
    """automl against one peer on one dataset."""

    dataset: str
    d: float  # mean over the shared seeds of (automl - peer), normalized
    differences: tuple[float, ...]

    @property
    def outcome(self) -> str:
        ahead = sum(x > 0 for x in self.differences)
        behind = sum(x < 0 for x in self.differences)
        most = len(self.differences) / 2
        if self.d > TIE and ahead > most:
            return "win"
        if self.d < -TIE and behind > most:
            return "loss"
        return "tie"


def duels(records: Records, ours: str, peer: str, budget: float, peer_budget: float | None = None) -> list[Duel]:
    """One Duel per dataset where both have normalized scores on at least one shared seed."""
    out = []
    for dataset in records.datasets:
        a = records.seed_scores(dataset, ours, budget)
        b = records.seed_scores(dataset, peer, budget if peer_budget is None else peer_budget)
        shared = sorted(set(a) & set(b))
        if shared:
            differences = tuple(a[s] - b[s] for s in shared)
            out.append(Duel(dataset, statistics.fmean(differences), differences))
    return out


def bootstrap_interval(values: list[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """The 95 % percentile interval of the mean of ``values``, resampled with replacement (seeded)."""
    data = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(data), size=(samples, len(data)))
    means = data[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def tally(results: list[Duel]) -> dict:
    """Wins, ties, losses, the mean difference and its bootstrap interval."""
    outcomes = [r.outcome for r in results]
    mean = statistics.fmean(r.d for r in results) if results else None
    interval = bootstrap_interval([r.d for r in results]) if len(results) > 1 else None
    return {"win": outcomes.count("win"), "tie": outcomes.count("tie"), "loss": outcomes.count("loss"),
            "mean_d": mean, "interval": interval}


def median_of(runs: list[dict], field: str) -> float | None:
    values = [r[field] for r in runs if r.get(field) is not None]
    return statistics.median(values) if values else None
