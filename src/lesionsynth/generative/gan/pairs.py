"""Paired (label map, image) training data for the label -> image translators.

Sources:

- ``mni`` (default, no data needed): nilearn's MNI152 2009 T1 template and the default tissue label
  map (``mni_default(...).target_probs_argmax()``), both at the translator's spacing. One anatomy
  only: variety comes from random paired deformations.
- a dataset folder in the nnU-Net layout (``imagesTr``/``labelsTr``, ``dataset.json`` naming the
  label values with the schema's class names), e.g. real T1 scans with tissue segmentations.

**Simulated lesions.** The MNI template has no lesion, so its pairs would never show the translator
the lesion class. With probability ``p_lesion`` a lesion (procedural, or a real mask from a folder)
is pasted into the pair: the labels become the lesion class where the Soft-CP lesion probability
exceeds 0.5, and the image is darkened there towards a lesion intensity drawn between the CSF median
(``lesion_intensity`` 0) and the grey-matter median (1) of that image, mixed with the infarct-grade
weight of :func:`lesionsynth.lesions.paste_lesion`. The lesion appearance the translator learns from
MNI pairs is therefore this simulation (a chronic, T1-hypointense lesion), not real lesion texture.

**Paired deformations.** Every pair is deformed by one random affine + elastic transform
(:mod:`lesionsynth.augment.spatial`), sampled trilinearly for the image and by nearest neighbour for
the labels through the same grid, and cropped to ``shape`` around the brain's centre. For 2D
translators an axial slice is chosen first (through the lesion with probability ``p_lesion_slice``) and
only the deformed plane through it is sampled (an (X, Y, 1) crop centred on that slice).

Images are scaled so the 99.5th percentile inside the brain is 1, clipped to [0, 1] and mapped to
[-1, 1] (the translators' tanh range).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lesionsynth.augment import spatial
from lesionsynth.augment.base import Sample
from lesionsynth.data import read_dataset
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io.nifti import load_volume, voxel_sizes
from lesionsynth.io.resample import reorient_to_ras, resample_to_spacing
from lesionsynth.labels import LabelSchema
from lesionsynth.lesions import (
    LesionFolder,
    PasteConfig,
    ProceduralLesionConfig,
    apply_procedural,
    paste_lesion,
    sample_paste,
    sample_procedural,
)
from lesionsynth.ops import bernoulli, gaussian_blur, smooth_noise, uniform
from lesionsynth.preprocess import scale_unit


@dataclass
class DeformConfig:
    """Random paired deformation (mapped onto :class:`lesionsynth.augment.spatial.SpatialConfig`).

    Attributes:
        p_affine: probability of a random affine.
        rotation_deg: max rotation per axis, degrees.
        scaling: max relative scaling per axis.
        translation_mm: max translation per axis, mm.
        p_elastic: probability of an elastic deformation.
        elastic_max_mm: max displacement standard deviation, mm.
        elastic_spacing_mm: control-point spacing of the displacement field, mm.
    """

    p_affine: float = 1.0
    rotation_deg: float = 8.0
    scaling: float = 0.08
    translation_mm: float = 5.0
    p_elastic: float = 0.8
    elastic_max_mm: float = 3.0
    elastic_spacing_mm: float = 32.0

    def spatial_config(self, shape: tuple[int, int, int]) -> spatial.SpatialConfig:
        return spatial.SpatialConfig(
            crop_size=tuple(shape), spacing=None, p_affine=self.p_affine, rotation_deg=self.rotation_deg,
            scaling=self.scaling, shear=0.0, translation_mm=self.translation_mm, p_elastic=self.p_elastic,
            elastic_max_mm=self.elastic_max_mm, elastic_spacing_mm=self.elastic_spacing_mm,
            crop_jitter_mm=0.0)


@dataclass
class PairConfig:
    """Where translator training pairs come from (see the module docstring).

    Attributes:
        source: ``mni`` or a dataset folder (nnU-Net layout) of images with label maps.
        channel: which image channel of a dataset folder to use.
        max_cases: use only the first N cases of a dataset folder (sorted by name); null for all.
        lesions: ``procedural``, ``none``, or a folder of binary lesion masks (any grid, e.g. MNI).
        p_lesion: probability that a pair gets a simulated lesion.
        lesion_volume_ml: volume range of procedural lesions.
        lesion_intensity: range of the lesion intensity: 0 = CSF median, 1 = grey-matter median.
        lesion_texture: relative amplitude of smooth multiplicative noise inside the lesion.
        grade_min: range of the infarct grade's minimum (partial lesion darkening).
        p_lesion_slice: 2D only: probability of slicing through the lesion when there is one.
        deform: random paired deformation.
    """

    source: str = "mni"
    channel: int = 0
    max_cases: int | None = None
    lesions: str = "procedural"
    p_lesion: float = 0.8
    lesion_volume_ml: tuple[float, float] = (3.0, 150.0)
    lesion_intensity: tuple[float, float] = (0.0, 0.6)
    lesion_texture: float = 0.1
    grade_min: tuple[float, float] = (0.6, 1.0)
    p_lesion_slice: float = 0.7
    deform: DeformConfig = field(default_factory=DeformConfig)


@dataclass
class Base:
    """One undeformed anatomy at the translator's spacing."""

    image: torch.Tensor    # (X, Y, Z) float in [0, 1]
    labels: torch.Tensor   # (X, Y, Z) int64 schema classes
    affine: np.ndarray
    centre_vox: np.ndarray
    csf: float
    gm: float
    name: str


