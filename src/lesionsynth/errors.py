"""User-facing errors.

Anything a user can cause (a bad file, a bad config, a bad argument) raises :class:`LesionsynthError`
with a one-line message naming the file and the problem. The CLI prints it on stderr and exits with
code 2, without a traceback.
"""

from __future__ import annotations


class LesionsynthError(Exception):
    """An error caused by user input; its message is shown as one line on stderr."""

    exit_code = 2


class InputError(LesionsynthError):
    """A bad input file (missing, corrupt, wrong dimensionality, NaNs, ...)."""


class ConfigError(LesionsynthError):
    """A bad configuration (unknown key, wrong type, impossible value)."""
