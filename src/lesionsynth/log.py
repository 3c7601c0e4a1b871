"""Logging and progress bars, set once by the command line's ``-v/--verbose`` and ``-q/--quiet``.

Library code logs through ``logging.getLogger(__name__)`` (loggers under ``lesionsynth``) and makes
progress bars with :func:`tqdm` from this module, never prints: a script that imports lesionsynth keeps
control of its own output. The command line calls :func:`configure`: default level INFO, ``-q`` WARNING
and no progress bars, ``-v`` DEBUG.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm as _tqdm

_STATE = {"quiet": False}


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is at the time of the record (test capture, redirection)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        """Write through ``tqdm.write``, so a line never breaks a progress bar."""
        try:
            _tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


def configure(verbosity: int = 0, prog: str = "lesionsynth") -> None:
    """Route ``lesionsynth`` log records to stderr as ``PROG: message`` (warnings: ``PROG: warning: ...``).

    Args:
        verbosity: ``-q`` count subtracted from ``-v`` count: <0 warnings only and no progress bars,
            0 info, >0 debug.
        prog: the prefix of each line (``lesionsynth VERB``).
    """
    logger = logging.getLogger("lesionsynth")
    for h in list(logger.handlers):
        if isinstance(h, _Stderr):
            logger.removeHandler(h)
    handler = _Stderr()
    handler.setFormatter(_Format(prog))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG)
    logger.propagate = False
    _STATE["quiet"] = verbosity < 0


class _Format(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.prog}: {level}{record.getMessage()}"


def tqdm(*args, **kwargs):
    """``tqdm.tqdm``, disabled under ``-q``."""
    if _STATE["quiet"]:
        kwargs["disable"] = True
    return _tqdm(*args, **kwargs)
