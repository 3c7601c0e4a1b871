"""``predict`` on files: many inputs, one progress bar, failures reported and skipped, resumable."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lesionsynth.argtypes import check_parts
from lesionsynth.errors import InputError, LesionsynthError
from lesionsynth.infer.config import PredictConfig
from lesionsynth.infer.outputs import output_paths, part_table, read_volumes, write_outputs, write_volumes
from lesionsynth.infer.predict import Segmenter, as_segmenter, load_segmenter, predict_volume
from lesionsynth.io import find_images, load_volume, strip_nifti_suffix
from lesionsynth.io.atomic import remove_stale_temporaries
from lesionsynth.io.nifti import is_complete_nifti, is_nifti
from lesionsynth.labels.schema import LabelSchema
from lesionsynth.log import tqdm
from lesionsynth.preprocess import Preprocessing

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    """One finished subject.

    Attributes:
        stem: output name prefix.
        inputs: the input file(s).
        status: ``done`` (computed now) or ``skipped`` (outputs already there).
        paths: output files by kind (labels, lesion, uncertainty, probabilities, qc).
        row: its ``volumes.csv`` row.
    """

    stem: str
    inputs: list[Path]
    status: str
    paths: dict[str, Path] = field(default_factory=dict)
    row: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    """An input that could not be processed, with a one-line reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return self.message if self.message.startswith(self.path) else f"{self.path}: {self.message}"


BIDS_DATATYPES = ("anat", "dwi", "perf", "func")


def is_bids_root(folder: Path) -> bool:
    """A BIDS dataset: ``dataset_description.json`` or ``sub-*`` folders at the top."""
    return folder.is_dir() and ((folder / "dataset_description.json").is_file()
                                or any(p.is_dir() for p in folder.glob("sub-*")))


def bids_images(root: Path) -> list[Path]:
    """``sub-*/[ses-*/]{anat,dwi,perf,func}/*.nii[.gz]`` of a BIDS dataset (not ``derivatives/``)."""
    return sorted(p for pattern in ("sub-*/{t}/*.nii*", "sub-*/ses-*/{t}/*.nii*") for t in BIDS_DATATYPES
                  for p in root.glob(pattern.format(t=t)) if p.is_file() and not p.name.startswith("."))


def bids_entities(path: Path) -> tuple[str, str | None, str] | None:
    """``(sub-X, ses-Y or None, datatype)`` of a file inside a BIDS tree, else None."""
    parts = path.parts
    if len(parts) < 3 or parts[-2] not in BIDS_DATATYPES:
        return None
    if parts[-3].startswith("ses-") and len(parts) >= 4 and parts[-4].startswith("sub-"):
        return parts[-4], parts[-3], parts[-2]
    if parts[-3].startswith("sub-"):
        return parts[-3], None, parts[-2]
    return None


def expand_inputs(inputs: list[str | Path] | str | Path) -> tuple[list[Path], list[Failure]]:
    """Files, folders, glob patterns, BIDS datasets and ``.txt``/``.csv`` lists of paths -> NIfTI files;
    a pattern, folder or list matching nothing is a failure."""
    files: list[Path] = []
    failures: list[Failure] = []
    for item in _as_list(inputs):
        p = Path(item)
        if p.suffix.lower() in (".txt", ".csv") and p.is_file():
            found = _read_list(p)
            if not found:
                failures.append(Failure(str(item), "the list names no files"))
        else:
            found = bids_images(p) if is_bids_root(p) else find_images([item])
            if not found and (p.is_dir() or any(c in str(item) for c in "*?[")):
                failures.append(Failure(str(item), "no NIfTI files (.nii, .nii.gz, .mgz) found there"))
        files.extend(found)
    return list(dict.fromkeys(files)), failures


