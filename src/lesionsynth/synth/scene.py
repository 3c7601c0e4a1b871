"""The scene steps: lesion and intensities, on the label map's grid, before the corruption chain.

They follow the transform contract of :mod:`lesionsynth.augment.base` (configs
:class:`~lesionsynth.lesions.ProceduralLesionConfig`, :class:`~lesionsynth.lesions.PasteConfig`,
:class:`~lesionsynth.synth.intensities.IntensityConfig`) on a :class:`Scene`: a
:class:`~lesionsynth.augment.base.Sample` that also carries the label map and the lesion.
:meth:`lesionsynth.synth.SynthGenerator.render` applies, in order: a lesion mask (:func:`apply_procedural_lesion`,
or a real mask placed by the generator), :func:`apply_paste`, :func:`apply_intensity`, the corruption chain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from lesionsynth.augment.base import Sample
from lesionsynth.labels.sources import LabelMap
from lesionsynth.lesions import PasteParams, ProceduralLesionParams, apply_procedural, paste_lesion
from lesionsynth.synth.intensities import IntensityParams, render_lesion, render_tissue


@dataclass
class Scene(Sample):
    """A sample being built on a label map's grid (``image`` is empty until :func:`apply_intensity`).

    Attributes:
        label_map: what the intensities are drawn for.
        lesion_index: the schema's lesion class (what :func:`apply_paste` writes into ``labels``).
        lesion: the binary lesion mask (X, Y, Z); after :func:`apply_paste`, its Soft-CP probability inside
            ``lesion_box``.
        lesion_box: the box around the lesion that pasting works in.
        lesion_weight: the lesion intensity's mixing weight inside ``lesion_box``.
    """

    label_map: LabelMap | None = None
    lesion_index: int = -1
    lesion: torch.Tensor | None = None
    lesion_box: tuple[slice, ...] | None = None
    lesion_weight: torch.Tensor | None = None


def apply_procedural_lesion(p: ProceduralLesionParams, s: Scene) -> Scene:
    """A procedural lesion inside the scene's mask (the brain)."""
    assert s.mask is not None
    return replace(s, lesion=apply_procedural(p, s.mask, s.affine))


def apply_paste(p: PasteParams, s: Scene) -> Scene:
    """Soft-CP and infarct grade in a box around the lesion: the lesion class where its probability
    exceeds 0.5, and the mixing weight :func:`apply_intensity` blends the lesion intensity with."""
    assert s.lesion is not None and s.mask is not None and s.labels is not None
    mask, shape = s.lesion, s.lesion.shape
    margin = int(np.ceil(3 * p.softcp_sigma_mm / float(np.min(np.abs(s.affine[:3, :3]).sum(0))))) + 2
    box = []
    for ax in range(3):  # bounding box from per-axis projections (cheaper than nonzero())
        nz = mask.amax(dim=tuple(d for d in range(3) if d != ax)).nonzero()
        box.append(slice(max(int(nz[0]) - margin, 0), min(int(nz[-1]) + margin + 1, shape[ax])))
    sl = tuple(box)
    alpha, weight = paste_lesion(mask[sl], s.mask[sl], s.affine, p)
    labels = s.labels.clone()
    labels[sl][alpha > 0.5] = s.lesion_index  # labels[sl] is a view: this writes into labels
    return replace(s, labels=labels, lesion=alpha, lesion_box=sl, lesion_weight=weight)


def apply_intensity(p: IntensityParams, s: Scene) -> Scene:
    """The label map's random Gaussian intensities, and the lesion's blended in where it was pasted."""
    assert s.label_map is not None
    image = render_tissue(p, s.label_map)
    if s.lesion_weight is not None and s.lesion_box is not None:
        sl, w = s.lesion_box, s.lesion_weight
        image[sl] = (1 - w) * image[sl] + w * render_lesion(p, tuple(w.shape), image.device)
    return s.with_image(image)
