"""Resident memory of a process, for the benchmarks that report it (``bench_memory``, ``bench_synth``)."""

from __future__ import annotations

import os


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident set size of process ``pid`` in MiB (Linux ``/proc``); None where unreadable
    (not Linux, or the process has ended)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None
