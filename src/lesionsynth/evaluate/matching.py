"""Finding label files in folders and matching cases across folders by identifier.

Case identifier rule (documented in ``docs/evaluate.md``):

1. A folder is either a plain folder of NIfTI files or an nnU-Net dataset folder; for a dataset folder
   the labels are read from ``labelsTs/`` when it exists, else from ``labelsTr/`` (pass
   ``DIR/labelsTr`` to choose explicitly). Files that are not NIfTI (``.json``, ``.npz``, ``.png``,
   ...) are ignored. In a ``lesionsynth predict`` output folder (``{stem}_labels.nii.gz`` next to
   ``{stem}_lesion``/``_uncertainty``/``_probabilities`` files) only the ``*_labels`` files are read.
2. The identifier is the file name without ``.nii``/``.nii.gz``/``.mgz``/``.mgh``.
3. A trailing word suffix ``_label``, ``_labels``, ``_lesion``, ``_lesions``, ``_seg``, ``_mask``,
   ``_pred``, ``_prediction`` (``_`` or ``-`` before it, any case) is removed when **every** file in
   the folder carries the same one; then an nnU-Net channel suffix (``_0000``) is removed when every
   file carries the same one and the folder has at least two files (so ``case_0000.nii.gz`` alone keeps
   its name). A suffix is only removed if the identifiers stay distinct.
4. A prediction whose identifier is not a truth case but becomes one without a trailing ``_dddd``
   channel suffix is matched to it (``case_0000_labels.nii.gz`` predicted from ``case_0000.nii.gz``
   matches the truth ``case.nii.gz`` even in a one-case folder).

So ``sub-01_lesion.nii.gz``, ``sub-01_pred.nii.gz`` and ``sub-01.nii.gz`` in three folders all match as
``sub-01``, while ``case_0001.nii.gz`` keeps its number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lesionsynth.errors import InputError
from lesionsynth.io.nifti import find_images, strip_nifti_suffix

_WORD_SUFFIX = re.compile(r"[_-](labels?|lesions?|seg|mask|pred|prediction)$", re.IGNORECASE)
_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


def label_folder(root: str | Path) -> Path:
    """The folder holding the label files of ``root`` (``labelsTs``/``labelsTr`` of a dataset folder)."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: folder not found")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    for sub in ("labelsTs", "labelsTr"):
        if (root / sub).is_dir():
            return root / sub
    return root


_PREDICT_EXTRAS = ("_lesion", "_uncertainty", "_probabilities")


def _strip_common(stems: list[str], pattern: re.Pattern, min_files: int = 1) -> list[str]:
    """Remove the suffix matched by ``pattern`` if every stem carries the same one and ids stay distinct."""
    if len(stems) < min_files:
        return stems
    m = pattern.search(stems[0])
    if m is None:
        return stems
    suf = m.group(0).lower()
    if not all(s.lower().endswith(suf) and len(s) > len(suf) for s in stems):
        return stems
    stripped = [s[: -len(suf)] for s in stems]
    return stripped if len(set(stripped)) == len(stripped) else stems


def list_cases(root: str | Path) -> dict[str, Path]:
    """Map case identifier -> label file for one folder (see the module docstring for the rule)."""
    folder = label_folder(root)
    files = find_images(folder)
    if not files:
        raise InputError(f"{folder}: no NIfTI files (.nii, .nii.gz) found")
    stems = [strip_nifti_suffix(p) for p in files]
    if any(s.endswith("_labels") for s in stems) and any(s.endswith(_PREDICT_EXTRAS) for s in stems):
        # a `lesionsynth predict` output folder: read the label maps only
        files = [p for p, s in zip(files, stems, strict=True) if s.endswith("_labels")]
        stems = [s for s in stems if s.endswith("_labels")]
    stems = _strip_common(stems, _WORD_SUFFIX)
    stems = _strip_common(stems, _CHANNEL_SUFFIX, min_files=2)
    out: dict[str, Path] = {}
    for s, p in zip(stems, files, strict=True):
        if s in out:
            raise InputError(f"{folder}: two files for case '{s}': {out[s].name} and {p.name}")
        out[s] = p
    return out


@dataclass
class Matching:
    """Cases matched across the truth folder and each model's folder.

    Attributes:
        truth: case id -> truth file.
        preds: model -> (case id -> prediction file), only cases that have a truth.
        missing: model -> truth case ids without a prediction.
        extra: model -> prediction case ids without a truth.
    """

    truth: dict[str, Path]
    preds: dict[str, dict[str, Path]]
    missing: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        """Truth cases, sorted."""
        return sorted(self.truth)

    def problems(self) -> list[str]:
        """One human-readable line per model with missing or extra cases."""
        return problem_lines(self.preds, self.missing, self.extra)


def _short(ids: list[str], n: int = 8) -> str:
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


def problem_lines(models: Iterable[str], missing: dict[str, list[str]], extra: dict[str, list[str]],
                  ids: Callable[[list[str]], str] = _short, missing_note: str = "", extra_note: str = "",
                  ) -> list[str]:
    """Per model, a line for its truth cases without prediction and one for its predictions without truth
    (``ids`` formats the case list; the notes follow the counts)."""
    lines = []
    for m in models:
        if missing.get(m):
            lines.append(f"{m}: {len(missing[m])} truth case(s) without prediction{missing_note}: {ids(missing[m])}")
        if extra.get(m):
            lines.append(f"{m}: {len(extra[m])} prediction(s) without truth{extra_note}: {ids(extra[m])}")
    return lines


def match_cases(truth: str | Path, preds: dict[str, str | Path]) -> Matching:
    """Match the cases of each prediction folder to the truth folder by identifier.

    Raises:
        InputError: a folder is missing or empty, or a model has no case in common with the truth.
    """
    t = list_cases(truth)
    out = Matching(truth=t, preds={})
    for model, folder in preds.items():
        p = list_cases(folder)
        for c in sorted(p):  # rule 4: an image channel suffix left on a prediction's name
            base = _CHANNEL_SUFFIX.sub("", c)
            if c not in t and base != c and base in t and base not in p:
                p[base] = p.pop(c)
        out.preds[model] = {c: p[c] for c in sorted(p) if c in t}
        out.missing[model] = sorted(c for c in t if c not in p)
        out.extra[model] = sorted(c for c in p if c not in t)
        if not out.preds[model]:
            raise InputError(
                f"{label_folder(folder)}: no case of model '{model}' matches a truth case "
                f"(truth ids e.g. {_short(sorted(t), 3)}; prediction ids e.g. {_short(sorted(p), 3)})"
            )
    return out
