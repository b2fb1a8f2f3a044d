"""What running trials in a worker process costs, against fitting the same folds in-process.

    python -m benchmarks.isolation_overhead [--trials 40] [--dataset spambase]

Both sides fit and score the same pipelines, trial by trial in turn, (the logistic regression's default: cheap trials
are the worst case for isolation) on the same folds of a bundled table, in one run.
The overhead per trial is (isolated - in-process) / trials, plus the worker start-up once. The
share of a 60 s budget that isolation costs is reported as start-up + overhead x the trials
that fit in 60 s at the isolated pace. Results go to benchmarks/results/isolation_overhead.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import cloudpickle
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from automl.search import trial_process_main as _worker
from automl.data.schema import as_table, infer_schema, prepare_target
from automl._metrics import resolve_scorer
from automl._plugins import collect_models, get_plugin_manager
from automl.search.trial_process import TrialProcess
from automl.search.studies import build_pipeline
from automl._spec import ModelContext

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
BUDGET = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--dataset", default="spambase")
    args = parser.parse_args()

    table = pd.read_csv(DATA / f"{args.dataset}.csv.gz")
    target = "target" if "target" in table else table.columns[-1]
    y_raw = table.pop(target)
    X = as_table(table)
    y, task = prepare_target(y_raw, len(X), "auto")
    schema = infer_schema(X)
    _, scorer = resolve_scorer(None, task)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    context = ModelContext(task=task, seed=0, n_samples=len(X), n_features=X.shape[1], n_classes=len(np.unique(y)))
    models = collect_models(get_plugin_manager())
    # cheap trials make the overhead's share largest: the worst case for isolation
    model = models["logistic_regression"]
    pipelines = [build_pipeline(model, dict(model.spec.default_params), context, schema) for _ in range(args.trials)]

    data = {"X": X, "y": y, "search_rows": np.arange(len(X)), "test_rows": None, "folds": folds, "scorer": scorer}
    # the same code the worker runs, called in this process, with one BLAS thread like the worker
    state = _worker._State()
    _worker._set_data(state, cloudpickle.dumps(data))
    runner = TrialProcess(data)
    t0 = time.perf_counter()
    runner.ensure_started()
    start_up = time.perf_counter() - t0
    # interleaved, trial by trial, so that noise from the shared machine hits both sides alike
    in_process = isolated = 0.0
    with threadpool_limits(limits=1):
        for pipeline in pipelines:
            t0 = time.perf_counter()
            for k in range(len(folds)):
                _worker._fit_fold(state, cloudpickle.dumps(pipeline), k)
            t1 = time.perf_counter()
            for k in range(len(folds)):
                runner.fit_fold(pipeline, k, timeout=600)
            t2 = time.perf_counter()
            in_process += t1 - t0
            isolated += t2 - t1
    runner.close()

    per_trial_in = in_process / args.trials
    per_trial_iso = isolated / args.trials
    overhead = per_trial_iso - per_trial_in
    trials_in_budget = BUDGET / per_trial_iso
    budget_share = (start_up + max(overhead, 0) * trials_in_budget) / BUDGET
    lines = [
        "# Isolation overhead",
        "",
        f"`python -m benchmarks.isolation_overhead --trials {args.trials} --dataset {args.dataset}`"
        f" ({len(X)} rows x {X.shape[1]} columns, logistic regression defaults, 5 folds per trial,"
        " one BLAS thread on both sides)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| in-process, per trial | {per_trial_in * 1000:.1f} ms |",
        f"| worker process, per trial | {per_trial_iso * 1000:.1f} ms |",
        f"| overhead per trial | {overhead * 1000:.1f} ms ({overhead / per_trial_in:.1%} of an in-process trial) |",
        f"| worker start-up (once per run) | {start_up:.2f} s |",
        f"| share of a {BUDGET:g} s budget (start-up + overhead x {trials_in_budget:.0f} trials) | {budget_share:.1%} |",
        "",
        "Target: under 5% of a 60 s budget in total.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "isolation_overhead.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
