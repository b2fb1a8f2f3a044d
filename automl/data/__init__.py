"""The table on its way in: typing columns, preprocessing, profiles, the choice of validation,
reading table files, and the DataPlan that fixes the rows and folds of a run.

Nothing is imported here: each module is imported where it is used."""
