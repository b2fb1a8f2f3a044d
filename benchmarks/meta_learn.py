"""Score candidate configurations of every built-in model on a corpus of datasets, offline: the
score matrix a portfolio of starting configurations is chosen from (``benchmarks.portfolio``).

    python -m benchmarks.meta_learn --corpus ../shared/meta [--out benchmarks/results/meta]
        [--max-rows 5000] [--candidates 16] [--slow-candidates 6] [--datasets a,b]

For each model family and task, the candidates are the family's default parameters and
``--candidates`` configurations drawn from its own search space (``--slow-candidates`` for the
families in ``SLOW``) with Optuna's seeded random sampler, on a reference context of the task:
the same configurations for every dataset of the task, written once to ``candidates.json``.

Each dataset is read, capped at ``--max-rows`` rows (a seeded, stratified sample), and split once
75/25 (seeded, stratified for classification). Each candidate is built as the engine builds a
trial (``search_space`` replayed with the dataset's context, the model's preprocessing pipeline
from the search rows' schema), fitted on the 75 %, and scored on the 25 % with the engine's
default metric of the task, in this process, one after another. ``scores.jsonl`` gets one line
per (dataset, model, candidate): the score (greater is better), fit seconds and predict seconds
per 1,000 rows, or the error. Lines already written are skipped, so an interrupted run continues.

``held_out`` tables (3 per task, a seeded draw) are never scored: they are kept aside to check
the work on data that no choice was made on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "meta"
#: Families whose fits cost the most: fewer candidates.
SLOW = {"keras_mlp", "catboost"}
#: Tables of the corpus kept aside per task (a seeded draw, ``held_out``), never scored or learned from.
HELD_OUT_PER_TASK = 3
HELD_OUT_SEED = 15
REFERENCE_ROWS = 2000
TEST_SIZE = 0.25
#: A candidate's fit is told this many seconds at most (iterative models stop early).
FIT_TIME_LIMIT = 20.0

logger = logging.getLogger("benchmarks.meta_learn")


def held_out(entries: list[dict]) -> set[str]:
    """The tables kept aside: ``HELD_OUT_PER_TASK`` per task, drawn with ``HELD_OUT_SEED``."""
    import random

    names: dict[str, list[str]] = {}
    for entry in entries:
        names.setdefault(entry["task"], []).append(entry["name"])
    rng = random.Random(HELD_OUT_SEED)
    # a small corpus (a test's) keeps most of its tables: at most a quarter is held out
    return {n for task in sorted(names)
            for n in rng.sample(sorted(names[task]), min(HELD_OUT_PER_TASK, len(names[task]) // 4))}


def reference_context(task: str, seed: int):
    from automl import ModelContext

    n_classes = {"binary": 2, "multiclass": 4, "regression": 0}[task]
    return ModelContext(task=task, seed=seed, n_samples=REFERENCE_ROWS, n_features=10, n_classes=n_classes, n_jobs=1)


def draw_candidates(models: dict, tasks: list[str], n_cheap: int, n_slow: int, seed: int) -> dict:
    """``{task: {model: [params, ...]}}``: the default first, then seeded random draws."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict = {}
    for task in tasks:
        context = reference_context(task, seed)
        for name, model in sorted(models.items()):
            if task not in model.spec.tasks:
                continue
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
            drawn = [dict(model.spec.default_params or {})]
            for _ in range(n_slow if name in SLOW else n_cheap):
                trial = study.ask()
                model.spec.search_space(trial, context)
                drawn.append(dict(trial.params))
                study.tell(trial, 0.0)
            out.setdefault(task, {})[name] = drawn
    return out


class Table:
    """One corpus dataset, capped and split once: what every candidate is fitted and scored on."""

    def __init__(self, entry: dict, corpus: Path, max_rows: int, seed: int, n_jobs: int):
        from automl._metrics import resolve_scorer
        from automl._spec import ModelContext
        from automl.data.plan import split_test
        from automl.data.schema import as_table, infer_schema, prepare_target
        from automl.data.validation import sample_rows

        frame = pd.read_csv(corpus / entry["file"])
        frame = frame[frame[entry["target"]].notna()].reset_index(drop=True)
        target = frame.pop(entry["target"])
        X = as_table(frame)
        y, task = prepare_target(target, len(X), entry["task"])
        if len(X) > max_rows:
            keep = np.sort(sample_rows(np.arange(len(X)), max_rows, y if task != "regression" else None, seed))
            X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        if task != "regression":  # a class with one row (often left by the cap) cannot be split
            values, counts = np.unique(y, return_counts=True)
            if (counts < 2).any():
                logger.warning("%s: classes %s have one row; those rows are dropped", entry["name"],
                               values[counts < 2].tolist())
                kept = ~np.isin(y, values[counts < 2])
                X, y = X[kept].reset_index(drop=True), y[kept]
        search, test = split_test(y, TEST_SIZE, task, seed)
        self.name, self.task = entry["name"], task
        self.X_train, self.y_train = X.iloc[search].reset_index(drop=True), y[search]
        self.X_test, self.y_test = X.iloc[test].reset_index(drop=True), y[test]
        self.schema = infer_schema(self.X_train)
        classes = np.unique(y) if task != "regression" else []
        self.context = ModelContext(task=task, seed=seed, n_samples=len(search), n_features=X.shape[1],
                                    n_classes=len(classes), n_jobs=n_jobs, time_limit=FIT_TIME_LIMIT)
        self.metric, self.scorer = resolve_scorer(None, task)

    def evaluate(self, model, params: dict) -> dict:
        """Fit the candidate on the training part and score it on the test part."""
        from automl.search.studies import build_pipeline, params_of

        pipeline = build_pipeline(model, params_of(model.spec, params, self.context), self.context, self.schema)
        started = time.perf_counter()
        pipeline.fit(self.X_train, self.y_train)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        score = float(self.scorer(pipeline, self.X_test, self.y_test))
        predict_seconds = time.perf_counter() - started
        return {"score": score, "fit_seconds": round(fit_seconds, 4),
                "predict_ms_per_1000": round(predict_seconds * 1000 * 1000 / len(self.X_test), 3)}