def _downsample(image: np.ndarray, affine: np.ndarray, spacing: float) -> tuple[torch.Tensor, np.ndarray]:
    """Anti-alias (sigma 0.4 x (spacing / input spacing - 1) voxels) and resample linearly to ``spacing``."""
    sigma = [max(0.0, 0.4 * (spacing / s - 1.0)) for s in voxel_sizes(affine)]
    return resample_to_spacing(gaussian_blur(torch.from_numpy(image), sigma), affine, spacing, mode="linear")


def make_base(image: np.ndarray, labels: np.ndarray, affine: np.ndarray, spacing: float, schema: LabelSchema,
              name: str) -> Base:
    """Reorient to RAS, resample to ``spacing`` (image: blurred + linear; labels: nearest), normalise."""
    img_r, aff_r = reorient_to_ras(np.asarray(image, dtype=np.float32), affine)
    lab_r, _ = reorient_to_ras(np.asarray(labels), affine)
    img_t, new_aff = _downsample(img_r, aff_r, spacing)
    lab_t, _ = resample_to_spacing(torch.from_numpy(lab_r.astype(np.int64)), aff_r, spacing, mode="nearest")
    return base_from_tensors(img_t, lab_t.long(), new_aff, schema, name)


def base_from_tensors(image: torch.Tensor, labels: torch.Tensor, affine: np.ndarray, schema: LabelSchema,
                      name: str) -> Base:
    brain = labels != schema.background_index
    if not brain.any():
        raise InputError(f"{name}: label map has no brain (only background)")
    img = scale_unit(image.float(), brain)  # the brain's 99.5th percentile -> 1
    centre = brain.nonzero().float().mean(0).numpy().astype(np.float64)

    def median(cls: str, default: float) -> float:
        if cls not in schema.classes:
            return default
        sel = labels == schema.index(cls)
        return float(img[sel].median()) if sel.any() else default

    return Base(img, labels.long(), np.asarray(affine), centre, median("csf", 0.2),
                median("grey_matter", 0.6), name)


def mni_base(spacing: float, schema: LabelSchema) -> Base:
    """The MNI152 T1 template and its tissue labels at ``spacing``."""
    from lesionsynth.labels import mni_default, mni_t1_template

    t1 = mni_t1_template()
    lm = mni_default(resolution=spacing, schema=schema)
    img, aff = _downsample(t1.data, t1.affine, spacing)
    if tuple(img.shape) != lm.shape or not np.allclose(aff, lm.affine, atol=1e-4):
        raise ConfigError("MNI template and label map grids differ (nilearn data mismatch)")
    return base_from_tensors(img, lm.target_probs_argmax(), aff, schema, "mni152")


def dataset_bases(root: str | Path, spacing: float, schema: LabelSchema, channel: int = 0,
                  max_cases: int | None = None) -> list[Base]:
    """The cases (the first ``max_cases``) of an nnU-Net-style folder; label names must be schema classes."""
    ds = read_dataset(root)
    lut: dict[int, int] = {}
    for name, value in ds.labels.items():
        if name not in schema.classes:
            raise InputError(f"{Path(root) / 'dataset.json'}: label '{name}' is not a class of schema "
                             f"{schema.name} ({', '.join(schema.classes)})")
        lut[int(value)] = schema.index(name)
    bases = []
    for case in ds.cases[:max_cases]:
        if channel >= len(case.images):
            raise InputError(f"{root}: case {case.id} has no channel {channel}")
        img = load_volume(case.images[channel])
        lab = load_volume(case.label, dtype=np.float32)
        if img.shape != lab.shape:
            raise InputError(f"{case.label}: shape {lab.shape} differs from its image's {img.shape}")
        values, inverse = np.unique(np.round(lab.data).astype(np.int64), return_inverse=True)
        unknown = [v for v in values.tolist() if v not in lut]
        if unknown:
            raise InputError(f"{case.label}: label value {unknown[0]} is not named in dataset.json 'labels'")
        mapped = np.asarray([lut[v] for v in values.tolist()], dtype=np.int64)[inverse].reshape(lab.shape)
        bases.append(make_base(img.data, mapped, img.affine, spacing, schema, case.id))
    return bases


