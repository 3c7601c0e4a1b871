"""Sources of healthy anatomy: the embedded MNI default, soft probability maps, hard label maps.

Every source yields a :class:`LabelMap` in *generation classes*: each generation class gets its own
random intensity, and maps onto one target class of the schema. For soft maps the generation classes
are the schema's classes; for hard label maps every source value is its own generation class (the
SynthSeg convention), so e.g. skull and scalp get different intensities although both are background.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lesionsynth.errors import InputError
from lesionsynth.io.nifti import Volume, find_images, image_ndim, load_volume, voxel_sizes
from lesionsynth.io.resample import resample_to_spacing
from lesionsynth.labels.schema import TISSUE, LabelMapping, LabelSchema, load_mapping


@dataclass
class LabelMap:
    """Healthy anatomy on a voxel grid.

    Exactly one of ``probs`` (soft, (G, X, Y, Z) float, sums to 1 over G) and ``index`` (hard, (X, Y, Z)
    int64 generation-class indices) is set.

    Attributes:
        affine: 4x4 voxel-to-world matrix.
        schema: the target schema.
        gen_to_target: target class of each generation class.
        gen_names: a name per generation class (source value or class name).
        probs: soft generation-class probabilities.
        index: hard generation-class index map.
        name: where it came from.
    """

    affine: np.ndarray
    schema: LabelSchema
    gen_to_target: list[int]
    gen_names: list[str]
    probs: torch.Tensor | None = None
    index: torch.Tensor | None = None
    name: str = "labels"

    @property
    def shape(self) -> tuple[int, int, int]:
        t = self.probs if self.probs is not None else self.index
        assert t is not None
        return tuple(t.shape[-3:])  # type: ignore[return-value]

    @property
    def num_gen(self) -> int:
        return len(self.gen_to_target)

    @property
    def device(self) -> torch.device:
        t = self.probs if self.probs is not None else self.index
        assert t is not None
        return t.device

    def to(self, device: torch.device | str) -> LabelMap:
        return replace(self, probs=None if self.probs is None else self.probs.to(device),
                       index=None if self.index is None else self.index.to(device))

    def target_probs_argmax(self) -> torch.Tensor:
        """Hard target labels (X, Y, Z), int64, in schema classes."""
        lut = torch.as_tensor(self.gen_to_target, device=self.device, dtype=torch.long)
        if self.index is not None:
            return lut[self.index]
        assert self.probs is not None
        K = self.schema.num_classes
        tp = torch.zeros((K, *self.shape), device=self.device, dtype=self.probs.dtype)
        tp.index_add_(0, lut, self.probs)
        return tp.argmax(0)

    def brain_mask(self) -> torch.Tensor:
        """Voxels whose target is not background (bool, (X, Y, Z))."""
        return self.target_probs_argmax() != self.schema.background_index


# The embedded default: nilearn's MNI152 2009 grey/white matter maps


def mni_tissue_probs(pv_threshold: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MNI152 (2009c, nilearn's bundled copy) tissue probabilities on the 1 mm grid.

    Classes: background, grey matter, white matter, GM/WM partial volume, CSF (the tissue schema
    without lesion). Definitions:

    - brain mask = nilearn's MNI152 brain mask OR (GM + WM > 0.1);
    - CSF = brain mask * (1 - GM - WM), clipped to [0, 1];
    - partial volume: with m = min(GM, WM), the share s = clip((m - t) / (0.5 - t), 0, 1) of the
      grey+white probability becomes partial volume (t = ``pv_threshold``): PV = s (GM + WM),
      GM' = (1 - s) GM, WM' = (1 - s) WM. PV is 0 where either tissue has probability <= t and takes
      all the tissue probability where GM = WM = 0.5. Probabilities still sum to one.

    Returns:
        probs (5, X, Y, Z) float32, affine, and the T1 template (X, Y, Z) float32 (for demos).
    """
    from nilearn import datasets

    gm_img = datasets.load_mni152_gm_template(resolution=1)
    gm = np.asarray(gm_img.get_fdata(), dtype=np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), dtype=np.float32)
    bm = np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata(), dtype=np.float32) > 0.5
    t1 = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)
    tissue = np.clip(gm + wm, 0, 1)
    scale = np.where(gm + wm > 1, 1.0 / np.maximum(gm + wm, 1e-6), 1.0)
    gm, wm = gm * scale, wm * scale
    mask = bm | (tissue > 0.1)
    csf = np.where(mask, 1.0 - gm - wm, 0.0).clip(0, 1).astype(np.float32)
    m = np.minimum(gm, wm)
    s = np.clip((m - pv_threshold) / (0.5 - pv_threshold), 0, 1)
    pv = s * (gm + wm)
    gm, wm = (1 - s) * gm, (1 - s) * wm
    bg = np.clip(1.0 - gm - wm - pv - csf, 0, 1)
    probs = np.stack([bg, gm, wm, pv, csf]).astype(np.float32)
    probs /= probs.sum(0, keepdims=True).clip(1e-6)
    return probs, np.asarray(gm_img.affine, dtype=np.float64), t1


