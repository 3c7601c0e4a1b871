"""Real training and validation data from nnU-Net-style folders, with labels mapped onto the schema.

Label handling: ``dataset.json`` ``labels`` (``{name: value}``) is mapped onto the training schema *by
name* (optionally renamed with ``real.label_names``). The schema classes a dataset names are the
classes it *labels*; the others are masked out of the loss (see :mod:`lesionsynth.train.losses`):

- baseline schema ``{0: background, 1: lesion}`` + an ATLAS-style ``{background: 0, lesion: 1}``
  dataset: every class labelled, an ordinary 2-class problem;
- the 6-class ``tissue`` schema + the same dataset: only ``background`` and ``lesion`` labelled; the
  dataset's background stands for every non-lesion class, so the model learns the lesion channel only.

Each training draw is a pure function of ``(seed, sample index)``: which case, where the crop is
centred, and every augmentation parameter, so runs resume bit-for-bit and DataLoader workers need no
state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lesionsynth.augment import AugmentConfig, augment
from lesionsynth.augment import spatial as spatial_tf
from lesionsynth.augment.base import Sample
from lesionsynth.data import Case, DatasetFolder, read_dataset
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io import load_volume, reorient_to_ras, resample_to_grid
from lesionsynth.labels.schema import LabelSchema
from lesionsynth.ops import bernoulli, case_seed, make_generator
from lesionsynth.preprocess import Preprocessing, prepare, zscore

REAL_STREAM = 0x5EA1  # separates the real-data random stream from the synthetic one


@dataclass(frozen=True)
class DatasetLabels:
    """How a dataset's label values map onto the schema.

    Attributes:
        lut: dataset label value -> schema class index.
        labelled: per schema class, whether the dataset labels it.
    """

    lut: dict[int, int]
    labelled: tuple[bool, ...]

    @property
    def complete(self) -> bool:
        return all(self.labelled)

    def apply(self, labels: np.ndarray, source: str) -> np.ndarray:
        """Map an integer label array onto schema indices; unknown values raise one line naming ``source``."""
        arr = np.asarray(labels)
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise InputError(f"{source}: label map has non-integer values")
        values, inverse = np.unique(arr.astype(np.int64), return_inverse=True)
        unknown = [int(v) for v in values if int(v) not in self.lut]
        if unknown:
            raise InputError(f"{source}: label value {unknown[0]} is not in dataset.json labels "
                             f"(values: {sorted(self.lut)})")
        return np.array([self.lut[int(v)] for v in values], dtype=np.int64)[inverse].reshape(arr.shape)


def map_dataset_labels(labels: dict[str, Any], schema: LabelSchema, rename: dict[str, str] | None = None,
                       where: str = "dataset.json") -> DatasetLabels:
    """Map ``dataset.json`` labels (``{name: value}``) onto ``schema`` by name.

    Args:
        labels: the dataset's ``labels`` mapping.
        schema: the training schema.
        rename: dataset name -> schema class name, for names that differ (``{stroke: lesion}``).
        where: file named in errors.

    Raises:
        ConfigError: a name that is not a schema class, region-based or ``ignore`` labels, a rename of
            a name the dataset does not have, or no background.
    """
    rename = dict(rename or {})
    for k in rename:
        if k not in labels:
            raise ConfigError(f"{where}: real.label_names renames '{k}', which is not a label of this "
                              f"dataset (labels: {', '.join(labels)})")
    lut: dict[int, int] = {}
    labelled = [False] * schema.num_classes
    for name, value in labels.items():
        if name == "ignore":
            raise ConfigError(f"{where}: the nnU-Net 'ignore' label is not supported")
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # a list: region-based
            raise ConfigError(f"{where}: label '{name}' has value {value!r}; region-based labels are not "
                              f"supported, give one integer per name")
        target = rename.get(name, name)
        if target not in schema.classes:
            raise ConfigError(f"{where}: label '{target}' is not a class of schema '{schema.name}' "
                              f"(classes: {', '.join(schema.classes)}); rename it with real.label_names")
        idx = schema.index(target)
        lut[int(value)] = idx
        labelled[idx] = True
    if not labelled[schema.background_index]:
        raise ConfigError(f"{where}: labels have no '{schema.background}' (background) entry")
    return DatasetLabels(lut=lut, labelled=tuple(labelled))


def load_case(case: Case, dl: DatasetLabels, n_channels: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A case's image (C, X, Y, Z) float32 and schema labels (X, Y, Z) int64, reoriented to RAS."""
    if len(case.images) < n_channels:
        raise InputError(f"{case.images[0]}: case {case.id} has {len(case.images)} channel(s), the model "
                         f"expects {n_channels}")
    vols = [load_volume(p) for p in case.images[:n_channels]]
    if case.label is None:
        raise InputError(f"case {case.id}: no label file")
    lab = load_volume(case.label, dtype=np.float32)
    for v in vols:
        if v.shape != lab.shape or not np.allclose(v.affine, lab.affine, atol=1e-3):
            raise InputError(f"{case.label}: grid (shape {lab.shape}) differs from its image {v.path} "
                             f"(shape {v.shape})")
    labels = dl.apply(lab.data, str(case.label))
    image = np.stack([v.data for v in vols]).astype(np.float32)
    image, affine = reorient_to_ras(np.moveaxis(image, 0, -1), vols[0].affine)
    labels, _ = reorient_to_ras(labels, vols[0].affine)
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)), labels, affine


