"""Looking back at a run: the HTML report and its figures, out-of-fold predictions, and the
evaluation of a saved model on new labelled data.

Nothing is imported here: each module is imported where it is used."""
