"""Out-of-distribution scoring: a segmenter on physics-rendered scans it was never trained on.

The test bed is :class:`lesionsynth.physics.PhysicsGenerator`: each *subject* (anatomy + lesion) is scanned
as the protocols below, at each asked resolution, and the segmenter's lesion and tissue maps are scored on
the scan's own grid. The chronic lesion protocols are T1w, T2w and FLAIR; the acute ones FLAIR, DWI
(b = 1000) and ADC. An ensemble row per lesion type fuses a subject's modalities (``predict
--ensemble``) and is scored on the first modality's grid.

Tissue Dice merges the partial-volume class into grey matter on both sides (label-map truths from
FreeSurfer maps have no partial-volume class).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

import numpy as np

from lesionsynth.evaluate.metrics import dice, lesion_wise_f1, per_class_dice
from lesionsynth.io.atomic import write_csv_atomic
from lesionsynth.labels.schema import TISSUE

#: (row name, modality, lesion type)
PROTOCOLS: tuple[tuple[str, str, str], ...] = (
    ("T1w", "t1w", "chronic"),
    ("T2w", "t2w", "chronic"),
    ("FLAIR chronic", "flair", "chronic"),
    ("FLAIR acute", "flair", "acute"),
    ("DWI", "dwi", "acute"),
    ("ADC", "adc", "acute"),
)
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "chronic": ("T1w", "T2w", "FLAIR chronic"),
    "acute": ("FLAIR acute", "DWI", "ADC"),
}


@dataclass
class OODRow:
    """Scores of one scan (or ensemble); volumes in ml, ``outside_ml`` the predicted lesion outside the
    brain (where the truth is background: scalp, skull, face, neck), a false positive no lesion shape
    explains."""

    subject: int
    protocol: str
    resolution: str
    lesion_dice: float
    lesion_f1: float
    gm_dice: float
    wm_dice: float
    csf_dice: float
    truth_ml: float
    pred_ml: float
    outside_ml: float
    seconds: float


@dataclass
class OODResult:
    rows: list[OODRow] = field(default_factory=list)

    def table(self, key: str = "lesion_dice") -> dict[tuple[str, str], float]:
        """Mean of ``key`` per (protocol, resolution)."""
        acc: dict[tuple[str, str], list[float]] = {}
        for r in self.rows:
            acc.setdefault((r.protocol, r.resolution), []).append(getattr(r, key))
        return {k: float(np.mean(v)) for k, v in acc.items()}

    def summary_rows(self) -> list[dict[str, str]]:
        """One row per protocol: lesion Dice and F1 per resolution, tissue Dice at the first resolution
        (means over subjects, formatted); the rows of :meth:`markdown` and of the demo's HTML table."""
        res = sorted({r.resolution for r in self.rows}, key=lambda x: ("1mm", "2mm", "thick").index(x))
        d, f = self.table("lesion_dice"), self.table("lesion_f1")
        g, w, c = self.table("gm_dice"), self.table("wm_dice"), self.table("csf_dice")
        rows = []
        for p in dict.fromkeys(r.protocol for r in self.rows):
            row = {"protocol": p}
            for x in res:
                row[f"Dice {x}"] = f"{d[(p, x)]:.3f}" if (p, x) in d else "–"
                row[f"F1 {x}"] = f"{f[(p, x)]:.3f}" if (p, x) in f else "–"
            k = (p, res[0])
            row[f"GM/WM/CSF Dice ({res[0]})"] = (f"{g[k]:.2f} / {w[k]:.2f} / {c[k]:.2f}"
                                                 if k in g and not np.isnan(g[k]) else "–")
            rows.append(row)
        return rows

    def markdown(self) -> str:
        """A table: per protocol, lesion Dice / F1 and tissue Dice per resolution (means over subjects)."""
        rows = self.summary_rows()
        n = len({r.subject for r in self.rows})
        cols = list(rows[0])
        lines = [f"Means over {n} subject(s).", "", "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
        lines += ["| " + " | ".join(r[k] for k in cols) + " |" for r in rows]
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> None:
        """Every scored scan, one row each (written atomically)."""
        write_csv_atomic(path, [f.name for f in fields(OODRow)], [list(astuple(r)) for r in self.rows])


def _merge_pv(labels: np.ndarray) -> np.ndarray:
    out = np.asarray(labels).copy()
    out[out == TISSUE.index("partial_volume")] = TISSUE.index("grey_matter")
    return out


def score_scan(truth_labels: np.ndarray, truth_lesion: np.ndarray, pred_labels: np.ndarray,
               pred_lesion: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Lesion Dice and lesion-wise F1, tissue Dice (PV merged into GM), volumes in ml (truth, prediction, and
    predicted lesion outside the truth's brain)."""
    t, p = _merge_pv(truth_labels), _merge_pv(pred_labels)
    gm, wm, csf = per_class_dice(t, p, [TISSUE.index(n) for n in ("grey_matter", "white_matter", "csf")]).values()
    tl, pl = truth_lesion.astype(bool), pred_lesion.astype(bool)
    return {"lesion_dice": dice(tl, pl), "lesion_f1": lesion_wise_f1(tl, pl), "gm_dice": gm, "wm_dice": wm,
            "csf_dice": csf, "truth_ml": float(tl.sum()) * voxel_ml, "pred_ml": float(pl.sum()) * voxel_ml,
            "outside_ml": float((pl & (t == TISSUE.background_index)).sum()) * voxel_ml}


def run_ood(generator, segmenter, subjects: Iterable[int], resolutions: Iterable[str] = ("1mm", "thick"),
            seed: int = 0, config=None, ensemble: bool = True, protocols=PROTOCOLS,
            progress: Callable[[str], None] | None = None, keep: Callable | None = None,
            fusions: Iterable[str] | None = None) -> OODResult:
    """Score ``segmenter`` on physics-rendered scans of ``subjects``.

    Args:
        generator: a :class:`lesionsynth.physics.PhysicsGenerator`.
        segmenter: a :class:`lesionsynth.infer.Segmenter`.
        subjects: subject indices of the generator (with ``seed``).
        resolutions: ``1mm``, ``2mm``, ``thick``.
        seed: the generator seed.
        config: a :class:`lesionsynth.infer.PredictConfig` (default: predict's defaults, 8 flips).
        ensemble: also score the per-lesion-type ensembles (at each resolution).
        protocols: (name, modality, lesion type) rows.
        progress: called with a line after each scan.
        keep: called as ``keep(name, sample, prediction)`` for each scan (e.g. to save figures).
        fusions: ensemble fusions to score (default: ``config.fusion``); with more than one, each
            ensemble row is named ``ensemble TYPE (FUSION)``. The ensembles reuse the single scans'
            network outputs, so extra fusions cost only the fusion.

    Returns:
        An :class:`OODResult`.
    """
    from dataclasses import replace

    from lesionsynth.infer import PredictConfig
    from lesionsynth.infer.predict import fuse_fields, modality_fields

    cfg = config or PredictConfig()
    fusions = list(fusions) if fusions is not None else [cfg.fusion]
    out = OODResult()

    def score(subject: int, name: str, res: str, truth, pred, t0: float) -> None:
        vml = float(abs(np.linalg.det(truth.affine[:3, :3]))) / 1000.0
        sc = score_scan(truth.labels, truth.lesion, pred.labels, pred.lesion, vml)
        out.rows.append(OODRow(subject, name, res, seconds=time.perf_counter() - t0, **sc))
        if progress:
            progress(f"subject {subject} {res:5s} {name:14s} lesion Dice {sc['lesion_dice']:.3f} "
                     f"F1 {sc['lesion_f1']:.3f} ({sc['truth_ml']:.0f} ml truth, {sc['pred_ml']:.0f} ml pred, "
                     f"{sc['outside_ml']:.0f} outside the brain)")

    for s in subjects:
        for res in resolutions:
            scans, logits, secs = {}, {}, {}
            for name, modality, ltype in protocols:
                t0 = time.perf_counter()
                smp = generator.sample(s, seed, modality, res, ltype)
                t1 = time.perf_counter()
                logits[name] = modality_fields(segmenter, [smp.image], [smp.affine], cfg)[0]
                scans[name], secs[name] = smp, time.perf_counter() - t1
                pred = fuse_fields(segmenter, [logits[name]], smp.affine, smp.image.shape, cfg)
                score(s, name, res, smp, pred, t0)
                if keep is not None:
                    keep(f"{s:03d}_{res}_{name.replace(' ', '-')}", smp, pred)
            if not ensemble:
                continue
            for ltype, names in ENSEMBLES.items():
                if not all(n in scans for n in names):
                    continue
                first = scans[names[0]]
                for fusion in fusions:
                    # timed as predict would be: the members' network passes plus this fusion
                    t0 = time.perf_counter() - sum(secs[n] for n in names)
                    pred = fuse_fields(segmenter, [logits[n] for n in names], first.affine, first.image.shape,
                                       replace(cfg, fusion=fusion))
                    label = f"ensemble {ltype}" + (f" ({fusion})" if len(fusions) > 1 else "")
                    score(s, label, res, first, pred, t0)
    return out
