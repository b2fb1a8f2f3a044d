"""The run directory: checksums catch corruption; loading gives the same model."""

import copy
import hashlib
import json
import shutil

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import automl


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("fitted") / "run"
    return automl.fit_best(X, y, models=["ridge", "random_forest"], n_trials=2, cv=3, path=path), X


@pytest.fixture
def run(fitted, tmp_path):
    """The fitted run, its directory copied for this test alone (tests here damage it)."""
    result, X = fitted
    own = copy.copy(result)
    own.path = shutil.copytree(result.path, tmp_path / "run")
    return own, X


def test_load_gives_identical_predictions(run):
    result, X = run
    loaded = automl.load(result.path)
    # the same bytes (checksummed); BLAS may round the last bit differently per memory alignment
    np.testing.assert_allclose(loaded.predict(X), result.predict(X), rtol=1e-12)
    assert loaded.params == result.params
    assert loaded.manifest["artifacts"] == result.manifest["artifacts"]


def test_the_model_file_is_compressed_and_loads_like_the_plain_pickle(run, tmp_path):
    import joblib

    result, X = run
    saved = (result.path / "model.joblib").read_bytes()
    assert saved[:1] == b"x", "zlib's header: joblib compressed it"
    plain = tmp_path / "plain.joblib"
    joblib.dump(automl.load(result.path).model, plain)  # as versions before compression wrote it
    assert len(saved) < plain.stat().st_size / 2, "a forest's node arrays compress several times"
    old_style = shutil.copytree(result.path, tmp_path / "old-style")
    shutil.copy(plain, old_style / "model.joblib")
    manifest = json.loads((old_style / "manifest.json").read_text())
    manifest["artifacts"]["model.joblib"]["sha256"] = hashlib.sha256(plain.read_bytes()).hexdigest()
    (old_style / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_allclose(automl.load(old_style).predict(X), result.predict(X), rtol=1e-12)


def test_a_large_model_is_compressed_with_lz4_and_joblib_reads_it(run, monkeypatch):
    import io

    import joblib

    from automl.store import model_file

    result, X = run
    monkeypatch.setattr(model_file, "ZLIB_UP_TO", 0)  # as for a pickle above 48 MB
    packed = model_file.dump_model(result.model)
    assert packed[:4] == b"\x04\x22\x4d\x18", "an LZ4 frame"
    np.testing.assert_allclose(joblib.load(io.BytesIO(packed)).predict(X), result.predict(X), rtol=1e-12)


def test_truncated_model_file_is_named(run):
    result, _ = run
    model = result.path / "model.joblib"
    model.write_bytes(model.read_bytes()[:-100])
    with pytest.raises(automl.RunDirectoryError, match=r"model.joblib does not match its checksum.*truncated or corrupted"):
        automl.load(result.path)


def test_flipped_byte_in_leaderboard_is_named(run):
    result, _ = run
    board = result.path / "leaderboard.csv"
    data = bytearray(board.read_bytes())
    data[10] ^= 0xFF
    board.write_bytes(bytes(data))
    with pytest.raises(automl.RunDirectoryError, match="leaderboard.csv does not match its checksum"):
        automl.load(result.path)


def test_missing_manifest_or_artifact(run, tmp_path):
    result, _ = run
    (result.path / "trials.csv").unlink()
    with pytest.raises(automl.RunDirectoryError, match="trials.csv is missing"):
        automl.load(result.path)
    with pytest.raises(automl.RunDirectoryError, match="manifest.json is missing"):
        automl.load(tmp_path)


def test_version_difference_warns_with_both_versions(run):
    result, X = run
    manifest_path = result.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["versions"]["scikit-learn"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match=r"scikit-learn 0.0.1 \(saved\) vs .* \(installed\)"):
        loaded = automl.load(result.path)
    assert loaded.predict(X).shape == (len(X),)


def test_manifest_describes_the_run(run):
    result, _ = run
    manifest = json.loads((result.path / "manifest.json").read_text())
    for key in ("model", "params", "metric", "cv_score", "task", "columns", "seed", "time_budget",
                "n_trials", "versions", "artifacts", "studies", "storage"):
        assert key in manifest, key
    assert manifest["storage"] == "study.journal"
    assert manifest["classes"] is None and manifest["task"] == "regression"


def test_atomic_write_failure_leaves_the_previous_file_intact(tmp_path):
    from automl.store.persist import atomic_write

    target = tmp_path / "model.joblib"
    atomic_write(target, b"previous content")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # the write fails half-way through
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"], "no temporary file is left"


def test_studies_in_an_optuna_storage_url(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = automl.fit_best(X, y, models=["ridge"], n_trials=3, cv=3, storage=url, path=tmp_path / "run")
    assert not (tmp_path / "run" / "study.journal").exists()
    study_name = result.manifest["studies"]["ridge"]
    assert study_name.startswith("run-") and study_name.endswith("/ridge"), "the run's own name in a shared storage"
    # a second run with a directory of the same name keeps its studies apart
    other = automl.fit_best(X, y, models=["ridge"], n_trials=2, cv=3, storage=url, path=tmp_path / "b" / "run")
    assert other.manifest["studies"]["ridge"] != study_name
    assert len(other.trials) == 2
    import optuna

    study = optuna.load_study(study_name=study_name, storage=url)
    assert len(study.trials) == 3
    assert result.manifest["storage"].startswith("sqlite:///")
