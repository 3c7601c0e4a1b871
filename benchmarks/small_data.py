"""The small-data study (issue 14): do GAN, LDM or domain-randomised cases help when only 10 or 50
labelled "real" cases exist?

No real stroke scans are available offline, so the "real" cases are physics-rendered scans
(:mod:`lesionsynth.physics`: DWI b = 1000, acute lesions, oblique 2 mm grids, bias and Rician noise) of
real anatomy (SynthSeg label maps) with real lesion masks (LESYMAP), from ``../shared/data``:

- training pool: 50 cases, case ``i`` = label map ``training_seg_{i % 10 + 1:02d}`` (maps 01-10) with lesion
  ``Subject_{i + 1:03d}`` (001-050); the first N cases (sorted by name) are the N-case training set;
- test set: 20 cases, maps 11-15 with lesions 051-070: anatomy and lesions disjoint from training; the
  same 20 subjects are also scanned as FLAIR (a contrast no arm's real cases show).

For N in (10, 50) each generator family is trained on the same N cases only, then writes a database:

- GAN: the lesion-mask WGAN-GP on the N cases' MNI masks; a 2D pix2pix translator on the N cases'
  (tissue labels, image) pairs; ``gan build-dataset`` pastes generated masks into the 10 training
  anatomies and renders them;
- LDM: a mask LDM and a SPADE image LDM, both on the N cases (4 mm grid); ``ldm build-dataset``;
- domain randomisation needs no training: the ``synth`` source draws from the 10 training anatomies
  and the N masks on the fly.

Stages (each resumable; the generator commands are the CLI's, printed as they run)::

    python benchmarks/small_data.py prepare --work small-data      # real pool + test set (physics)
    python benchmarks/small_data.py gan --n 10 --work small-data    # GAN database of N = 10
    python benchmarks/small_data.py ldm --n 10 --work small-data    # LDM database of N = 10
    (same for --n 50)
    cd small-data && lesionsynth experiment run small-data -o experiment   # 8 arms, predict, evaluate
    python benchmarks/small_data.py report --work small-data --out benchmarks/results/small-data.md

``all`` runs every stage in order. Sizes (iterations, database size) are options, recorded in the
report; the defaults fit about two hours on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STUDY_SEED = 14
TRAIN_MAPS = [f"training_seg_{i:02d}.nii.gz" for i in range(1, 11)]
TEST_MAPS = [f"training_seg_{i:02d}.nii.gz" for i in range(11, 16)]
POOL = 50
N_TEST = 20
LDM_GRID = ["grid.spacing=4.0", "grid.shape=[40,48,40]", "grid.centre=[0.0,0.0,-15.0]"]


def _physics_case(label_map: Path, lesion: Path, index: int, modality: str = "dwi"):
    from lesionsynth.physics import PhysicsConfig, PhysicsGenerator

    cfg = PhysicsConfig(labels=[str(label_map)], lesions=[str(lesion)], modalities=[modality], resolutions=["2mm"],
                        lesion_types=["acute"])
    return PhysicsGenerator(cfg).sample(index, seed=STUDY_SEED)


def _link_folder(dest: Path, files: list[Path]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        t = dest / f.name
        if not t.is_symlink():
            t.symlink_to(f.resolve())
    return dest


def prepare(work: Path, shared: Path) -> None:
    """The 50-case training pool (``real/``), the 20-case test set (``test/``) and the input folders."""
    from lesionsynth.data import case_done, write_case, write_dataset_json
    from lesionsynth.io.nifti import save_volume
    from lesionsynth.labels.schema import TISSUE

    maps, les = shared / "labelmaps-synthseg", shared / "lesions-lesymap"
    if not maps.is_dir() or not les.is_dir():
        sys.exit(f"error: {shared} lacks labelmaps-synthseg/ or lesions-lesymap/")
    _link_folder(work / "anatomy", [maps / f for f in TRAIN_MAPS])
    for n in (10, POOL):
        _link_folder(work / f"lesions-{n}", [les / f"Subject_{i:03d}.nii.gz" for i in range(1, n + 1)])
    write_dataset_json(work / "real", ["DWI"], {c: i for i, c in enumerate(TISSUE.classes)}, POOL,
                       extra={"description": "physics-rendered DWI (acute lesions), SynthSeg maps 01-10, "
                                             "LESYMAP 001-050"})
    t0 = time.perf_counter()
    for i in range(POOL):
        cid = f"case_{i:03d}"
        if case_done(work / "real", cid):
            continue
        s = _physics_case(maps / TRAIN_MAPS[i % 10], les / f"Subject_{i + 1:03d}.nii.gz", i)
        write_case(work / "real", cid, s.image, s.labels, s.affine, params=s.params)
        print(f"real {cid}: {s.lesion.sum() * 8 / 1000:.1f} ml lesion ({time.perf_counter() - t0:.0f} s)", flush=True)
    for modality, sub in (("dwi", ""), ("flair", "-flair")):  # the same test subjects scanned as FLAIR too
        for i in range(N_TEST):
            cid = f"test_{i:03d}"
            img = work / "test" / f"images{sub}" / f"{cid}_0000.nii.gz"
            lab = work / "test" / f"labels{sub}" / f"{cid}.nii.gz"
            if lab.is_file():
                continue
            s = _physics_case(maps / TEST_MAPS[i % 5], les / f"Subject_{51 + i:03d}.nii.gz", 1000 + i, modality)
            save_volume(img, s.image, s.affine)
            save_volume(lab, s.lesion.astype("uint8"), s.affine)
            print(f"test {cid} ({modality}): {s.lesion.sum() * 8 / 1000:.1f} ml lesion", flush=True)


def _run(cmd: list[str], threads: int | None) -> None:
    full = ["lesionsynth", "-q", *(["--threads", str(threads)] if threads else []), *cmd]
    print("$ " + shlex.join(full), flush=True)
    t0 = time.perf_counter()
    subprocess.run(full, check=True)
    print(f"  ({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)


def _done(folder: Path) -> bool:
    return (folder / "DONE").is_file()


def _mark(folder: Path) -> None:
    (folder / "DONE").write_text("")


def gan(work: Path, n: int, args: argparse.Namespace) -> None:
    """Mask GAN + pix2pix on the first N cases, then a database of ``--db-size`` cases."""
    g = work / f"gan-{n}"
    if not _done(g / "masks"):
        _run(["gan", "train-masks", "-i", str(work / f"lesions-{n}"), "--config", "gan-masks-cpu",
              "--iterations", str(args.gan_mask_iterations), "-o", str(g / "masks"), "--device", "cpu"], args.threads)
        _mark(g / "masks")
    if not _done(g / "pix2pix"):
        _run(["gan", "train-translator", "--config", "gan-pix2pix-2d-cpu", "-i", str(work / "real"),
              "--max-cases", str(n), "--lesions", "none", "--iterations", str(args.translator_iterations),
              "-o", str(g / "pix2pix"), "--device", "cpu"], args.threads)
        _mark(g / "pix2pix")
    if not _done(g / "db"):
        _run(["gan", "build-dataset", "--translator", str(g / "pix2pix"), "--lesions", str(g / "masks"),
              "--labels", str(work / "anatomy"), "--output-labels", "schema", "-n", str(args.db_size),
              "-o", str(g / "db"), "--device", "cpu"], args.threads)
        _mark(g / "db")


def ldm(work: Path, n: int, args: argparse.Namespace) -> None:
    """Mask LDM (condition: lesion volume ratio) + SPADE image LDM on the first N cases, then a database."""
    d = work / f"ldm-{n}"
    grid = [x for kv in LDM_GRID for x in ("--set", kv)]
    for kind, cfg in (("mask", "ldm-lesion-mask"), ("image", "ldm-image-spade")):
        data = ["--dataset", str(work / "real"), "--set", f"data.max_items={n}"]
        if kind == "mask":
            data += ["--set", "data.lesions=null", "--set", "data.schema=tissue"]
        if not _done(d / f"{kind}-ae"):
            _run(["ldm", "train-autoencoder", "--config", cfg, *data, *grid, "--iterations", str(args.ae_iterations),
                  "-o", str(d / f"{kind}-ae"), "--device", "cpu"], args.threads)
            _mark(d / f"{kind}-ae")
        if not _done(d / f"{kind}-diff"):
            _run(["ldm", "train-diffusion", "--autoencoder", str(d / f"{kind}-ae"), "--iterations",
                  str(args.diffusion_iterations), "-o", str(d / f"{kind}-diff"), "--device", "cpu"], args.threads)
            _mark(d / f"{kind}-diff")
    if not _done(d / "db"):
        _run(["ldm", "build-dataset", "--model", str(d / "mask-diff"), "--image-model", str(d / "image-diff"),
              "-n", str(args.db_size), "--steps", str(args.ldm_steps), "-o", str(d / "db"), "--device", "cpu"],
             args.threads)
        _mark(d / "db")


def examples_figure(work: Path, png: Path) -> Path:
    """Axial slice through the lesion of case 0 of each training source (real, GAN and LDM databases for
    each N), lesion outlined; every image reoriented to RAS."""
    import nibabel as nib
    import numpy as np

    from lesionsynth.labels.schema import TISSUE
    from lesionsynth.viz import lesion_centre, pyplot, save_figure

    def load(p: Path) -> np.ndarray:
        return np.asarray(nib.as_closest_canonical(nib.load(p)).dataobj, dtype=np.float32)

    cols = [("real (physics DWI)", work / "real")] + [(f"{kind.upper()} database, N = {n}", work / f"{kind}-{n}" / "db")
                                                      for n in (10, 50) for kind in ("gan", "ldm")]
    cols = [(t, d) for t, d in cols if (d / "labelsTr").is_dir()]
    fig, axes = pyplot().subplots(1, len(cols), figsize=(3 * len(cols), 3.4), squeeze=False)
    for ax, (title, d) in zip(axes[0], cols):
        lab_path = sorted((d / "labelsTr").glob("*.nii.gz"))[0]
        img = load(d / "imagesTr" / lab_path.name.replace(".nii.gz", "_0000.nii.gz"))
        les = load(lab_path) == TISSUE.lesion_index
        z = lesion_centre(les, img.shape)[2]
        lo, hi = np.percentile(img, [0.5, 99.5])
        ax.imshow(np.rot90(img[:, :, z]), cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        if les[:, :, z].any():
            ax.contour(np.rot90(les[:, :, z].astype(np.float32)), levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return save_figure(fig, png, dpi=100)


def _table(rows: list[dict[str, str]]) -> tuple[list[str], dict[str, dict[str, dict[str, float]]]]:
    """Markdown rows of one test set and its per-case scores by arm."""
    import numpy as np

    from lesionsynth.evaluate.stats import paired_wilcoxon

    arms: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        arms.setdefault(r["model"], {})[r["case"]] = {k: float(r[k]) for k in ("dice", "lesion_f1")}
    lines = ["| arm | N real | added source | Dice mean (sd) | lesion-wise F1 mean | Dice vs real-only: mean "
             "paired difference, Wilcoxon p |", "|---|---|---|---|---|---|"]
    for a in arms:
        n = a.split("-")[1].split("+")[0]
        d = np.array([arms[a][c]["dice"] for c in sorted(arms[a])])
        f = np.array([arms[a][c]["lesion_f1"] for c in sorted(arms[a])])
        ref = f"real-{n}"
        vs = "reference"
        if a != ref and ref in arms:
            common = sorted(set(arms[a]) & set(arms[ref]))
            x = np.array([arms[a][c]["dice"] for c in common])
            y = np.array([arms[ref][c]["dice"] for c in common])
            vs = f"{float(np.mean(x - y)):+.3f}, p = {paired_wilcoxon(x, y)[1]:.3g}"
        added = a.split("+")[1] if "+" in a else "none"
        lines.append(f"| {a} | {n} | {added} | {d.mean():.3f} ({d.std():.3f}) | {f.mean():.3f} | {vs} |")
    return lines, arms


def report(work: Path, out: Path, args: argparse.Namespace) -> None:
    """Per test set: a table (mean Dice and lesion-wise F1; paired difference and Wilcoxon p against the
    real-only arm of the same N) and a box plot; a figure of training cases; the wall times."""
    from lesionsynth.demo.report import csv_rows
    from lesionsynth.viz import pyplot, save_figure

    sets = [d for d in sorted((work / "experiment" / "evaluation").iterdir()) if (d / "per_case.csv").is_file()]
    if not sets:
        sys.exit(f"error: no evaluation under {work / 'experiment' / 'evaluation'}; run the experiment first")
    png = out.with_suffix(".png")
    fig, axes = pyplot().subplots(1, len(sets), figsize=(6 * len(sets), 4.2), squeeze=False, layout="constrained")
    body = []
    for ax, d in zip(axes[0], sets):
        lines, arms = _table(csv_rows(d / "per_case.csv"))
        body += [f"### Test set `{d.name}`", "", *lines, ""]
        ax.boxplot([[arms[a][c]["dice"] for c in sorted(arms[a])] for a in arms], showmeans=True)
        ax.set_xticks(range(1, len(arms) + 1), list(arms), rotation=35, ha="right")
        ax.set_ylabel("lesion Dice per test case")
        ax.set_title(f"test set: {d.name}")
    save_figure(fig, png, dpi=100)
    examples = examples_figure(work, out.with_name(out.stem + "-examples.png"))
    meta = {p.stem: float(p.read_text()) for p in sorted((work / "timings").glob("*.txt"))}
    sizes = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                      if k not in ("stage", "work", "out", "shared", "n", "threads"))
    text = ("# Small-data study (issue 14)\n\n" + (__doc__ or "").split("Stages")[0].strip() + "\n\n"
            + "\n".join(body) + f"\n![per-case Dice]({png.name})\n\n![training cases]({examples.name})\n\n"
            + f"Generator sizes: {sizes}.\n\n"
            + ("Wall times (minutes, 2 CPU cores shared between two stages at a time): "
               + ", ".join(f"{k} {v:.1f}" for k, v in meta.items()) + "\n" if meta else ""))
    out.write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("stage", choices=["prepare", "gan", "ldm", "report"])
    ap.add_argument("--work", default="small-data", help="study folder (default: small-data)")
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--n", type=int, choices=[10, 50], default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--db-size", type=int, default=100, help="cases per generated database")
    ap.add_argument("--gan-mask-iterations", type=int, default=1500)
    ap.add_argument("--translator-iterations", type=int, default=3000)
    ap.add_argument("--ae-iterations", type=int, default=300)
    ap.add_argument("--diffusion-iterations", type=int, default=1500)
    ap.add_argument("--ldm-steps", type=int, default=25)
    ap.add_argument("--out", default="benchmarks/results/small-data.md")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.stage == "prepare":
        prepare(work, Path(args.shared))
    elif args.stage == "gan":
        gan(work, args.n, args)
    elif args.stage == "ldm":
        ldm(work, args.n, args)
    else:
        report(work, Path(args.out), args)
        return 0
    key = args.stage + (f"-{args.n}" if args.stage in ("gan", "ldm") else "")
    tfile = work / "timings" / f"{key}.txt"  # minutes, summed over resumed runs
    tfile.parent.mkdir(exist_ok=True)
    before = float(tfile.read_text()) if tfile.is_file() else 0.0
    tfile.write_text(f"{before + (time.perf_counter() - t0) / 60:.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
