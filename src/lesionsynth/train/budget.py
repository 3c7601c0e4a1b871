"""Fitting a training run to a time budget (``time_budget_min``).

At the end of every epoch the run's measured speed (seconds per iteration, all epochs so far) decides how
many whole epochs still fit into what is left of the budget; when fewer than planned, the run is shortened
and its poly schedule re-fitted to end there, so the learning rate still decays to zero at the (new) last
iteration instead of being cut mid-schedule, as a plain time limit (``--time-limit``) would. A run is only
ever shortened, never lengthened beyond its ``epochs``, and always trains at least one epoch.
"""

from __future__ import annotations

import math


def fit_to_budget(done: int, planned: int, seconds: float, budget_s: float, per_epoch: int) -> int:
    """The iteration a run should end at to fit its time budget.

    Args:
        done: iterations completed (the end of an epoch).
        planned: the iteration the run currently ends at.
        seconds: training seconds spent on ``done`` iterations.
        budget_s: the whole run's budget, in seconds.
        per_epoch: iterations per epoch (the run is cut at whole epochs).

    Returns:
        ``planned``, or a smaller whole number of epochs (at least ``done`` and at least one epoch).
    """
    if done <= 0 or seconds <= 0:
        return planned
    epoch_s = seconds / done * per_epoch
    more = max(0, math.floor((budget_s - seconds) / epoch_s))
    return max(min(planned, done + more * per_epoch), min(planned, max(done, per_epoch)))
