"""Segmentation metrics: pure functions on boolean (or integer label) numpy arrays plus voxel spacing.

Every metric is defined for every combination of empty and non-empty masks (``T`` = truth,
``P`` = prediction):

================  ====================  =====================  ======================
metric            T and P empty         T empty, P not         T not, P empty
================  ====================  =====================  ======================
Dice              1.0                   0.0                    0.0
HD95 (mm)         0.0                   inf (an HD95 failure)  inf (an HD95 failure)
AVD (ml)          0.0                   volume of P            volume of T
ALD               0                     #components of P       #components of T
lesion-wise F1    1.0                   0.0 (only FPs)         0.0 (only FNs)
================  ====================  =====================  ======================

Dice and lesion-wise F1 of two empty masks follow the ISLES'22 evaluation code (``empty_value=1.0``).
An infinite HD95 is never averaged: :mod:`lesionsynth.evaluate.accumulator` counts such cases as
*HD95 failures* and summarises the finite values.

Conventions:

- Connected components use 26-connectivity (``scipy.ndimage.label`` with a 3x3x3 structure).
- HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)``: surfaces are the mask voxels
  removed by one binary erosion (6-neighbourhood, outside the array counts as background), each
  surface voxel's distance (mm, using the voxel spacing) to the nearest surface voxel of the other
  mask is measured, and the result is the larger of the two directed 95th percentiles (linear
  interpolation, as ``numpy.percentile``). Tools that pool both directions before taking the
  percentile (e.g. medpy) can differ slightly.
- Lesion-wise F1 is the ISLES'22 definition: a truth component is a true positive when any of its
  voxels is predicted (otherwise a false negative); a predicted component that touches no truth voxel
  is a false positive; ``F1 = TP / (TP + (FP + FN) / 2)``.
- Volumes are ``voxel count x voxel volume``, in millilitres (1 ml = 1000 mm^3).

Every function crops to the bounding box of the two masks first, so the cost follows the lesion size,
not the volume size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from lesionsynth.preprocess.prepare import bounding_box

Spacing = tuple[float, ...] | list[float] | np.ndarray


def _as_bool(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype == bool else a != 0


def _check_pair(truth: np.ndarray, pred: np.ndarray, convert=_as_bool) -> tuple[np.ndarray, np.ndarray]:
    t, p = convert(truth), convert(pred)
    if t.shape != p.shape:
        raise ValueError(f"truth and prediction shapes differ: {t.shape} vs {p.shape}")
    return t, p


def _spacing(spacing: Spacing | None, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,)).copy()
    if not np.all(sp > 0):
        raise ValueError(f"voxel spacing must be positive, got {tuple(sp)}")
    return sp


def _crop_pair(t: np.ndarray, p: np.ndarray, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their union (both empty: 1-voxel arrays)."""
    box = bounding_box(t | p, margin) or (slice(0, 1),) * t.ndim
    return t[box], p[box]


def voxel_volume_ml(spacing: Spacing) -> float:
    """Volume of one voxel in millilitres."""
    return float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0


def dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Dice overlap ``2|T∩P| / (|T| + |P|)``; 1.0 when both masks are empty."""
    t, p = _check_pair(truth, pred)
    st, sp = int(np.count_nonzero(t)), int(np.count_nonzero(p))
    if st + sp == 0:
        return 1.0
    inter = int(np.count_nonzero(t & p)) if st and sp else 0
    return 2.0 * inter / (st + sp)


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels: the mask minus its binary erosion (6-neighbourhood, background outside)."""
    m = _as_bool(mask)
    return m & ~ndimage.binary_erosion(m, border_value=0)


