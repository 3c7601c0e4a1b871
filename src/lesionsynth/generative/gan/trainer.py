"""What both GAN trainers share: generator and critic with their Adam optimisers, the checkpointed state,
and the run (resume, loop) on the run engine (:mod:`lesionsynth.runs`).

A GAN checkpoint (kind ``mask-gan`` or ``translator``) holds ``config``, ``model`` (the generator's
``state_dict``: all that sampling or rendering needs), ``critic``, ``opt_g``, ``opt_d``, ``iteration``
(finished generator steps), ``seed`` and ``rng``; the trainers draw step ``t``'s random numbers from a
generator seeded with ``case_seed(seed, t)``, so a resumed run continues exactly where an uninterrupted
one would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lesionsynth.config import to_dict
from lesionsynth.runs import Intervals, RunFolder, read_run_checkpoint, run_iterations, save_run_checkpoint
from lesionsynth.runs.checkpoint import rng_states, set_rng_states


class GANTrainer:
    """Base of the mask GAN's and the translator's trainers: subclasses build ``G`` and ``D`` and call
    :meth:`_optimisers`, and define ``step() -> losses`` (one generator step)."""

    kind: str
    cfg: Any
    seed: int
    G: torch.nn.Module
    D: torch.nn.Module

    def _optimisers(self, device: torch.device) -> None:
        self.G.to(device)
        self.D.to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr_g, betas=self.cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr_d, betas=self.cfg.betas)
        self.iteration = 0

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {"config": to_dict(self.cfg), "model": self.G.state_dict(), "critic": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "iteration": self.iteration,
                "seed": self.seed}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.G.load_state_dict(ckpt["model"])
        self.D.load_state_dict(ckpt["critic"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.iteration = int(ckpt["iteration"])
        if "rng" in ckpt:
            set_rng_states(ckpt["rng"])


def resume_state(run: RunFolder, kind: str, cfg: Any, seed: int, resume: bool) -> tuple[dict[str, Any] | None, int]:
    """The checkpoint to continue (or None) and the seed to train with (on resume the run's own); a
    resumed run's config may differ from the recorded one only in runtime and length keys."""
    if not run.resumable(to_dict(cfg), resume):
        return None, seed
    ckpt = read_run_checkpoint(run.last, kind)
    return ckpt, int(ckpt["seed"])


def train_gan(run: RunFolder, trainer: GANTrainer, ckpt: dict[str, Any] | None, device: torch.device, desc: str,
              sample: Callable[[int], None], postfix: Callable[[dict[str, float]], dict[str, str]],
              time_limit_min: float | None, progress: bool) -> Path:
    """Restore ``ckpt`` into ``trainer``, record the run and train to ``cfg.iterations``; returns last.pt."""
    if ckpt is not None:
        trainer.load_state(ckpt)
    run.start(to_dict(trainer.cfg), resume=ckpt is not None, extra={"device": str(device), "seed": trainer.seed})

    def save(it: int) -> None:
        save_run_checkpoint(run.last, trainer.kind, {**trainer.state(), "rng": rng_states()})

    cfg = trainer.cfg
    every = Intervals(cfg.log_every, cfg.sample_every, cfg.checkpoint_every)
    run_iterations(run, trainer.iteration, cfg.iterations, every, lambda it: trainer.step(), save, sample, desc,
                   postfix, time_limit_min, progress)
    return run.last
