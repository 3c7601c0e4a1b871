"""The iteration loop of every trainer: the segmenter, the GANs and both LDM stages.

Per iteration ``it`` (1-based): ``step(it)`` (a trainer draws every random number of a step from generators
seeded by ``case_seed`` from its seed and the step, so a resumed run continues exactly as an uninterrupted
one), then, at their intervals and at the end, a metrics row, ``after(it)`` (e.g. validation), ``preview(it)``
and ``save(it)``. With a time limit the loop stops after the iteration that crosses it and writes a checkpoint;
``--resume`` continues from it. A trainer may also shorten its run while it goes (``end``: a time budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def run_iterations(run: RunFolder, start: int, total: int, every: Intervals, step: Callable[[int], dict[str, Any]],
                   save: Callable[[int], object], preview: Callable[[int], object], desc: str,
                   postfix: Callable[[dict[str, Any]], dict[str, str]] | None = None,
                   time_limit_min: float | None = None, progress: bool | None = None, *,
                   log: MetricsLog | None = None,
                   summarise: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
                   after: Callable[[int], bool] | None = None,
                   agree: Callable[[bool], bool] | None = None,
                   end: Callable[[], int] | None = None) -> int:
    """Train from iteration ``start`` to ``total``; returns the last completed iteration.

    Args:
        run: the run folder.
        start, total: iterations done before this call, and the iteration to stop at.
        every: intervals of metrics rows, previews and checkpoints.
        step: one iteration; returns its values (loss terms; tensors are fine, nothing is synchronised
            between rows).
        save, preview: write a checkpoint / a preview of iteration ``it``.
        desc: progress-bar label.
        postfix: the bar's postfix from a metrics row (default: its first value).
        time_limit_min: stop (with a checkpoint) after the iteration that crosses this many minutes.
        progress: show the bar (None: only on a terminal).
        log: where rows go (default: ``RUN/metrics.csv``).
        summarise: a metrics row from the steps since the last row (default: the last step's values and
            ``wall_s``, seconds since this start).
        after: called after each iteration's row; returning True asks for a checkpoint now.
        agree: with a time limit, makes every process take the same decision to stop (data-parallel
            training: true when any rank is out of time); asked at metrics rows only.
        end: read after each iteration's ``after``: the iteration the run now ends at, if below ``total``
            (a run fitted to a time budget); the loop checkpoints and stops there. Must agree across
            processes.

    Raises:
        ConfigError: ``total`` is below the iterations the run has already done.
    """
    if start > total:
        raise ConfigError(f"{run.root}: the run is already at iteration {start}; --iterations must be >= {start}")
    if start == total:  # nothing to train: keep the checkpoint in step with config.yaml
        save(total)
        return total
    own_log = log is None
    log = MetricsLog(run.root, start) if log is None else log
    t0 = time.monotonic()
    bar = tqdm(total=total, initial=start, desc=desc, disable=None if progress is None else not progress)
    window: list[dict[str, Any]] = []
    it = start
    try:
        while it < total:
            it += 1
            window.append(step(it))
            bar.update(1)
            wall = time.monotonic() - t0
            out_of_time = time_limit_min is not None and wall > 60.0 * time_limit_min
            if time_limit_min is not None and agree is not None:  # at metrics rows only: no sync per step
                out_of_time = agree(out_of_time) if _due(it, every.log_every, total) else False
            if _due(it, every.log_every, total) or out_of_time:
                row = summarise(window) if summarise else {**window[-1], "wall_s": round(wall, 2)}
                log.log(it, **row)
                bar.set_postfix(postfix(row) if postfix else {"loss": f"{next(iter(row.values()), 0):.4f}"})
                window = []
            wanted = after(it) if after is not None else False
            new_end = end() if end is not None else total
            if new_end < total:
                total = max(it, new_end)
                bar.total = total
                bar.refresh()
            if _due(it, every.sample_every, total) or out_of_time:
                preview(it)
            if wanted or _due(it, every.checkpoint_every, total) or out_of_time:
                save(it)
            if out_of_time:
                break
    finally:
        bar.close()
        if own_log:
            log.close()
    return it
