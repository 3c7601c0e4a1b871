"""Figures and report pages: the headless pyplot, atomic PNGs, previews (orthogonal slices with the lesion
outlined: synthetic previews, QC, reports), and the HTML table and page every report uses."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from lesionsynth.io.atomic import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (headless machines): every figure of the
    package is made through this function and written with :func:`save_figure`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", **savefig_kwargs)
    finally:
        pyplot().close(fig)
    return path


REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em} td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right} th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:8px} .grid figure{margin:0;width:340px}
.grid img{width:340px;border:1px solid #ddd} figcaption{font-size:.8em;color:#555}
.plots img{max-width:48%;margin-right:1%}
.note{color:#555;font-size:.9em} code{background:#f4f4f4;padding:0 .2em} .warn{color:#a40000}
"""


def html_table(header: list[str], rows: list[list[object]], escape: bool = True) -> str:
    """An HTML table; cells are escaped unless ``escape`` is False (cells that hold markup)."""
    cell = html.escape if escape else str
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{cell(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def html_page(title: str, body: str) -> str:
    """A complete page in the package's report style."""
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{REPORT_CSS}</style></head><body>{body}</body></html>\n")


def _slices(vol: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    x, y, z = centre
    return [np.rot90(vol[x, :, :]), np.rot90(vol[:, y, :]), np.rot90(vol[:, :, z])]


def lesion_centre(mask: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The lesion's centre of mass, or the volume's centre without a lesion."""
    if mask is not None and mask.any():
        return tuple(int(round(c)) for c in np.argwhere(mask).mean(0))  # type: ignore[return-value]
    return tuple(s // 2 for s in shape[:3])  # type: ignore[return-value]


def save_preview(path: str | Path, image: np.ndarray, lesion: np.ndarray | None = None,
                 labels: np.ndarray | None = None, title: str | None = None,
                 extra_outline: np.ndarray | None = None) -> Path:
    """Three orthogonal slices through the lesion, lesion outlined in red (truth) / cyan (extra).

    Args:
        path: PNG path (written atomically).
        image: (X, Y, Z) image.
        lesion: optional binary lesion mask, outlined in red.
        labels: optional label map shown as a second row.
        title: figure title.
        extra_outline: optional second mask (e.g. a prediction), outlined in cyan.
    """
    plt = pyplot()
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, [0.5, 99.5])
    centre = lesion_centre(lesion, img.shape)
    rows = 2 if labels is not None else 1
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3.2 * rows), squeeze=False)
    for j, sl in enumerate(_slices(img, centre)):
        ax = axes[0, j]
        ax.imshow(sl, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        for m, colour in ((lesion, "red"), (extra_outline, "cyan")):
            if m is not None and np.asarray(m).any():
                ms = _slices(np.asarray(m, dtype=np.float32), centre)[j]
                if ms.any():
                    ax.contour(ms, levels=[0.5], colors=colour, linewidths=0.8)
        ax.axis("off")
    if labels is not None:
        vmax = max(int(np.max(labels)), 9)
        for j, sl in enumerate(_slices(np.asarray(labels), centre)):
            axes[1, j].imshow(sl, cmap="tab10", vmin=0, vmax=vmax, interpolation="nearest")
            axes[1, j].axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
