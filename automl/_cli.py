"""The ``automl`` command: fit, predict, evaluate, serve, report, models."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]

logger = logging.getLogger("automl.cli")


def _read_table(path: str):
    from .data.tables import read_table

    return read_table(path)


def _read_labelled_table(path: str, target: str):
    """The features and the target column of a table file."""
    from ._exceptions import InputError

    table = _read_table(path)
    if target not in table.columns:
        raise InputError(f"target column {target!r} is not in {path}; columns: {list(table.columns)}")
    return table, table.pop(target)


def _mlflow_plugins(tracking_uri: str | None) -> list:
    """``--mlflow URI``: an MLflowTracker, or a one-line error when mlflow is missing."""
    if tracking_uri is None:
        return []
    from ._exceptions import InputError
    from .plugins.mlflow_tracking import MLflowTracker

    try:
        return [MLflowTracker(tracking_uri)]
    except ImportError as exc:
        raise InputError(f"--mlflow: {exc}") from None


def _cmd_fit(args) -> int:
    import pandas as pd

    from .fit.api import fit_best

    table, y = _read_labelled_table(args.data, args.target)
    result = fit_best(
        table, y, task=args.task, metric=args.metric, time_budget=args.time_budget,
        plugins=_mlflow_plugins(args.mlflow),
        n_trials=args.n_trials, cv=args.cv, models=args.models.split(",") if args.models else None,
        seed=args.seed, n_jobs=args.n_jobs, storage=args.storage, path=args.path,
        test_size=args.test_size, memory_limit=args.memory_limit, resume=args.resume,
        warm_start=args.warm_start, verbose=0 if args.quiet else 1, ensemble=not args.no_ensemble,
        max_predict_ms=args.max_predict_ms, portfolio=False if args.no_portfolio else args.portfolio or True,
        study_name=args.study, data_location=str(Path(args.data).resolve()) if args.study else None,
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(result.leaderboard.drop(columns=["test_score"] if result.test_score is None else []).to_string(index=False))
    print()
    summary = f"best: {result.model_name}  {result.metric} = {result.score:.4f} (CV)"
    if result.test_score is not None:
        summary += f", {result.test_score:.4f} (test)"
    print(summary)
    print(f"saved to: {result.path}")
    return 0


def _cmd_predict(args) -> int:
    from .deploy.batch import predict_file
    from .store.persist import load

    result = load(args.run_dir)

    def progress(rows: int) -> None:
        logger.info("scored %d rows", rows)

    rows = predict_file(result, args.data, args.output, proba=args.proba, chunk_rows=args.chunk_rows, on_chunk=progress)
    if args.output:
        print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    """Exit 0 when the verdict is ok, 1 on drift or degradation (2, from main, for bad input)."""
    import json

    from .review.evaluate import evaluate
    from ._exceptions import InputError
    from .store.persist import atomic_write, load

    output = Path(args.output) if args.output else None
    if output is not None and not output.parent.is_dir():
        raise InputError(f"cannot write {output}: the folder {output.parent} does not exist")
    result = load(args.run_dir)
    table, y = _read_labelled_table(args.data, args.target)
    evaluation = evaluate(
        result, table, y, psi_threshold=args.psi_threshold, unseen_threshold=args.unseen_threshold,
        max_score_drop=args.max_score_drop,
    )
    print(evaluation.report())
    if output is not None:
        if output.suffix.lower() == ".json":
            data = json.dumps(evaluation.to_dict(), indent=2).encode()
        else:
            data = evaluation.table().to_csv(index=False).encode()  # the columns not checked too, with why
        atomic_write(output, data)
        logger.info("wrote the drift table to %s", output)
    return 0 if evaluation.verdict == "ok" else 1


def _cmd_worker(args) -> int:
    from .fit.peer import run_worker

    ran = run_worker(args.storage, args.study, n_jobs=args.n_jobs, memory_limit=args.memory_limit)
    print(f"ran {ran} trial(s) of run {args.study}", file=sys.stderr)
    return 0


def _cmd_models(args) -> int:
    from ._plugins import collect_models, get_plugin_manager

    models = collect_models(get_plugin_manager(), include_missing=True)
    if not models:
        print("no models registered")
        return 0
    width = max(len(n) for n in models)
    for name, m in sorted(models.items()):
        tasks = ",".join(sorted(m.spec.tasks))
        # a model whose library is missing is listed, with how to get it; fit_best leaves it out
        note = f"  [not installed: {m.install_hint}]" if m.missing else ""
        print(f"{name:<{width}}  {tasks:<29}  {m.distribution:<16}  {m.spec.description}{note}")
    return 0


def _cmd_serve(args) -> int:
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"automl serve needs: pip install 'automl-select[serve]' ({', '.join(missing)} not installed)", file=sys.stderr)
        return 2
    from .deploy.serve import serve

    # uvicorn's own loggers (requests, start-up) follow -q / -v like ours
    log_level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    serve(args.run_dir, host=args.host, port=args.port, max_rows=args.max_rows, log_level=log_level)
    return 0


def _cmd_report(args) -> int:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print("automl report needs: pip install 'automl-select[report]'", file=sys.stderr)
        return 2
    from .store.persist import load
    from .review.report import report

    result = load(args.run_dir)  # a damaged run fails before the data is read
    X = y = None
    if args.data:
        X, y = _read_labelled_table(args.data, args.target) if args.target else (_read_table(args.data), None)
    print(report(result, X, y, output=args.output))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl", description="Find, tune and save the best model for a table.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help="only warnings and errors")
    # the same options after the subcommand; SUPPRESS keeps them from resetting what came before
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    logging_options.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    _add_fit(sub, logging_options)

    predict = sub.add_parser("predict", help="predict with a saved run", parents=[logging_options])
    predict.add_argument("run_dir")
    predict.add_argument("data", help="a CSV (optionally .gz) or Parquet file with the training columns")
    predict.add_argument("--output", "-o", default=None, help="CSV or Parquet file to write (default: CSV on standard output)")
    predict.add_argument("--proba", action="store_true", help="add class probabilities")
    predict.add_argument("--chunk-rows", type=int, default=50_000,
                         help="rows read and scored at a time (default 50000); memory stays flat whatever the file size")
    predict.set_defaults(func=_cmd_predict)

    evaluate = sub.add_parser(
        "evaluate", help="score a saved run on new labelled data and check it for drift", parents=[logging_options],
        description="Score a saved run on new labelled data next to its CV estimate, and compare every column "
        "with the training data (population stability index, missing values, unseen categories).",
        epilog="exit status: 0 ok, 1 drift or degraded score, 2 unusable input",
    )
    evaluate.add_argument("run_dir")
    evaluate.add_argument("data", help="a CSV (optionally .gz) or Parquet file with the training columns and the target")
    evaluate.add_argument("--target", required=True, help="the column with the true values")
    evaluate.add_argument("--psi-threshold", type=float, default=0.25,
                          help="a column drifts above this population stability index (default 0.25)")
    evaluate.add_argument("--unseen-threshold", type=float, default=0.05,
                          help="...or with more than this share of unseen category levels (default 0.05)")
    evaluate.add_argument("--max-score-drop", type=float, default=None,
                          help="score drop below the CV estimate that counts as degraded, in the metric's units "
                          "(default: max(2 x CV std, 5%% of |CV score|))")
    evaluate.add_argument("--output", "-o", default=None, help="write the drift table: .json (with the scores) or CSV")
    evaluate.set_defaults(func=_cmd_evaluate)

    worker = sub.add_parser(
        "worker", help="join a run in a shared database and run its trials", parents=[logging_options],
        description="Join the run NAME that `automl fit ... --storage URL --study NAME` started, and run its "
        "trials until its search ends. The data is read from where the run recorded it.",
    )
    worker.add_argument("--storage", required=True, help="the run's database URL")
    worker.add_argument("--study", required=True, metavar="NAME", help="the run's name")
    worker.add_argument("--n-jobs", type=int, default=1, help="trials run in parallel here (-1: one per core)")
    worker.add_argument("--memory-limit", type=float, default=None, help="megabytes a trial may use")
    worker.set_defaults(func=_cmd_worker)

    models = sub.add_parser("models", help="list the registered models", parents=[logging_options])
    models.set_defaults(func=_cmd_models)

    serve = sub.add_parser(
        "serve", help="answer predictions over HTTP with a saved run", parents=[logging_options],
        description="Serve a saved run over HTTP: POST /predict, GET /health, GET /model, API description at /docs.",
    )
    serve.add_argument("run_dir")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--max-rows", type=int, default=10_000, help="most rows one request may hold (default 10000)")
    serve.set_defaults(func=_cmd_serve)

    report = sub.add_parser(
        "report", help="write an HTML report of a saved run, with its figures as PNG files", parents=[logging_options],
        description="Write RUN_DIR/report/report.html (self-contained) and the figures as PNG files: leaderboard, "
        "optimization history, hyperparameter importances, run metadata; with --data also the winner's out-of-fold "
        "score check, confusion matrix and ROC/PR curves or predicted-vs-actual and residuals, and permutation "
        "feature importance.",
    )
    report.add_argument("run_dir")
    report.add_argument("--data", default=None,
                        help="the CSV or Parquet file the run was fitted on, for the out-of-fold sections")
    report.add_argument("--target", default=None, help="the target column in --data (default: the run's)")
    report.add_argument("--output", "-o", default=None, help="folder to write to (default RUN_DIR/report)")
    report.set_defaults(func=_cmd_report)
    return parser


def _add_fit(sub, *parents: argparse.ArgumentParser) -> None:
    """``automl fit``: its options are fit_best's arguments."""
    fit = sub.add_parser("fit", help="search for the best model and save the run", parents=list(parents))
    fit.add_argument("data", help="a CSV (optionally .gz) or Parquet file")
    fit.add_argument("--target", required=True, help="the column to predict")
    fit.add_argument("--task", default="auto", choices=["auto", "binary", "multiclass", "regression", "classification"])
    fit.add_argument("--time-budget", type=float, default=60.0, help="seconds for the whole run (default 60)")
    fit.add_argument("--n-trials", type=int, default=None, help="at most this many trials per model")
    fit.add_argument("--metric", default=None, help="a scikit-learn scorer name (default by task)")
    fit.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    fit.add_argument(
        "--cv", type=_folds, default="auto",
        help="number of CV folds, or 'auto' (default: 5 folds; fewer, or a holdout with sampled trials, on tables large for the budget)",
    )
    fit.add_argument("--test-size", type=float, default=None, help="fraction held out for a test score")
    fit.add_argument("--path", default=None, help="run directory to create (default automl-runs/<time>-<id>)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--n-jobs", type=int, default=1,
                     help="trials run in parallel, each in its own worker process (-1: one per core; default 1)")
    fit.add_argument("--storage", default=None, help="Optuna storage URL for the studies (e.g. postgresql://...)")
    fit.add_argument("--study", default=None, metavar="NAME",
                     help="with a database --storage: record the run under NAME so that `automl worker` processes join it")
    fit.add_argument("--memory-limit", type=float, default=None, help="megabytes a trial may use")
    fit.add_argument("--resume", action="store_true", help="continue the run in --path (same data and settings)")
    fit.add_argument("--warm-start", default=None, metavar="RUN_DIR",
                     help="start from the best configurations of a saved run (e.g. the last training)")
    fit.add_argument("--no-ensemble", action="store_true",
                     help="save the best single model, never a weighted average of the best trials")
    fit.add_argument("--max-predict-ms", type=float, default=None, metavar="MS",
                     help="drop every model (or ensemble) that takes longer than MS milliseconds to predict 1,000 rows")
    start = fit.add_mutually_exclusive_group()
    start.add_argument("--no-portfolio", action="store_true",
                       help="start every model from its defaults, not from the built-in portfolio of configurations")
    start.add_argument("--portfolio", default=None, metavar="FILE", help="start from this portfolio JSON file instead")
    fit.add_argument("--mlflow", default=None, metavar="URI",
                     help="log the search to MLflow at this tracking URI, e.g. sqlite:///mlflow.db (needs the mlflow extra)")
    fit.set_defaults(func=_cmd_fit)


def _folds(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of folds, got {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(message)s" if level > logging.DEBUG else "%(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:
        # third-party chatter (TensorFlow, absl) stays at warnings unless -vv
        for name in ("tensorflow", "absl", "keras", "optuna"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    from ._exceptions import AutoMLError, Interrupted

    try:
        return args.func(args)
    except AutoMLError as exc:
        print(f"automl: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"automl: {exc}", file=sys.stderr)
        return 143 if exc.signal_name == "SIGTERM" else 130
    except KeyboardInterrupt:
        print("automl: interrupted", file=sys.stderr)
        return 130
