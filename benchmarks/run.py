"""automl against FLAML, AutoGluon and the AMLB baselines on the bundled suite: the fair harness.

    python -m benchmarks.run --budget 60 --frameworks automl,flaml,autogluon,rf,const [--datasets a,b]
    python -m benchmarks.run --budget 60 --frameworks automl --variant no-portfolio \\
        --automl-options '{"portfolio": false}'
    python -m benchmarks.run --scaling --budgets 30,60,300 --frameworks automl --datasets a,b,c,d

Fair means the same machine for every framework:

- every framework gets the whole machine, each the way it uses it best (``FRAMEWORK_SETTINGS``,
  stated in the summary's header): FLAML ``n_jobs=-1``, AutoGluon all CPUs, rf ``n_jobs=-1``,
  automl its defaults;
- each dataset runs with several seeds (``--seeds``, default 0,1,2): each seed is another
  seeded 75/25 split, and the seed of every framework that takes one;
- each framework on each (dataset, seed) runs in a process of its own
  (``python -m benchmarks._bench_one``, which splits, fits, predicts and scores; see there),
  killed after ``3 * budget + 60`` seconds (``--timeout``) and then recorded as a failure;
- runs follow one another, never two at once: cores busy are read from the machine's counters.

Each framework's records go to a file of its own, ``<out>/<framework>.jsonl`` (automl's variants
to ``automl@<variant>.jsonl``), one line per run as soon as it ends. Runs already recorded without
an error are skipped, so a suite can be run in parts and an interrupted run continues where it
stopped; the peers' records are reused when only automl changes (``--rerun`` runs them again).
The parent samples the resident memory of the run's whole process tree (``peak_rss_mb``).
The Markdown summary (``summary_<budget>s.md``, ``scaling.md``) is written from every record in
``--out`` (see _summary.py). A framework can have an interpreter of its own, e.g. AutoGluon,
which pins an older pandas (``benchmarks/install_autogluon.sh``):
``--python autogluon=VENV/bin/python`` or ``AUTOML_BENCH_PYTHON_AUTOGLUON=VENV/bin/python``.
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
import threading
import time
from pathlib import Path

from ._bench_one import BUDGET_FREE, DATA, FRAMEWORKS, load_suite
from ._records import RunFiles
from ._summary import scaling_markdown, suite_markdown

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "fair"
DEFAULT_FRAMEWORKS = "automl,flaml,rf,const"
PYTHON_ENV = "AUTOML_BENCH_PYTHON_"  # + the framework's name in capitals
STDERR_TAIL = 15
SHORT_METRICS = {"binary": "AUC", "multiclass": "logloss", "regression": "RMSE"}
RSS_SAMPLE_SECONDS = 0.25

#: How each framework is given the whole machine: its n_jobs and the environment it runs in.
#: FLAML's learners (LightGBM, XGBoost) start OpenMP threads whose default wait policy spins: on
#: 2 cores, with n_jobs=-1, FLAML then ran 3 to 8 trials instead of about 45 in a 5 s budget.
FRAMEWORK_SETTINGS = {
    "automl": ({}, "its defaults (one trial process at a time, its fits on every core)"),
    "flaml": ({"OMP_WAIT_POLICY": "PASSIVE"}, "n_jobs=-1, OMP_WAIT_POLICY=PASSIVE"),
    "autogluon": ({}, "num_cpus='auto' (every core)"),
    "rf": ({}, "n_jobs=-1"),
    "const": ({}, "–"),
}


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


class TreeMemory(threading.Thread):
    """Samples the summed resident memory of every process in one session: the run's whole tree."""

    def __init__(self, session: int):
        super().__init__(daemon=True)
        self.session, self.peak_bytes, self.stopped = session, 0, threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self.stopped.wait(RSS_SAMPLE_SECONDS):
            self.peak_bytes = max(self.peak_bytes, self._resident())

    def _resident(self) -> int:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[3]) == self.session:  # field 6: the session id
                    total += int(Path(entry.path, "statm").read_text().split()[1]) * self.page
            except (OSError, ValueError, IndexError):
                continue  # the process ended meanwhile
        return total

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return round(self.peak_bytes / 2**20, 1)


