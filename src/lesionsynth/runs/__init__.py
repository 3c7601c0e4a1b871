"""The run engine shared by every trainer: the run folder and its resume rule (:mod:`~lesionsynth.runs.folder`),
the metrics log (:mod:`~lesionsynth.runs.log`), checkpoints with one header (:mod:`~lesionsynth.runs.checkpoint`)
and the generative trainers' iteration loop (:mod:`~lesionsynth.runs.loop`)."""

from lesionsynth.runs.checkpoint import KINDS, read_run_checkpoint, save_run_checkpoint
from lesionsynth.runs.folder import RunFolder
from lesionsynth.runs.log import MetricsLog
from lesionsynth.runs.loop import Intervals, run_iterations

__all__ = ["KINDS", "Intervals", "MetricsLog", "RunFolder", "read_run_checkpoint", "run_iterations",
           "save_run_checkpoint"]
