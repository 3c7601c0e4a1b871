"""Compute devices: one parser for every verb's ``--device`` and every config's ``device``."""

from __future__ import annotations

import torch

from lesionsynth.errors import InputError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """A device name -> a device that exists on this machine.

    Args:
        name: ``auto`` (or None: CUDA when available, else CPU), ``cpu``, ``cuda`` (``gpu`` is accepted
            for it), ``cuda:N`` or ``mps``.
        local_rank: which GPU a bare ``cuda`` means (the process's rank on its node under torchrun).

    Raises:
        InputError: one line when the name is not a device or the device is not available here.
    """
    if isinstance(name, torch.device):
        spec = str(name)
    else:
        spec = str(name if name is not None else "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "gpu" or spec.startswith("gpu:"):
        spec = "cuda" + spec[3:]
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {name}: not a device (use {CHOICES})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
        n = torch.cuda.device_count()
        if dev.index is None:
            return torch.device("cuda", local_rank % max(n, 1))
        if dev.index >= n:
            raise InputError(f"--device {name}: this machine has {n} CUDA device(s) (cuda:0 to cuda:{n - 1})")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"--device {name}: Apple MPS is not available on this machine (use cpu or auto)")
        return dev
    if dev.type == "cpu":
        return dev
    raise InputError(f"--device {name}: unsupported device type '{dev.type}' (use {CHOICES})")
