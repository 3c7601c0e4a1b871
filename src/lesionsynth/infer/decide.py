"""From network logits on working grids to probabilities and labels on the scan's own grid.

Logits (and the flip disagreement) are resliced trilinearly through the affines onto the output grid,
fused over modalities (ensembling, see :data:`FUSIONS`), and only then turned into probabilities
(softmax) and labels (argmax). When the output grid is the working grid up to axis permutations/flips
and whole-voxel shifts (e.g. a 1 mm scan in any axis orientation), the reslicing is exact index copying
instead of interpolation. The output is produced in slabs along its last axis, so memory stays bounded by the
working-grid logits plus one slab, whatever the output resolution.

Outside the box the network was run on, the logits are those of certain background
(:data:`BACKGROUND_LOGIT` for the background class, 0 for the others) and the disagreement is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lesionsynth.io import resample_to_grid
from lesionsynth.io.resample import exact_index_map

BACKGROUND_LOGIT = 20.0
SLAB_ELEMENTS = 1 << 25  # floats per slab (128 MB in float32)
FUSIONS: dict[str, str] = {
    "logits": "mean of the modalities' logits (a normalised geometric mean of their probabilities)",
    "probs": "mean of the modalities' probabilities",
    "union": "mean of the probabilities, and lesion wherever any one modality's own label is lesion",
}


@dataclass
class LogitField:
    """Network output for one modality on (a box of) its working grid.

    Attributes:
        logits: (C, X, Y, Z) float32 tensor.
        affine: voxel-to-world matrix of ``logits``' grid.
        disagreement: (X, Y, Z) flip disagreement in [0, 1], or None without TTA.
    """

    logits: torch.Tensor
    affine: np.ndarray
    disagreement: torch.Tensor | None = None


@dataclass
class Decision:
    """Outputs on the output grid (numpy, CPU).

    Attributes:
        labels: (X, Y, Z) uint8 (int16 for > 255 classes) argmax labels.
        probs: (C, X, Y, Z) float32 softmax probabilities, if asked for.
        disagreement: (X, Y, Z) float32 mean flip disagreement, or None without TTA.
        logits: (C, X, Y, Z) float32 averaged logits, if asked for.
    """

    labels: np.ndarray
    probs: np.ndarray | None
    disagreement: np.ndarray | None
    logits: np.ndarray | None


def channel_argmax(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``x.argmax(dim)`` as uint8 (ties: first index), several times faster than ``argmax`` over the
    channel axis on CPU (which is not vectorised there)."""
    n = x.shape[dim]
    if n > 255:
        return x.argmax(dim).to(torch.int16)
    eq = x == x.amax(dim, keepdim=True)
    idx = torch.full(eq.select(dim, 0).shape, n - 1, dtype=torch.uint8, device=x.device)
    for c in range(n - 2, -1, -1):
        idx.masked_fill_(eq.select(dim, c), c)
    return idx


class _Source:
    """One modality's (shifted) data, ready to be sampled slab by slab on the output grid."""

    def __init__(self, data: torch.Tensor, affine: np.ndarray, out_affine: np.ndarray):
        self.data = data  # (C', X, Y, Z), zero means "outside value"
        self.affine = np.asarray(affine, dtype=np.float64)
        M = np.linalg.inv(self.affine) @ np.asarray(out_affine, dtype=np.float64)
        exact = exact_index_map(M)
        self.exact = exact is not None
        if exact is not None:
            axes, flips, t = exact
            view = data.permute(0, *(1 + a for a in axes))
            dims = [1 + k for k in range(3) if flips[k]]
            self.view = torch.flip(view, dims) if dims else view
            # output index o_k = view index + offset_k
            self.offset = [int(-t[k]) if not flips[k] else int(t[k] - (self.view.shape[1 + k] - 1)) for k in range(3)]

    def slab(self, out_affine: np.ndarray, out_shape: tuple[int, int, int], z0: int, z1: int) -> torch.Tensor:
        shape = (out_shape[0], out_shape[1], z1 - z0)
        if self.exact:
            out = torch.zeros((self.data.shape[0], *shape), dtype=self.data.dtype, device=self.data.device)
            src, dst = [], []
            for k, (lo, hi) in enumerate(((0, shape[0]), (0, shape[1]), (z0, z1))):
                a, b = max(lo, self.offset[k]), min(hi, self.offset[k] + self.view.shape[1 + k])
                if b <= a:
                    return out
                src.append(slice(a - self.offset[k], b - self.offset[k]))
                dst.append(slice(a - lo, b - lo))
            out[(slice(None), *dst)] = self.view[(slice(None), *src)]
            return out
        slab_affine = np.asarray(out_affine, dtype=np.float64) @ translation(0, 0, z0)
        return resample_to_grid(self.data, self.affine, slab_affine, shape, mode="linear")


