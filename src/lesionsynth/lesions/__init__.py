"""Lesion sources (real masks, procedural blobs) and their pasting into healthy anatomy."""

from lesionsynth.lesions.folder import LesionFolder
from lesionsynth.lesions.paste import PasteConfig, PasteParams, paste_lesion, sample_paste
from lesionsynth.lesions.procedural import (
    ProceduralLesionConfig,
    ProceduralLesionParams,
    apply_procedural,
    sample_procedural,
)

__all__ = [
    "LesionFolder", "PasteConfig", "PasteParams", "ProceduralLesionConfig", "ProceduralLesionParams",
    "apply_procedural", "paste_lesion", "sample_paste", "sample_procedural",
]