def read_scores(path: Path) -> list[dict]:
    """The records written so far; a last line cut short by a kill is left out (its candidate runs again)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            logger.warning("skipping a damaged line of %s: %.60s", path, line)
    return records


def _done(path: Path) -> set:
    return {(r["dataset"], r["model"], r["candidate"]) for r in read_scores(path)}


def _order(entries: list[dict], seed: int) -> list[dict]:
    """Tasks interleaved, in a seeded order: a partial run covers every task alike."""
    by_task: dict[str, list] = {}
    for entry in entries:
        by_task.setdefault(entry["task"], []).append(entry)
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.array(v, dtype=object))) for _, v in sorted(by_task.items())]
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a folder with suite.json and its tables")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder (default benchmarks/results/meta)")
    parser.add_argument("--max-rows", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=16, help="random draws per family besides its default")
    parser.add_argument("--slow-candidates", type=int, default=6, help=f"draws for {', '.join(sorted(SLOW))}")
    parser.add_argument("--datasets", default=None, help="comma-separated names (default: the corpus less the held-out tables)")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: every installed model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1, help="threads per fit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = _arguments(argv)
    from automl._plugins import collect_models, get_plugin_manager

    corpus = json.loads((args.corpus / "suite.json").read_text())
    aside = held_out(corpus)
    entries = [e for e in corpus if e["name"] not in aside]
    if args.datasets:
        wanted = set(args.datasets.split(","))
        entries = [e for e in entries if e["name"] in wanted]
    models = collect_models(get_plugin_manager())
    if args.models:
        unknown = set(args.models.split(",")) - set(models)
        if unknown:
            raise SystemExit(f"unknown or not installed model(s): {', '.join(sorted(unknown))}; known: {', '.join(models)}")
        models = {n: m for n, m in models.items() if n in args.models.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "held_out.json").write_text(json.dumps(sorted(aside), indent=1) + "\n")
    candidates_path, scores_path = args.out / "candidates.json", args.out / "scores.jsonl"
    # drawn once and kept: a model installed later gets its draws added (each model's own seeded
    # sampler, so they are the same as if drawn with the others)
    candidates = json.loads(candidates_path.read_text()) if candidates_path.exists() else {}
    tasks = sorted({e["task"] for e in corpus})
    missing = {n: m for n, m in models.items() if any(n not in candidates.get(t, {}) for t in tasks if t in m.spec.tasks)}
    if missing:
        for task, drawn in draw_candidates(missing, tasks, args.candidates, args.slow_candidates, args.seed).items():
            candidates.setdefault(task, {}).update(drawn)
        candidates_path.write_text(json.dumps(candidates, indent=1, sort_keys=True) + "\n")
    done = _done(scores_path)
    started = time.monotonic()
    if scores_path.exists() and not scores_path.read_bytes().endswith(b"\n") and scores_path.stat().st_size:
        with scores_path.open("a") as sink:  # a line cut short by a kill: the next record starts on its own line
            sink.write("\n")
    with scores_path.open("a") as sink:
        for k, entry in enumerate(_order(entries, args.seed), 1):
            todo = [(name, i, params) for name, drawn in sorted(candidates.get(entry["task"], {}).items())
                    if name in models for i, params in enumerate(drawn) if (entry["name"], name, i) not in done]
            if not todo:
                continue
            logger.info("[%d/%d] %s (%s): %d candidates, %.0f min so far", k, len(entries), entry["name"],
                        entry["task"], len(todo), (time.monotonic() - started) / 60)
            table = Table(entry, args.corpus, args.max_rows, args.seed, args.n_jobs)
            for name, i, params in todo:
                record = {"dataset": entry["name"], "task": table.task, "rows": len(table.X_train) + len(table.X_test),
                          "model": name, "candidate": i, "metric": table.metric}
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        record.update(table.evaluate(models[name], params), error=None)
                except Exception as error:  # noqa: BLE001 - a failed candidate is a result too
                    record.update(score=None, error=f"{type(error).__name__}: {error}",
                                  traceback=traceback.format_exc(limit=-3))
                sink.write(json.dumps(record) + "\n")
                sink.flush()
    logger.info("done in %.1f min: %s", (time.monotonic() - started) / 60, scores_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
