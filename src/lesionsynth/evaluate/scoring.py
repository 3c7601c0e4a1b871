"""Scoring one case: read the label maps, bring them onto one grid, compute every metric.

Label rule: files are integer label maps. The lesion is the voxels equal to ``label`` (default 5, the
lesion of the ``tissue`` schema), except in a *binary* file (maximum value 1), where value 1 is the
lesion. Each file is classified on its own, so a binary truth can be scored against a multi-class
prediction. Per-class (tissue) Dice is computed only when both files are multi-class (maximum > 1).

Grid rule (``protocol``):

- ``native``: scores on the truth's grid. A prediction on another grid (different affine or shape) is
  resampled onto it through both affines, nearest neighbour -- never by array shape.
- ``paper`` (SynthStroke protocol): truth and prediction are both resliced (nearest neighbour, through
  their affines) onto a 1 mm isotropic grid with the truth's orientation and centre, padded to 256 voxels
  per axis (an axis longer than 256 mm keeps its length: the grid never crops), then scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lesionsynth.errors import InputError
from lesionsynth.evaluate import metrics as M
from lesionsynth.io.nifti import load_volume, voxel_sizes
from lesionsynth.io.resample import axis_aligned_map, resample_to_grid, spacing_grid, take_axis_aligned

PROTOCOLS = ("native", "paper")
PAPER_SPACING = 1.0
PAPER_SIZE = 256


@dataclass
class LabelVolume:
    """An integer label map with its affine."""

    labels: np.ndarray
    affine: np.ndarray

    @property
    def binary(self) -> bool:
        """True for a binary mask (maximum value at most 1)."""
        return int(self.labels.max(initial=0)) <= 1

    def lesion(self, label: int) -> np.ndarray:
        """Boolean lesion mask: ``labels == 1`` for binary files, else ``labels == label``."""
        return self.labels == (1 if self.binary else label)


def read_labels(path: str | Path) -> LabelVolume:
    """Read an integer label map; non-integer or negative values are an error naming the file."""
    vol = load_volume(path, dtype=None)  # keep the stored dtype: integer files need no float copy
    labels = vol.data
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        labels = np.rint(vol.data)
        if not np.array_equal(labels, vol.data):
            raise InputError(f"{path}: not an integer label map (non-integer values, e.g. probabilities)")
    lo, hi = float(labels.min()), float(labels.max())
    if lo < 0 or hi > 32767:
        raise InputError(f"{path}: label values must be in 0..32767, found {lo:g}..{hi:g}")
    dtype = np.uint8 if hi < 256 else np.int16
    return LabelVolume(labels.astype(dtype), vol.affine)


def paper_grid(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The SynthStroke scoring grid: 1 mm, orientation and centre of (affine, shape), padded to 256."""
    aff1, shape1 = spacing_grid(affine, tuple(shape[:3]), PAPER_SPACING)
    out_shape = tuple(max(int(s), PAPER_SIZE) for s in shape1)
    pad_before = (np.asarray(out_shape) - np.asarray(shape1)) // 2
    out = aff1.copy()
    out[:3, 3] = aff1[:3, 3] - aff1[:3, :3] @ pad_before
    return out, out_shape  # type: ignore[return-value]


def to_grid(vol: LabelVolume, affine: np.ndarray, shape: tuple[int, ...]) -> LabelVolume:
    """Put a label map onto a grid through the affines (nearest neighbour, never by array shape).

    Grids whose axes are parallel (any flips, permutations, spacings and shifts) are resampled separably
    by index arithmetic -- exact for flips, permutations and whole-voxel shifts such as padding; oblique
    grids go through :func:`lesionsynth.io.resample_to_grid` (nearest).
    """
    shape = tuple(int(s) for s in shape)
    if vol.labels.shape == shape and np.allclose(vol.affine, affine, atol=1e-4):
        return vol
    m = np.linalg.inv(np.asarray(vol.affine, dtype=np.float64)) @ np.asarray(affine, dtype=np.float64)
    axes = axis_aligned_map(m)
    if axes is not None:
        data = take_axis_aligned(vol.labels, *axes, shape)
    else:
        data = resample_to_grid(vol.labels.astype(np.int16), vol.affine, affine, shape, mode="nearest")
    return LabelVolume(np.asarray(data).astype(vol.labels.dtype), np.asarray(affine))


