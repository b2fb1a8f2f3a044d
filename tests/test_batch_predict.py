"""Batch scoring streams a file in chunks: same answers as scoring it whole, nothing partial on failure."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl.data.tables import iter_table_chunks
from automl.deploy.batch import predict_file

from conftest import read_bundled

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory):
    """A classifier on a mixed-type table with missing values (strings, floats, blanks)."""
    table = read_bundled("penguins")
    path = tmp_path_factory.mktemp("batch") / "run"
    automl.fit_best(
        table.drop(columns=["species"]), table["species"], models=["logistic_regression"], n_trials=2, cv=3,
        time_budget=None, path=path,
    )
    return automl.load(path), table


def _cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([AUTOML, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_chunked_scoring_equals_scoring_the_whole_table(penguins_run, tmp_path, suffix):
    result, table = penguins_run
    data = tmp_path / f"penguins{suffix}"
    table.to_parquet(data) if suffix == ".parquet" else table.to_csv(data, index=False)
    whole = result.predict_proba(table.drop(columns=["species"]))
    out = tmp_path / "out.csv"
    # 7 rows a chunk: most chunks lack some level, and some have a column with only blanks
    rows = predict_file(result, data, out, proba=True, chunk_rows=7)
    assert rows == len(table)
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["prediction", *[f"proba_{c}" for c in result.classes_]]
    np.testing.assert_allclose(scored.iloc[:, 1:].to_numpy(), whole, rtol=1e-9, atol=1e-12)
    assert (scored["prediction"] == result.classes_[whole.argmax(axis=1)]).all()


def test_parquet_output_and_stream_output(penguins_run, tmp_path):
    result, table = penguins_run
    data = tmp_path / "penguins.csv"
    table.to_csv(data, index=False)
    expected = result.predict(table.drop(columns=["species"]))
    predict_file(result, data, tmp_path / "out.parquet", chunk_rows=50)
    assert (pd.read_parquet(tmp_path / "out.parquet")["prediction"].to_numpy() == expected).all()
    stream = io.StringIO()
    assert predict_file(result, data, stream, chunk_rows=100) == len(table)
    assert (pd.read_csv(io.StringIO(stream.getvalue()))["prediction"].to_numpy() == expected).all()


def test_chunks_are_bounded_and_in_file_order(tmp_path):
    frame = pd.DataFrame({"a": np.arange(1003), "b": ["x", "y", None] * 334 + ["x"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        chunks = list(iter_table_chunks(tmp_path / name, 100))
        assert max(len(c) for c in chunks) <= 100
        assert pd.concat(chunks)["a"].tolist() == list(range(1003))


def test_a_bad_row_late_in_the_file_names_its_chunk_and_leaves_the_old_output(penguins_run, tmp_path):
    result, table = penguins_run
    broken = table.astype({"bill_length_mm": object})
    broken.loc[300, "bill_length_mm"] = "forty"
    data = tmp_path / "broken.csv"
    broken.to_csv(data, index=False)
    out = tmp_path / "predictions.csv"
    out.write_text("earlier predictions\n")
    done = _cli("predict", str(result.path), str(data), "--output", str(out), "--chunk-rows", "100")
    assert done.returncode == 2
    assert "rows 301-344" in done.stderr and "bill_length_mm" in done.stderr and "should be numeric" in done.stderr
    assert out.read_text() == "earlier predictions\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_cli_streams_with_progress_and_rejects_bad_requests(penguins_run, tmp_path):
    result, table = penguins_run
    data = tmp_path / "penguins.csv.gz"
    table.to_csv(data, index=False)
    out = tmp_path / "p.parquet"
    done = _cli("-v", "predict", str(result.path), str(data), "-o", str(out), "--chunk-rows", "100", "--proba")
    assert done.returncode == 0, done.stderr
    assert "scored 100 rows" in done.stderr and f"scored {len(table)} rows" in done.stderr
    assert len(pd.read_parquet(out)) == len(table)
    bad_suffix = _cli("predict", str(result.path), str(data), "-o", str(tmp_path / "p.xlsx"))
    assert bad_suffix.returncode == 2 and "unsupported file type '.xlsx'" in bad_suffix.stderr
    empty = tmp_path / "empty.csv"
    table.iloc[:0].to_csv(empty, index=False)
    no_rows = _cli("predict", str(result.path), str(empty), "-o", str(tmp_path / "e.csv"))
    assert no_rows.returncode == 2 and "has no rows to predict" in no_rows.stderr
    assert not (tmp_path / "e.csv").exists()
    zero = _cli("predict", str(result.path), str(data), "--chunk-rows", "0")
    assert zero.returncode == 2 and "chunk_rows must be at least 1" in zero.stderr