def surface_distances(truth: np.ndarray, pred: np.ndarray,
                      spacing: Spacing | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each truth surface voxel to the prediction surface, and vice versa.

    Both masks must be non-empty.

    Returns:
        ``(d_truth_to_pred, d_pred_to_truth)``, 1D float64 arrays.
    """
    t, p = _check_pair(truth, pred)
    if not t.any() or not p.any():
        raise ValueError("surface distances need two non-empty masks")
    sp = _spacing(spacing, t.ndim)
    # a one-voxel margin keeps the crop border from creating surfaces that are not in the full array
    t, p = _crop_pair(t, p, margin=1)
    et = np.argwhere(surface(t)) * sp
    ep = np.argwhere(surface(p)) * sp
    d_tp = cKDTree(ep, leafsize=32).query(et, k=1)[0]
    d_pt = cKDTree(et, leafsize=32).query(ep, k=1)[0]
    return np.asarray(d_tp, dtype=np.float64), np.asarray(d_pt, dtype=np.float64)


def hausdorff(truth: np.ndarray, pred: np.ndarray, spacing: Spacing | None = None,
              percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance (mm): max of the two directed percentiles.

    Returns 0.0 when both masks are empty and ``inf`` when exactly one is (an HD95 failure).
    """
    t, p = _check_pair(truth, pred)
    t_any, p_any = bool(t.any()), bool(p.any())
    if not t_any and not p_any:
        return 0.0
    if not t_any or not p_any:
        return float("inf")
    d_tp, d_pt = surface_distances(t, p, spacing)
    return float(max(np.percentile(d_tp, percentile), np.percentile(d_pt, percentile)))


def hd95(truth: np.ndarray, pred: np.ndarray, spacing: Spacing | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm (see :func:`hausdorff`)."""
    return hausdorff(truth, pred, spacing, 95.0)


def volume_ml(mask: np.ndarray, spacing: Spacing) -> float:
    """Volume of a mask in millilitres."""
    return int(np.count_nonzero(mask)) * voxel_volume_ml(spacing)


def abs_volume_diff_ml(truth: np.ndarray, pred: np.ndarray, spacing: Spacing) -> float:
    """Absolute volume difference ``| |P| - |T| |`` in millilitres."""
    t, p = _check_pair(truth, pred)
    return abs(int(np.count_nonzero(p)) - int(np.count_nonzero(t))) * voxel_volume_ml(spacing)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (26-connectivity in 3D, 8 in 2D): ``(labels, count)``."""
    m = _as_bool(mask)
    lab, n = ndimage.label(m, structure=np.ones((3,) * m.ndim, dtype=bool))
    return lab, int(n)


def count_components(mask: np.ndarray) -> int:
    """Number of connected components (26-connectivity)."""
    m = _as_bool(mask)
    box = bounding_box(m)
    return 0 if box is None else label_components(m[box])[1]


@dataclass(frozen=True)
class LesionCounts:
    """Lesion-wise detection counts (ISLES'22 definitions).

    Attributes:
        n_truth: connected components in the truth.
        n_pred: connected components in the prediction.
        tp: truth components with at least one predicted voxel.
        fn: truth components with no predicted voxel.
        fp: predicted components touching no truth voxel.
    """

    n_truth: int
    n_pred: int
    tp: int
    fn: int
    fp: int

    @property
    def f1(self) -> float:
        """``TP / (TP + (FP + FN) / 2)``; 1.0 when there are no lesions at all."""
        if self.tp + self.fp + self.fn == 0:
            return 1.0
        return self.tp / (self.tp + (self.fp + self.fn) / 2.0)

    @property
    def count_diff(self) -> int:
        """Absolute lesion-count difference."""
        return abs(self.n_pred - self.n_truth)


def lesion_counts(truth: np.ndarray, pred: np.ndarray) -> LesionCounts:
    """Component-wise detection counts, vectorised over components (no loop over lesions)."""
    t, p = _check_pair(truth, pred)
    t, p = _crop_pair(t, p)
    lt, nt = label_components(t)
    lp, npred = label_components(p)
    overlap = t & p
    tp = int(np.unique(lt[overlap]).size)            # truth components hit by the prediction
    pred_hitting = int(np.unique(lp[overlap]).size)  # predicted components touching the truth
    return LesionCounts(n_truth=nt, n_pred=npred, tp=tp, fn=nt - tp, fp=npred - pred_hitting)


def lesion_wise_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Lesion-wise F1 score (ISLES'22); 1.0 when both masks are empty."""
    return lesion_counts(truth, pred).f1


def abs_lesion_count_diff(truth: np.ndarray, pred: np.ndarray) -> int:
    """Absolute difference of the numbers of connected components (26-connectivity)."""
    return lesion_counts(truth, pred).count_diff


def per_class_dice(truth_labels: np.ndarray, pred_labels: np.ndarray, classes: list[int]) -> dict[int, float]:
    """Dice of each class value of two integer label maps.

    A class absent from both maps scores 1.0 (same rule as :func:`dice`).
    """
    t, p = _check_pair(truth_labels, pred_labels, np.asarray)
    return {int(c): dice(t == c, p == c) for c in classes}


def volume_error_ml(truth_labels: np.ndarray, pred_labels: np.ndarray, label: int, spacing: Spacing) -> float:
    """Signed volume error ``V_pred - V_truth`` of one label value, in millilitres.

    Average its absolute value over cases for a volume MAE (e.g. ventricle volume).
    """
    t, p = _check_pair(truth_labels, pred_labels, np.asarray)
    return (int(np.count_nonzero(p == label)) - int(np.count_nonzero(t == label))) * voxel_volume_ml(spacing)


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown and compared.

    Attributes:
        title: column title in tables and plots.
        higher_is_better: True, False, or None for signed quantities (no "best").
        fmt: format of means/medians in the tables.
    """

    title: str
    higher_is_better: bool | None
    fmt: str = "{:.3f}"


#: the lesion metrics every evaluation reports, in table order
LESION_METRICS: dict[str, MetricInfo] = {
    "dice": MetricInfo("Dice", True),
    "hd95_mm": MetricInfo("HD95 (mm)", False, "{:.2f}"),
    "avd_ml": MetricInfo("AVD (ml)", False, "{:.2f}"),
    "ald": MetricInfo("ALD", False, "{:.2f}"),
    "lesion_f1": MetricInfo("Lesion F1", True),
}


def metric_info(name: str) -> MetricInfo:
    """Display information for a metric column (lesion metrics, per-class Dice, volume errors)."""
    if name in LESION_METRICS:
        return LESION_METRICS[name]
    if name.startswith("dice_"):
        return MetricInfo(f"Dice {name[5:]}", True)
    if name.startswith("abs_vol_err_ml_"):
        return MetricInfo(f"|ΔV| {name[15:]} (ml)", False, "{:.2f}")
    if name.startswith("vol_err_ml_"):
        return MetricInfo(f"ΔV {name[11:]} (ml)", None, "{:.2f}")
    return MetricInfo(name, None)
