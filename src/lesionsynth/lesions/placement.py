"""Where a real lesion mask lands on a label map: MNI-space masks fitted to another brain.

LESYMAP-style masks are in MNI space; a subject's native label map (FreeSurfer/SynthSeg) is not. The
fit is the per-axis scaling and shift that takes the MNI brain's bounding box onto the map's brain
box: a crude affine registration that keeps a mask in the same anatomical region (lobe, territory).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def world_box(affine: np.ndarray, lo_vox: np.ndarray, hi_vox: np.ndarray,
              rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World-space (lo, hi) corners of a voxel bounding box, per world axis or per column of ``rotation``."""
    corners = np.array([[a, b, c, 1.0] for a in (lo_vox[0], hi_vox[0]) for b in (lo_vox[1], hi_vox[1])
                        for c in (lo_vox[2], hi_vox[2])])
    w = (np.asarray(affine, dtype=np.float64) @ corners.T)[:3]
    w = w if rotation is None else rotation.T @ w
    return w.min(1), w.max(1)


@lru_cache(maxsize=1)
def mni_brain_box() -> tuple[np.ndarray, np.ndarray]:
    """World bounding box of the MNI152 2009 brain (the default label map's non-background voxels)."""
    from lesionsynth.labels.sources import mni_tissue_probs

    probs, affine, _ = mni_tissue_probs()
    idx = np.argwhere(probs.argmax(0) != 0)
    return world_box(affine, idx.min(0), idx.max(0))


def fit_to_map(lm_affine: np.ndarray, brain_lo_vox: np.ndarray, brain_hi_vox: np.ndarray,
               name: str) -> np.ndarray:
    """MNI world -> map world placement of lesion masks: the 4x4 per-axis scaling and shift taking the MNI
    brain box onto the map's (identity for the MNI default ``mni152``)."""
    if name == "mni152":
        return np.eye(4)
    (src_lo, src_hi), (dst_lo, dst_hi) = mni_brain_box(), world_box(lm_affine, brain_lo_vox, brain_hi_vox)
    scale = (dst_hi - dst_lo) / np.maximum(src_hi - src_lo, 1e-6)
    m = np.eye(4)
    m[:3, :3] = np.diag(scale)
    m[:3, 3] = dst_lo - scale * src_lo
    return m
