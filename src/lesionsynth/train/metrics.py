"""Metrics: a CSV file and TensorBoard, both consistent with the last checkpoint after a resume.

``metrics.csv`` columns: ``iteration, epoch, phase, loss, lr, grad_norm, iter_per_s, lesion_dice,
cases, time``. ``phase`` is ``train`` (means over the last ``log_every`` iterations) or ``val``. On
resume, rows after the checkpoint's iteration (written by the killed run) are dropped, and TensorBoard
events after it are purged, so no iteration appears twice.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from lesionsynth.io.atomic import write_text_atomic

COLUMNS = ["iteration", "epoch", "phase", "loss", "lr", "grad_norm", "iter_per_s", "lesion_dice", "cases",
           "time"]


def truncate_csv(path: Path, last_iteration: int) -> None:
    """Keep only the rows of ``path`` with iteration <= ``last_iteration`` (and a complete last line)."""
    if not path.is_file():
        return
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]  # a row cut by a kill
    keep = lines[:1] if lines and lines[0].startswith("iteration,") else []
    for line in lines[len(keep):]:
        head = line.split(",", 1)[0]
        if head.isdigit() and int(head) <= last_iteration:
            keep.append(line)
    write_text_atomic(path, "".join(keep))


class MetricsLogger:
    """Writes metric rows to ``metrics.csv`` and TensorBoard (main rank only; no-op elsewhere).

    Args:
        run_dir: the run folder.
        start_iteration: iteration the run (re)starts from.
        enabled: false on non-main ranks.
        tensorboard: also write TensorBoard events.
    """

    def __init__(self, run_dir: Path, start_iteration: int = 0, enabled: bool = True,
                 tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.csv"
        self.writer: Any = None
        if not enabled:
            return
        truncate_csv(self.path, start_iteration)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._f, fieldnames=COLUMNS)
        if new:
            self._csv.writeheader()
            self._f.flush()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"),
                                        purge_step=start_iteration if start_iteration > 0 else None)

    def log(self, iteration: int, epoch: int, phase: str, **values: float) -> None:
        """One row; ``values`` among loss, lr, grad_norm, iter_per_s, lesion_dice, cases."""
        if not self.enabled:
            return
        row = {"iteration": iteration, "epoch": epoch, "phase": phase, "time": f"{time.time():.3f}"}
        for k, v in values.items():
            if k not in COLUMNS:
                raise KeyError(k)
            row[k] = f"{v:.6g}" if isinstance(v, float) else v
        self._csv.writerow(row)
        self._f.flush()
        if self.writer is not None:
            for k, v in values.items():
                if v is not None and k != "cases":
                    self.writer.add_scalar(f"{phase}/{k}", float(v), iteration)

    def close(self) -> None:
        if not self.enabled:
            return
        self._f.close()
        if self.writer is not None:
            self.writer.close()
