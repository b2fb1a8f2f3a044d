"""Trials completed in the same budget: one worker against several, on one machine and through PostgreSQL.

    python -m benchmarks.parallel_workers [--dataset spambase] [--budget 60] [--storage postgresql://...]

1. `n_jobs=1` against `n_jobs=2` (worker processes sharing the run's journal file), same data,
   budget and seed, run one after the other (twice each, alternating, to even out the machine).
2. With `--storage`, a coordinator alone against a coordinator plus one `automl worker` process
   on the same PostgreSQL database (each with n_jobs=1).
Trials are counted from the saved trials (complete + pruned: trials that ran to a verdict).
Results go to benchmarks/results/parallel_workers.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
MODELS = "logistic_regression,random_forest"


def _fit(data: Path, target: str, budget: float, path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [AUTOML, "-q", "fit", str(data), "--target", target, "--models", MODELS, "--time-budget", str(budget),
         "--path", str(path), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _counts(path: Path) -> tuple[int, int, float, str]:
    trials = pd.read_csv(path / "trials.csv")
    done = trials["state"].isin(["complete", "pruned"])
    manifest = pd.read_json(path / "manifest.json", typ="series")
    per_model = " ".join(f"{m}:{n}" for m, n in trials[done].groupby("model").size().items())
    return int(done.sum()), int(trials["worker"].nunique()), float(manifest["cv_score"]), per_model


def _wait(process: subprocess.Popen) -> None:
    _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"automl exited {process.returncode}: {err}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="spambase")
    parser.add_argument("--target", default="target")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--storage", default=None, help="a PostgreSQL URL for the two-process comparison")
    args = parser.parse_args()
    data = DATA / f"{args.dataset}.csv.gz"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for repeat in range(2):
            for n_jobs in ((1, 2) if repeat == 0 else (2, 1)):
                path = work / f"jobs{n_jobs}-{repeat}"
                started = time.perf_counter()
                _wait(_fit(data, args.target, args.budget, path, "--n-jobs", str(n_jobs)))
                trials, workers, score, per_model = _counts(path)
                rows.append(("journal file", f"n_jobs={n_jobs}", repeat, trials, per_model, workers, score, time.perf_counter() - started))
                print(rows[-1], flush=True)
        if args.storage:
            for with_worker in (False, True):
                name = f"bench-{uuid.uuid4().hex[:8]}"
                path = work / name
                started = time.perf_counter()
                coordinator = _fit(data, args.target, args.budget, path, "--storage", args.storage, "--study", name)
                worker = None
                if with_worker:
                    time.sleep(3)  # the coordinator records the run first
                    worker = subprocess.Popen(
                        [AUTOML, "-q", "worker", "--storage", args.storage, "--study", name],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                    )
                _wait(coordinator)
                if worker is not None:
                    _wait(worker)
                trials, workers, score, per_model = _counts(path)
                label = "coordinator + 1 worker" if with_worker else "coordinator alone"
                rows.append(("PostgreSQL", label, 0, trials, per_model, workers, score, time.perf_counter() - started))
                print(rows[-1], flush=True)

    frame = pd.DataFrame(rows, columns=["storage", "set-up", "repeat", "trials", "per model", "worker processes", "cv score", "seconds"])
    summary = frame.groupby(["storage", "set-up"], sort=False)[["trials", "cv score", "seconds"]].mean()
    lines = [
        "# Parallel workers: trials completed in the same budget",
        "",
        f"`python -m benchmarks.parallel_workers --dataset {args.dataset} --budget {args.budget:g}"
        f"{' --storage postgresql://…' if args.storage else ''}`, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; models {MODELS}.",
        "",
        "Trials = complete + pruned trials in the saved run. Every run is a whole `automl fit` command. The count "
        "depends on where the scheduler sends the trials as well as on the processes: with one process an expensive "
        "model's trial holds everything up, with two the cheap model keeps running beside it (see per model).",
        "",
        "```",
        frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"),
        "```",
        "",
    ]
    one, two = summary.loc[("journal file", "n_jobs=1"), "trials"], summary.loc[("journal file", "n_jobs=2"), "trials"]
    lines.append(f"- n_jobs=2 completed {two / one:.2f}x the trials of n_jobs=1 (mean of {frame['repeat'].nunique()} runs each).")
    if args.storage:
        alone = summary.loc[("PostgreSQL", "coordinator alone"), "trials"]
        both = summary.loc[("PostgreSQL", "coordinator + 1 worker"), "trials"]
        lines.append(f"- On PostgreSQL, a coordinator plus one worker completed {both / alone:.2f}x the trials of the coordinator alone.")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "parallel_workers.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