def open_folder(path: str, split: str, schema: LabelSchema, rename: dict[str, str] | None = None,
                max_cases: int | None = None) -> tuple[DatasetFolder, DatasetLabels]:
    """Read a dataset folder and map its labels onto ``schema``."""
    folder = read_dataset(path, split=split)
    folder.cases.sort(key=lambda c: c.id)
    if max_cases is not None:
        folder.cases = folder.cases[:max_cases]
    if not folder.cases:
        raise InputError(f"{path}: no cases")
    dl = map_dataset_labels(folder.labels, schema, rename, where=str(folder.root / "dataset.json"))
    return folder, dl


def real_augment_config(aug: AugmentConfig | None, crop_size: tuple[int, int, int], spacing: float,
                        dl: DatasetLabels, schema: LabelSchema) -> AugmentConfig | None:
    """The chain used on real images: crop and spacing from the training config.

    Random skull-stripping builds its brain mask from the labels; a dataset that labels no tissue class
    (lesion-only) has no brain in its labels, so skull-stripping is turned off for it.
    """
    if aug is None:
        return None
    aug = copy.deepcopy(aug)
    aug.spatial = replace(aug.spatial, crop_size=tuple(crop_size), spacing=float(spacing))
    if not any(dl.labelled[i] for i in schema.tissue_indices):
        aug.skullstrip = replace(aug.skullstrip, p=0.0)
    return aug