class Run:
    """One framework on one (dataset, budget, seed): the command, and its record once it ran."""

    def __init__(self, framework: str, entry: dict, budget: float, seed: int, variant: str | None = None):
        self.framework, self.entry, self.budget, self.seed, self.variant = framework, entry, budget, seed, variant

    @property
    def name(self) -> str:
        """The file its record goes to: the framework, or ``automl@variant``."""
        return f"{self.framework}@{self.variant}" if self.variant else self.framework

    @property
    def key(self) -> tuple:
        return self.entry["name"], None if self.framework in BUDGET_FREE else self.budget, self.seed

    def command(self, python: str, automl_options: str) -> list[str]:
        command = [python, "-m", "benchmarks._bench_one", "--framework", self.framework,
                   "--dataset", self.entry["name"], "--budget", f"{self.budget:g}", "--seed", str(self.seed),
                   "--n-jobs", "-1", "--launched", repr(time.time())]
        return command + (["--automl-options", automl_options] if self.framework == "automl" else [])

    def failure(self, error: str) -> dict:
        return {
            "dataset": self.entry["name"], "framework": self.framework, "task": self.entry["task"],
            "metric": self.entry["metric"], "score": None, "value": None, "fit_seconds": None,
            "predict_seconds": None, "budget": self.budget, "seed": self.seed, "n_jobs": -1, "error": error,
        }


def run_subprocess(run: Run, python: str, timeout: float, automl_options: str = "{}") -> dict:
    """Run ``benchmarks._bench_one`` and return its record, or a failure record (crash, timeout, no record)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(FRAMEWORK_SETTINGS[run.framework][0])
    started = time.perf_counter()
    # A scratch working directory for whatever a framework writes there; output to files, not pipes,
    # so that a grandchild holding them open cannot block us.
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, \
            open(Path(scratch) / "stdout", "w+") as out, open(Path(scratch) / "stderr", "w+") as err:
        process = subprocess.Popen(run.command(python, automl_options), cwd=scratch, env=env, stdout=out,
                                   stderr=err, start_new_session=True)
        memory = TreeMemory(process.pid)
        memory.start()
        try:
            returncode = process.wait(timeout=timeout)
            error = None
        except subprocess.TimeoutExpired:
            error = f"timeout: killed after {timeout:g} s"
        except BaseException:  # Ctrl-C: take the whole run down with us
            _kill_group(process)
            raise
        finally:
            peak_rss_mb = memory.stop()
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
        record = run.failure(f"{error}\n{tail}" if tail else error)
    record.update(wall_seconds=wall, timeout=timeout, peak_rss_mb=peak_rss_mb)
    if run.variant:
        record["variant"] = run.variant
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


def plan(suite: dict, datasets: list[str], frameworks: list[str], budgets: list[float], seeds: list[int],
         variant: str | None = None) -> list[Run]:
    """The runs in order: by dataset, seed, budget; budget-free frameworks once per (dataset, seed)."""
    runs = []
    for dataset in datasets:
        for seed in seeds:
            for budget in budgets:
                for framework in frameworks:
                    if framework in BUDGET_FREE and budget != budgets[0]:
                        continue
                    runs.append(Run(framework, suite[dataset], budget, seed, variant if framework == "automl" else None))
    return runs


def _progress(k: int, n: int, record: dict) -> str:
    head = f"[{k}/{n}] {record['dataset']} seed {record['seed']} {record['framework']} ({record['budget']:g} s budget):"
    if record.get("error"):
        return f"{head} FAILED after {record['wall_seconds']:.1f} s: {record['error'].splitlines()[0][:200]}"
    busy = record.get("cores_busy")
    return (f"{head} {SHORT_METRICS[record['task']]} {record['value']:.4g}, "
            f"fit {record['fit_seconds']:.1f} s" + (f" on {busy:.2f} cores" if busy is not None else "")
            + f", predict {record['predict_seconds']:.2f} s, peak {record['peak_rss_mb']:.0f} MB, "
            f"wall {record['wall_seconds']:.1f} s")


def environment(frameworks: list[str], seeds: list[int]) -> str:
    """The results header: the machine, the seeds, and each framework's cores and settings."""
    settings = "; ".join(f"{f}: {FRAMEWORK_SETTINGS[f][1]}" for f in frameworks if f in FRAMEWORK_SETTINGS)
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores (every framework on all of them, one run at a "
            f"time), {platform.machine()}, Python {platform.python_version()}, seeds "
            f"{','.join(map(str, seeds))}. Settings: {settings}.")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per fit (default 60)")
    parser.add_argument("--frameworks", default=DEFAULT_FRAMEWORKS,
                        help=f"comma-separated, of: {', '.join(FRAMEWORKS)} (default {DEFAULT_FRAMEWORKS})")
    parser.add_argument("--datasets", default=None, help="comma-separated names from data/suite.json (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the splits and the frameworks (default 0,1,2)")
    parser.add_argument("--variant", default=None, help="names automl's records (automl@VARIANT.jsonl)")
    parser.add_argument("--automl-options", default="{}", help="JSON object of fit_best keyword arguments")
    parser.add_argument("--python", action="append", default=[], metavar="FRAMEWORK=PATH",
                        help=f"interpreter for a framework (repeatable; or env {PYTHON_ENV}<NAME>)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed (default 3*budget+60)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory (default benchmarks/results/fair)")
    parser.add_argument("--rerun", action="store_true", help="run again what is already recorded for these runs")
    parser.add_argument("--scaling", action="store_true", help="run every budget of --budgets; write scaling.md")
    parser.add_argument("--budgets", default="30,60,300", help="with --scaling (default 30,60,300)")
    parser.add_argument("--summary-only", action="store_true", help="run nothing; write the summary again")
    args = parser.parse_args(argv)
    args.suite = load_suite(DATA)
    args.datasets = args.datasets.split(",") if args.datasets else list(args.suite)
    args.frameworks = args.frameworks.split(",")
    for names, known, kind in ((args.datasets, args.suite, "dataset"), (args.frameworks, FRAMEWORKS, "framework")):
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        options = json.loads(args.automl_options)
    except ValueError as error:
        parser.error(f"--automl-options is not JSON: {error}")
    if not isinstance(options, dict):
        parser.error("--automl-options takes a JSON object, e.g. '{\"portfolio\": false}'")
    if options and not args.variant:
        parser.error("--automl-options changes automl: name the variant with --variant")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [float(b) for b in args.budgets.split(",")] if args.scaling else [args.budget]
    return args