def scoring_grid(truth: LabelVolume, protocol: str = "native") -> tuple[np.ndarray, tuple[int, ...]]:
    """The grid (affine, shape) on which a case is scored under ``protocol``."""
    if protocol == "native":
        return truth.affine, tuple(truth.labels.shape)
    if protocol == "paper":
        return paper_grid(truth.affine, truth.labels.shape)
    raise ValueError(f"unknown protocol '{protocol}' (choose from {', '.join(PROTOCOLS)})")


@dataclass
class ScoreOptions:
    """What to score.

    Attributes:
        label: lesion label value in multi-class files.
        protocol: ``native`` or ``paper``.
        tissue_classes: class value -> name for per-class Dice (multi-class files only).
        volume_labels: class value -> name for signed and absolute volume errors (ml).
    """

    label: int = 5
    protocol: str = "native"
    tissue_classes: dict[int, str] = field(default_factory=dict)
    volume_labels: dict[int, str] = field(default_factory=dict)


def metric_columns(opts: ScoreOptions) -> list[str]:
    """Metric columns of a per-case row, in table order."""
    cols = list(M.LESION_METRICS)
    cols += [f"dice_{n}" for n in opts.tissue_classes.values()]
    for n in opts.volume_labels.values():
        cols += [f"abs_vol_err_ml_{n}", f"vol_err_ml_{n}"]
    return cols


#: per-case columns that describe the case rather than score it
DETAIL_COLUMNS = ["truth_ml", "pred_ml", "truth_lesions", "pred_lesions", "lesion_tp", "lesion_fp",
                  "lesion_fn", "note"]


def score_arrays(truth: LabelVolume, pred: LabelVolume, opts: ScoreOptions) -> dict[str, float | int | str]:
    """All metrics of one aligned (same-grid) pair of label maps."""
    spacing = voxel_sizes(truth.affine)
    t, p = truth.lesion(opts.label), pred.lesion(opts.label)
    counts = M.lesion_counts(t, p)
    row: dict[str, float | int | str] = {
        "dice": M.dice(t, p),
        "hd95_mm": M.hd95(t, p, spacing),
        "avd_ml": M.abs_volume_diff_ml(t, p, spacing),
        "ald": counts.count_diff,
        "lesion_f1": counts.f1,
    }
    multi = not truth.binary and not pred.binary
    pcd = M.per_class_dice(truth.labels, pred.labels, list(opts.tissue_classes)) if multi else {}
    for v, n in opts.tissue_classes.items():
        row[f"dice_{n}"] = pcd.get(v, float("nan"))
    for v, n in opts.volume_labels.items():
        err = M.volume_error_ml(truth.labels, pred.labels, v, spacing) if multi else float("nan")
        row[f"abs_vol_err_ml_{n}"] = abs(err)
        row[f"vol_err_ml_{n}"] = err
    notes = [note for note, applies in (("empty truth", not t.any()), ("empty prediction", not p.any()),
             ("binary file: no per-class scores", (opts.tissue_classes or opts.volume_labels) and not multi))
             if applies]
    row.update({
        "truth_ml": M.volume_ml(t, spacing), "pred_ml": M.volume_ml(p, spacing),
        "truth_lesions": counts.n_truth, "pred_lesions": counts.n_pred,
        "lesion_tp": counts.tp, "lesion_fp": counts.fp, "lesion_fn": counts.fn,
        "note": "; ".join(notes),
    })
    return row


def score_case(truth_path: Path, pred_paths: dict[str, Path | None], opts: ScoreOptions,
               ) -> dict[str, dict[str, float | int | str]]:
    """Score every model's prediction of one case; a ``None`` path is scored as an empty prediction.

    Returns:
        model -> per-case row (metrics and details).
    """
    truth = read_labels(truth_path)
    aff, shape = scoring_grid(truth, opts.protocol)
    t_al = to_grid(truth, aff, shape)
    out = {}
    for model, path in pred_paths.items():
        if path is None:
            row = score_arrays(t_al, LabelVolume(np.zeros_like(t_al.labels), t_al.affine), opts)
            row["note"] = "; ".join(x for x in ("missing prediction (scored as empty)", str(row["note"])) if x)
        else:
            row = score_arrays(t_al, to_grid(read_labels(path), aff, shape), opts)
        out[model] = row
    return out
