"""Models trained by this project and shipped inside the package.

Each bundled model is ``NAME.pt`` (inference-only checkpoint, fp16 weights) with a model card
``NAME.md`` beside it. ``lesionsynth predict`` uses :data:`DEFAULT_MODEL` when no ``--model`` is given,
and ``--model NAME`` accepts any bundled name; ``lesionsynth models`` lists them.
A training checkpoint (or the average of several) becomes a bundled model with
:func:`lesionsynth.models.export_model` (`python tools/export_model.py CKPT... -o NAME.pt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_MODEL = "stroke-2mm"


@dataclass
class BundledModel:
    """A shipped model: its name, weights file, model card and the card's one-paragraph summary."""

    name: str
    weights: Path
    card: Path
    summary: str


def _summary(card: Path) -> str:
    """The card's first paragraph after its title."""
    if not card.is_file():
        return "(no model card)"
    para: list[str] = []
    for line in card.read_text().splitlines():
        if line.startswith("#"):
            if para:
                break
            continue
        if not line.strip():
            if para:
                break
            continue
        para.append(line.strip())
    return " ".join(para)


def list_models() -> list[BundledModel]:
    """The bundled models, sorted by name."""
    return [BundledModel(p.stem, p, p.with_suffix(".md"), _summary(p.with_suffix(".md")))
            for p in sorted(HERE.glob("*.pt"))]


def bundled_path(name: str) -> Path | None:
    """The weights file of bundled model ``name`` (with or without ``.pt``), or None."""
    stem = name[:-3] if name.endswith(".pt") else name
    if "/" in stem or "\\" in stem or not stem:
        return None
    p = HERE / f"{stem}.pt"
    return p if p.is_file() else None
