"""Peak memory of `automl predict` (streamed in chunks) against reading the whole file first.

    python -m benchmarks.batch_predict_memory [--rows 50000,200000,1000000] [--chunk-rows 50000]

A logistic regression is fitted on the bundled adult table (mixed types, missing values);
files of growing size are made by resampling its rows. Each file is scored twice, each time in
a fresh process that reports its peak resident memory (VmHWM) as it exits:
- `streamed`: what the `automl predict` command runs, which reads and scores a chunk at a time;
- `whole`: the baseline a user would write: `pd.read_csv` of the whole file, `predict`, `to_csv`.
Results go to benchmarks/results/batch_predict_memory.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import automl

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"

# ru_maxrss of a child counts its parent's size at fork (Linux keeps the high-water mark across
# exec), so each side reports its own VmHWM, the peak of its own address space, as it exits.
REPORT_PEAK = """
import atexit, os, re, sys
def _report_peak():
    status = open("/proc/self/status").read()
    with open(os.environ["PEAK_FILE"], "w") as f:
        f.write(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
atexit.register(_report_peak)
"""
STREAMED = REPORT_PEAK + """
from automl._cli import main
sys.exit(main(sys.argv[1:]))
"""
WHOLE_FILE_BASELINE = REPORT_PEAK + """
import pandas as pd, automl
result = automl.load(sys.argv[1])
table = pd.read_csv(sys.argv[2])
pd.DataFrame({"prediction": result.predict(table.drop(columns=[result.manifest["target"]], errors="ignore"))}).to_csv(sys.argv[3], index=False)
"""


def _measure(code: str, args: list[str], work: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``python -c code args`` in its own process."""
    peak_file = work / "peak"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PEAK_FILE": str(peak_file)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return int(peak_file.read_text()) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="50000,200000,1000000")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",")]

    adult = pd.read_csv(DATA / "adult.csv.gz")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = work / "run"
        automl.fit_best(
            adult.drop(columns=["income"]), adult["income"], models=["logistic_regression"], n_trials=1, cv=3,
            time_budget=None, path=run,
        )
        rows = []
        for size in sizes:
            data = work / f"adult-{size}.csv"
            adult.sample(n=size, replace=True, random_state=size).drop(columns=["income"]).to_csv(data, index=False)
            megabytes = data.stat().st_size / 2**20
            streamed = _measure(STREAMED, ["-q", "predict", str(run), str(data), "-o", str(work / "s.csv"),
                                           "--chunk-rows", str(args.chunk_rows)], work)
            whole = _measure(WHOLE_FILE_BASELINE, [str(run), str(data), str(work / "w.csv")], work)
            if not pd.read_csv(work / "s.csv").equals(pd.read_csv(work / "w.csv")):
                raise RuntimeError(f"streamed and whole-file predictions differ at {size} rows")
            rows.append((size, megabytes, *streamed, *whole))
            print(f"{size:>9} rows ({megabytes:6.1f} MB): streamed {streamed[0]:7.1f} MB {streamed[1]:6.1f} s | "
                  f"whole {whole[0]:7.1f} MB {whole[1]:6.1f} s", flush=True)
            data.unlink()

    lines = [
        "# Batch scoring: peak memory, streamed vs. whole file",
        "",
        f"`python -m benchmarks.batch_predict_memory --rows {args.rows} --chunk-rows {args.chunk_rows}`, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "A logistic regression fitted on adult (14 mixed-type columns with missing values) scores files made by "
        "resampling adult's rows. Each side runs in a fresh process; peak RSS is the process's own VmHWM "
        "(Python, pandas and scikit-learn included). Both sides wrote identical predictions.",
        "",
        "| rows | file MB | streamed peak MB | streamed s | whole-file peak MB | whole-file s | memory ratio whole/streamed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, megabytes, s_mem, s_sec, w_mem, w_sec in rows:
        lines.append(f"| {size:,} | {megabytes:.1f} | {s_mem:.0f} | {s_sec:.1f} | {w_mem:.0f} | {w_sec:.1f} | {w_mem / s_mem:.2f} |")
    first, last = rows[0], rows[-1]
    lines += [
        "",
        f"From {first[0]:,} to {last[0]:,} rows ({last[0] / first[0]:.0f}x), the streamed peak grew "
        f"{last[2] / first[2]:.2f}x and the whole-file peak {last[4] / first[4]:.2f}x.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch_predict_memory.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
