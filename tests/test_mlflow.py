"""The MLflow plugin against a real local SQLite tracking store (no mocks), through the API and the CLI."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from sklearn.datasets import load_breast_cancer

import automl

mlflow = pytest.importorskip("mlflow")

from automl.plugins import mlflow_tracking  # noqa: E402
from automl.plugins.mlflow_tracking import MLflowTracker  # noqa: E402

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
PARENT = "mlflow.parentRunId"
ENVIRONMENT = ("AUTOML_MLFLOW_TRACKING_URI", "AUTOML_MLFLOW", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
MODELS = ["logistic_regression", "hist_gradient_boosting"]


def store(path: Path) -> str:
    return f"sqlite:///{path}"


def new_store(template: Path, path: Path) -> str:
    """A real SQLite tracking store at ``path``, copied from an empty one (MLflow's schema
    migrations take seconds per new database)."""
    shutil.copyfile(template, path)
    return store(path)


def logged_runs(uri: str, experiment: str = "automl") -> tuple[list, list]:
    """(parent runs, trial runs) of an experiment in the store at ``uri``."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000) if found is not None else []
    return [r for r in runs if PARENT not in r.data.tags], [r for r in runs if PARENT in r.data.tags]


@pytest.fixture(autouse=True)
def _no_tracking_settings(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(store(path)).search_experiments()  # creates the tables
    return path


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, empty_store):
    """One real search, 2 models x 3 trials, logged by a tracker passed per call to a fresh store."""
    root = tmp_path_factory.mktemp("tracked")
    uri = new_store(empty_store, root / "mlflow.db")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow keeps artifacts under ./mlruns by default
        for name in ENVIRONMENT:
            patch.delenv(name, raising=False)
        result = automl.fit_best(
            X, y, models=MODELS, n_trials=3, cv=3, time_budget=None, path=root / "run",
            plugins=[MLflowTracker(uri)],
        )
    parents, trials = logged_runs(uri)
    return SimpleNamespace(X=X, result=result, uri=uri, client=mlflow.MlflowClient(uri), parents=parents, trials=trials)


def test_parent_run_holds_the_settings_the_scores_and_the_tables(tracked, tmp_path):
    result, client = tracked.result, tracked.client
    assert len(tracked.parents) == 1
    parent = tracked.parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "run"
    if result.model_name == "ensemble":  # a param per member: MLflow limits a param's length
        members = result.params["members"]
        winner_params = {f"best.member{i}": f"{m['model']} trial {m['trial']}, weight {m['weight']:.3f}" for i, m in enumerate(members)}
    else:
        winner_params = {f"best.{k}": str(v) for k, v in result.params.items()}
    assert parent.data.params == {
        "task": "binary", "metric": "roc_auc", "models": "logistic_regression,hist_gradient_boosting", "n_rows": "569",
        "n_columns": "30", "time_budget": "None", "n_trials": "3", "seed": "0",
        "best_model": result.model_name, **winner_params,
    }
    assert parent.data.tags["automl.run_dir"] == str(result.path)
    metrics = parent.data.metrics
    assert metrics["cv_score"] == pytest.approx(result.score)
    best_trial = result.trials["score"].max()  # the ensemble, when it won, beat every trial
    assert metrics["best_score"] == pytest.approx(best_trial) and result.score >= best_trial
    assert metrics["trials"] == metrics["trials_complete"] == len(result.trials) == 6
    assert metrics["trials_pruned"] == metrics["trials_failed"] == 0 and metrics["seconds"] > 0
    assert "test_score" not in metrics, "no test split, no test score"
    history = client.get_metric_history(parent.info.run_id, "best_score")
    assert sorted(m.step for m in history) == list(range(1, 7)), "the running best, one step per trial"

    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"leaderboard.csv", "trials.csv", "manifest.json"}
    manifest = json.loads(Path(client.download_artifacts(parent.info.run_id, "manifest.json", tmp_path)).read_text())
    assert manifest["model"] == result.model_name and manifest["cv_score"] == pytest.approx(result.score)
    leaderboard = Path(client.download_artifacts(parent.info.run_id, "leaderboard.csv", tmp_path)).read_text().splitlines()
    assert leaderboard[0].startswith("model,score") and len(leaderboard) == 1 + len(result.leaderboard)


def test_one_nested_run_per_trial_with_its_params_and_score(tracked):
    result, parent = tracked.result, tracked.parents[0]
    assert len(tracked.trials) == len(result.trials) == 6
    assert {r.data.tags[PARENT] for r in tracked.trials} == {parent.info.run_id}
    logged = {(r.data.tags["automl.model"], int(r.data.tags["automl.trial"])): r for r in tracked.trials}
    for trial in result.trials.itertuples():
        run = logged[(trial.model, trial.number)]
        assert run.info.run_name == f"{trial.model}-{trial.number}" and run.info.status == "FINISHED"
        assert run.data.tags["automl.state"] == trial.state == "complete"
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        assert run.data.metrics["score"] == pytest.approx(trial.score)
        assert run.data.metrics["duration"] == pytest.approx(trial.duration, abs=1e-3)
        assert "automl.error" not in run.data.tags