def foreground_centre(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Centre (voxels) of the bounding box of voxels above the image minimum (the head or brain)."""
    x = torch.as_tensor(image)
    x = x[0] if x.ndim == 4 else x
    idx = (x > x.min()).nonzero()
    if len(idx) == 0:
        return (np.asarray(x.shape, dtype=np.float64) - 1) / 2.0
    return ((idx.min(0).values + idx.max(0).values).double() / 2).cpu().numpy()


def centre_crop(image: torch.Tensor, labels: torch.Tensor, affine: np.ndarray, centre_vox: np.ndarray,
                crop_size: tuple[int, int, int], spacing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample a crop of ``crop_size`` at ``spacing`` mm centred on ``centre_vox`` (no augmentation)."""
    p = spatial_tf.SpatialParams(crop_size=tuple(int(c) for c in crop_size), spacing=float(spacing))  # type: ignore[arg-type]
    out = spatial_tf.apply(p, Sample(image, labels, affine, centre_vox=centre_vox))
    assert out.labels is not None
    return out.image, out.labels


def training_crop(image: np.ndarray, labels: np.ndarray, affine: np.ndarray, crop_size: tuple[int, int, int],
                  spacing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A generated scan as a training case: a ``crop_size`` crop at ``spacing`` mm centred on the head's
    bounding box (one resampling), clipped to its 0.5-99.5 percentiles and z-scored as ``predict`` prepares a
    scan; returns ``(image (1, X, Y, Z) float32, labels (X, Y, Z) int64)``."""
    from lesionsynth.preprocess import normalise_intensity

    img_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    lab_t = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))
    head = (lab_t > 0).nonzero()
    centre = ((head.min(0).values + head.max(0).values).double() / 2).numpy() if len(head) else \
        (np.asarray(lab_t.shape, dtype=np.float64) - 1) / 2
    img, lab = centre_crop(img_t, lab_t, affine, centre, crop_size, spacing)
    return torch.from_numpy(normalise_intensity(img.numpy()))[None].float(), lab.long()


class RealTrainingSet(Dataset):
    """Training crops of real cases; item ``k`` is a pure function of ``(seed, k)``.

    Returns dicts with ``image`` (C, X, Y, Z) float32 (z-scored), ``target`` (1, X, Y, Z) int64,
    ``labelled`` (K,) bool and ``index`` k.

    Args:
        folder: the parsed dataset folder.
        dl: its label mapping.
        schema: the training schema.
        augment_cfg: the real-image chain (crop and spacing already set), or None for plain crops.
        crop_size: crop size (voxels).
        spacing: output voxel size (mm).
        seed: run seed.
        lesion_crop_prob: probability of centring the crop on a random lesion voxel.
        cache: keep loaded cases in memory.
        in_channels: number of image channels the model takes.
    """

    def __init__(self, folder: DatasetFolder, dl: DatasetLabels, schema: LabelSchema,
                 augment_cfg: AugmentConfig | None, crop_size: tuple[int, int, int], spacing: float,
                 seed: int, lesion_crop_prob: float = 0.0, cache: bool = False, in_channels: int = 1):
        self.folder = folder
        self.dl = dl
        self.schema = schema
        self.augment_cfg = augment_cfg
        self.crop_size = tuple(crop_size)
        self.spacing = spacing
        self.seed = case_seed(seed, REAL_STREAM)
        self.lesion_crop_prob = lesion_crop_prob
        self.cache = cache
        self.in_channels = in_channels
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.folder.cases)

    def case(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if i in self._cache:
            return self._cache[i]
        out = load_case(self.folder.cases[i], self.dl, self.in_channels)
        if self.cache:
            self._cache[i] = out
        return out

    def __getitem__(self, k: int) -> dict[str, Any]:
        gen = make_generator(case_seed(self.seed, int(k)))
        i = int(torch.randint(0, len(self.folder.cases), (), generator=gen))
        image_np, labels_np, affine = self.case(i)
        image, labels = torch.from_numpy(image_np), torch.from_numpy(labels_np)
        centre = foreground_centre(image)
        if bernoulli(gen, self.lesion_crop_prob):
            idx = (labels == self.schema.lesion_index).nonzero()
            if len(idx):
                centre = idx[int(torch.randint(0, len(idx), (), generator=gen))].double().numpy()
        img = image[0] if image.shape[0] == 1 else image
        bg = self.schema.background_index
        if self.augment_cfg is None:
            out_img, out_lab = centre_crop(img, labels, affine, centre, self.crop_size, self.spacing)
            out_img = zscore(out_img)
        else:
            out_img, out_lab, _, _ = augment(gen, self.augment_cfg, img, labels, affine, centre, bg)
        if out_img.ndim == 3:
            out_img = out_img[None]
        return {"image": out_img.float().contiguous(), "target": out_lab.long()[None].contiguous(),
                "labelled": torch.tensor(self.dl.labelled, dtype=torch.bool), "index": int(k)}


@dataclass
class ValCase:
    """A whole validation volume on its grid, with raw (not yet normalised) intensities: validation
    normalises and windows it with ``predict``'s own code (:func:`lesionsynth.train.validate.evaluate`)."""

    id: str
    image: torch.Tensor   # (C, X, Y, Z) float32
    target: torch.Tensor  # (X, Y, Z) int64 schema classes, on the image grid
    affine: np.ndarray | None = None  # voxel-to-world matrix (None: identity scaled to nothing; RAS grid)


def load_val_folder(path: str, split: str, schema: LabelSchema, spacing: float, rename: dict[str, str] | None = None,
                    max_cases: int | None = None) -> list[ValCase]:
    """Validation cases from a folder, on the grid ``lesionsynth predict`` would run them on.

    Images go through :func:`lesionsynth.preprocess.prepare` (RAS, ``spacing`` mm; no intensity
    change yet) and labels are resampled (nearest) onto the same grid. The intensity normalisation and
    the windows are applied at validation time by ``predict``'s own function
    (:func:`lesionsynth.infer.predict.predict_volume`), so validation sees exactly what ``predict`` would.
    Single-channel images only.
    """
    folder, dl = open_folder(path, split, schema, rename, max_cases)
    if not dl.labelled[schema.lesion_index]:
        raise ConfigError(f"{folder.root / 'dataset.json'}: validation data must label '{schema.lesion}'")
    pre = Preprocessing(spacing=float(spacing))
    cases = []
    for c in folder.cases:
        image, labels, affine = load_case(c, dl, 1)
        prep = prepare(image[0], affine, pre)
        lab = resample_to_grid(torch.from_numpy(labels), affine, prep.affine, prep.image.shape, mode="nearest")
        cases.append(ValCase(c.id, torch.from_numpy(prep.image)[None].float(), lab.long(), prep.affine))
    return cases
