"""Writing generated maps and images: ``ldm sample``, ``ldm render`` and ``ldm build-dataset``.

``build-dataset`` writes the same nnU-Net style folder as ``lesionsynth synth`` (``imagesTr``,
``labelsTr``, ``params``, ``dataset.json``): case ``i`` gets a condition c_i drawn uniformly from
[A, B] and noise seeds, all derived from ``case_seed(seed, i)`` only, so the dataset does not depend on
the batch size and an interrupted build resumes where it stopped (finished cases are skipped).
:class:`CaseRenderer` makes the same case ``i`` on its own, for a training source sampled on the fly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lesionsynth.data import case_done, write_case, write_dataset_json
from lesionsynth.data.folder import resume_generated_set
from lesionsynth.errors import InputError
from lesionsynth.generative.ldm.config import SourceBuildConfig
from lesionsynth.generative.ldm.models import ImageLDM, MaskLDM, check_compatible, load_image_ldm, load_mask_ldm
from lesionsynth.generative.ldm.preview import save_grid
from lesionsynth.io.atomic import remove_stale_temporaries, write_csv_atomic
from lesionsynth.io.nifti import save_volume
from lesionsynth.log import tqdm
from lesionsynth.ops import case_seed, make_generator, uniform


def case_plan(seed: int, index: int, lo: float, hi: float) -> tuple[float, int, int]:
    """Condition, mask-noise seed and image-noise seed of case ``index``."""
    s = case_seed(seed, index)
    return uniform(make_generator(s), lo, hi), case_seed(s, 0), case_seed(s, 1)


def _render_cases(mask: MaskLDM, image: ImageLDM, seed: int, indices: Sequence[int], lo: float, hi: float,
                  guidance: float, image_guidance: float, steps: int | None, batch_size: int
                  ) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Maps, images and params of cases ``indices`` (each from its own :func:`case_plan`)."""
    assert mask.condition is not None
    plans = [case_plan(seed, i, lo, hi) for i in indices]
    maps = mask.sample([p[0] for p in plans], [p[1] for p in plans], guidance=guidance, steps=steps,
                       batch_size=batch_size)
    imgs = image.render(maps, [p[2] for p in plans], guidance=image_guidance, steps=steps, batch_size=batch_size)
    ratio = mask.condition.measure(maps)
    vol = mask.condition.volume_ml(maps)
    params = [{"condition": p[0], "guidance": guidance, "image_guidance": image_guidance, "mask_seed": p[1],
               "image_seed": p[2], "ratio": float(ratio[k]),
               "c_generated": float(mask.condition.normalise(float(ratio[k]))), "volume_ml": float(vol[k])}
              for k, p in enumerate(plans)]
    return maps, imgs, params