def _read_list(path: Path) -> list[Path]:
    """Paths of a ``.txt`` (one per line) or ``.csv`` (first column) list, relative to the list's folder;
    blank lines, ``#`` comments and a header row that is not a file are skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read the list ({type(e).__name__})") from None
    out = []
    for i, line in enumerate(lines):
        cell = line.split(",")[0].strip().strip('"') if path.suffix.lower() == ".csv" else line.strip()
        if not cell or cell.startswith("#"):
            continue
        q = path.parent / cell  # an absolute cell stays as it is
        if i == 0 and path.suffix.lower() == ".csv" and not q.exists():
            continue  # header
        out.append(q)
    return out


def unique_stems(paths: list[Path]) -> list[str]:
    """Output stems: the file name without suffix, prefixed by parent folder names where two inputs
    would otherwise share one (``a/t1.nii.gz``, ``b/t1.nii.gz`` -> ``a_t1``, ``b_t1``)."""
    stems = [strip_nifti_suffix(p) for p in paths]
    for depth in range(1, 64):
        dup = {s for s, n in Counter(stems).items() if n > 1}
        if not dup:
            return stems
        for i, p in enumerate(paths):
            if stems[i] in dup:
                parents = [q.name for q in p.resolve().parents][:depth][::-1]
                stems[i] = "_".join([*[x for x in parents if x], strip_nifti_suffix(p)])
    return [f"{s}_{i}" for i, s in enumerate(stems)]


_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def group_subjects(files: list[Path], ensemble: bool) -> list[tuple[str, list[Path]]]:
    """Subjects to segment: ``(output stem, input files)``.

    BIDS files (``sub-X/[ses-Y/]anat|dwi/...``) keep that layout under the output folder; with ``ensemble``
    each subject session (all its anat/dwi images) is one subject, named ``sub-X[_ses-Y]``.
    Otherwise, without ``ensemble`` every file is its own subject. With it, nnU-Net channel files
    (``CASE_0000.nii.gz``, ``CASE_0001.nii.gz``, ...) are grouped per case id, channels in order, so each
    case's own modalities are averaged (inputs that all share one case id are that case's modalities in the
    order given); files without a channel suffix are the modalities of one subject, named after the first.
    Mixing the two is refused (which files belong together would be a guess).

    Raises:
        InputError: channel-suffixed and plain files mixed, or one case's channel given twice.
    """
    bids = [bids_entities(p) for p in files]
    if all(bids):  # BIDS: outputs in sub-X/[ses-Y/]DATATYPE/, one subject session per ensemble
        if not ensemble:
            return [("/".join(x for x in (e[0], e[1], e[2], strip_nifti_suffix(p)) if x), [p])
                    for p, e in zip(files, bids, strict=True)]
        sessions: dict[tuple[str, str | None], list[Path]] = {}
        for p, e in zip(files, bids, strict=True):
            sessions.setdefault((e[0], e[1]), []).append(p)
        return [("/".join(x for x in (sub, ses) if x) + "/" + "_".join(x for x in (sub, ses) if x), ps)
                for (sub, ses), ps in sessions.items()]
    if not ensemble:
        return [(s, [p]) for s, p in zip(unique_stems(files), files, strict=True)]
    matches = [_CHANNEL.match(strip_nifti_suffix(p)) for p in files]
    if not any(matches):
        return [(strip_nifti_suffix(files[0]), files)]
    plain = [p for p, m in zip(files, matches, strict=True) if m is None]
    if plain:
        raise InputError(f"--ensemble: {plain[0].name} has no nnU-Net channel suffix (_0000, _0001, ...) "
                         f"while other inputs do; give one subject's modalities, or nnU-Net cases only")
    cases: dict[str, list[tuple[str, Path]]] = {}
    for p, m in zip(files, matches, strict=True):
        cases.setdefault(m["case"], []).append((m["channel"], p))
    if len(cases) == 1:  # one case: its files in the order given (e.g. one modality per folder)
        return [(next(iter(cases)), files)]
    out = []
    for case, channels in cases.items():
        seen: dict[str, Path] = {}
        for ch, p in channels:
            if ch in seen:
                raise InputError(f"--ensemble: channel {ch} of case {case} given twice ({seen[ch]} and {p})")
            seen[ch] = p
        out.append((case, [seen[k] for k in sorted(seen)]))
    return out


def _printable(stem: str) -> str:
    """A stem from a file name that is not valid UTF-8 (surrogate escapes) -> valid UTF-8 (U+FFFD), so
    output names, the CSV and the QC title can be written."""
    return stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _one_line(e: BaseException) -> str:
    if isinstance(e, LesionsynthError):
        return str(e)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def predict_files(
    inputs: list[str | Path] | str | Path,
    out_dir: str | Path,
    model: str | Path | Segmenter | torch.nn.Module,
    *,
    config: PredictConfig | None = None,
    ensemble: bool = False,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    progress: bool = True,
    verbose: bool = True,
    schema: LabelSchema | None = None,
    preprocessing: Preprocessing | dict[str, Any] | None = None,
    part: int = 0,
    num_parts: int = 1,
) -> tuple[list[FileResult], list[Failure]]:
    """Segment scans on disk and write their outputs (see :mod:`lesionsynth.infer.outputs`).

    Args:
        inputs: files, folders or glob patterns.
        out_dir: output folder (created).
        model: run folder or checkpoint path, or a loaded :class:`Segmenter` / network.
        config: :class:`PredictConfig`.
        ensemble: fuse a subject's co-registered modalities (``config.fusion``) and write one set of
            outputs on its first input's grid (see :func:`group_subjects`: nnU-Net ``CASE_XXXX`` files
            are grouped per case; plain files are one subject's modalities).
        device: for a model path: ``cpu``, ``cuda[:N]`` or None/``auto``.
        overwrite: recompute inputs whose outputs already exist (default: skip them).
        progress: show a progress bar (stderr, only on a terminal).
        verbose: log one line per failed input (ERROR, so that ``-q`` still names each failure).
        schema, preprocessing: for a bare network only.
        part, num_parts: do every ``num_parts``-th subject from the ``part``-th (several processes or
            machines sharing one batch); each part keeps its own table, merged into ``volumes.csv`` when
            it ends.

    Returns:
        (finished subjects, failures). A bad input is reported and skipped; the others are done.
    """
    cfg = config or PredictConfig()
    out = Path(out_dir)
    seg = load_segmenter(model, device) if isinstance(model, (str, Path)) else \
        as_segmenter(model, schema, preprocessing)
    files, failures = expand_inputs(inputs)
    for f in failures:
        _report(f, verbose)
    if not files:
        raise InputError(f"no input images found in: {' '.join(str(i) for i in _as_list(inputs))}")
    check_parts(part, num_parts)
    subjects = [(_printable(s), ps) for s, ps in group_subjects(files, ensemble)][part::num_parts]
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, older_than_s=600 if num_parts > 1 else 0)
    rows = read_volumes(out)
    table = out / part_table(part, num_parts)
    mine = {s: rows[s] for s, _ in subjects if s in rows}
    expect = dict(lesion=seg.schema.lesion_index is not None, uncertainty=cfg.effective().tta,
                  probabilities=cfg.save_probabilities)
    results: list[FileResult] = []
    bar = tqdm(subjects, desc="predict", unit="scan", file=sys.stderr,
               disable=None if progress else True)
    if not bar.disable:  # on a terminal: a second bar over each scan's windows
        cfg = dataclasses.replace(cfg, progress=True)
    for stem, paths in bar:
        bar.set_postfix_str(stem, refresh=False)
        expected = output_paths(out, stem, **expect)
        if not overwrite and stem in rows and all(is_complete_nifti(p) if is_nifti(p) else p.is_file()
                                                  for p in expected.values()):
            results.append(FileResult(stem, paths, "skipped", expected, rows[stem]))
            continue
        try:
            vols = []
            for current in paths:  # a failure names the file being read, else the first input
                vols.append(load_volume(current))
            current = paths[0]
            pred = predict_volume(seg, [v.data for v in vols], [v.affine for v in vols], config=cfg)
            written, row = write_outputs(out, stem, vols[0].data, pred,
                                         inputs=_printable(";".join(str(p) for p in paths)))
        except Exception as e:  # one bad scan never aborts the batch: reported, skipped, exit 1
            if os.environ.get("LESIONSYNTH_DEBUG") == "1":
                raise
            failures.append(Failure(str(current), _one_line(e)))
            _report(failures[-1], verbose)
            continue
        rows[stem] = mine[stem] = row
        write_volumes(out, rows if num_parts <= 1 else mine, path=table)
        results.append(FileResult(stem, paths, "done", written, row))
    bar.close()
    if num_parts > 1:  # merge every part's table seen so far into volumes.csv
        write_volumes(out, read_volumes(out))
    return results, failures


def _as_list(inputs: Any) -> list[Any]:
    return [inputs] if isinstance(inputs, (str, Path)) else list(inputs)


def _report(f: Failure, verbose: bool) -> None:
    if verbose:
        log.error(f"skipped {f}")


