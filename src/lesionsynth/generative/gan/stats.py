"""Volume and connected-component statistics of binary lesion masks (to compare generated with real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from lesionsynth.io.nifti import find_images, load_volume, voxel_sizes

STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)
BILATERAL_FRACTION = 0.1  # a mask is bilateral when each hemisphere holds >= 10 % of its volume
SUMMARY = ("mean", "sd", "min", "q25", "median", "q75", "max")


def mask_stats(mask: np.ndarray, affine: np.ndarray, min_component_ml: float = 0.1) -> dict[str, float]:
    """Volume (ml), number of 26-connected components, components of at least ``min_component_ml``,
    the world x of the centroid (negative = left hemisphere) and whether the mask is bilateral (each
    hemisphere holds at least :data:`BILATERAL_FRACTION` of its volume)."""
    m = np.asarray(mask) > 0.5
    voxel_ml = float(np.prod(voxel_sizes(affine))) / 1000.0
    lab, n = ndimage.label(m, structure=STRUCTURE_26)
    sizes = np.bincount(lab.ravel())[1:] * voxel_ml if n else np.zeros(0)
    centroid_x = float("nan")
    bilateral = False
    if m.any():
        vox = np.argwhere(m)
        x = (np.asarray(affine)[0, :3] @ vox.T) + float(np.asarray(affine)[0, 3])
        centroid_x = float(x.mean())
        left = float((x < 0).mean())
        bilateral = min(left, 1.0 - left) >= BILATERAL_FRACTION
    return {"volume_ml": float(m.sum()) * voxel_ml, "components": int(n),
            "components_big": int((sizes >= min_component_ml).sum()), "centroid_x_mm": centroid_x,
            "bilateral": bilateral}


def folder_stats(folder: str | Path, limit: int | None = None, min_component_ml: float = 0.1) -> list[dict]:
    """:func:`mask_stats` of every NIfTI mask in a folder (sorted by name, the first ``limit``)."""
    files = find_images(folder)[:limit]
    out = []
    for f in files:
        v = load_volume(f)
        out.append({"file": f.name, **mask_stats(v.data > 0.5 * max(float(v.data.max()), 1e-6), v.affine,
                                                 min_component_ml)})
    return out


def summarise(values: list[float]) -> dict[str, float]:
    """:data:`SUMMARY` statistics of the finite ``values`` (NaN when there are none)."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return dict.fromkeys(SUMMARY, float("nan"))
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return dict(zip(SUMMARY, map(float, (a.mean(), a.std(), a.min(), q25, med, q75, a.max())), strict=True))


def comparison_table(groups: dict[str, list[dict]], min_component_ml: float = 0.1) -> str:
    """Markdown table: per group and quantity, mean / median / quartiles / range."""
    rows = ["| masks | n | quantity | mean | sd | min | q25 | median | q75 | max |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    quantities = [("volume_ml", "volume (ml)"), ("components", "components (all)"),
                  ("components_big", f"components >= {min_component_ml:g} ml")]
    for name, stats in groups.items():
        for key, label in quantities:
            s = summarise([r[key] for r in stats])
            cells = " | ".join(f"{s[k]:.1f}" for k in SUMMARY)
            rows.append(f"| {name} | {len(stats)} | {label} | {cells} |")
        left = np.mean([r["centroid_x_mm"] < 0 for r in stats]) if stats else float("nan")
        rows.append(f"| {name} | {len(stats)} | share in left hemisphere | {left:.2f} | | | | | | |")
        both = np.mean([bool(r["bilateral"]) for r in stats]) if stats else float("nan")
        rows.append(f"| {name} | {len(stats)} | share bilateral (each side >= 10 %) | {both:.2f} | | | | | | |")
    return "\n".join(rows)
