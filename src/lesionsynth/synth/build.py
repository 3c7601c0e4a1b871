"""Write a synthetic nnU-Net-style training set: the library function behind ``lesionsynth synth``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lesionsynth import argtypes
from lesionsynth.config import to_dict
from lesionsynth.data import case_done, write_case, write_dataset_json
from lesionsynth.data.folder import resume_generated_set
from lesionsynth.devices import resolve_device
from lesionsynth.errors import InputError
from lesionsynth.io.atomic import remove_stale_temporaries
from lesionsynth.log import tqdm
from lesionsynth.synth.generator import SynthConfig, SynthGenerator
from lesionsynth.viz import save_preview


@dataclass
class BuildResult:
    """What :func:`build_dataset` did: cases written now, cases found complete, the folder."""

    written: int
    skipped: int
    out: Path


def build_dataset(cfg: SynthConfig, out: str | Path, n: int, seed: int = 0, device: str = "cpu",
                  preview: bool = False, part: int = 0, num_parts: int = 1) -> BuildResult:
    """Write cases ``part, part + num_parts, ...`` of ``n`` into ``out`` (``imagesTr``, ``labelsTr``,
    ``dataset.json``; ``previews/`` with ``preview``).

    Case ``i`` is a function of ``(seed, i)``; complete cases already in ``out`` are kept (a killed run
    resumes), and a folder made with another seed or config is refused.

    Raises:
        InputError, ConfigError: bad ``n``, parts, or a folder holding another set.
    """
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    argtypes.check_parts(part, num_parts)
    out = Path(out)
    signature = {"generator": "synth", "seed": seed, "config": to_dict(cfg)}
    n_total = resume_generated_set(out, signature, n)
    gen = SynthGenerator(cfg, device=resolve_device(device))
    schema = gen.schema
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, older_than_s=600 if num_parts > 1 else 0)
    write_dataset_json(out, {"0": "synthetic"}, {c: i for i, c in enumerate(schema.classes)}, n_total,
                       extra={"lesionsynth": {**signature, "schema": schema.to_dict()}})
    mine = range(part, n, num_parts)
    todo = [i for i in mine if not case_done(out, f"case_{i:04d}")]
    for i in tqdm(todo, desc="synth", unit="case", file=sys.stderr, disable=None):
        cid = f"case_{i:04d}"
        s = gen.sample(i, seed)
        img = s.image[0].cpu().numpy()
        tgt = s.target.cpu().numpy().astype(np.uint8)
        if preview:
            save_preview(out / "previews" / f"{cid}.png", img, lesion=tgt == schema.lesion_index,
                         labels=tgt, title=f"{cid} (seed {seed})")
        write_case(out, cid, [img], tgt, s.affine, params=s.params)
    return BuildResult(len(todo), len(mine) - len(todo), out)
