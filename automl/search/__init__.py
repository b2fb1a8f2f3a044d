"""The search: one Optuna study per model, the scheduler that shares the budget between them,
the trial processes that fit, the shared storage, ensemble selection and the leaderboard.

Nothing is imported here: each module is imported where it is used."""
