"""Training data of the LDMs: label maps (and images) on one grid, and the volume-ratio condition.

Every source is resampled through its affine onto the grid of :class:`GridConfig` (nearest neighbour
for hard labels, trilinear then arg-max for soft maps, trilinear then > 0.5 for lesion masks, trilinear
for images), so maps from MNI, FreeSurfer native spaces or dataset folders all end up as
``(N, X, Y, Z)`` uint8 arrays of schema classes.

The condition of the mask LDM is the volume ratio r = (voxels of the condition class) / (intracranial
voxels), ICV = non-background voxels of the map; for lesion-only masks (no anatomy) ICV is the MNI152
brain-mask volume on the grid, so r is proportional to lesion volume. c = (r - r_min) / (r_max - r_min)
over the training set, stored with the models (:class:`Condition`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from lesionsynth.config import to_dict
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative import centred_affine, read_cache
from lesionsynth.generative.ldm.config import DataConfig, GridConfig, LDMConfig
from lesionsynth.io.nifti import load_volume
from lesionsynth.io.resample import resample_to_grid
from lesionsynth.labels import (
    LabelMap,
    LabelMapping,
    LabelSchema,
    load_label_source,
    load_schema,
    mni_default,
)
from lesionsynth.labels.schema import builtin_tables
from lesionsynth.lesions import LesionFolder
from lesionsynth.preprocess import scale_unit

#: schema of lesion-only masks
LESION_MASK = LabelSchema(name="lesion-mask", classes=("background", "lesion"))

# ----------------------------------------------------------------------------------------------------
# grid
# ----------------------------------------------------------------------------------------------------


def grid_affine(grid: GridConfig, centre: tuple[float, float, float] | np.ndarray | None = None
                ) -> np.ndarray:
    """RAS affine of the grid, centred on ``centre`` (default: the config's centre, else the origin)."""
    return centred_affine(grid.spacing, grid.shape, centre if centre is not None else (grid.centre or (0.0, 0.0, 0.0)))


def fov_centre(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World coordinates of the centre of a volume's field of view."""
    return (np.asarray(affine) @ np.append((np.asarray(shape[:3], dtype=np.float64) - 1) / 2.0, 1.0))[:3]


def _affine_for(grid: GridConfig, src_affine: np.ndarray, src_shape: tuple[int, ...]) -> np.ndarray:
    return grid_affine(grid, None if grid.centre is not None else fov_centre(src_affine, src_shape))


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, X, Y, Z) integer labels -> (B, K, X, Y, Z) float one-hot."""
    return F.one_hot(labels.long(), num_classes).permute(0, 4, 1, 2, 3).float()


# ----------------------------------------------------------------------------------------------------
# condition
# ----------------------------------------------------------------------------------------------------


@dataclass
class Condition:
    """The scalar condition c of a mask LDM: a min-max normalised volume ratio.

    Attributes:
        label: name of the condition class.
        index: its class index.
        r_min: smallest training ratio (c = 0).
        r_max: largest training ratio (c = 1).
        icv_voxels: fixed ICV in grid voxels (lesion-only masks), or None (ICV = non-background voxels).
        voxel_ml: volume of one grid voxel in ml.
        background: index of the background class.
    """

    label: str
    index: int
    r_min: float
    r_max: float
    icv_voxels: float | None
    voxel_ml: float
    background: int = 0

    def normalise(self, ratio: np.ndarray | torch.Tensor | float) -> np.ndarray | torch.Tensor | float:
        return (ratio - self.r_min) / (self.r_max - self.r_min)

    def ratio(self, c: np.ndarray | torch.Tensor | float) -> np.ndarray | torch.Tensor | float:
        return self.r_min + c * (self.r_max - self.r_min)

    def volume_ml(self, labels: torch.Tensor) -> torch.Tensor:
        """Volume (ml) of the condition class in each (B, X, Y, Z) map."""
        return (labels == self.index).flatten(1).sum(1).double() * self.voxel_ml

    def measure(self, labels: torch.Tensor) -> torch.Tensor:
        """Volume ratio r of each (B, X, Y, Z) map (float64)."""
        n = (labels == self.index).flatten(1).sum(1).double()
        if self.icv_voxels is not None:
            icv = torch.full_like(n, float(self.icv_voxels))
        else:
            icv = (labels != self.background).flatten(1).sum(1).double()
        return n / icv.clamp_min(1.0)


# ----------------------------------------------------------------------------------------------------
# data sets
# ----------------------------------------------------------------------------------------------------


@dataclass
class LabelSet:
    """Training maps on the grid.

    Attributes:
        labels: (N, X, Y, Z) uint8 schema classes.
        schema: their schema.
        affine: grid affine written with generated maps.
        names: one name per map.
        icv_voxels: fixed ICV (lesion-only masks) or None.
        images: (N, X, Y, Z) float32 images scaled to [0, 1] (image LDM), or None.
    """

    labels: torch.Tensor
    schema: LabelSchema
    affine: np.ndarray
    names: list[str]
    icv_voxels: float | None = None
    images: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def condition(self, label: str, spacing: float) -> Condition:
        """The condition normalised over this set; a one-line error if it does not vary."""
        idx = self.schema.index(label)
        bg = self.schema.background_index
        probe = Condition(label, idx, 0.0, 1.0, self.icv_voxels, spacing ** 3 / 1000.0, bg)
        r = probe.measure(self.labels)
        lo, hi = float(r.min()), float(r.max())
        if not hi > lo:
            raise ConfigError(
                f"data.condition_label '{label}': its volume ratio is {lo:.4g} in every training map, "
                "so it cannot be a condition"
            )
        return Condition(label, idx, lo, hi, self.icv_voxels, probe.voxel_ml, bg)


def _default_mapping(schema: LabelSchema) -> str:
    name = f"freesurfer-to-{schema.name}"
    return name if name in builtin_tables() else "freesurfer-to-tissue"


def labelmap_on_grid(lm: LabelMap, affine: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """Hard schema labels (X, Y, Z) int64 of a :class:`LabelMap` on a grid."""
    lut = torch.as_tensor(lm.gen_to_target, dtype=torch.long)
    if lm.probs is not None:
        tp = torch.zeros((lm.schema.num_classes, *lm.shape), dtype=lm.probs.dtype)
        tp.index_add_(0, lut, lm.probs.cpu())
        out = resample_to_grid(tp, lm.affine, affine, shape, mode="linear")
        # outside the field of view every class is 0: call it background
        out[lm.schema.background_index] += (out.sum(0) < 0.5).float()
        return out.argmax(0)
    assert lm.index is not None
    # shift by one so that 0 marks "outside the field of view" (-> background)
    idx = resample_to_grid(lm.index.cpu() + 1, lm.affine, affine, shape, mode="nearest").long()
    out = lut[(idx - 1).clamp_min(0)]
    out[idx == 0] = lm.schema.background_index
    return out


def label_maps_on_grid(spec: str, schema: LabelSchema, mapping: str | None, grid: GridConfig
                       ) -> tuple[list[torch.Tensor], list[str], list[np.ndarray]]:
    """Label maps of a source (``default``, file, folder) as schema classes on the grid.

    Args:
        spec: label source (see :func:`lesionsynth.labels.load_label_source`).
        schema: target schema.
        mapping: mapping table for hard maps (default ``freesurfer-to-<schema>``); ``identity`` for maps
            that already hold the schema's class indices (e.g. maps written by ``ldm sample``).
        grid: the grid.

    Returns:
        uint8 maps, names and the grid affine of each map.
    """
    table: str | LabelMapping = mapping or _default_mapping(schema)
    if mapping == "identity":
        table = LabelMapping.identity(schema)
    maps = load_label_source(spec, schema=schema, mapping=table, resolution=grid.spacing)
    labels, names, affines = [], [], []
    for lm in maps:
        aff = _affine_for(grid, lm.affine, lm.shape)
        labels.append(labelmap_on_grid(lm, aff, tuple(grid.shape)).to(torch.uint8))
        names.append(lm.name.split(".")[0])
        affines.append(aff)
    return labels, names, affines


def mni_brain_voxels(grid: GridConfig, affine: np.ndarray) -> float:
    """Voxels of the MNI152 brain (non-background of the default label map) on a grid."""
    key = tuple(float(v) for v in np.round(np.asarray(affine, dtype=np.float64), 6).ravel())
    return _mni_brain_voxels(key, tuple(grid.shape))


@functools.lru_cache(maxsize=8)
def _mni_brain_voxels(affine: tuple[float, ...], shape: tuple[int, ...]) -> float:
    mni = mni_default()
    out = resample_to_grid(mni.brain_mask().float(), mni.affine, np.asarray(affine).reshape(4, 4), shape, mode="linear")
    return float((out > 0.5).sum())


def _lesion_masks(data: DataConfig, grid: GridConfig) -> tuple[list[torch.Tensor], list[str]]:
    assert data.lesions is not None
    folder = LesionFolder(data.lesions)
    masks, names = [], []
    for i, f in enumerate(folder.files):
        for flip in (False, True) if data.flip else (False,):
            if data.max_items is not None and len(masks) >= data.max_items:
                return masks, names
            img = nib.load(str(f))
            aff = _affine_for(grid, img.affine, img.shape)
            masks.append(folder.load(i, aff, tuple(grid.shape), flip=flip, cache=False).to(torch.uint8))
            names.append(f"{Path(f).name.split('.')[0]}{'_flip' if flip else ''}")
    return masks, names


def _dataset_value_lut(labels: dict[str, int], schema: LabelSchema, where: str) -> torch.Tensor:
    lut = torch.zeros(max(labels.values()) + 1, dtype=torch.long)
    for name, value in labels.items():
        if name not in schema.classes:
            raise ConfigError(
                f"{where}: dataset label '{name}' is not a class of schema '{schema.name}' "
                f"(classes: {', '.join(schema.classes)}); set data.schema"
            )
        lut[value] = schema.index(name)
    return lut


def _load_dataset(data: DataConfig, grid: GridConfig, schema: LabelSchema, with_images: bool
                  ) -> tuple[list[torch.Tensor], list[str], list[torch.Tensor]]:
    from lesionsynth.data import read_dataset

    assert data.dataset is not None
    ds = read_dataset(data.dataset)
    lut = _dataset_value_lut(ds.labels, schema, str(ds.root / "dataset.json"))
    labels, names, images = [], [], []
    for case in ds.cases[: data.max_items]:
        assert case.label is not None
        vol = load_volume(case.label)
        values = np.round(vol.data).astype(np.int64)
        if values.min() < 0 or values.max() >= len(lut):
            raise InputError(f"{case.label}: label value {int(values.max())} is not in dataset.json 'labels'")
        aff = _affine_for(grid, vol.affine, vol.shape)
        lab = resample_to_grid(torch.from_numpy(values), vol.affine, aff, tuple(grid.shape), mode="nearest")
        labels.append(lut[lab.long()].to(torch.uint8))
        names.append(case.id)
        if with_images:
            if data.image_channel >= len(case.images):
                raise ConfigError(f"data.image_channel {data.image_channel}: case {case.id} has "
                                  f"{len(case.images)} channel(s)")
            iv = load_volume(case.images[data.image_channel])
            img = resample_to_grid(torch.from_numpy(iv.data), iv.affine, aff, tuple(grid.shape),
                                   mode="linear")
            images.append(scale_unit(img, lower=0.5, upper=99.5, max_samples=100_000))
    return labels, names, images



def load_label_set(cfg: LDMConfig) -> LabelSet:
    """Build the training set of ``cfg`` (see :class:`DataConfig` for the sources)."""
    data, grid = cfg.data, cfg.grid
    if cfg.kind == "image":
        if data.dataset is None:
            raise ConfigError("data.dataset: the image LDM needs a dataset folder with imagesTr and labelsTr")
        schema = load_schema(data.schema)
        labels, names, images = _load_dataset(data, grid, schema, with_images=True)
        return LabelSet(torch.stack(labels), schema, grid_affine(grid), names, None, torch.stack(images))
    sources = [n for n in ("labels", "dataset") if getattr(data, n) is not None]
    if len(sources) > 1:
        raise ConfigError("data: give one of 'labels' and 'dataset', not both")
    if not sources and data.lesions is None:
        raise ConfigError("data: no training maps: give --lesions DIR, --labels SRC or --dataset DIR "
                          "(data.lesions, data.labels or data.dataset in the config)")
    icv = None
    if not sources:  # lesion-only binary masks
        labels, names = _lesion_masks(data, grid)
        schema = LESION_MASK
        icv = mni_brain_voxels(grid, grid_affine(grid))
    elif data.dataset is not None:
        schema = load_schema(data.schema)
        labels, names, _ = _load_dataset(data, grid, schema, with_images=False)
    else:
        schema = load_schema(data.schema)
        labels, names, affines = label_maps_on_grid(data.labels, schema, data.mapping, grid)  # type: ignore[arg-type]
        if data.lesions is not None:
            labels, names = _paste_all(labels, names, affines, data, grid, schema)
    if data.max_items is not None:
        labels, names = labels[: data.max_items], names[: data.max_items]
    if not labels:
        raise ConfigError("data: no training maps found")
    return LabelSet(torch.stack(labels), schema, grid_affine(grid), names, icv)


def _paste_all(labels: list[torch.Tensor], names: list[str], affines: list[np.ndarray], data: DataConfig,
               grid: GridConfig, schema: LabelSchema) -> tuple[list[torch.Tensor], list[str]]:
    """Every lesion (and its mirror) in every map: the lesion class where the mask is inside the brain."""
    if schema.lesion_index is None:
        raise ConfigError(f"data.lesions: schema '{schema.name}' has no lesion class")
    folder = LesionFolder(data.lesions)  # type: ignore[arg-type]
    out, out_names = [], []
    for lab, name, aff in zip(labels, names, affines, strict=True):
        for i, f in enumerate(folder.files):
            for flip in (False, True) if data.flip else (False,):
                if data.max_items is not None and len(out) >= data.max_items:
                    return out, out_names
                m = folder.load(i, aff, tuple(grid.shape), flip=flip, cache=False) > 0
                pasted = lab.clone()
                pasted[m & (lab != schema.background_index)] = schema.lesion_index
                out.append(pasted)
                out_names.append(f"{name}+{Path(f).name.split('.')[0]}{'_flip' if flip else ''}")
    return out, out_names


def data_key(cfg: LDMConfig) -> str:
    """Hash of everything that defines the training set (for the on-disk cache)."""
    blob = json.dumps({"kind": cfg.kind, "grid": to_dict(cfg.grid), "data": to_dict(cfg.data)},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def cached_label_set(cfg: LDMConfig, cache_dirs: list[Path]) -> tuple[LabelSet, Path | None]:
    """:func:`load_label_set`, reusing ``data_cache.pt`` from the first of ``cache_dirs`` that matches.

    The set is written to the first folder's ``data_cache.pt`` (atomically) when it was (re)built.
    """
    from lesionsynth.models.checkpoint import save_checkpoint

    key = data_key(cfg)
    for d in cache_dirs:
        p = Path(d) / "data_cache.pt"
        if (blob := read_cache(p, key)) is not None:
            s = blob["set"]
            return LabelSet(s["labels"], LabelSchema.from_dict(s["schema"]), np.asarray(s["affine"]), s["names"],
                            s["icv_voxels"], s["images"]), p
    ls = load_label_set(cfg)
    p = Path(cache_dirs[0]) / "data_cache.pt"
    save_checkpoint(p, {"key": key, "set": {
        "labels": ls.labels, "schema": ls.schema.to_dict(), "affine": ls.affine.tolist(), "names": ls.names,
        "icv_voxels": ls.icv_voxels, "images": ls.images}})
    return ls, None
