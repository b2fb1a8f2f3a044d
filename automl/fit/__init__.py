"""``fit_best`` and its stages: checks, the data plan, the run directory, the search, the
selection, the refit and the save; warm starts, estimators and peer workers.

Nothing is imported here: each module is imported where it is used."""