class PairSampler:
    """Draws random (labels, image) pairs: 3D crops of ``shape`` or their axial slices.

    Args:
        cfg: pair configuration.
        schema: label schema (must have a lesion class for lesion pasting).
        spacing: voxel size of the pairs, mm.
        shape: 3D crop shape (X, Y, Z); 2D pairs are (X, Y) slices of it.
        spatial_dims: 2 or 3.
        bases: pre-built anatomies (default: from ``cfg.source``).
    """

    def __init__(self, cfg: PairConfig, schema: LabelSchema, spacing: float, shape: tuple[int, int, int],
                 spatial_dims: int = 3, bases: list[Base] | None = None):
        self.cfg, self.schema, self.spacing = cfg, schema, float(spacing)
        self.shape = tuple(int(s) for s in shape)
        self.spatial_dims = spatial_dims
        if bases is None:
            bases = [mni_base(spacing, schema)] if cfg.source == "mni" else dataset_bases(
                cfg.source, spacing, schema, cfg.channel, cfg.max_cases)
        self.bases = bases
        self.lesion_folder = LesionFolder(cfg.lesions) if cfg.lesions not in ("procedural", "none") else None
        if cfg.p_lesion > 0 and cfg.lesions != "none" and schema.lesion_index is None:
            raise ConfigError(f"schema {schema.name} has no lesion class; set pairs.lesions: none")
        self.spatial_cfg = cfg.deform.spatial_config(self.shape)
        self.spatial_cfg_2d = cfg.deform.spatial_config((self.shape[0], self.shape[1], 1))

    def _lesion(self, gen: torch.Generator, base: Base) -> torch.Tensor | None:
        cfg = self.cfg
        if cfg.lesions == "none" or not bernoulli(gen, cfg.p_lesion):
            return None
        brain = base.labels != self.schema.background_index
        if self.lesion_folder is not None:
            i = int(torch.randint(0, len(self.lesion_folder), (), generator=gen))
            flip = bernoulli(gen, 0.5)
            return self.lesion_folder.load(i, base.affine, tuple(base.labels.shape), flip=flip)
        tissue = brain & (base.labels != self.schema.index("csf")) if "csf" in self.schema.classes else brain
        params = sample_procedural(gen, ProceduralLesionConfig(volume_ml=cfg.lesion_volume_ml), tissue, base.affine)
        return apply_procedural(params, tissue, base.affine)

    def sample(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One pair: labels (int64) and image (float in [-1, 1]), 3D (X, Y, Z) or 2D (X, Y)."""
        cfg = self.cfg
        base = self.bases[int(torch.randint(0, len(self.bases), (), generator=gen))]
        labels, image = base.labels.clone(), base.image.clone()
        mask = self._lesion(gen, base)
        if mask is not None and mask.any():
            brain = labels != self.schema.background_index
            pp = sample_paste(gen, PasteConfig(grade_min=cfg.grade_min))
            alpha, weight = paste_lesion(mask, brain, base.affine, pp)
            level = base.csf + uniform(gen, *cfg.lesion_intensity) * (base.gm - base.csf)
            tex_seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
            texture = smooth_noise(tuple(image.shape), 4.0, torch.Generator().manual_seed(tex_seed))
            lesion_img = (level * (1.0 + cfg.lesion_texture * texture)).clamp(0, 1)
            image = (1.0 - weight) * image + weight * lesion_img
            labels[alpha > 0.5] = self.schema.lesion_index  # type: ignore[assignment]
        centre, scfg = base.centre_vox, self.spatial_cfg
        if self.spatial_dims == 2:
            # deform and sample only the one (oblique) plane through the chosen axial slice
            centre = base.centre_vox.copy()
            centre[2] = self._slice_index(gen, labels)
            scfg = self.spatial_cfg_2d
        p = spatial.sample(gen, scfg)
        with warnings.catch_warnings():  # torch notes unit-size grids (the 2D plane); they sample correctly
            warnings.filterwarnings("ignore", message=".*unit-size grids.*")
            out = spatial.apply(p, Sample(image, labels, base.affine, centre_vox=centre))
        image, labels = out.image, out.labels
        assert labels is not None
        image = image * 2.0 - 1.0
        if self.spatial_dims == 2:
            return labels[:, :, 0], image[:, :, 0]
        return labels, image

    def _slice_index(self, gen: torch.Generator, labels: torch.Tensor) -> int:
        """An axial slice of the undeformed pair: through the lesion (with ``p_lesion_slice``) or the brain."""
        li = self.schema.lesion_index
        if li is not None and bernoulli(gen, self.cfg.p_lesion_slice):
            ks = (labels == li).any(0).any(0).nonzero()[:, 0]
            if len(ks):
                return int(ks[int(torch.randint(0, len(ks), (), generator=gen))])
        brain = (labels != self.schema.background_index).float().mean((0, 1))
        ks = (brain > 0.05).nonzero()[:, 0]
        if len(ks) == 0:
            ks = torch.arange(labels.shape[2])
        return int(ks[int(torch.randint(0, len(ks), (), generator=gen))])

    def batch(self, gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs stacked: labels (n, *S) int64 and images (n, 1, *S)."""
        pairs = [self.sample(gen) for _ in range(n)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])[:, None]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, *S) int -> (B, K, *S) float one-hot."""
    oh = torch.nn.functional.one_hot(labels.long().clamp(0, num_classes - 1), num_classes)
    return oh.movedim(-1, 1).float()