def mni_default(resolution: float | None = None, schema: LabelSchema = TISSUE,
                pv_threshold: float = 0.25) -> LabelMap:
    """The embedded default label map (MNI152 2009 GM/WM/PV/CSF), optionally at another resolution.

    Args:
        resolution: voxel size in mm (None keeps the 1 mm grid).
        schema: target schema; must have the classes background, grey_matter, white_matter,
            partial_volume and csf.
        pv_threshold: see :func:`mni_tissue_probs`.
    """
    probs, affine, _ = mni_tissue_probs(pv_threshold)
    if resolution is not None and abs(resolution - 1.0) > 1e-6:
        t, affine = resample_to_spacing(torch.from_numpy(probs), affine, resolution, mode="linear")
        probs = t.numpy()
    names = ["background", "grey_matter", "white_matter", "partial_volume", "csf"]
    return LabelMap(affine=affine, schema=schema, gen_to_target=[schema.index(n) for n in names], gen_names=names,
                    probs=torch.from_numpy(np.ascontiguousarray(probs)), name="mni152")


def mni_t1_template() -> Volume:
    """The MNI152 2009 T1 template bundled with nilearn (1 mm, the default label map's grid)."""
    from nilearn import datasets

    img = datasets.load_mni152_template(resolution=1)
    return Volume(np.asarray(img.get_fdata(), dtype=np.float32), np.asarray(img.affine, dtype=np.float64))


# User label maps


