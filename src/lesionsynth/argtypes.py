"""``argparse`` types shared by every verb: a bad value is one usage line, exit 2, before any work."""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**63 - 1
MAX_COUNT = 1_000_000  # cases, masks or maps one command writes; more is a typo, not a dataset


def _int(text: str, what: str, low: float, high: float, rule: str) -> int:
    """``text`` as an integer in [low, high]; otherwise one usage line: ``{rule}, got {text}``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number, got '{text}'") from None
    if not low <= v <= high:
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return v


def seed(text: str) -> int:
    """A run seed: 0 to 2**63 - 1."""
    return _int(text, "seed", 0, MAX_SEED, "seed must be in [0, 2**63 - 1]")


def count(text: str) -> int:
    """A number of items to write: 1 to :data:`MAX_COUNT`."""
    return _int(text, "count", 1, MAX_COUNT, f"must be between 1 and {MAX_COUNT:,}")


def positive_int(text: str) -> int:
    """An integer of at least 1 (threads, iterations, sizes)."""
    return _int(text, "value", 1, math.inf, "must be at least 1")


def positive_float(text: str) -> float:
    """A finite number above 0 (durations, rates)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return v


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (indices)."""
    return _int(text, "value", 0, math.inf, "must be 0 or more")


def add_set(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): override any key of the ``--config``, dotted, value in YAML."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, dotted, value in YAML (e.g. --set augment.flip.p=0); "
                             "repeatable")


def add_parts(parser: argparse.ArgumentParser, what: str) -> None:
    """``--part I --num-parts N``: this process does every N-th item starting at I (nnU-Net's
    ``-part_id/-num_parts``), so a job array or several machines share one job without overlap."""
    parser.add_argument("--part", type=non_negative_int, default=0, metavar="I",
                        help=f"do part I (0-based) of --num-parts: every N-th {what} from the I-th (default 0)")
    parser.add_argument("--num-parts", type=positive_int, default=1, metavar="N",
                        help="split the work into N parts run by separate processes/machines (default 1)")


def check_parts(part: int, num_parts: int) -> None:
    """Raise a one-line error when ``part`` is not in [0, num_parts)."""
    from lesionsynth.errors import InputError

    if part >= num_parts:
        raise InputError(f"--part {part}: must be below --num-parts {num_parts} (parts are 0 to {num_parts - 1})")
