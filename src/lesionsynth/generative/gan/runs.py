"""Run folders of the GAN trainers: checkpoints, resume, loss log, devices.

A run folder holds::

    RUN/config.yaml               # the resolved config (plain YAML)
    RUN/checkpoints/last.pt       # written atomically every ``checkpoint_every`` iterations and at the end
    RUN/log.csv                   # one row per logged iteration
    RUN/samples/iter_XXXXXXX.png  # sample grids

A GAN checkpoint is a dict: ``kind`` (``mask-gan`` or ``translator``), ``config`` (the config as a
dict), ``model`` (the generator's ``state_dict``: all that sampling or rendering needs), ``critic``
(the critic/discriminator's), ``opt_g``, ``opt_d``, ``iteration`` (finished generator steps), ``seed``
and ``rng`` (the global torch RNG state, restored on resume; the trainers themselves draw only from
per-iteration generators seeded with ``case_seed(seed, iteration)``, so a resumed run continues exactly
where an uninterrupted one would be).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from lesionsynth.config import to_dict
from lesionsynth.errors import InputError
from lesionsynth.io.atomic import write_text_atomic
from lesionsynth.log import tqdm
from lesionsynth.models.checkpoint import resolve_checkpoint, save_checkpoint, torch_load


class RunFolder:
    """Paths and bookkeeping of one training run."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def log_path(self) -> Path:
        return self.root / "log.csv"

    def sample_png(self, iteration: int) -> Path:
        return self.root / "samples" / f"iter_{iteration:07d}.png"

    def prepare(self, resume: bool) -> bool:
        """Create the folder; returns whether there is a checkpoint to resume from.

        Raises:
            InputError: the folder already holds a checkpoint and ``resume`` is False.
        """
        if self.last.is_file() and not resume:
            raise InputError(f"{self.root}: already holds a run (checkpoints/last.pt); "
                             "pass --resume to continue it or choose another --out")
        self.root.mkdir(parents=True, exist_ok=True)
        return resume and self.last.is_file()

    def write_config(self, cfg: Any) -> None:
        write_text_atomic(self.root / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))

    def log(self, row: dict[str, float | int]) -> None:
        new = not self.log_path.is_file()
        with open(self.log_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def truncate_log(self, iteration: int) -> None:
        """Drop log rows after ``iteration`` (rows logged after the checkpoint a run resumes from)."""
        if not self.log_path.is_file():
            return
        with open(self.log_path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= iteration]
        text = "\n".join(",".join(r) for r in keep) + "\n"
        write_text_atomic(self.log_path, text)

    def save(self, state: dict[str, Any]) -> Path:
        state = dict(state)
        state["rng"] = torch.get_rng_state()
        return save_checkpoint(self.last, state)


def load_gan_checkpoint(path: str | Path, kind: str,
                        map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a GAN checkpoint (file or run folder) of the given ``kind``, with one-line errors."""
    p = resolve_checkpoint(path, prefer="last")
    ckpt = torch_load(p, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "kind" not in ckpt:
        raise InputError(f"{p}: not a lesionsynth GAN checkpoint")
    if ckpt["kind"] != kind:
        raise InputError(f"{p}: is a {ckpt['kind']} checkpoint, expected a {kind} checkpoint")
    return ckpt


class Trainer(Protocol):
    iteration: int

    def step(self) -> dict[str, float]: ...

    def state(self) -> dict[str, Any]: ...


def training_loop(run: RunFolder, trainer: Trainer, cfg: Any, desc: str,
                  sample: Callable[[int], None], postfix: Callable[[dict[str, float]], dict[str, str]],
                  time_limit_min: float | None = None, progress: bool = True) -> Path:
    """Step ``trainer`` to ``cfg.iterations``: log rows, sample grids and checkpoints at their intervals.

    With ``time_limit_min`` the loop stops after the iteration that crosses the limit and writes a
    checkpoint; ``--resume`` continues from it. Returns the checkpoint path.
    """
    start = time.monotonic()
    bar = tqdm(total=cfg.iterations, initial=trainer.iteration, desc=desc, disable=None if progress else True)
    while trainer.iteration < cfg.iterations:
        losses = trainer.step()
        it = trainer.iteration
        bar.update(1)
        last = it == cfg.iterations
        out_of_time = time_limit_min is not None and time.monotonic() - start > 60.0 * time_limit_min
        if it % cfg.log_every == 0 or last or out_of_time:
            run.log({"iteration": it, **losses, "wall_s": round(time.monotonic() - start, 1)})
            bar.set_postfix(postfix(losses))
        if it % cfg.sample_every == 0 or last or out_of_time:
            sample(it)
        if it % cfg.checkpoint_every == 0 or last or out_of_time:
            run.save(trainer.state())
        if out_of_time:
            break
    bar.close()
    if not run.last.is_file():  # nothing to do (a finished run resumed): still leave a checkpoint
        run.save(trainer.state())
    return run.last
