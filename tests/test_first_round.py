"""The first-round guarantee: while other models are untried, no model's first trial takes their
time, whether it is ordered first or last and however many workers run trials."""

import time

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer

import automl


class HangingClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        time.sleep(3600)
        return self

    def predict(self, X):
        raise AssertionError("never fitted")


class HangingPlugin:
    """A third-party model whose fit never returns; ``cost`` decides whether the first round
    tries it before logistic regression (cost 1.0) or after."""

    def __init__(self, cost: float):
        self.cost = cost

    @automl.hookimpl
    def automl_models(self):
        return [
            automl.ModelSpec(
                name="hangs", tasks={"binary"}, search_space=lambda trial, ctx: {},
                build=lambda params, ctx: HangingClassifier(), cost=self.cost,
            )
        ]


# With two workers both models start at once whatever their order, so one order serves there.
@pytest.mark.parametrize("order, cost, n_jobs", [("first", 0.01, 1), ("last", 100.0, 1), ("first", 0.01, 2)])
def test_a_hanging_first_trial_does_not_starve_the_other_model(order, cost, n_jobs):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    budget = 20  # the set-up of the report: on shorter budgets the 6 s floor of a first trial reaches the end of the search
    started = time.monotonic()
    result = automl.fit_best(
        X, y, models=["hangs", "logistic_regression"], plugins=[HangingPlugin(cost)], time_budget=budget,
        n_jobs=n_jobs, cv=3, save=False, ensemble=False, verbose=0, portfolio=False,  # the order by cost alone
    )
    elapsed = time.monotonic() - started
    assert elapsed <= budget * 1.05 + 5, f"{elapsed:.1f} s for a {budget} s budget"
    assert result.model_name == "logistic_regression"
    board = result.leaderboard.set_index("model")
    assert board.loc["logistic_regression", "complete"] >= 1
    assert board.loc["hangs", "complete"] == 0 and board.loc["hangs", "failed"] >= 1
    first_error = result.trials.loc[result.trials["model"] == "hangs", "error"].iloc[0]
    if order == "first" and n_jobs == 1:  # it ran alone: only its own time limit could stop it
        assert first_error.startswith("timeout: still running at the trial's time limit"), first_error
    else:  # beside logistic regression's trials: its limit, or the end of the search
        assert first_error.startswith(("timeout: still running", "stopped by the time budget")), first_error
