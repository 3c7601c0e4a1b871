"""MR signal equations: the steady-state signal of a tissue (PD, T1, T2, ADC) for one sequence.

Each sequence has a parameter dataclass (times in ms, b in s/mm^2), a ``sample`` that draws scanner-like
settings from one ``torch.Generator``, and :func:`signal`, which works on scalars or tensors alike.

- ``t1w``: MPRAGE-like magnetisation-prepared gradient echo, approximated by an inversion recovery
  with an effective recovery time: ``S = PD |1 - 2 e^{-TI/T1} + e^{-TD/T1}|`` (WM > GM > CSF).
- ``t2w``: spin echo, ``S = PD (1 - e^{-TR/T1}) e^{-TE/T2}``.
- ``flair``: inversion recovery spin echo with TI nulling CSF,
  ``S = PD |1 - 2 e^{-TI/T1} + e^{-TR/T1}| e^{-TE/T2}``.
- ``dwi``: diffusion-weighted spin-echo EPI (trace), ``S = PD (1 - e^{-TR/T1}) e^{-TE/T2} e^{-b ADC}``;
  ``b = 0`` gives the reference image an ADC map is computed from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lesionsynth.ops import uniform

SEQUENCES = ("t1w", "t2w", "flair", "dwi")


@dataclass
class SequenceParams:
    """Scanner settings of one acquisition (ms; b in s/mm^2). Unused fields stay 0."""

    kind: str = "t2w"
    tr: float = 0.0
    te: float = 0.0
    ti: float = 0.0
    td: float = 0.0
    b: float = 0.0


def sample(gen: torch.Generator, kind: str, csf_t1: float = 4000.0) -> SequenceParams:
    """Draw clinical-range settings for sequence ``kind`` (FLAIR's TI nulls CSF of T1 ``csf_t1``, ±5 %)."""
    if kind == "t1w":
        return SequenceParams(kind, ti=uniform(gen, 800, 1100), td=uniform(gen, 1000, 1600))
    if kind == "t2w":
        return SequenceParams(kind, tr=uniform(gen, 3000, 6500), te=uniform(gen, 80, 120))
    if kind == "flair":
        tr = uniform(gen, 8000, 11000)
        null = csf_t1 * math.log(2.0 / (1.0 + math.exp(-tr / csf_t1)))
        return SequenceParams(kind, tr=tr, te=uniform(gen, 90, 140), ti=null * uniform(gen, 0.95, 1.05))
    if kind == "dwi":
        return SequenceParams(kind, tr=uniform(gen, 4000, 8000), te=uniform(gen, 65, 100), b=1000.0)
    raise ValueError(f"unknown sequence {kind!r} (one of {', '.join(SEQUENCES)})")


def signal(p: SequenceParams, pd, t1, t2, adc=0.0, b: float | None = None):
    """Signal of tissue(s) with proton density ``pd``, ``t1``/``t2`` (ms) and ``adc`` (1e-3 mm^2/s).

    ``b`` overrides the sequence's b-value (DWI only; 0 for the b = 0 image).
    """
    exp = (torch if any(torch.is_tensor(v) for v in (pd, t1, t2, adc)) else math).exp
    t1 = t1.clamp_min(1e-3) if torch.is_tensor(t1) else max(t1, 1e-3)
    t2 = t2.clamp_min(1e-3) if torch.is_tensor(t2) else max(t2, 1e-3)
    if p.kind == "t1w":
        return abs(pd * (1 - 2 * exp(-p.ti / t1) + exp(-(p.ti + p.td) / t1)))
    if p.kind == "t2w":
        return pd * (1 - exp(-p.tr / t1)) * exp(-p.te / t2)
    if p.kind == "flair":
        return pd * abs(1 - 2 * exp(-p.ti / t1) + exp(-p.tr / t1)) * exp(-p.te / t2)
    if p.kind == "dwi":
        bval = p.b if b is None else b
        return pd * (1 - exp(-p.tr / t1)) * exp(-p.te / t2) * exp(-bval * 1e-3 * adc)
    raise ValueError(f"unknown sequence {p.kind!r}")
