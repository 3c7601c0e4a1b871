"""Compute devices and mixed precision: one parser for every device name (the CLIs' ``--device``, the configs'
``device``), one vocabulary for training's ``amp`` and prediction's ``--precision``."""

from __future__ import annotations

import contextlib

import torch

from lesionsynth.errors import ConfigError, InputError

CHOICES = "auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``auto``: bf16 autocast on CUDA when the GPU supports it, else fp16, and fp32 on any other device;
``fp32``: no autocast; ``bf16``/``fp16``: autocast to that type on any device."""


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """A device name -> a device that exists on this machine.

    Args:
        name: ``auto`` (or None: CUDA when available, else CPU), ``cpu``, ``cuda`` (``gpu`` is accepted
            for it), ``cuda:N`` or ``mps``.
        local_rank: which GPU a bare ``cuda`` means (the process's rank on its node under torchrun).

    Raises:
        InputError: one line when the name is not a device or the device is not available here.
    """
    spec = str(name if name is not None else "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "gpu" or spec.startswith("gpu:"):
        spec = "cuda" + spec[3:]
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise InputError(f"device {name!r}: not a device (use {CHOICES})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: CUDA is not available on this machine (use cpu or auto)")
        n = torch.cuda.device_count()
        if dev.index is None:
            return torch.device("cuda", local_rank % max(n, 1))
        if dev.index >= n:
            raise InputError(f"device {name!r}: this machine has {n} CUDA device(s) (cuda:0 to cuda:{n - 1})")
        return dev
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: Apple MPS is not available on this machine (use cpu or auto)")
    if dev.type not in ("cpu", "mps"):
        raise InputError(f"device {name!r}: unsupported device type '{dev.type}' (use {CHOICES})")
    return dev


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision mode (see :data:`PRECISIONS`) on ``device``; None: plain fp32.

    Raises:
        ConfigError: the mode is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)
