"""A single-page HTML report that links tables, plots, previews and QC overlays (all relative paths)."""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Any

from lesionsynth.io.atomic import write_text_atomic
from lesionsynth.viz import html_page, html_table


def rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def table_html(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A table of dict rows (floats to 3 decimals)."""
    if not rows:
        return "<p class=note>(no rows)</p>"
    cols = columns or list(rows[0])
    return html_table(cols, [[f"{v:.3f}" if isinstance(v := r.get(c, ""), float) else v for c in cols]
                             for r in rows])


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def image_grid(images: list[tuple[Path, str]], base: Path) -> str:
    figs = [f"<figure><a href='{rel(p, base)}'><img src='{rel(p, base)}' loading=lazy></a>"
            f"<figcaption>{html.escape(c)}</figcaption></figure>" for p, c in images if Path(p).is_file()]
    return "<div class=grid>" + "".join(figs) + "</div>" if figs else "<p class=note>(none)</p>"


def write_report(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write ``path`` with a title and (heading, html) sections."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    write_text_atomic(path, html_page(title, f"<h1>{html.escape(title)}</h1>{body}"))
    return path


def overview_png(path: Path, title: str, lines: list[str], images: list[tuple[Path, str]], cols: int = 3) -> Path:
    """A one-page PNG of the report: ``title``, summary ``lines`` and the given images in a grid.

    For looking at the report without a browser (and for sharing one picture). Missing images are
    skipped. Written atomically.
    """
    from lesionsynth.viz import pyplot, save_figure

    plt = pyplot()

    images = [(Path(p), c) for p, c in images if Path(p).is_file()]
    rows = max(1, -(-len(images) // cols))
    fig = plt.figure(figsize=(5.0 * cols, 1.2 + 0.22 * len(lines) + 4.2 * rows))
    top = 1.0 - (0.5 + 0.22 * len(lines)) / fig.get_figheight()
    fig.text(0.01, 1.0 - 0.35 / fig.get_figheight(), title, fontsize=15, weight="bold", va="top")
    for k, line in enumerate(lines):
        fig.text(0.01, 1.0 - (0.7 + 0.22 * k) / fig.get_figheight(), line, fontsize=10, va="top", family="monospace")
    for k, (p, caption) in enumerate(images):
        ax = fig.add_axes((0.01 + (k % cols) / cols, top - (k // cols + 1) * (top - 0.01) / rows,
                           1.0 / cols - 0.02, (top - 0.01) / rows - 0.03))
        ax.imshow(plt.imread(str(p)))
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    return save_figure(fig, path, dpi=80)
