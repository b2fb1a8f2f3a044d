"""automl against FLAML, AutoGluon and the AMLB baselines on the bundled suite, one protocol for all.

    python -m benchmarks.run --budget 60 --frameworks automl,flaml,rf,const [--datasets a,b] [--resume]
    python -m benchmarks.run --scaling --budgets 15,30,60,120 --datasets a,b,c

Each framework on each dataset runs in a process of its own (``python -m benchmarks._bench_one``,
which splits, fits, predicts and scores; see there for the protocol), killed after
``3 * budget + 60`` seconds (``--timeout``) and then recorded as a failure. A framework can have
an interpreter of its own, e.g. AutoGluon, which pins pandas < 2.4:
``--python autogluon=/opt/ag/bin/python`` or ``AUTOML_BENCH_PYTHON_AUTOGLUON=/opt/ag/bin/python``.

Each record is appended to ``<out>/suite_<budget>s.jsonl`` (``scaling.jsonl`` with
``--scaling``) as soon as its run ends; ``--resume`` skips the framework x dataset (x budget)
runs already recorded without an error, so an interrupted run continues where it stopped (and
with nothing left to run, only rewrites the summary). The Markdown summary
(``suite_<budget>s.md`` / ``scaling.md``) is written at the end from the whole JSONL file:
scores, normalized scores, automl's wins/ties/losses, time against the budget (see _summary.py).
Progress goes to standard error, one line per run.

Every framework gets ``--n-jobs`` cores, 1 by default: on the shared 2-core machines, FLAML with
``n_jobs=-1`` often ran 3 to 8 trials instead of about 45 in a 5 s budget and took up to 9.6 s
(the OpenMP threads of its learners spin against each other; ``OMP_WAIT_POLICY=PASSIVE``
helps), and 1 is automl's own default. The random forest baseline's trees do not depend on
its thread count (seeded), only its time does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._bench_one import BUDGET_FREE, DATA, FRAMEWORKS, load_suite
from ._summary import scaling_markdown, suite_markdown

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_FRAMEWORKS = "automl,flaml,rf,const"
PYTHON_ENV = "AUTOML_BENCH_PYTHON_"  # + the framework's name in capitals
STDERR_TAIL = 15
SHORT_METRICS = {"binary": "AUC", "multiclass": "logloss", "regression": "RMSE"}


def timeout_for(budget: float) -> float:
    return 3 * budget + 60


def interpreters(frameworks: list[str], options: list[str]) -> dict[str, str]:
    """The Python that runs each framework: ``--python NAME=PATH``, else the environment variable, else ours."""
    given = {}
    for option in options:
        name, sep, path = option.partition("=")
        if not sep or name not in FRAMEWORKS:
            raise SystemExit(f"--python takes FRAMEWORK=PATH with FRAMEWORK one of {', '.join(FRAMEWORKS)}, got {option!r}")
        given[name] = path
    chosen = {}
    for framework in frameworks:
        path = given.get(framework) or os.environ.get(PYTHON_ENV + framework.upper()) or sys.executable
        found = shutil.which(path)
        if found is None:
            raise SystemExit(f"the Python for {framework} is not an executable file: {path}")
        chosen[framework] = found if found != shutil.which(sys.executable) else sys.executable
    return chosen


def run_subprocess(python: str, framework: str, entry: dict, budget: float, seed: int, n_jobs: int,
                   timeout: float) -> dict:
    """Run ``benchmarks._bench_one`` and return its record, or a failure record (crash, timeout, no record)."""
    command = [python, "-m", "benchmarks._bench_one", "--framework", framework, "--dataset", entry["name"],
               "--budget", f"{budget:g}", "--seed", str(seed), "--n-jobs", str(n_jobs)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    # A scratch working directory for whatever a framework writes there; output to files, not pipes,
    # so that a grandchild holding them open cannot block us.
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, \
            open(Path(scratch) / "stdout", "w+") as out, open(Path(scratch) / "stderr", "w+") as err:
        process = subprocess.Popen(command, cwd=scratch, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout)
            error = None
        except subprocess.TimeoutExpired:
            error = f"timeout: killed after {timeout:g} s"
        except BaseException:  # Ctrl-C: take the whole run down with us
            _kill_group(process)
            raise
        _kill_group(process)  # the framework's own workers, if any are left
        wall = round(time.perf_counter() - started, 3)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    record = _last_json_line(stdout)
    if error is None and record is None:
        error = f"no record: the process exited with code {returncode}"
    if error is not None:
        tail = "\n".join(stderr.rstrip().splitlines()[-STDERR_TAIL:])
        record = {
            "dataset": entry["name"], "framework": framework, "task": entry["task"], "metric": entry["metric"],
            "score": None, "value": None, "fit_seconds": None, "predict_seconds": None, "budget": budget,
            "seed": seed, "n_jobs": n_jobs, "error": f"{error}\n{tail}" if tail else error,
        }
    record["wall_seconds"] = wall
    record["timeout"] = timeout
    if python != sys.executable:
        record["interpreter"] = python
    return record


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group we started for this run (the child and anything it started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _last_json_line(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def plan(datasets: list[str], frameworks: list[str], budgets: list[float]) -> list[tuple[str, str, float]]:
    """(dataset, framework, budget) in run order; budget-free frameworks once per dataset."""
    runs = []
    for dataset in datasets:
        for budget in budgets:
            for framework in frameworks:
                if framework in BUDGET_FREE and budget != budgets[0]:
                    continue
                runs.append((dataset, framework, budget))
    return runs


def _done(jsonl: Path) -> tuple[list[dict], set]:
    """The records already in the file and the keys of the successful ones."""
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()] if jsonl.exists() else []
    done = set()
    for r in records:
        if r.get("error") is None:
            done.add((r["dataset"], r["framework"], None if r["framework"] in BUDGET_FREE else r["budget"]))
    return records, done


def _progress(k: int, n: int, record: dict) -> str:
    head = f"[{k}/{n}] {record['dataset']} {record['framework']} ({record['budget']:g} s budget):"
    if record.get("error"):
        return f"{head} FAILED after {record['wall_seconds']:.1f} s: {record['error'].splitlines()[0][:200]}"
    return (f"{head} {SHORT_METRICS[record['task']]} {record['value']:.4g}, "
            f"fit {record['fit_seconds']:.1f} s, predict {record['predict_seconds']:.2f} s, "
            f"wall {record['wall_seconds']:.1f} s")


def _environment(seed: int, n_jobs: int) -> str:
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}, seed {seed}, n_jobs {n_jobs} for every framework.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per fit (default 60)")
    parser.add_argument("--frameworks", default=DEFAULT_FRAMEWORKS,
                        help=f"comma-separated, of: {', '.join(FRAMEWORKS)} (default {DEFAULT_FRAMEWORKS})")
    parser.add_argument("--datasets", default=None, help="comma-separated names from data/suite.json (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every framework")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="cores for every framework (default 1; -1: all, see the module's docstring)")
    parser.add_argument("--python", action="append", default=[], metavar="FRAMEWORK=PATH",
                        help=f"interpreter for a framework (repeatable; or env {PYTHON_ENV}<NAME>)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed (default 3*budget+60)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory (default benchmarks/results)")
    parser.add_argument("--resume", action="store_true", help="skip the runs already recorded without an error")
    parser.add_argument("--overwrite", action="store_true", help="start the JSONL file afresh")
    parser.add_argument("--scaling", action="store_true", help="run every budget of --budgets; write scaling.*")
    parser.add_argument("--budgets", default="15,30,60,120", help="with --scaling (default 15,30,60,120)")
    args = parser.parse_args(argv)

    suite = load_suite(DATA)
    datasets = args.datasets.split(",") if args.datasets else list(suite)
    frameworks = args.frameworks.split(",")
    for name, known, kind in ((datasets, suite, "dataset"), (frameworks, FRAMEWORKS, "framework")):
        unknown = [n for n in name if n not in known]
        if unknown:
            parser.error(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}")
    budgets = [float(b) for b in args.budgets.split(",")] if args.scaling else [args.budget]
    pythons = interpreters(frameworks, args.python)

    stem = "scaling" if args.scaling else f"suite_{args.budget:g}s"
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl, markdown = args.out / f"{stem}.jsonl", args.out / f"{stem}.md"
    if jsonl.exists() and jsonl.stat().st_size and not (args.resume or args.overwrite):
        parser.error(f"{jsonl} exists: pass --resume to continue it or --overwrite to start afresh")
    if args.overwrite:
        jsonl.unlink(missing_ok=True)
    _, done = _done(jsonl)

    runs = plan(datasets, frameworks, budgets)
    todo = [r for r in runs if (r[0], r[1], None if r[1] in BUDGET_FREE else r[2]) not in done]
    if len(todo) < len(runs):
        print(f"resuming: {len(runs) - len(todo)} of {len(runs)} runs already in {jsonl}", file=sys.stderr, flush=True)
    interrupted = False
    try:
        with jsonl.open("a") as sink:
            for k, (dataset, framework, budget) in enumerate(todo, 1):
                print(f"[{k}/{len(todo)}] {dataset} {framework} ({budget:g} s budget) ...", file=sys.stderr, flush=True)
                timeout = args.timeout if args.timeout is not None else timeout_for(budget)
                record = run_subprocess(
                    pythons[framework], framework, suite[dataset], budget, args.seed, args.n_jobs, timeout
                )
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
                print(_progress(k, len(todo), record), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: the runs finished so far are kept; continue with --resume", file=sys.stderr, flush=True)

    records, _ = _done(jsonl)
    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    environment = _environment(args.seed, args.n_jobs)
    text = (scaling_markdown if args.scaling else suite_markdown)(records, command, environment) if records else ""
    markdown.write_text(text + "\n")
    print(f"wrote {jsonl} and {markdown}", file=sys.stderr, flush=True)
    print(text)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
