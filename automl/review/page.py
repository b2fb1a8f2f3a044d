"""What every part of the report's page shares: the run, its out-of-fold predictions (or None
without data), the figures drawn for it, and the pieces that several sections repeat."""

from __future__ import annotations

import base64
import shlex

from ..data.validation import Validation
from ..store.ensemble import ENSEMBLE
from ..store.result import Result
from .markup import escape, png_size

#: Figures are saved at 150 dpi and shown at 100 px per inch.
DISPLAY_SCALE = 100 / 150


class Page:
    """The state of one report; ``figures`` (file name -> PNG bytes) is filled before rendering."""

    def __init__(self, result: Result, oof):
        self.result = result
        self.manifest = result.manifest
        self.oof = oof
        self.figures: dict[str, bytes] = {}
        #: the run directory as a shell argument, for the commands the page suggests
        self.run_arg = escape(shlex.quote(str(result.path))) if result.path is not None else "RUN_DIR"
        from .oof import winning_trial

        if result.model_name == ENSEMBLE:
            fold_scores = (self.manifest.get("ensemble") or {}).get("fold_scores")
        else:
            winning = winning_trial(result)
            fold_scores = winning["fold_scores"] if winning is not None else None
        self.n_folds = len(fold_scores) if fold_scores else None

    def validation(self) -> str | None:
        """The run's validation in words, when the manifest records it."""
        recorded = self.manifest.get("validation")
        return Validation.from_dict(recorded).describe() if recorded else None

    def figure(self, name: str, caption: str, alt: str) -> str:
        """The figure ``name`` embedded as base64 PNG, with its caption and file name."""
        png = self.figures[name]
        width, height = png_size(png)
        data = base64.b64encode(png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" width="{round(width * DISPLAY_SCALE)}" '
            f'height="{round(height * DISPLAY_SCALE)}" alt="{escape(alt)}">'
            f"<figcaption>{caption} <span class=\"file\">({escape(name)})</span></figcaption></figure>"
        )

    def needs_data_text(self) -> str:
        """Why the out-of-fold sections are empty, and the command that fills them."""
        target = self.manifest.get("target")
        column = f" (with its target column <code>{escape(target)}</code>)" if target is not None else " (and --target COL)"
        return (
            "<strong>The out-of-fold sections need the data.</strong> The run directory keeps no copy of the "
            "table, and these sections refit the winner on each of the run's CV folds to judge it on rows it "
            f"did not see. Run <code>automl report {self.run_arg} --data DATA.csv</code> with the same table the run "
            f"was fitted on{column}, or in Python <code>automl.report(run_dir, X, y)</code>."
        )

    def needs_data(self) -> str:
        """What an out-of-fold section shows without data: a pointer to the note in the header."""
        return (
            f'<p class="note">Needs the data the run was fitted on: <code>automl report {self.run_arg} --data DATA.csv</code> '
            '(see <a href="#needs-data">why</a>).</p>'
        )
