"""The metrics log of every run: ``RUN/metrics.csv`` (and optionally TensorBoard), consistent with the
last checkpoint after a resume.

The first column is always ``iteration``; the others are the trainer's (the segmenter's: ``epoch, phase,
loss, lr, grad_norm, iter_per_s, lesion_dice, cases, time``, where ``phase`` is ``train`` or ``val``; the
GANs' and the LDM's: their loss terms and ``wall_s``). On resume, rows after the checkpoint's iteration
(written by the killed run) are dropped, and TensorBoard events after it are purged, so no iteration
appears twice.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

from lesionsynth.io.atomic import write_text_atomic

logger = logging.getLogger(__name__)

SEGMENTER_COLUMNS = ["iteration", "epoch", "phase", "loss", "lr", "grad_norm", "iter_per_s", "lesion_dice",
                     "cases", "time"]


def truncate_csv(path: Path, last_iteration: int) -> None:
    """Keep only the rows of ``path`` with iteration <= ``last_iteration`` (and a complete last line)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]  # a row cut by a kill
    keep = lines[:1] if lines and lines[0].startswith("iteration,") else []
    heads = [line.split(",", 1)[0] for line in lines[len(keep):]]
    keep += [line for line, h in zip(lines[len(keep):], heads) if h.isdigit() and int(h) <= last_iteration]
    write_text_atomic(path, "".join(keep))


class MetricsLog:
    """Appends rows to ``RUN/metrics.csv`` and, optionally, TensorBoard (a no-op when not ``enabled``).

    Args:
        run_dir: the run folder.
        start_iteration: iteration the run (re)starts from; later rows of an earlier start are dropped.
        columns: the CSV columns, ``iteration`` first; None: those of the first row logged. A resumed
            run keeps the columns of its existing file.
        enabled: false on non-main ranks.
        tensorboard: also write TensorBoard events (``RUN/tensorboard/``).
    """

    def __init__(self, run_dir: Path, start_iteration: int = 0, columns: list[str] | None = None,
                 enabled: bool = True, tensorboard: bool = False):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.csv"
        self.writer: Any = None
        self.columns = list(columns) if columns else None
        self._f: Any = None
        if not enabled:
            return
        truncate_csv(self.path, start_iteration)
        header = None
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
        if header:  # a resumed run keeps its file's columns
            self.columns = header
            self._open(new=False)
        elif self.columns is not None:
            self._open(new=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # an environment without tensorboard still trains; metrics.csv has it all
                logger.warning("tensorboard is not installed: no TensorBoard events (metrics.csv is written)")
                return
            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"),
                                        purge_step=start_iteration if start_iteration > 0 else None)

    def _open(self, new: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._f, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self._csv.writeheader()
            self._f.flush()

    def log(self, iteration: int, phase: str | None = None, **values: float | int | str | None) -> None:
        """One row: ``iteration`` and ``values`` (floats written with 6 significant digits); ``phase``
        prefixes the TensorBoard tags (``train/loss``)."""
        if not self.enabled:
            return
        row: dict[str, Any] = {"iteration": iteration, **({"phase": phase} if phase else {}), **values}
        if self.columns is not None and "time" in self.columns:
            row.setdefault("time", f"{time.time():.3f}")
        if self._f is None:
            if self.columns is None:
                self.columns = list(row)
            self._open(new=True)
        unknown = [k for k in row if k not in self.columns]  # type: ignore[operator]
        if unknown:
            raise KeyError(unknown[0])
        self._csv.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._f.flush()
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and k not in ("cases", "epoch"):
                    self.writer.add_scalar(f"{phase or 'train'}/{k}", float(v), iteration)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
