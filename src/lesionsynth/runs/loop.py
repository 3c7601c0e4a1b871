"""The iteration loop of the generative trainers (the GANs and both LDM stages).

Per iteration ``it`` (1-based): ``step(it)`` (a trainer draws every random number of a step from a
generator seeded with ``case_seed(seed, step)``, so a resumed run continues exactly as an uninterrupted
one), then, at their intervals and at the end, a metrics row, ``preview(it)`` and ``save(it)``. With a
time limit the loop stops after the iteration that crosses it and writes a checkpoint; ``--resume``
continues from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lesionsynth.errors import ConfigError
from lesionsynth.log import tqdm
from lesionsynth.runs.folder import RunFolder
from lesionsynth.runs.log import MetricsLog


@dataclass
class Intervals:
    """Iterations between metrics rows, previews and checkpoints (0: only at the end)."""

    log_every: int
    sample_every: int
    checkpoint_every: int


def _due(it: int, every: int, last: int) -> bool:
    return it == last or (every > 0 and it % every == 0)


def run_iterations(run: RunFolder, start: int, total: int, every: Intervals, step: Callable[[int], dict[str, float]],
                   save: Callable[[int], object], preview: Callable[[int], object], desc: str,
                   postfix: Callable[[dict[str, float]], dict[str, str]] | None = None,
                   time_limit_min: float | None = None, progress: bool | None = None) -> int:
    """Train from iteration ``start`` to ``total``; returns the last completed iteration.

    Rows of ``RUN/metrics.csv`` hold the iteration, the step's loss terms and ``wall_s`` (seconds since
    this start).

    Raises:
        ConfigError: ``total`` is below the iterations the run has already done.
    """
    if start > total:
        raise ConfigError(f"{run.root}: the run is already at iteration {start}; --iterations must be >= {start}")
    if start == total:  # nothing to train: keep the checkpoint in step with config.yaml
        save(total)
        return total
    log = MetricsLog(run.root, start)
    t0 = time.monotonic()
    bar = tqdm(total=total, initial=start, desc=desc, disable=None if progress is None else not progress)
    it = start
    try:
        while it < total:
            it += 1
            losses = step(it)
            bar.update(1)
            wall = time.monotonic() - t0
            out_of_time = time_limit_min is not None and wall > 60.0 * time_limit_min
            if _due(it, every.log_every, total) or out_of_time:
                log.log(it, **losses, wall_s=round(wall, 2))
                bar.set_postfix(postfix(losses) if postfix else {"loss": f"{next(iter(losses.values()), 0):.4f}"})
            if _due(it, every.sample_every, total) or out_of_time:
                preview(it)
            if _due(it, every.checkpoint_every, total) or out_of_time:
                save(it)
            if out_of_time:
                break
    finally:
        bar.close()
        log.close()
    return it