def translation(x: float, y: float, z: float) -> np.ndarray:
    """The 4x4 matrix that shifts voxel indices by ``(x, y, z)``."""
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def decide(fields: list[LogitField], out_affine: np.ndarray, out_shape: tuple[int, int, int], *,
           background_index: int = 0, want_probs: bool = False, want_logits: bool = False,
           slab_elements: int = SLAB_ELEMENTS, fusion: str = "logits",
           lesion_index: int | None = None) -> Decision:
    """Reslice logits onto the output grid, fuse modalities, softmax and argmax.

    Args:
        fields: per-modality logits (all with the same classes).
        out_affine: output grid voxel-to-world matrix (the scan's own affine).
        out_shape: output grid shape.
        background_index: class whose logit is high outside the fields' boxes.
        want_probs: also return the probabilities.
        want_logits: also return the fused logits (for tests and research; memory C x output).
        slab_elements: memory bound of one output slab (elements).
        fusion: how several modalities are combined, one of :data:`FUSIONS` (one modality: no effect).
            With ``probs``/``union`` the returned logits are the log of the fused probabilities.
        lesion_index: the lesion class (``union`` only).

    Returns:
        A :class:`Decision`.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {list(FUSIONS)}, got {fusion!r}")
    if fusion == "union" and lesion_index is None and len(fields) > 1:
        raise ValueError("fusion 'union' needs a schema with a lesion class")
    out_shape = tuple(int(s) for s in out_shape)  # type: ignore[assignment]
    C = int(fields[0].logits.shape[0])
    has_unc = all(f.disagreement is not None for f in fields)
    fill = torch.zeros(C)
    fill[background_index] = BACKGROUND_LOGIT
    sources = []
    for f in fields:
        shifted = f.logits.float() - fill.to(f.logits.device)[:, None, None, None]
        if has_unc:
            shifted = torch.cat([shifted, f.disagreement.float()[None]])
        sources.append(_Source(shifted, f.affine, out_affine))
    X, Y, Z = out_shape
    labels = np.zeros(out_shape, dtype=np.uint8 if C <= 256 else np.int16)
    probs = np.zeros((C, *out_shape), dtype=np.float32) if want_probs else None
    unc = np.zeros(out_shape, dtype=np.float32) if has_unc else None
    logits_out = np.zeros((C, *out_shape), dtype=np.float32) if want_logits else None
    nz = max(1, min(Z, slab_elements // max((C + int(has_unc)) * X * Y, 1)))
    for z0 in range(0, Z, nz):
        z1 = min(Z, z0 + nz)
        if fusion == "logits" or len(sources) == 1:
            acc = sources[0].slab(out_affine, out_shape, z0, z1).clone()
            for s in sources[1:]:
                acc.add_(s.slab(out_affine, out_shape, z0, z1).to(acc.device))
            if len(sources) > 1:
                acc /= len(sources)
            lg = acc[:C] + fill.to(acc.device)[:, None, None, None]
            lab = channel_argmax(lg, 0)
            p = torch.softmax(lg, 0) if probs is not None else None
        else:
            acc, p, votes = _fuse_probabilities(sources, out_affine, out_shape, z0, z1, fill,
                                                lesion_index if fusion == "union" else None)
            lab = channel_argmax(p, 0)
            if votes is not None:
                lab[votes] = lesion_index
            lg = torch.log(p.clamp_min(1e-12))
        labels[..., z0:z1] = lab.cpu().numpy().astype(labels.dtype)
        if probs is not None:
            probs[..., z0:z1] = p.cpu().numpy()
        if logits_out is not None:
            logits_out[..., z0:z1] = lg.cpu().numpy()
        if unc is not None:
            unc[..., z0:z1] = acc[C].clamp(0, 1).cpu().numpy()
    return Decision(labels=labels, probs=probs, disagreement=unc, logits=logits_out)


def _fuse_probabilities(sources: list[_Source], out_affine: np.ndarray, out_shape: tuple[int, int, int],
                        z0: int, z1: int, fill: torch.Tensor, lesion_index: int | None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One slab: (mean of the sources' data, mean of their softmax, voxels any source labels lesion)."""
    acc = p = votes = None
    for s in sources:
        d = s.slab(out_affine, out_shape, z0, z1)
        if acc is None:
            acc, fill = d.clone(), fill.to(d.device)
        else:
            d = d.to(acc.device)
            acc.add_(d)
        lg = d[:fill.shape[0]] + fill[:, None, None, None]
        pi = torch.softmax(lg, 0)
        p = pi if p is None else p.add_(pi)
        if lesion_index is not None:
            v = channel_argmax(lg, 0) == lesion_index
            votes = v if votes is None else votes.logical_or_(v)
    n = len(sources)
    return acc.div_(n), p.div_(n), votes