def test_winner_is_logged_as_a_model_that_predicts_like_the_result(tracked, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked.uri)  # where runs:/ and models:/ URIs are looked up
    parent = tracked.parents[0]
    model = mlflow.sklearn.load_model(f"runs:/{parent.info.run_id}/model")
    assert (model.predict(tracked.X) == tracked.result.predict(tracked.X)).all()
    assert parent.data.tags["automl.model_uri"].startswith("models:/")
    pyfunc = mlflow.pyfunc.load_model(parent.data.tags["automl.model_uri"])
    assert pyfunc.metadata.get_input_schema().input_names() == list(tracked.X.columns), "signature from the manifest"
    assert (pyfunc.predict(tracked.X) == tracked.result.predict(tracked.X)).all()


def test_a_failing_store_only_warns_and_the_search_returns(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with pytest.warns(RuntimeWarning, match="MLflow could not start the run .*the search goes on"):
        result = automl.fit_best(
            X, y, models=["logistic_regression"], n_trials=2, cv=2, time_budget=None, save=False,
            plugins=[MLflowTracker(store(tmp_path / "a-file" / "mlflow.db"))], ensemble=False,
        )
    assert result.model_name == "logistic_regression" and len(result.trials) == 2


class AlwaysFails:
    @automl.hookimpl
    def automl_models(self):
        def build(params, context):
            raise ValueError("no luck")

        return [automl.ModelSpec("always_fails", {"binary"}, lambda trial, context: {}, build)]


def test_nested_under_the_callers_active_run_and_logged_once(tmp_path, monkeypatch, empty_store):
    """The caller's own run stays active; the environment's tracker stands aside for an explicit one;
    a failed trial is a FAILED nested run with its error."""
    uri = new_store(empty_store, tmp_path / "mlflow.db")
    monkeypatch.setenv("AUTOML_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    client = mlflow.MlflowClient(uri)
    with mlflow.start_run(experiment_id=client.create_experiment("mine"), run_name="my pipeline") as mine:
        automl.fit_best(X, y, models=["logistic_regression", "always_fails"], n_trials=1, cv=2, time_budget=None,
                        save=False, plugins=[MLflowTracker(log_model=False), AlwaysFails()])
        assert mlflow.active_run().info.run_id == mine.info.run_id
    runs = client.search_runs([mine.info.experiment_id])
    searches = [r for r in runs if r.data.tags.get(PARENT) == mine.info.run_id]
    assert len(searches) == 1, "one parent run, nested under the caller's run, in its experiment"
    assert searches[0].data.params["best_model"] == "logistic_regression"
    assert searches[0].data.metrics["trials_failed"] == 1
    trials = {r.data.tags["automl.model"]: r for r in runs if r.data.tags.get(PARENT) == searches[0].info.run_id}
    assert sorted(trials) == ["always_fails", "logistic_regression"]
    failed = trials["always_fails"]
    assert failed.info.status == "FAILED" and failed.data.tags["automl.state"] == "fail"
    assert "no luck" in failed.data.tags["automl.error"] and "score" not in failed.data.metrics
    assert client.get_experiment_by_name("automl") is None


def test_environment_switch(monkeypatch):
    assert mlflow_tracking._tracker_from_environment() is None
    monkeypatch.setenv("AUTOML_MLFLOW", "1")
    assert mlflow_tracking._tracker_from_environment().tracking_uri is None, "MLflow's own URI"
    monkeypatch.setenv("AUTOML_MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert mlflow_tracking._tracker_from_environment().tracking_uri == "sqlite:///x.db"
    monkeypatch.setenv("AUTOML_MLFLOW", "0")
    assert mlflow_tracking._tracker_from_environment() is None


# -- the command line: the entry-point plugin, on only when asked ---------------------------------


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, empty_store):
    """Three ``automl fit`` runs side by side, each in its own folder: one asked to log by the
    environment, one not asked, one given --mlflow while the environment asks too."""
    root = tmp_path_factory.mktemp("cli")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.assign(diagnosis=y).to_csv(root / "cancer.csv", index=False)
    folders = {name: root / name for name in ("environment", "nothing", "option")}
    for folder in folders.values():
        folder.mkdir()
    asked = {"AUTOML_MLFLOW_TRACKING_URI": new_store(empty_store, folders["environment"] / "env.db")}
    option = ["--mlflow", new_store(empty_store, folders["option"] / "chosen.db")]
    both = {"AUTOML_MLFLOW_TRACKING_URI": store(folders["option"] / "env.db")}
    calls = {"environment": ([], asked), "nothing": ([], {}), "option": (option, both)}
    base = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    processes = {
        name: subprocess.Popen(
            [AUTOML, "fit", str(root / "cancer.csv"), "--target", "diagnosis", "--models", "logistic_regression",
             "--n-trials", "2", "--cv", "2", "--path", "run", "--no-ensemble", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folders[name],
            env={**base, **environment, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        for name, (options, environment) in calls.items()
    }
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr}"
    return folders


def test_cli_logs_when_the_environment_asks(cli_runs):
    parents, trials = logged_runs(store(cli_runs["environment"] / "env.db"))
    assert len(parents) == 1 and len(trials) == 2
    assert parents[0].data.params["best_model"] == "logistic_regression"
    assert parents[0].data.tags["automl.run_dir"] == "run"


def test_cli_logs_nothing_unless_asked(cli_runs):
    assert sorted(p.name for p in cli_runs["nothing"].iterdir()) == ["run"], "no mlflow.db, no mlruns/"


def test_cli_mlflow_option_wins_over_the_environment(cli_runs):
    parents, trials = logged_runs(store(cli_runs["option"] / "chosen.db"))
    assert len(parents) == 1 and len(trials) == 2
    assert math.isfinite(parents[0].data.metrics["cv_score"])
    assert not (cli_runs["option"] / "env.db").exists(), "logged once, where --mlflow says"
