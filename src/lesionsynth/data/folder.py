"""nnU-Net-style dataset folders (the one on-disk format every stage reads and writes).

Layout::

    DIR/dataset.json                      # channel_names, labels, numTraining, file_ending, ...
    DIR/imagesTr/{case}_{CCCC}.nii.gz     # one file per channel (modality), CCCC = 0000, 0001, ...
    DIR/labelsTr/{case}.nii.gz            # integer labels, values as in dataset.json "labels"
    DIR/imagesTs/, DIR/labelsTs/          # optional held-out cases, same naming
    DIR/params/{case}.json                # lesionsynth: drawn generation parameters (synthetic data)
    DIR/previews/{case}.png               # lesionsynth: optional preview

``dataset.json`` ``labels`` maps class names to values (nnU-Net v2 convention). Real datasets may label
only some classes (e.g. ``{"background": 0, "lesion": 1}``): loaders map names onto the schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lesionsynth.errors import InputError
from lesionsynth.io.atomic import write_text_atomic
from lesionsynth.io.nifti import is_complete_nifti, save_volume

FILE_ENDING = ".nii.gz"


@dataclass
class Case:
    """One case: its images (one per channel) and, for training sets, its label file."""

    id: str
    images: list[Path]
    label: Path | None = None


@dataclass
class DatasetFolder:
    """A parsed dataset folder."""

    root: Path
    channel_names: dict[str, str]
    labels: dict[str, int]
    cases: list[Case] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def case_files(root: Path, case_id: str, n_channels: int, split: str = "Tr") -> tuple[list[Path], Path]:
    images = [root / f"images{split}" / f"{case_id}_{c:04d}{FILE_ENDING}" for c in range(n_channels)]
    return images, root / f"labels{split}" / f"{case_id}{FILE_ENDING}"


def resume_generated_set(root: str | Path, signature: dict[str, Any], n: int) -> int:
    """Check that a generated dataset folder may be continued, and return its case count.

    Generators (``synth``, ``gan build-dataset``, ``ldm build-dataset``) record ``signature`` (seed, config,
    models, ...) in ``dataset.json`` under ``lesionsynth``; a re-run with the same signature resumes (its
    finished cases are kept), any other is refused instead of mixing two sets in one folder.

    Returns:
        ``max(n, numTraining already recorded)``.

    Raises:
        InputError: the folder holds a set made with other arguments, or its ``dataset.json`` is unreadable.
    """
    js = Path(root) / "dataset.json"
    if not js.is_file():
        return n
    try:
        prev = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{js}: not valid JSON; use another output folder") from None
    if not isinstance(prev, dict):
        raise InputError(f"{js}: not a dataset.json object; use another output folder")
    sig = prev.get("lesionsynth")
    if not isinstance(sig, dict) or not sig:
        raise InputError(f"{root}: holds a dataset that lesionsynth did not generate (not lesionsynth's "
                         f"dataset.json); use another output folder")
    differ = [k for k, v in signature.items() if sig.get(k) != v]
    if differ:
        raise InputError(f"{root}: holds a set made with other arguments ({', '.join(differ)}); "
                         f"use another output folder")
    try:
        return max(n, int(prev.get("numTraining", 0)))
    except (TypeError, ValueError):
        return n


def write_dataset_json(root: str | Path, channel_names: dict[str, str] | list[str], labels: dict[str, int],
                       num_training: int, extra: dict[str, Any] | None = None) -> None:
    """Write ``dataset.json`` atomically."""
    if isinstance(channel_names, list):
        channel_names = {str(i): n for i, n in enumerate(channel_names)}
    data = {"channel_names": channel_names, "labels": labels, "numTraining": int(num_training),
            "file_ending": FILE_ENDING, **(extra or {})}
    write_text_atomic(Path(root) / "dataset.json", json.dumps(data, indent=2) + "\n")


def write_case(root: str | Path, case_id: str, images: list[np.ndarray] | np.ndarray, label: np.ndarray | None,
               affine: np.ndarray, params: dict[str, Any] | None = None, split: str = "Tr") -> list[Path]:
    """Write one case (images, then params, label last) atomically; returns the written paths.

    The label file is written last so its presence marks a finished case (see :func:`case_done`).
    """
    root = Path(root)
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    img_paths, lab_path = case_files(root, case_id, len(images), split)
    written = [save_volume(p, np.asarray(arr, dtype=np.float32), affine) for arr, p in zip(images, img_paths)]
    if params is not None:
        p = root / "params" / f"{case_id}.json"
        write_text_atomic(p, json.dumps(params, indent=1, default=_json_default) + "\n")
        written.append(p)
    if label is not None:
        written.append(save_volume(lab_path, np.asarray(label).astype(np.uint8), affine))
    return written


def case_done(root: str | Path, case_id: str, n_channels: int = 1, split: str = "Tr") -> bool:
    """True when the case's label and image files all exist and read back whole (a re-run redoes a
    case whose files were cut short)."""
    imgs, lab = case_files(Path(root), case_id, n_channels, split)
    return all(is_complete_nifti(p) for p in [lab, *imgs])


def _json_default(o: Any) -> Any:
    """numpy/torch scalars and arrays as Python numbers and lists; anything else as text."""
    if isinstance(o, np.floating):
        return float(o)  # np.longdouble.tolist() stays a numpy scalar
    return o.tolist() if hasattr(o, "tolist") else str(o)


_CASE_RE = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})\.nii(\.gz)?$")


def read_dataset(root: str | Path, split: str = "Tr", require_labels: bool = True) -> DatasetFolder:
    """Parse a dataset folder; errors name the folder and the problem in one line."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    meta: dict[str, Any] = {}
    js = root / "dataset.json"
    if js.is_file():
        try:
            meta = json.loads(js.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{js}: not valid JSON (line {e.lineno})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{js}: expected a JSON object (nnU-Net dataset.json), got a {type(meta).__name__}")
    for key in ("channel_names", "modality", "labels"):
        if key in meta and not isinstance(meta[key], dict):
            raise InputError(f"{js}: '{key}' must be an object (name: value), got a {type(meta[key]).__name__}")
    img_dir = root / f"images{split}"
    if not img_dir.is_dir():
        raise InputError(f"{root}: no images{split}/ folder")
    groups: dict[str, dict[int, Path]] = {}
    for p in sorted(img_dir.iterdir()):
        m = _CASE_RE.match(p.name)
        if m:
            groups.setdefault(m["case"], {})[int(m["ch"])] = p
    channel_names = {str(k): str(v) for k, v in meta.get("channel_names", meta.get("modality", {})).items()}
    n_ch = len(channel_names) or max((len(g) for g in groups.values()), default=1)
    labels = {str(k): int(v) for k, v in meta.get("labels", {"background": 0, "lesion": 1}).items()}
    cases = []
    for cid, chans in groups.items():
        if sorted(chans) != list(range(n_ch)):
            raise InputError(f"{img_dir}: case {cid} has channels {sorted(chans)}, expected 0..{n_ch - 1}")
        lab_dir = root / f"labels{split}"
        lab = next((f for f in (lab_dir / f"{cid}{FILE_ENDING}", lab_dir / f"{cid}.nii") if f.is_file()), None)
        if lab is None and require_labels:
            raise InputError(f"{root}: case {cid} has no label file labels{split}/{cid}{FILE_ENDING}")
        cases.append(Case(cid, [chans[c] for c in range(n_ch)], lab))
    if not cases:
        raise InputError(f"{img_dir}: no cases named CASE_0000.nii.gz")
    return DatasetFolder(root, channel_names or {"0": "image"}, labels, cases, meta)
