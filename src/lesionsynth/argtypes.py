"""``argparse`` types shared by every verb: a bad value is one usage line, exit 2, before any work."""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**63 - 1
MAX_COUNT = 1_000_000  # cases, masks or maps one command writes; more is a typo, not a dataset


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number, got '{text}'") from None


def seed(text: str) -> int:
    """A run seed: 0 to 2**63 - 1."""
    v = _int(text, "seed")
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**63 - 1], got {text}")
    return v


def count(text: str) -> int:
    """A number of items to write: 1 to :data:`MAX_COUNT`."""
    v = _int(text, "count")
    if not 1 <= v <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_COUNT:,}, got {text}")
    return v


def positive_int(text: str) -> int:
    """An integer of at least 1 (threads, iterations, sizes)."""
    v = _int(text, "value")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return v


def positive_float(text: str) -> float:
    """A finite number above 0 (durations, rates)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return v
