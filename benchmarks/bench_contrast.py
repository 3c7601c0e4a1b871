"""Lesion contrast out of distribution against the training generator's: is the OOD lesion inside the prior?

Both sides are put on the scale of the generator's intensity prior: each image is clipped to its 0.5-99.5
percentiles and mapped to 0-255 (the range the class means are drawn from). Then, per image, the median
intensity of grey matter, white matter, CSF, the lesion and a 3 mm ring around it, and the lesion's
contrast (absolute difference of medians) to each. The prior's ``lesion_min_contrast`` is set against
grey and white matter; the ring is what a detector sees around the lesion.

- OOD: the held-out physics scans of ``bench_ood.py`` at 1 mm (``--subjects``), one row per protocol.
- Training: ``--cases`` cases of a generator or training config (``--config``); the table gives, per
  OOD protocol, the share of training cases whose lesion is at most as far from grey and white matter
  (the smaller of the two contrasts), and to its ring, as that protocol's lesion is: near 0 %, the OOD
  lesion is fainter than anything the model trained on.

    python benchmarks/bench_contrast.py --config bundled-cpu --cases 60 --subjects 0 1

A diagnostic (it explains which protocols a recipe can find), never a selection criterion.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ood import SHARED, physics_split_config  # noqa: E402

CLASSES = ("grey_matter", "white_matter", "csf")


def class_medians(image: np.ndarray, labels: np.ndarray, lesion: np.ndarray, index: dict[str, int],
                  ring_vox: int) -> dict[str, float]:
    """Medians of GM, WM, CSF (lesion voxels excluded), of the lesion and of a ``ring_vox`` voxel ring
    around it (inside the head: label not background), on the 0-255 prior scale."""
    from scipy.ndimage import binary_dilation

    x = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(x, [0.5, 99.5])
    x = (np.clip(x, lo, hi) - lo) / max(hi - lo, 1e-12) * 255.0
    les = np.asarray(lesion).astype(bool)
    out = {}
    for name in CLASSES:
        m = (labels == index[name]) & ~les
        out[name] = float(np.median(x[m])) if m.any() else float("nan")
    out["lesion"] = float(np.median(x[les])) if les.any() else float("nan")
    ring = binary_dilation(les, iterations=ring_vox) & ~les & (labels != 0)
    out["ring"] = float(np.median(x[ring])) if ring.any() else float("nan")
    return out


def contrasts(m: dict[str, float]) -> dict[str, float]:
    """The lesion's absolute contrast to each class, and to the nearer of grey and white matter."""
    c = {name: abs(m["lesion"] - m[name]) for name in (*CLASSES, "ring")}
    c["tissue"] = min(c["grey_matter"], c["white_matter"])
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="bundled-cpu", help="generator or training config (default bundled-cpu)")
    ap.add_argument("--cases", type=int, default=60, help="training cases to draw (default 60)")
    ap.add_argument("--subjects", type=int, nargs="+", default=[0, 1], help="OOD subjects (default 0 1)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed of the training cases")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    import torch

    from lesionsynth.errors import LesionsynthError
    from lesionsynth.evaluate.ood import PROTOCOLS
    from lesionsynth.labels.schema import TISSUE
    from lesionsynth.physics import PhysicsGenerator
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.synth.generator import load_synth_config

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        scfg = load_synth_config(args.config)
        synth = SynthGenerator(scfg)
    except LesionsynthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pcfg, where = physics_split_config(SHARED if SHARED.is_dir() else None)
    phys = PhysicsGenerator(pcfg)
    tissue_index = {n: TISSUE.index(n) for n in CLASSES}

    print(f"OOD: {where}, 1 mm, subjects {args.subjects}; medians on the 0-255 prior scale\n")
    print("| protocol | subject | GM | WM | CSF | ring | lesion | lesion-GM | lesion-WM | lesion-CSF | lesion-ring |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ood: dict[str, list[tuple[float, float]]] = {}
    for name, modality, ltype in PROTOCOLS:
        for s in args.subjects:
            smp = phys.sample(s, 0, modality, "1mm", ltype)
            ring = max(1, round(3.0 / float(np.linalg.norm(smp.affine[:3, :3], axis=0).min())))
            m = class_medians(smp.image, smp.labels, smp.lesion, tissue_index, ring)
            c = contrasts(m)
            ood.setdefault(name, []).append((c["tissue"], c["ring"]))
            print(f"| {name} | {s} | {m['grey_matter']:.0f} | {m['white_matter']:.0f} | {m['csf']:.0f} | "
                  f"{m['ring']:.0f} | {m['lesion']:.0f} | {c['grey_matter']:.0f} | {c['white_matter']:.0f} | "
                  f"{c['csf']:.0f} | {c['ring']:.0f} |")

    schema = synth.schema
    index = {n: schema.index(n) for n in CLASSES}
    train_tissue, train_ring, train_csf = [], [], []
    ring = max(1, round(3.0 / (scfg.augment.spatial.spacing or scfg.resolution or 1.0)))
    for k in range(args.cases):
        smp = synth.sample(k, args.seed)
        target = smp.target.numpy()
        les = target == schema.lesion_index
        if not les.any():
            continue
        c = contrasts(class_medians(smp.image[0].numpy(), target, les, index, ring))
        if np.isnan(c["tissue"]):
            continue
        train_tissue.append(c["tissue"])
        train_ring.append(c["ring"])
        train_csf.append(c["csf"])
    t, r = np.asarray(train_tissue), np.asarray(train_ring)
    print(f"\nTraining generator `{args.config}`: {len(t)} cases with a lesion (seed {args.seed}). "
          f"Lesion contrast to the nearer of GM/WM, percentiles 5/25/50/75: "
          + " / ".join(f"{np.percentile(t, q):.0f}" for q in (5, 25, 50, 75))
          + "; to its ring: " + " / ".join(f"{np.percentile(r, q):.0f}" for q in (5, 25, 50, 75))
          + f"; lesion within 15 of CSF in {np.mean(np.asarray(train_csf) <= 15):.0%} of cases\n")
    print("| protocol | OOD contrast to nearer of GM/WM | training cases at most that faint | OOD contrast to "
          "ring | training cases at most that faint |")
    print("|---|---|---|---|---|")
    for name, vals in ood.items():
        v, w = (float(np.mean(a)) for a in zip(*vals))
        print(f"| {name} | {v:.0f} | {np.mean(t <= v):.0%} | {w:.0f} | {np.mean(r <= w):.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