def soft_maps(paths: list[str | Path] | str | Path, class_names: list[str] | None = None,
              schema: LabelSchema = TISSUE, resolution: float | None = None) -> LabelMap:
    """Tissue probability maps: one 3D file per class, or one 4D file (last axis = class).

    Args:
        paths: the file(s).
        class_names: the schema class of each map, in order. Default: the schema's classes without
            background and lesion, in order; background = 1 - sum of the others.
        schema: target schema.
        resolution: optional voxel size (mm) to resample to.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if len(paths) == 1:
        vol = load_volume(paths[0], allow_4d=True)
        if vol.data.ndim != 4:
            raise InputError(f"{paths[0]}: a single soft-map file must be 4D (one volume per class)")
        maps = np.moveaxis(vol.data, -1, 0)
        affine = vol.affine
    else:
        vols = [load_volume(p) for p in paths]
        affine = vols[0].affine
        for v in vols[1:]:
            if v.shape != vols[0].shape or not np.allclose(v.affine, affine, atol=1e-4):
                raise InputError(f"{v.path}: not on the same grid as {vols[0].path}")
        maps = np.stack([v.data for v in vols])
    names = class_names or [schema.classes[i] for i in schema.tissue_indices]
    if len(names) != maps.shape[0]:
        raise InputError(f"{paths[0]}: {maps.shape[0]} maps given for {len(names)} classes ({names})")
    if maps.min() < -1e-3 or maps.max() > 1 + 1e-3:
        raise InputError(f"{paths[0]}: probability maps must lie in [0, 1]")
    maps = maps.clip(0, 1).astype(np.float32)
    if schema.background not in names:
        bg = np.clip(1.0 - maps.sum(0), 0, 1)[None]
        maps = np.concatenate([bg, maps])
        names = [schema.background, *names]
    maps /= maps.sum(0, keepdims=True).clip(1e-6)
    t = torch.from_numpy(maps)
    if resolution is not None:
        t, affine = resample_to_spacing(t, affine, resolution, mode="linear")
    return LabelMap(affine=affine, schema=schema, gen_to_target=[schema.index(n) for n in names],
                    gen_names=list(names), probs=t, name=Path(paths[0]).name)


def hard_labelmap(path: str | Path, mapping: str | Path | LabelMapping = "freesurfer-to-tissue",
                  resolution: float | None = None) -> LabelMap:
    """An integer label map (e.g. FreeSurfer/SynthSeg) with a mapping table onto the schema.

    Every distinct source value becomes its own generation class. A value missing from the table is a
    one-line error naming the file and the value.
    """
    mapping = load_mapping(mapping)
    vol = load_volume(path)
    data = vol.data
    if not np.allclose(data, np.round(data), atol=1e-3):
        raise InputError(f"{path}: a hard label map must hold integer values")
    values, inverse = np.unique(np.round(data).astype(np.int64), return_inverse=True)
    gen_to_target = mapping.lut(values, source=str(path)).tolist()
    index = torch.from_numpy(inverse.reshape(data.shape).astype(np.int64))
    affine = vol.affine
    if resolution is not None and not np.allclose(voxel_sizes(affine), resolution):
        index, affine = resample_to_spacing(index, affine, resolution, mode="nearest")
    return LabelMap(affine=affine, schema=mapping.schema, gen_to_target=gen_to_target,
                    gen_names=[str(v) for v in values], index=index, name=Path(path).name)


def merge_by_target(lm: LabelMap) -> LabelMap:
    """A hard label map whose non-background source values share one generation class per target
    class (all grey-matter labels one class, ...); background values (skull, scalp, eyes, ...) keep their
    own. Soft maps are returned unchanged. Fewer, larger intensity classes: tissue looks like tissue, an
    easier task for small training budgets than the SynthSeg convention of one class per label."""
    if lm.index is None:
        return lm
    key_to_new: dict[tuple[str, int], int] = {}
    names: list[str] = []
    targets: list[int] = []
    remap: list[int] = []
    for g, t in enumerate(lm.gen_to_target):
        key = ("bg", g) if t == lm.schema.background_index else ("tissue", t)
        if key not in key_to_new:
            key_to_new[key] = len(names)
            names.append(lm.gen_names[g] if key[0] == "bg" else lm.schema.classes[t])
            targets.append(t)
        remap.append(key_to_new[key])
    index = torch.tensor(remap, dtype=torch.long, device=lm.index.device)[lm.index]
    return replace(lm, gen_to_target=targets, gen_names=names, index=index)


def load_label_source(spec: str | Path, schema: LabelSchema = TISSUE,
                      mapping: str | Path | LabelMapping | None = None,
                      resolution: float | None = None) -> list[LabelMap]:
    """Resolve a ``--labels`` argument: ``default``, a file, or a folder of files.

    Integer-valued 3D files are hard label maps (through ``mapping``, default FreeSurfer -> tissue);
    4D float files are soft maps (classes in schema order without background and lesion).
    """
    if str(spec) == "default":
        return [mni_default(resolution=resolution, schema=schema)]
    files = find_images(Path(spec))
    if not files:
        raise InputError(f"{Path(spec)}: no NIfTI label maps found")
    return [soft_maps(f, schema=schema, resolution=resolution) if image_ndim(f) == 4
            else hard_labelmap(f, mapping or "freesurfer-to-tissue", resolution=resolution) for f in files]
