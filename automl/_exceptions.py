"""Every error automl raises on purpose, under one base class.

    AutoMLError                  base: catch this to catch anything automl raises on purpose
    ├── InputError (ValueError)  the data or the arguments of a call are unusable
    ├── PluginError              a plugin is broken: misspelled hook, duplicate model name,
    │                            a hook that returns something other than ModelSpec objects
    ├── SearchError              the search ended without a single successful trial
    └── RunDirectoryError        a run directory is missing, incomplete, or fails its checksums

    Interrupted (KeyboardInterrupt)  Ctrl-C or SIGTERM stopped fit_best; the best model found
                                 so far was saved first (``.path``), ``.signal_name`` says which

Input errors also derive from ``ValueError`` so that scikit-learn-style callers, which
catch ``ValueError`` for bad input, keep working. Every message says what is wrong, where,
and what to do about it.
"""

from __future__ import annotations

__all__ = ["AutoMLError", "InputError", "PluginError", "SearchError", "RunDirectoryError", "Interrupted"]


class AutoMLError(Exception):
    """Base class of every error automl raises on purpose."""


class InputError(AutoMLError, ValueError):
    """The data or the arguments handed to automl cannot be used as given."""


class PluginError(AutoMLError):
    """A plugin breaks the plugin contract (see ``automl.hookspecs``)."""


class SearchError(AutoMLError):
    """The search finished without any successful trial, so there is no model to save."""


class RunDirectoryError(AutoMLError):
    """A saved run directory cannot be loaded: missing files, or checksums that do not match."""


class Interrupted(KeyboardInterrupt):
    """``fit_best`` was stopped by Ctrl-C (SIGINT) or SIGTERM.

    A KeyboardInterrupt, so that code which lets Ctrl-C through keeps doing so. When it is raised
    by ``fit_best`` after saving, ``path`` is the run directory holding the best model so far.
    """

    def __init__(self, signal_name: str = "SIGINT", path=None, message: str | None = None):
        super().__init__(message or f"interrupted by {signal_name}")
        self.signal_name = signal_name
        self.path = path
