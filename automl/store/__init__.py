"""What a saved run is: the Result, the run directory on disk, and the ensemble estimator a
saved model may be. Loading needs nothing from the search (no Optuna).

Nothing is imported here: each module is imported where it is used."""
