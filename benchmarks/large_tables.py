"""Wall time, score and peak memory of `automl fit` as tables grow.

    python -m benchmarks.large_tables [--rows 10000,100000,1000000] [--mixed-rows 500000] [--budget 120]

Numeric tables: scikit-learn's make_classification, 20 features (10 informative), binary.
Mixed table: the bundled adult table (numbers, categories, missing values) resampled with
replacement to the given size. Each is written as Parquet and fitted by a whole `automl fit`
command with the budget; peak memory is the largest sum of resident memory over the command's
process tree (parent, forkserver and worker), sampled every 0.2 s. The target for the
issue: within the budget and under 4 GB. Results go to benchmarks/results/large_tables.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.datasets import make_classification

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
MEMORY_TARGET_MB = 4096


def _tree_rss_mb(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        rss[int(entry)] = pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _fit(data: Path, target: str, budget: float, run: Path) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(
        [AUTOML, "-q", "fit", str(data), "--target", target, "--time-budget", str(budget), "--path", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _tree_rss_mb(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    err = process.stderr.read()
    if process.returncode != 0:
        errors = [line for line in err.splitlines() if line.startswith("automl: error")]
        return {"seconds": seconds, "peak_mb": peak, "error": (errors or err.strip().splitlines() or ["failed"])[-1],
                "stderr": err[-3000:]}
    manifest = json.loads((run / "manifest.json").read_text())
    board = pd.read_csv(run / "leaderboard.csv")
    return {
        "seconds": seconds, "peak_mb": peak, "model": manifest["model"], "cv_score": manifest["cv_score"],
        "validation": manifest.get("validation") or {}, "trials": int(board["trials"].sum()), "error": "",
        "fit_seconds": manifest.get("seconds"), "refit_rows": manifest.get("refit_rows"),
    }


def _describe(plan: dict) -> str:
    if not plan:
        return ""
    scheme = f"holdout {plan['holdout']:.0%}" if plan["folds"] == 1 else f"{plan['folds']}-fold"
    return scheme + (f", trials on {plan['max_train_rows']:,} rows" if plan.get("max_train_rows") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--mixed-rows", type=int, default=500_000)
    parser.add_argument("--budget", type=float, default=120.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tables = [(f"numeric {int(n):,} x 20", int(n), "numeric") for n in args.rows.split(",")]
        if args.mixed_rows:
            tables.append((f"adult resampled {args.mixed_rows:,} x 14", args.mixed_rows, "mixed"))
        for label, n, kind in tables:
            data = work / f"{kind}-{n}.parquet"
            if kind == "numeric":
                X, y = make_classification(n_samples=n, n_features=20, n_informative=10, random_state=0)
                pd.DataFrame(X, columns=[f"x{i}" for i in range(20)]).assign(target=y).to_parquet(data)
                target = "target"
            else:
                adult = pd.read_csv(DATA / "adult.csv.gz")
                adult.sample(n=n, replace=True, random_state=0).reset_index(drop=True).to_parquet(data)
                target = "income"
            outcome = _fit(data, target, args.budget, work / f"run-{kind}-{n}")
            rows.append({"table": label, "rows": n, **outcome})
            print({k: v for k, v in rows[-1].items() if k != "stderr"}, flush=True)
            data.unlink()

    lines = [
        "# Large tables: wall time, score and peak memory",
        "",
        f"`python -m benchmarks.large_tables --rows {args.rows} --mixed-rows {args.mixed_rows} --budget {args.budget:g}`, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, default settings "
        "(all built-in models, n_jobs=1).",
        "",
        f"Target: wall time within the {args.budget:g} s budget (the promise is budget x 1.05 + 5 s) and peak memory "
        f"under {MEMORY_TARGET_MB} MB, summed over the command's processes. Wall time is the whole command (start-up "
        "and reading the Parquet file included); fit_best s is the call itself, as its manifest records it.",
        "",
        "The mixed table repeats adult's 48,842 rows about ten times (sampled with replacement), so the same row "
        "falls on both sides of a split: its CV score is optimistic and only the time and memory columns mean "
        "something for it.",
        "",
        "| table | wall s | fit_best s | peak MB | winner | CV score | trials | validation | final refit rows | failure |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['table']} | {r['seconds']:.1f} | {r.get('fit_seconds') or float('nan'):.1f} | {r['peak_mb']:.0f} | "
            f"{r.get('model', '')} | {r.get('cv_score', float('nan')):.4f} | {r.get('trials', '')} | "
            f"{_describe(r.get('validation') or {})} | {r.get('refit_rows') or ''} | {r['error']} |"
        )
    numeric = [r for r in rows if r["table"].startswith("numeric") and not r["error"]]
    if len(numeric) >= 2:
        a, b = numeric[0], numeric[-1]
        lines += ["", f"From {a['rows']:,} to {b['rows']:,} rows ({b['rows'] / a['rows']:.0f}x): peak memory "
                  f"{b['peak_mb'] / a['peak_mb']:.1f}x, wall time {b['seconds'] / a['seconds']:.2f}x (the budget caps it)."]
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "large_tables.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