def execute(args: argparse.Namespace, files: RunFiles) -> bool:
    """Run what is not recorded yet (everything with --rerun); False when interrupted."""
    pythons = interpreters(args.frameworks, args.python)
    runs = plan(args.suite, args.datasets, args.frameworks, args.budgets, args.seeds, args.variant)
    done = set() if args.rerun else files.done()
    todo = [r for r in runs if (r.name, r.key) not in done]
    if len(todo) < len(runs):
        print(f"resuming: {len(runs) - len(todo)} of {len(runs)} runs already in {args.out}", file=sys.stderr, flush=True)
    try:
        for k, run in enumerate(todo, 1):
            print(f"[{k}/{len(todo)}] {run.entry['name']} seed {run.seed} {run.framework} ({run.budget:g} s budget) ...",
                  file=sys.stderr, flush=True)
            timeout = args.timeout if args.timeout is not None else timeout_for(run.budget)
            record = run_subprocess(run, pythons[run.framework], timeout, args.automl_options)
            files.append(record)
            print(_progress(k, len(todo), record), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted: the runs finished so far are kept; run the same command to continue",
              file=sys.stderr, flush=True)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = RunFiles(args.out)
    finished = True if args.summary_only else execute(args, files)

    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    header = environment(files.frameworks(), sorted({r["seed"] for r in files.records()}))
    if args.scaling:
        text, markdown = scaling_markdown(files, args.budgets, command, header), args.out / "scaling.md"
    else:
        name = f"summary_{args.budget:g}s" + (f"_{args.variant}" if args.variant else "") + ".md"
        text, markdown = suite_markdown(files, args.budget, args.variant, command, header), args.out / name
    markdown.write_text(text + "\n")
    print(f"wrote {markdown}", file=sys.stderr, flush=True)
    print(text)
    return 0 if finished else 130


if __name__ == "__main__":
    sys.exit(main())
