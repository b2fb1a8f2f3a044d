import gzip
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

import automl

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and child processes
# inherit that: the Ctrl-C tests would then send a signal `automl fit` rightly leaves ignored.
# Give this process (and so the processes the tests start) Python's usual Ctrl-C handling.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data"


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Runs write automl-runs/ under the working directory: keep each test's apart."""
    monkeypatch.chdir(tmp_path)


def read_bundled(name: str) -> pd.DataFrame:
    with gzip.open(DATA / f"{name}.csv.gz", "rt") as f:
        return pd.read_csv(f)


@pytest.fixture
def bundled():
    """Reads a table from benchmarks/data (copied from the shared benchmark suite, see SOURCES.md)."""
    return read_bundled


class TrialOrder:
    """An observer plugin that keeps every trial record, in the order the trials ended."""

    def __init__(self):
        self.records = []

    @automl.hookimpl
    def automl_trial_completed(self, record):
        self.records.append(record)
