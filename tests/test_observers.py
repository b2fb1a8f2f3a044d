"""Observer hooks: run started, trial completed, run finished."""

import pytest
from sklearn.datasets import load_breast_cancer

import automl


class Recorder:
    def __init__(self):
        self.events = []

    @automl.hookimpl
    def automl_run_started(self, run):
        self.events.append(("started", run))

    @automl.hookimpl
    def automl_trial_completed(self, run, record):
        self.events.append(("trial", record))

    @automl.hookimpl
    def automl_run_finished(self, run, result):
        self.events.append(("finished", result))


class OnlyRecords:
    """An implementation may take fewer arguments than the spec names."""

    def __init__(self):
        self.records = []

    @automl.hookimpl
    def automl_trial_completed(self, record):
        self.records.append(record)


class Broken:
    @automl.hookimpl
    def automl_trial_completed(self, record):
        raise RuntimeError("tracking server down")


def test_observers_see_the_whole_run(tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    recorder, records = Recorder(), OnlyRecords()
    with pytest.warns(RuntimeWarning, match="plugin .* raised in automl_trial_completed: RuntimeError: tracking server down"):
        result = automl.fit_best(
            X, y, models=["logistic_regression", "hist_gradient_boosting"], n_trials=3, cv=3,
            plugins=[recorder, records, Broken()], path=tmp_path / "run", portfolio=False,
        )
    kinds = [kind for kind, _ in recorder.events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("trial") == len(result.trials) == 6
    run = recorder.events[0][1]
    assert isinstance(run, automl.RunInfo)
    assert run.models == ("logistic_regression", "hist_gradient_boosting") and run.path == tmp_path / "run"
    assert run.task == "binary" and run.metric == "roc_auc" and run.n_rows == len(X)
    trials = [event for kind, event in recorder.events if kind == "trial"]
    assert all(isinstance(t, automl.TrialRecord) for t in trials)
    first = trials[0]
    assert first.model == "logistic_regression" and first.number == 0 and first.state == "complete"
    assert first.params == {"C": 1.0, "class_weight": None} and 0.9 < first.score <= 1.0
    assert recorder.events[-1][1] is result
    assert records.records == trials
