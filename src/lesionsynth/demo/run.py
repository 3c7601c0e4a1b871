"""``lesionsynth demo``: the whole pipeline on the bundled default, on a laptop, with no data of yours.

1. synthesise held-out cases (and preview them) from the MNI default with procedural lesions; GAN / LDM
   cases too when their checkpoints are given;
2. train the tiny configuration (on-the-fly synthetic data from the same generator, another seed);
3. predict on the held-out synthetic cases and on realistic test images built from the real MNI152 T1
   template with a pasted chronic stroke (dark in T1), plus a contrast-inverted T2-like version, with
   the tiny model and with the bundled model (``lesionsynth models``);
4. score the bundled model on physics-rendered scans (T1w, T2w, FLAIR, DWI, ADC at 1 mm and thick
   slices; :mod:`lesionsynth.physics`), the out-of-distribution set of ``benchmarks/bench_ood.py``;
5. evaluate, and write ``report.html``.

Every stage resumes: re-running the demo skips finished work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml

LESION = 5  # lesion value of the tissue schema, in which the demo's truth files are written


@dataclass
class DemoOptions:
    out: Path
    n_heldout: int = 8
    train_config: str = "tiny-cpu"
    epochs: int | None = None
    iterations_per_epoch: int | None = None
    train_minutes: float | None = 14.0  # training's time budget (None: the config's full length)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    gan_masks: Path | None = None
    gan_translator: Path | None = None
    ldm_mask: Path | None = None
    ldm_image: Path | None = None
    n_generated: int = 2


def say(msg: str) -> None:
    print(msg, flush=True)


def run_demo(opt: DemoOptions) -> dict:
    """Run the demo; returns a summary dict (report path, Dice per test image)."""
    from lesionsynth.data.folder import read_dataset
    from lesionsynth.demo.report import csv_rows, image_grid, overview_png, table_html, write_report
    from lesionsynth.demo.stages import predict, train_or_resume
    from lesionsynth.demo.testimages import make_stroke_images
    from lesionsynth.evaluate import evaluate_folders
    from lesionsynth.synth import build_dataset, load_synth_config

    t0 = time.time()
    out = opt.out
    out.mkdir(parents=True, exist_ok=True)
    heldout = out / "synthetic_heldout"
    run_dir = out / "model"

    say(f"[1/6] synthesising {opt.n_heldout} held-out cases from the MNI default (procedural lesions)")
    synth_cfg = _heldout_synth_config(opt.train_config, out / "synth_heldout.yaml")
    build_dataset(load_synth_config(synth_cfg), heldout, opt.n_heldout, seed=10_000 + opt.seed,
                  device=opt.device, preview=True)
    generated = _generated_sets(opt, out)

    say(f"[2/6] training the '{opt.train_config}' configuration (on-the-fly synthetic data) -> {run_dir}")
    overrides = {k: getattr(opt, k) for k in ("epochs", "iterations_per_epoch", "threads") if getattr(opt, k)}
    if opt.train_minutes:  # on a slow machine, fewer whole epochs (schedule re-fitted) keep the demo in time
        overrides["time_budget_min"] = opt.train_minutes
    overrides = {"device": opt.device, "seed": opt.seed, **overrides}
    trained = train_or_resume(opt.train_config, run_dir, overrides)
    if trained.planned_iterations < trained.config_iterations:
        say(f"      trained {trained.planned_iterations} of {trained.config_iterations} iterations: the "
            f"{opt.train_minutes:g}-minute time budget fitted the run to this machine's speed "
            f"(--no-train-budget trains the full length)")

    say("[3/6] building realistic test images (MNI152 T1 + pasted chronic stroke, and a T2-like inversion)")
    cases = make_stroke_images(out / "realistic")
    say("      predicting (sliding windows, 8-flip TTA)")
    pred_syn = out / "predictions" / "synthetic"
    pred_real = out / "predictions" / "realistic"
    # windows of the training patch size (predict's default): with instance norm, a window much larger
    # than the training crops changes the feature statistics (measured: held-out Dice 0.23 -> 0.05)
    images = [c.image for c in cases]
    predict([heldout / "imagesTr"], pred_syn, run_dir, device=opt.device)
    predict(images, pred_real, run_dir, device=opt.device)
    ensemble_dir = out / "predictions" / "ensemble"
    predict(images, ensemble_dir, run_dir, device=opt.device, ensemble=True)
    from lesionsynth.pretrained import DEFAULT_MODEL, bundled_path

    bundled = bundled_path(DEFAULT_MODEL) is not None
    pred_bundled = out / "predictions" / "realistic_bundled"
    if bundled:
        say(f"      and with the bundled model '{DEFAULT_MODEL}'")
        predict(images, pred_bundled, device=opt.device)

    say("[4/6] scoring the bundled model on physics-rendered scans (out of distribution)")
    ood_html, ood_lines, ood_figs = _ood_section(out, opt) if bundled else ("<p>(no bundled model)</p>", [], [])

    say("[5/6] evaluating")
    ev_syn = evaluate_folders(heldout / "labelsTr", {"synth-tiny": pred_syn}, out / "evaluation" / "synthetic",
                              label=LESION)
    real_models = {"synth-tiny": pred_real, **({f"{DEFAULT_MODEL} (bundled)": pred_bundled} if bundled else {})}
    ev_real = evaluate_folders(out / "realistic" / "truth", real_models, out / "evaluation" / "realistic",
                               label=LESION)

    say("[6/6] writing the report")
    figs = out / "figures"
    real_figs = [_truth_vs_prediction(c.image, c.truth, pred_real / c.name, figs / f"{c.name}.png", c.name)
                 for c in cases]
    real_figs.append(_truth_vs_prediction(cases[0].image, cases[0].truth, ensemble_dir / cases[0].name,
                                          figs / "ensemble.png", "T1 + T2-like ensemble"))
    if bundled:
        real_figs += [_truth_vs_prediction(c.image, c.truth, pred_bundled / c.name,
                                           figs / f"{c.name}_bundled.png", f"{c.name} ({DEFAULT_MODEL})")
                      for c in cases]
    syn_figs = [_truth_vs_prediction(c.images[0], c.label, pred_syn / c.images[0].name.removesuffix(".nii.gz"),
                                     figs / f"synthetic_{c.id}.png", c.id)
                for c in read_dataset(heldout).cases]
    per_case = csv_rows(Path(ev_real["per_case_csv"]))
    dice = {f"{r['case']} ({r.get('model', '')})": float(r["dice"]) for r in per_case
            if r.get("dice") not in (None, "", "nan")}
    syn_rows = csv_rows(Path(ev_syn["per_case_csv"]))
    sections = [
        ("What you are looking at", _intro(opt, time.time() - t0, generated)),
        ("Realistic test images (MNI152 T1 with a pasted stroke, and a T2-like inversion)",
         table_html(per_case, _cols(per_case))
         + image_grid([(f, f"{f.stem}: truth red, prediction cyan; predicted labels below") for f in real_figs],
                      out)
         + f"<p><a href='{Path(ev_real['report_html']).relative_to(out)}'>full evaluation report</a></p>"),
        ("Bundled model on physics-rendered scans (out of distribution)",
         ood_html + image_grid([(f, f.stem) for f in ood_figs], out)),
        ("Held-out synthetic cases", table_html(syn_rows, _cols(syn_rows))
         + image_grid([(f, f"{f.stem}: truth red, prediction cyan") for f in syn_figs], out)
         + f"<p><a href='{Path(ev_syn['report_html']).relative_to(out)}'>full evaluation report</a></p>"),
        ("Synthetic training samples (previews: three slices, lesion outlined; second row: labels)",
         image_grid(sorted((p, p.stem) for p in (heldout / "previews").glob("*.png")), out)),
        ("Training curve", _training_section(run_dir, out)),
    ]
    report = write_report(out / "report.html", "lesionsynth demo", sections)
    minutes = (time.time() - t0) / 60
    syn_mean = ev_syn.get("summary", {}).get("synth-tiny", {}).get("dice")
    lines = [f"lesion Dice on {n}: {d:.3f}" for n, d in dice.items()]
    if syn_mean is not None:
        lines.append(f"mean lesion Dice on {len(syn_rows)} held-out synthetic cases: {syn_mean:.3f}")
    lines += ood_lines
    previews = sorted((heldout / "previews").glob("*.png"))[:2]
    overview_png(out / "report.png", f"lesionsynth demo ({opt.train_config}; this run: {minutes:.1f} min)", lines,
                 [(f, f.stem) for f in real_figs + ood_figs[:3] + syn_figs[:2]]
                 + [(p, f"synthetic sample {p.stem}") for p in previews]
                 + [(out / "training_curve.png", "training")])
    say(f"done in {minutes:.1f} min. Report: {report.resolve()} (one-page picture: {out / 'report.png'})")
    for line in lines:
        say(f"  {line}")
    return {"report": report, "dice": dice, "synthetic_dice": syn_mean, "minutes": minutes}


def _ood_section(out: Path, opt: DemoOptions) -> tuple[str, list[str], list[Path]]:
    """The bundled model on one physics-rendered subject (MNI anatomy, a procedural lesion), every
    protocol at 1 mm and thick slices, predicted with ``predict --fast``: a table and figures."""
    from lesionsynth.demo.report import table_html
    from lesionsynth.evaluate.ood import run_ood
    from lesionsynth.infer import PredictConfig, load_segmenter
    from lesionsynth.lesions import ProceduralLesionConfig
    from lesionsynth.physics import PhysicsConfig, PhysicsGenerator
    from lesionsynth.pretrained import DEFAULT_MODEL
    from lesionsynth.viz import save_preview

    figs_dir = out / "figures" / "ood"
    figs: list[Path] = []

    def keep(name, smp, pred):
        figs.append(save_preview(figs_dir / f"{name}.png", smp.image, smp.lesion, labels=pred.labels,
                                 title=name.replace("_", " "), extra_outline=pred.lesion))

    gen = PhysicsGenerator(PhysicsConfig(procedural=ProceduralLesionConfig(volume_ml=(20.0, 120.0))))
    seg = load_segmenter(DEFAULT_MODEL, device=opt.device)
    res = run_ood(gen, seg, [0], ("1mm", "thick"), seed=20_000 + opt.seed, config=PredictConfig(fast=True),
                  keep=keep, progress=lambda s: say("      " + s))
    res.write_csv(out / "evaluation" / "ood.csv")
    intro = ("<p>One subject rendered by the physics-based generator (MNI152 anatomy, a procedural lesion; "
             "MR signal equations with literature T1/T2/PD/ADC, oblique grids, slice profile, bias, Rician "
             f"noise), never seen in training, segmented by the bundled model <code>{DEFAULT_MODEL}</code> "
             "(predict --fast). Truth red, prediction cyan. The full benchmark, on anatomy and lesions the "
             "model never saw: <code>python benchmarks/bench_ood.py</code>.</p>")
    d = res.table("lesion_dice")
    lines = [f"bundled {DEFAULT_MODEL}, physics scans (1 subject): " + ", ".join(
        f"{p} {d[(p, r)]:.2f}" for (p, r) in d if r == "1mm" and not p.startswith("ensemble"))]
    return intro + table_html(res.summary_rows()), lines, figs


def _truth_vs_prediction(image: Path, truth: Path, pred_stem: Path, png: Path, title: str) -> Path:
    """Three slices through the true lesion: truth outlined red, prediction cyan, predicted labels below
    (``pred_stem`` + ``_lesion.nii.gz`` / ``_labels.nii.gz``, as ``lesionsynth predict`` writes them)."""
    from lesionsynth.io.nifti import load_volume
    from lesionsynth.viz import save_preview

    img = load_volume(image).data
    t = load_volume(truth).data == LESION
    les_path = pred_stem.parent / f"{pred_stem.name}_lesion.nii.gz"
    lab_path = pred_stem.parent / f"{pred_stem.name}_labels.nii.gz"
    pred = load_volume(les_path).data > 0 if les_path.is_file() else None
    labels = load_volume(lab_path).data if lab_path.is_file() else None
    return save_preview(png, img, t, labels=labels, title=title, extra_outline=pred)


def _heldout_synth_config(train_config: str, path: Path) -> Path:
    """The generator exactly as training uses it (priors, resolution, crop), for held-out cases: the
    demo scores the model on unseen cases of its training distribution (another seed). The tiny model
    is trained at 2 mm without resolution randomisation; cases drawn at 1 mm would measure that shift
    instead (4 cases: Dice 0.11 at 1 mm vs 0.39 for 8 cases at 2 mm, same model)."""
    from lesionsynth.config import resolve_config_path, to_dict
    from lesionsynth.io.atomic import write_text_atomic
    from lesionsynth.train.config import load_train_config
    from lesionsynth.train.sources import synth_config_for_training

    synth = synth_config_for_training(load_train_config(resolve_config_path(train_config)))
    text = yaml.safe_dump(to_dict(synth), sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        write_text_atomic(path, text)
    return path


def _cols(rows: list[dict]) -> list[str]:
    want = ["case", "model", "dice", "hd95_mm", "avd_ml", "ald", "lesion_f1", "truth_volume_ml", "pred_volume_ml"]
    have = list(rows[0]) if rows else []
    return [c for c in want if c in have] or have


def _intro(opt: DemoOptions, seconds: float, generated: list[str]) -> str:
    gen = "".join(f"<li>{g}</li>" for g in generated)
    return (f"<p>A tiny UNet ('{opt.train_config}') trained only on synthetic images generated from the MNI152 "
            f"tissue maps with procedural lesions, applied to unseen synthetic cases (the training generator, "
            f"another seed; <code>synth_heldout.yaml</code>) and to a real 1 mm T1 template with a pasted "
            f"stroke and its T2-like inversion &mdash; images unlike any it was trained on.</p>"
            f"<ul>{gen}</ul><p class=note>Pipeline time so far: {seconds / 60:.1f} min.</p>")


def _training_section(run_dir: Path, out: Path) -> str:
    from lesionsynth.demo.report import csv_rows, image_grid

    rows = csv_rows(run_dir / "metrics.csv")
    if not rows:
        return "<p class=note>(no metrics.csv)</p>"
    png = out / "training_curve.png"
    try:
        from lesionsynth.viz import pyplot, save_figure

        plt = pyplot()

        train_rows = [r for r in rows if r.get("phase", "train") == "train" and r.get("loss")]
        it = [int(r["iteration"]) for r in train_rows]
        loss = [float(r["loss"]) for r in train_rows]
        fig, ax = plt.subplots(1, 2, figsize=(8, 3))
        ax[0].plot(it, loss)
        ax[0].set_xlabel("iteration")
        ax[0].set_ylabel("Dice + CE loss")
        vd = [(int(r["iteration"]), float(r["lesion_dice"])) for r in rows
              if r.get("phase") == "val" and r.get("lesion_dice")]
        if vd:
            ax[1].plot(*zip(*vd), "o-")
        ax[1].set_xlabel("iteration")
        ax[1].set_ylabel("validation lesion Dice")
        fig.tight_layout()
        save_figure(fig, png, dpi=80)
    except (KeyError, ValueError):
        return "<p class=note>(metrics.csv has no loss column)</p>"
    return image_grid([(png, "training loss and validation Dice")], out)


def _generated_sets(opt: DemoOptions, out: Path) -> list[str]:
    lines = []
    if opt.gan_masks and opt.gan_translator:
        d = out / "gan_cases"
        from lesionsynth.devices import resolve_device
        from lesionsynth.generative.gan.database import BuildConfig, build_dataset

        build_dataset(opt.gan_translator, d, opt.n_generated, BuildConfig(lesions=str(opt.gan_masks)),
                      device=resolve_device(opt.device))
        lines.append(f"GAN: {opt.n_generated} cases in {d}")
    else:
        lines.append("GAN cases skipped (give --gan-masks and --gan-translator checkpoints to include them)")
    if opt.ldm_mask and opt.ldm_image:
        d = out / "ldm_cases"
        from lesionsynth.generative.ldm.build import build_dataset as build_ldm_dataset
        from lesionsynth.generative.ldm.models import check_compatible, load_image_ldm, load_mask_ldm

        mask = load_mask_ldm(opt.ldm_mask, opt.device)
        image = load_image_ldm(opt.ldm_image, opt.device)
        check_compatible(mask, image, str(opt.ldm_mask), str(opt.ldm_image))
        build_ldm_dataset(mask, image, d, opt.n_generated, (0.2, 0.8))
        lines.append(f"LDM: {opt.n_generated} cases in {d}")
    else:
        lines.append("LDM cases skipped (give --ldm-mask and --ldm-image checkpoints to include them)")
    for ln in lines:
        say("      " + ln)
    return lines
