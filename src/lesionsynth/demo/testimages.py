"""Realistic test images for the demo: the real MNI152 T1 template with a pasted chronic stroke.

The T1 image is nilearn's MNI152 2009 template. A procedural lesion (seeded) is placed in the left
hemisphere's white/grey matter and given the intensity of CSF with a soft rim (a chronic infarct is
CSF-like, dark in T1). A T2-like contrast is made by inverting the T1 intensities inside the head
(CSF and lesion bright, white matter dark). Both are saved with their truth (tissue labels + lesion).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lesionsynth.io.nifti import save_volume
from lesionsynth.labels.sources import mni_tissue_probs
from lesionsynth.lesions import ProceduralLesionConfig, apply_procedural, sample_procedural
from lesionsynth.ops import gaussian_blur


@dataclass
class TestCase:
    name: str
    image: Path
    truth: Path


def make_stroke_images(out_dir: str | Path, seed: int = 2024, volume_ml: tuple[float, float] = (40.0, 60.0)
                       ) -> list[TestCase]:
    """Write ``T1_stroke`` and ``T2like_stroke`` images and their truth label maps into ``out_dir``.

    Returns the written cases (image path and truth path each).
    """
    out = Path(out_dir)
    probs, affine, t1 = mni_tissue_probs()
    tissue = np.concatenate([probs, np.zeros_like(probs[:1])]).argmax(0)  # schema order bg,gm,wm,pv,csf
    brain = torch.from_numpy((tissue == 2) | (tissue == 1) | (tissue == 3))
    g = torch.Generator().manual_seed(seed)
    cfg = ProceduralLesionConfig(volume_ml=volume_ml, components=(1, 1), hemisphere="left",
                                 roughness=(0.5, 0.8))
    p = sample_procedural(g, cfg, brain, affine)
    lesion = apply_procedural(p, brain, affine).numpy()
    soft = gaussian_blur(torch.from_numpy(lesion), 1.0).numpy().clip(0, 1)
    csf_val = float(np.median(t1[probs[4] > 0.9]))
    t1_les = (1 - soft) * t1 + soft * csf_val * 0.9
    head = t1 > np.percentile(t1[t1 > 0], 2) * 0.5
    hi = np.percentile(t1_les[head], 99.5)
    t2 = np.where(head, hi - t1_les.clip(0, hi), 0.0).astype(np.float32)
    truth = tissue.astype(np.uint8)
    truth[soft > 0.5] = 5
    return [TestCase(name, save_volume(out / "images" / f"{name}.nii.gz", img, affine),
                     save_volume(out / "truth" / f"{name}.nii.gz", truth, affine))
            for name, img in (("T1_stroke", t1_les.astype(np.float32)), ("T2like_stroke", t2))]
