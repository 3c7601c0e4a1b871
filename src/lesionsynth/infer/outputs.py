"""Files written by ``predict``, per input ``{stem}``:

- ``{stem}_labels.nii.gz``: schema labels (uint8);
- ``{stem}_lesion.nii.gz``: binary lesion mask (uint8), if the schema has a lesion class;
- ``{stem}_uncertainty.nii.gz``: flip disagreement in [0, 1] (float32), with TTA;
- ``{stem}_probabilities.nii.gz``: (X, Y, Z, C) class probabilities (float32), if asked for;
- ``{stem}_qc.png``: three slices through the lesion, outlined, and the labels;
- ``volumes.csv``: one row per input (merged on re-runs), written atomically.

All images have exactly the input's shape and affine. The labels file is written last, after the
others, so its presence (with the ``volumes.csv`` row) marks an input as done.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from lesionsynth.infer.predict import Prediction
from lesionsynth.io import reorient_to_ras, save_volume
from lesionsynth.io.atomic import write_csv_atomic

VOLUMES_CSV = "volumes.csv"


def output_paths(out_dir: str | Path, stem: str, *, lesion: bool = True, uncertainty: bool = True,
                 probabilities: bool = False) -> dict[str, Path]:
    """Expected output files of one input (``labels`` always, the others as configured)."""
    wanted = {"labels": True, "qc": True, "lesion": lesion, "uncertainty": uncertainty, "probabilities": probabilities}
    return {k: Path(out_dir) / f"{stem}_{k}{'.png' if k == 'qc' else '.nii.gz'}" for k, on in wanted.items() if on}


def volume_row(pred: Prediction, inputs: str, stem: str) -> dict[str, str]:
    """Volumes (ml) per non-background class from the hard labels; lesion count = 26-connected
    components of the lesion mask; with flip TTA, ``qc`` = 1 - the mean fraction of flips that disagree
    with the consensus inside the predicted (non-background) voxels (1: every flip agrees; a low score
    flags a scan to check, as SynthSeg's ``--qc``)."""
    voxel_ml = abs(float(np.linalg.det(pred.affine[:3, :3]))) / 1000.0
    counts = np.bincount(pred.labels.ravel(), minlength=pred.schema.num_classes)
    row = {"stem": stem, "input": inputs}
    for i, name in enumerate(pred.schema.classes):
        if i != pred.schema.background_index:
            row[f"{name}_ml"] = f"{counts[i] * voxel_ml:.3f}"
    if pred.schema.lesion_index is not None:
        _, n = ndimage.label(pred.lesion, structure=np.ones((3, 3, 3), dtype=bool))
        row["lesion_count"] = str(int(n))
        row["lesion_ml"] = f"{int(pred.lesion.sum()) * voxel_ml:.3f}"
    if pred.uncertainty is not None:  # QC: agreement of the flips inside the predicted head
        fg = pred.labels != pred.schema.background_index
        row["qc"] = f"{1.0 - float(pred.uncertainty[fg].mean()) if fg.any() else 0.0:.4f}"
    return row


def part_table(part: int, num_parts: int) -> str:
    """The volumes table of one part of a ``--num-parts`` run."""
    return VOLUMES_CSV if num_parts <= 1 else f"volumes.part-{part}-of-{num_parts}.csv"


def read_volumes(out_dir: str | Path) -> dict[str, dict[str, str]]:
    """Rows of the existing ``volumes.csv`` and of any ``--num-parts`` tables, by stem (empty if none)."""
    rows: dict[str, dict[str, str]] = {}
    d = Path(out_dir)
    for p in [d / VOLUMES_CSV, *sorted(d.glob("volumes.part-*-of-*.csv"))]:
        if not p.is_file():
            continue
        try:
            with open(p, newline="") as f:
                rows.update({r["stem"]: r for r in csv.DictReader(f) if r.get("stem")})
        except (OSError, csv.Error, KeyError):
            continue
    return rows


def write_volumes(out_dir: str | Path, rows: dict[str, dict[str, str]], path: str | Path | None = None,
                  columns: list[str] | None = None) -> Path:
    """Write ``volumes.csv`` atomically; columns are the union of the rows' keys.

    Args:
        out_dir: the output folder (the table goes to ``out_dir/volumes.csv``).
        rows: rows by stem.
        path: write here instead (``--vol FILE``, ``--qc FILE``, a part's table).
        columns: only these columns (default: all).
    """
    cols = [k for k in dict.fromkeys(k for r in rows.values() for k in r) if columns is None or k in columns]
    path = Path(path) if path is not None else Path(out_dir) / VOLUMES_CSV
    write_csv_atomic(path, cols, ([rows[stem].get(k, "") for k in cols] for stem in sorted(rows)))
    return path


def save_qc(path: Path, image: np.ndarray, pred: Prediction, title: str) -> Path:
    """QC figure on the RAS-reoriented grid (exact, so left is left in every figure)."""
    from lesionsynth.viz import save_preview

    img, les, lab = (reorient_to_ras(a, pred.affine)[0]
                     for a in (np.asarray(image, dtype=np.float32), pred.lesion, pred.labels))
    return save_preview(path, img, lesion=les if les.any() else None, labels=lab, title=title)


def write_outputs(out_dir: str | Path, stem: str, image: np.ndarray, pred: Prediction,
                  *, inputs: str = "") -> tuple[dict[str, Path], dict[str, str]]:
    """Write all files of one input (labels last); return their paths and the ``volumes.csv`` row."""
    paths = output_paths(out_dir, stem, lesion=pred.schema.lesion_index is not None,
                         uncertainty=pred.uncertainty is not None, probabilities=pred.probs is not None)
    aff = pred.affine
    if pred.probs is not None:
        save_volume(paths["probabilities"], np.moveaxis(pred.probs, 0, -1), aff, dtype=np.float32)
    if pred.uncertainty is not None:
        save_volume(paths["uncertainty"], pred.uncertainty, aff, dtype=np.float32)
    if "lesion" in paths:
        save_volume(paths["lesion"], pred.lesion, aff, dtype=np.uint8)
    row = volume_row(pred, inputs, stem)
    les = f", lesion {row['lesion_ml']} ml in {row['lesion_count']} component(s)" if "lesion_ml" in row else ""
    save_qc(paths["qc"], image, pred, f"{stem}{les}")
    save_volume(paths["labels"], pred.labels, aff, dtype=np.uint8 if pred.labels.max() < 256 else np.int16)
    return paths, row
