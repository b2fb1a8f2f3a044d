"""Using a saved run: the HTTP service and batch prediction of table files.

Nothing is imported here: each module is imported where it is used."""
