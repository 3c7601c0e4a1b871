"""Where a real lesion mask lands on a label map: MNI-space masks fitted to another brain.

LESYMAP-style masks are in MNI space; a subject's native label map (FreeSurfer/SynthSeg) is not. The
fit is the per-axis scaling and shift that takes the MNI brain's bounding box onto the map's brain
box: a crude affine registration that keeps a mask in the same anatomical region (lobe, territory).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def world_box(affine: np.ndarray, lo_vox: np.ndarray, hi_vox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-space (lo, hi) corners of a voxel bounding box, per world axis."""
    corners = np.array([[a, b, c, 1.0] for a in (lo_vox[0], hi_vox[0]) for b in (lo_vox[1], hi_vox[1])
                        for c in (lo_vox[2], hi_vox[2])])
    w = (np.asarray(affine, dtype=np.float64) @ corners.T)[:3]
    return w.min(1), w.max(1)


@lru_cache(maxsize=1)
def mni_brain_box() -> tuple[np.ndarray, np.ndarray]:
    """World bounding box of the MNI152 2009 brain (the default label map's non-background voxels)."""
    from lesionsynth.labels.sources import mni_tissue_probs

    probs, affine, _ = mni_tissue_probs()
    idx = np.argwhere(probs.argmax(0) != 0)
    return world_box(affine, idx.min(0), idx.max(0))


def box_fit(src: tuple[np.ndarray, np.ndarray], dst: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """4x4 world transform scaling and shifting box ``src`` onto box ``dst`` (per world axis)."""
    scale = (dst[1] - dst[0]) / np.maximum(src[1] - src[0], 1e-6)
    m = np.eye(4)
    m[:3, :3] = np.diag(scale)
    m[:3, 3] = dst[0] - scale * src[0]
    return m


def fit_to_map(lm_affine: np.ndarray, brain_lo_vox: np.ndarray, brain_hi_vox: np.ndarray,
               name: str) -> np.ndarray:
    """MNI world -> map world placement of lesion masks (identity for the MNI default ``mni152``)."""
    if name == "mni152":
        return np.eye(4)
    return box_fit(mni_brain_box(), world_box(lm_affine, brain_lo_vox, brain_hi_vox))
