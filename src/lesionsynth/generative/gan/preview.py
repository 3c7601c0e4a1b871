"""PNG sample grids written during training (atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lesionsynth.viz import pyplot, save_figure


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().float().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float32)


def save_mask_grid(path: str | Path, probs: torch.Tensor | np.ndarray, title: str | None = None) -> Path:
    """Lesion masks (N, X, Y, Z): axial (top row) and coronal (bottom row) mean projections.

    Neurological convention: the subject's right is on the image's right, anterior/superior at the top.
    """
    m = _np(probs)
    n = m.shape[0]
    fig, axes = pyplot().subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        for row, proj in enumerate((m[i].mean(2), m[i].mean(1))):  # (X, Y): axial; (X, Z): coronal
            axes[row, i].imshow(np.rot90(proj), cmap="magma", vmin=0, vmax=max(proj.max(), 1e-3))
        axes[0, i].set_title(f"{m[i].sum():.0f} vox", fontsize=7)
    return _finish(fig, axes, path, title)


def _finish(fig, axes: np.ndarray, path: str | Path, title: str | None) -> Path:
    """Hide the ticks, add the title and write the figure."""
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def _slice2d(x: np.ndarray, axis_index: int | None) -> np.ndarray:
    """A 2D view: the array itself (2D) or its axial slice ``axis_index`` (3D, default centre)."""
    if x.ndim == 2:
        return x
    k = x.shape[2] // 2 if axis_index is None else axis_index
    return x[:, :, k]


def save_pair_grid(path: str | Path, labels: list, real: list, fake: list, lesion_index: int | None = None,
                   title: str | None = None, num_classes: int = 6) -> Path:
    """Columns = samples; rows = label map, real image, generated image (axial slices, [-1, 1] images).

    For 3D samples the slice through the lesion's centre (or the volume's centre) is shown.
    """
    n = len(labels)
    fig, axes = pyplot().subplots(3, n, figsize=(2.0 * n, 6.3), squeeze=False)
    for i in range(n):
        lab = _np(labels[i])
        k = None
        if lab.ndim == 3 and lesion_index is not None and (lab == lesion_index).any():
            k = int(round(np.argwhere(lab == lesion_index)[:, 2].mean()))
        views = [_slice2d(lab, k), _slice2d(_np(real[i]), k), _slice2d(_np(fake[i]), k)]
        axes[0, i].imshow(np.rot90(views[0]), cmap="tab10", vmin=0, vmax=max(9, num_classes - 1),
                          interpolation="nearest")
        for r in (1, 2):
            axes[r, i].imshow(np.rot90(views[r]), cmap="gray", vmin=-1, vmax=1)
    for r, name in enumerate(["labels", "real", "generated"]):
        axes[r, 0].set_ylabel(name, fontsize=8)
    return _finish(fig, axes, path, title)