class CaseRenderer:
    """Case ``i`` of ``ldm build-dataset`` with the same models, settings and seed, one at a time.

    Args:
        mask_run: ``train-diffusion`` run of the mask LDM.
        cfg: the image LDM and the sampling settings.
        device: where both LDMs run.
    """

    def __init__(self, mask_run: str | Path, cfg: SourceBuildConfig, device: torch.device | str = "cpu"):
        self.mask, self.image = load_mask_ldm(mask_run, device), load_image_ldm(cfg.image, device)
        check_compatible(self.mask, self.image, mask_run, cfg.image)
        self.cfg, self.schema = cfg, self.mask.schema
        self.guidance = self.mask.cfg.sampling.guidance if cfg.guidance is None else cfg.guidance
        self.image_guidance = (self.image.cfg.sampling.guidance if cfg.image_guidance is None
                               else cfg.image_guidance)

    def render(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """``(image, labels (uint8, schema classes), affine, params)`` of case ``i``."""
        maps, imgs, params = _render_cases(self.mask, self.image, seed, [i], *self.cfg.condition_range,
                                           self.guidance, self.image_guidance, self.cfg.steps, 1)
        return imgs[0].numpy(), maps[0].numpy().astype(np.uint8), self.mask.affine, params[0]


def sample_to_folder(mask: MaskLDM, out: str | Path, condition: float | tuple[float, float], n: int,
                     guidance: float | None = None,
                     seed: int = 0, steps: int | None = None, batch_size: int | None = None,
                     image: ImageLDM | None = None, image_guidance: float | None = None,
                     progress: bool | None = None) -> list[dict]:
    """Generate ``n`` maps at condition c, or with ``condition = (lo, hi)`` map ``i`` at its own c drawn
    uniformly from [lo, hi] (:func:`case_plan`, as ``build_dataset`` draws), and images with ``image``, into
    ``out``.

    Writes ``mask_NNNN.nii.gz`` (+ ``image_NNNN.nii.gz``), ``samples.csv`` (seed, condition, generated ratio,
    c_gen, volume) and ``samples.png``. Returns the CSV rows.
    """
    assert mask.condition is not None
    out = Path(out)
    if isinstance(condition, tuple):  # the draws of build_dataset: condition, mask seed, image seed
        plans = [case_plan(seed, i, *condition) for i in range(n)]
        conditions, seeds, image_seeds = [p[0] for p in plans], [p[1] for p in plans], [p[2] for p in plans]
        title = f"c ~ U({condition[0]:g}, {condition[1]:g})"
    else:
        conditions, seeds = [float(condition)] * n, [case_seed(seed, i) for i in range(n)]
        image_seeds = [case_seed(s, 1) for s in seeds]
        title = f"c={condition:g}"
    maps = mask.sample(conditions, seeds, guidance=guidance, steps=steps, batch_size=batch_size,
                       progress=bool(progress))
    imgs = None if image is None else image.render(maps, image_seeds, guidance=image_guidance, steps=steps,
                                                   batch_size=batch_size, progress=bool(progress))
    ratio = mask.condition.measure(maps)
    vol = mask.condition.volume_ml(maps)
    g = mask.cfg.sampling.guidance if guidance is None else guidance
    rows = []
    for i in range(n):
        save_volume(out / f"mask_{i:04d}.nii.gz", maps[i].numpy().astype(np.uint8), mask.affine)
        if imgs is not None:
            save_volume(out / f"image_{i:04d}.nii.gz", imgs[i].numpy(), mask.affine)
        rows.append({"index": i, "seed": seeds[i], "condition": conditions[i], "guidance": g,
                     "ratio": float(ratio[i]), "c_gen": float(mask.condition.normalise(float(ratio[i]))),
                     "volume_ml": float(vol[i])})
    write_csv_atomic(out / "samples.csv", list(rows[0]), [list(r.values()) for r in rows])
    save_grid(out / "samples.png", maps.numpy(), None if imgs is None else imgs.numpy(),
              [f"{r['volume_ml']:.1f} ml" for r in rows], focus=mask.condition.index,
              suptitle=f"{title}, G={g:g}")
    return rows


def render_to_folder(image: ImageLDM, labels: torch.Tensor, names: Sequence[str], out: str | Path,
                     guidance: float | None = None, seed: int = 0, steps: int | None = None,
                     batch_size: int | None = None, progress: bool | None = None) -> None:
    """Render an image for each label map into ``out/{name}_image.nii.gz`` (+ its map and a PNG grid)."""
    out = Path(out)
    seeds = [case_seed(seed, i) for i in range(len(labels))]
    imgs = image.render(labels, seeds, guidance=guidance, steps=steps, batch_size=batch_size,
                        progress=bool(progress))
    for name, lab, img in zip(names, labels, imgs, strict=True):
        save_volume(out / f"{name}_labels.nii.gz", lab.numpy().astype(np.uint8), image.affine)
        save_volume(out / f"{name}_image.nii.gz", img.numpy(), image.affine)
    save_grid(out / "render.png", labels.numpy(), imgs.numpy(), [n[:14] for n in names])


def build_dataset(mask: MaskLDM, image: ImageLDM, out: str | Path, n: int,
                  condition_range: tuple[float, float], guidance: float | None = None,
                  image_guidance: float | None = None, seed: int = 0,
                  steps: int | None = None, batch_size: int | None = None, previews: bool = False,
                  channel_name: str = "image", progress: bool | None = None) -> int:
    """Write ``n`` generated (map, image) cases as a dataset folder; returns how many were written now."""
    from lesionsynth.viz import save_preview

    assert mask.condition is not None
    lo, hi = condition_range
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    out = Path(out)
    schema = mask.schema
    g = mask.cfg.sampling.guidance if guidance is None else guidance
    gi = image.cfg.sampling.guidance if image_guidance is None else image_guidance
    signature = {"generator": "ldm", "condition_label": mask.condition.label, "condition_range": [lo, hi],
                 "guidance": g, "image_guidance": gi, "seed": seed}
    n_total = resume_generated_set(out, signature, n)
    write_dataset_json(out, {"0": channel_name}, {name: i for i, name in enumerate(schema.classes)}, n_total,
                       extra={"lesionsynth": signature})
    remove_stale_temporaries(out)
    ids = [f"ldm_{i:05d}" for i in range(n)]
    pending = [i for i in range(n) if not case_done(out, ids[i])]
    bs = batch_size or mask.cfg.sampling.batch_size
    bar = tqdm(total=n, initial=n - len(pending), desc="build-dataset",
               disable=None if progress is None else not progress)
    for j in range(0, len(pending), bs):
        chunk = pending[j:j + bs]
        maps, imgs, params = _render_cases(mask, image, seed, chunk, lo, hi, g, gi, steps, bs)
        for k, i in enumerate(chunk):
            lab = maps[k].numpy().astype(np.uint8)
            vol, c = params[k]["volume_ml"], params[k]["condition"]
            if previews:
                les = lab == schema.lesion_index if schema.lesion_index is not None else None
                save_preview(out / "previews" / f"{ids[i]}.png", imgs[k].numpy(), lesion=les, labels=lab,
                             title=f"{ids[i]}: c={c:.2f}, {vol:.1f} ml")
            write_case(out, ids[i], [imgs[k].numpy()], lab, mask.affine, params=params[k])
            bar.update(1)
    bar.close()
    return len(pending)
