"""Where each true class's voxels go: confusion tables of a segmenter, out of and in distribution.

Two tables (rows: truth, columns: predicted, each row a share of the true class's voxels, pooled over cases):

- OOD: physics-rendered scans of the held-out anatomy and lesions (as ``bench_ood.py``), per modality at 1 mm;
- own generator: cases of the bundled recipe's domain-randomised generator (``--config``), drawn on the
  held-out label map 13 with held-out lesions, at 2 mm. A diagnostic, never a selection criterion: a model
  that fails here is under-trained, whatever it scores out of distribution.

Usage (repository root, ``../shared/data`` present)::

    python benchmarks/bench_confusion.py --model stroke-2mm --subjects 0 2 --synth-cases 4
    python benchmarks/bench_confusion.py --model RUN --subjects --synth-cases 8   # own generator only

The own-generator part also prints lesion Dice grouped by the lesion's polarity (darker or brighter than a ring
around it): does a model that misses dark lesions out of distribution miss them on its own generator too?
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ood import SHARED, physics_split_config  # noqa: E402


def table(counts: np.ndarray, names: list[str], title: str) -> str:
    share = counts / counts.sum(1, keepdims=True).clip(1)
    lines = [title, "", "| truth \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {names[a]} | " + " | ".join(f"{x:.2f}" for x in share[a]) + " |"
              for a in range(len(names)) if counts[a].sum() > 0]
    dice = 2 * np.diag(counts) / (counts.sum(0) + counts.sum(1)).clip(1)
    lines += ["", "Dice: " + ", ".join(f"{names[a]} {dice[a]:.2f}" for a in range(len(names)) if counts[a].sum() > 0)]
    return "\n".join(lines)


def confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(truth.ravel().astype(np.int64) * n + pred.ravel().astype(np.int64), minlength=n * n
                       ).reshape(n, n).astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="stroke-2mm", help="bundled name, run folder or checkpoint")
    ap.add_argument("--subjects", type=int, nargs="*", default=[0, 2],
                    help="OOD subjects (default 0 2; none: the own-generator table only)")
    ap.add_argument("--synth-cases", type=int, default=4, help="own-generator cases (default 4; 0: none)")
    ap.add_argument("--protocols", nargs="+", default=None, help="OOD protocol names (default: all of bench_ood's)")
    ap.add_argument("--config", default="bundled-cpu", help="training config whose generator is used")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from lesionsynth.evaluate.ood import PROTOCOLS
    from lesionsynth.infer import PredictConfig, load_segmenter
    from lesionsynth.infer.predict import predict_volume
    from lesionsynth.physics import PhysicsGenerator
    from lesionsynth.synth.generator import SynthGenerator, load_synth_config

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (SHARED / "labelmaps-synthseg").is_dir():
        print(f"bench_confusion: {SHARED}: shared data not found", file=sys.stderr)
        return 2
    seg = load_segmenter(args.model, device=args.device)
    names, n = list(seg.schema.classes), seg.schema.num_classes
    fast = PredictConfig(fast=True)
    print(f"model `{args.model}`, fast predictions (no flips)\n")
    gen = PhysicsGenerator(physics_split_config(SHARED)[0])
    for name, modality, ltype in PROTOCOLS if args.subjects else []:
        if args.protocols and name not in args.protocols:
            continue
        counts = np.zeros((n, n))
        for s in args.subjects:
            smp = gen.sample(s, 0, modality, "1mm", ltype)
            pred = predict_volume(seg, smp.image, smp.affine, config=fast)
            counts += confusion(np.asarray(smp.labels), np.asarray(pred.labels), n)
        print(table(counts, names, f"OOD {name} 1 mm, subjects {args.subjects} (physics truth has no PV class)") + "\n")
    if args.synth_cases:
        cfg = load_synth_config(args.config, labels=[str(SHARED / "labelmaps-synthseg" / "training_seg_13.nii.gz")],
                                lesions=[str(SHARED / "lesions-lesymap" / "Subject_09[0-9].nii.gz")])
        cfg.resolution = 2.0
        cfg.augment.spatial.crop_size = (112, 112, 112)  # the whole head at 2 mm
        sg = SynthGenerator(cfg)
        counts = np.zeros((n, n))
        polarity = []
        lesion = seg.schema.lesion_index
        for i in range(args.synth_cases):
            smp = sg.sample(i, seed=123)
            image, target = smp.image[0].numpy(), smp.target.numpy()
            labels = np.asarray(predict_volume(seg, image, smp.affine, config=fast).labels)
            counts += confusion(target, labels, n)
            if lesion is not None and (row := lesion_polarity(image, target, labels, lesion)) is not None:
                polarity.append(row)
        print(table(counts, names, f"own generator (`{args.config}`), {args.synth_cases} cases of held-out map 13 with "
                            "held-out lesions, 2 mm"))
        if polarity:
            print("\n" + polarity_table(polarity))
    return 0


RING_VOX = 2  # width of the ring a lesion's contrast is measured against


def lesion_polarity(image: np.ndarray, target: np.ndarray, pred: np.ndarray, lesion: int
                    ) -> tuple[float, float] | None:
    """A case's lesion contrast and lesion Dice: (mean in the lesion - mean in a ``RING_VOX``-voxel ring of
    non-background tissue around it) / the image's standard deviation over non-background voxels; None when the
    case has no lesion."""
    from scipy.ndimage import binary_dilation

    from lesionsynth.evaluate.metrics import dice

    les = target == lesion
    if not les.any():
        return None
    ring = binary_dilation(les, iterations=RING_VOX) & ~les & (target > 0)
    sd = float(image[target > 0].std()) or 1.0
    contrast = (float(image[les].mean()) - float(image[ring].mean())) / sd if ring.any() else 0.0
    return contrast, dice(les, pred == lesion)


def polarity_table(rows: list[tuple[float, float]]) -> str:
    """Lesion Dice of the own-generator cases grouped by the lesion's polarity against its surroundings."""
    lines = [f"Lesion Dice by polarity (contrast: lesion minus a {RING_VOX}-voxel ring, in SDs of the head)", "",
             "| lesion | cases | mean contrast | mean lesion Dice | cases with Dice >= 0.1 |", "|---|---|---|---|---|"]
    for name, keep in (("darker than its ring", lambda c: c < 0), ("brighter than its ring", lambda c: c >= 0)):
        sel = [(c, d) for c, d in rows if keep(c)]
        if sel:
            lines.append(f"| {name} | {len(sel)} | {np.mean([c for c, _ in sel]):+.2f} | "
                         f"{np.mean([d for _, d in sel]):.3f} | {sum(d >= 0.1 for _, d in sel)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
