"""``test_size``: the held-out rows do not shape the model. The columns are typed, kept or dropped,
and profiled from the search rows only; the class list may still come from every label."""

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import automl


def test_columns_are_typed_on_the_search_rows_only():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    # fit_best's documented split: seeded, stratified for classification
    _, test_rows = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0, stratify=y)
    X = X.copy()
    X["only_in_held_out_rows"] = np.nan
    X.loc[test_rows, "only_in_held_out_rows"] = 1.0 + np.arange(len(test_rows))
    result = automl.fit_best(
        X, y, models=["logistic_regression"], time_budget=None, n_trials=1, cv=3, test_size=0.25,
        save=False, ensemble=False, verbose=0,
    )
    columns = {c["name"]: c for c in result.manifest["columns"]}
    assert columns["only_in_held_out_rows"]["kind"] == "dropped"
    assert columns["only_in_held_out_rows"]["note"] == "all values missing"
    # the profile for automl.evaluate's drift checks describes the rows the model learned from
    assert result.manifest["data_profile"]["n_rows"] == len(y) - len(test_rows)
    assert result.test_score is not None and result.predict(X.head(3)).shape == (3,)
