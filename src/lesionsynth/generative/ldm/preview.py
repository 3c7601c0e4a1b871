"""PNG sample grids: one axial slice per generated map (and image), side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def focus_slice(labels: np.ndarray, index: int | None) -> int:
    """Axial slice with the most voxels of class ``index`` (else of any foreground, else the middle)."""
    for sel in ((labels == index) if index is not None else None, labels > 0):
        if sel is not None and sel.any():
            return int(sel.sum((0, 1)).argmax())
    return labels.shape[2] // 2


def save_grid(path: str | Path, labels: Sequence[np.ndarray] | np.ndarray,
              images: Sequence[np.ndarray] | np.ndarray | None = None, titles: Sequence[str] | None = None,
              focus: int | None = None, max_cols: int = 8, suptitle: str | None = None) -> Path:
    """Write a grid: label maps (row 1) and images with the ``focus`` class outlined (row 2).

    Args:
        path: PNG file (written atomically).
        labels: (N, X, Y, Z) label maps.
        images: optional (N, X, Y, Z) images.
        titles: one caption per column.
        focus: class index the slice is chosen for (and outlined on images).
        max_cols: at most this many columns (the first maps).
        suptitle: figure title.
    """
    from lesionsynth.viz import pyplot, save_figure

    plt = pyplot()

    n = min(len(labels), max_cols)
    rows = 1 if images is None else 2
    fig, axes = plt.subplots(rows, max(n, 1), figsize=(1.9 * max(n, 1), 2.1 * rows), squeeze=False)
    from matplotlib.colors import ListedColormap

    # background black, classes 1.. in tab10 colours
    cmap = ListedColormap(["black", *plt.get_cmap("tab10").colors[:9]])
    for j in range(n):
        lab = np.asarray(labels[j])
        z = focus_slice(lab, focus)
        axes[0, j].imshow(np.rot90(lab[:, :, z]), cmap=cmap, vmin=-0.5, vmax=9.5, interpolation="nearest")
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=7)
        if images is not None:
            img = np.asarray(images[j])[:, :, z]
            vmax = max(float(np.percentile(img, 99.5)), 1e-3)
            axes[1, j].imshow(np.rot90(img), cmap="gray", vmin=0, vmax=vmax)
            sel = lab[:, :, z] == focus
            if focus is not None and sel.any():
                axes[1, j].contour(np.rot90(sel.astype(float)), levels=[0.5], colors="red", linewidths=0.6)
    for ax in axes.ravel():
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
