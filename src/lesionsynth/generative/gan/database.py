"""The database builder: lesions pasted into healthy label maps, rendered by a trained translator.

For case ``i`` (seeded with ``case_seed(seed, i)``):

1. pick a healthy label map (round robin over the ``labels`` source; default: the MNI label map) at the
   translator's spacing, reoriented to RAS;
2. draw a lesion: a mask from a folder (e.g. written by ``gan sample-masks``, or real masks), a fresh
   sample of a mask GAN checkpoint, or a procedural lesion; mirror it left-right with probability
   ``flip_p``; label it as the lesion class wherever it falls inside the brain;
3. deform the label map randomly (affine + elastic, nearest neighbour) and crop it to the translator's
   shape around the brain's centre: with a single healthy anatomy this is the only source of
   anatomical variety;
4. render the image with the translator (2D translators slice by slice) and rescale it from [-1, 1]
   to [0, 1];
5. write the case with :func:`lesionsynth.data.write_case` (image, ``params/{case}.json``, label last)
   into the nnU-Net layout that ``lesionsynth synth`` writes and ``lesionsynth train`` reads.

Finished cases (label file present) are skipped, so an interrupted build is resumed by re-running it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lesionsynth.augment import spatial
from lesionsynth.augment.base import Sample
from lesionsynth.config import to_dict
from lesionsynth.data import case_done, write_case, write_dataset_json
from lesionsynth.data.folder import resume_generated_set
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative.gan.pairs import DeformConfig
from lesionsynth.generative.gan.translator import load_translator, render_volume
from lesionsynth.io.atomic import remove_stale_temporaries
from lesionsynth.io.resample import reorient_to_ras
from lesionsynth.labels import LabelMap, load_label_source
from lesionsynth.lesions import LesionFolder, ProceduralLesionConfig, apply_procedural, sample_procedural
from lesionsynth.log import tqdm
from lesionsynth.ops import bernoulli, case_seed, make_generator


@dataclass
class BuildConfig:
    """Database builder settings (``configs/gan-build.yaml``).

    Attributes:
        labels: healthy label maps: ``default`` (MNI) or a file/folder (see ``lesionsynth synth``).
        mapping: mapping table for hard label maps (default: FreeSurfer -> the translator's schema).
        lesions: ``procedural``, a folder of binary masks, or a mask GAN run folder/checkpoint.
        p_lesion: probability that a case gets a lesion (1 = every case).
        flip_p: probability of mirroring the lesion left-right.
        lesion_volume_ml: procedural lesions' volume range.
        deform: random deformation of the healthy label map.
        previews: write ``previews/{case}.png`` for the first this-many cases.
        output_labels: ``schema``: every class of the translator's schema (tissue + lesion);
            ``lesion``: background 0 / lesion 1 only, to merge with real datasets labelled that way.
    """

    labels: str = "default"
    mapping: str | None = None
    lesions: str = "procedural"
    p_lesion: float = 1.0
    flip_p: float = 0.5
    lesion_volume_ml: tuple[float, float] = (3.0, 150.0)
    deform: DeformConfig = field(default_factory=DeformConfig)
    previews: int = 4
    output_labels: str = "schema"

    def __post_init__(self) -> None:
        if self.output_labels not in ("schema", "lesion"):
            raise ValueError(f"output_labels must be schema or lesion, got '{self.output_labels}'")


class LesionSource:
    """Lesion masks on a given grid from a folder, a mask GAN or the procedural generator."""

    def __init__(self, spec: str, device: torch.device | str = "cpu",
                 volume_ml: tuple[float, float] = (3.0, 150.0)):
        self.device, self.volume_ml = device, volume_ml
        self.folder: LesionFolder | None = None
        self.gan = None
        if spec == "procedural":
            return
        p = Path(spec)
        if (p.is_file() and p.suffix == ".pt") or (p / "checkpoints" / "last.pt").is_file():
            from lesionsynth.generative.gan.mask_gan import load_mask_generator

            self.gan = load_mask_generator(p, device)
        else:
            self.folder = LesionFolder(spec)

    def draw(self, gen: torch.Generator, index_seed: int, affine: np.ndarray, shape: tuple[int, int, int],
             brain: torch.Tensor, flip: bool) -> tuple[torch.Tensor, dict]:
        """A binary mask (float) on (affine, shape) and a description of where it came from."""
        if self.folder is not None:
            i = int(torch.randint(0, len(self.folder), (), generator=gen))
            m = self.folder.load(i, affine, shape, flip=flip)
            return m, {"source": "folder", "file": self.folder.files[i].name, "flip": flip}
        if self.gan is not None:
            from lesionsynth.generative.gan.mask_sampling import OutputGrid, sample_masks

            G, cfg, _ = self.gan
            # the flip: sample on the mirrored grid, i.e. the mask x -> -x
            out = OutputGrid(np.diag([-1.0, 1.0, 1.0, 1.0]) @ affine if flip else affine, shape, brain)
            _, m, attempts = next(sample_masks(G, cfg, [0], index_seed, out, self.device))
            return m, {"source": "mask-gan", "seed": index_seed, "draws": attempts, "flip": flip}
        params = sample_procedural(gen, ProceduralLesionConfig(volume_ml=self.volume_ml), brain, affine)
        return apply_procedural(params, brain, affine), {"source": "procedural", **asdict(params)}


def _ras_labels(lm: LabelMap) -> tuple[torch.Tensor, np.ndarray]:
    lab, aff = reorient_to_ras(lm.target_probs_argmax().cpu().numpy(), lm.affine)
    return torch.from_numpy(np.ascontiguousarray(lab)).long(), aff


class CaseRenderer:
    """Renders database case ``i`` of a run seeded ``seed``: a healthy map, a lesion pasted in, a random
    deformation, and the translator's image; a pure function of (translator, config, seed, i).

    Args:
        translator: translator run folder or checkpoint.
        cfg: the builder settings.
        device: where the translator and the mask GAN run.
    """

    def __init__(self, translator: str | Path, cfg: BuildConfig, device: torch.device | str = "cpu"):
        self.G, self.tcfg, self.schema, _ = load_translator(translator, device)
        if self.schema.lesion_index is None:
            raise ConfigError(f"{translator}: the translator's schema {self.schema.name} has no lesion class")
        self.cfg, self.device = cfg, device
        sources = load_label_source(cfg.labels, schema=self.schema, mapping=cfg.mapping,
                                    resolution=self.tcfg.spacing_mm)
        self.bases = [_ras_labels(lm) for lm in sources]
        self.lesions = LesionSource(cfg.lesions, device, cfg.lesion_volume_ml)
        self.scfg = cfg.deform.spatial_config(self.tcfg.shape)

    def render(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """``(image in [0, 1], labels (uint8, schema classes), affine, params)`` of case ``i``."""
        schema, cfg = self.schema, self.cfg
        s = case_seed(seed, i)
        gen = make_generator(s)
        labels, affine = self.bases[i % len(self.bases)]
        labels = labels.clone()
        brain = labels != schema.background_index
        if not brain.any():
            raise InputError(f"{cfg.labels}: healthy label map {i % len(self.bases)} has no brain")
        params: dict = {"seed": s, "healthy_labels": i % len(self.bases)}
        if bernoulli(gen, cfg.p_lesion):
            flip = bernoulli(gen, cfg.flip_p)
            mask, info = self.lesions.draw(gen, case_seed(s, 1), affine, tuple(labels.shape), brain, flip)
            labels[(mask > 0.5) & brain] = schema.lesion_index  # type: ignore[assignment]
            params["lesion"] = info
        centre = brain.nonzero().float().mean(0).numpy().astype(np.float64)
        sp = spatial.sample(gen, self.scfg)
        moved = spatial.apply(sp, Sample(brain.float(), labels, affine, centre_vox=centre))
        labels_c, out_affine = moved.labels, moved.affine
        assert labels_c is not None
        params["spatial"] = asdict(sp)
        image = render_volume(self.G, labels_c, schema.num_classes, self.tcfg.spatial_dims, self.device)
        image = ((image + 1.0) / 2.0).clamp(0, 1).numpy()
        lab = labels_c.numpy().astype(np.uint8)
        params["lesion_voxels"] = int((lab == schema.lesion_index).sum())
        return image, lab, out_affine, params


def build_dataset(translator: str | Path, out: str | Path, n: int, cfg: BuildConfig, seed: int = 0,
                  device: torch.device | str = "cpu", progress: bool = True) -> Path:
    """Write ``n`` cases into ``out`` (nnU-Net layout); returns ``out``."""
    renderer = CaseRenderer(translator, cfg, device)
    tcfg, schema = renderer.tcfg, renderer.schema
    out = Path(out)
    signature = {"generator": "gan", "seed": int(seed), "translator": str(Path(translator).resolve()),
                 "config": to_dict(cfg)}
    n_total = resume_generated_set(out, signature, n)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    extra = {"lesionsynth": {**signature, "arch": tcfg.arch, "spacing_mm": tcfg.spacing_mm,
                             "schema": schema.to_dict()}}
    labels = ({"background": 0, "lesion": 1} if cfg.output_labels == "lesion"
              else {c: i for i, c in enumerate(schema.classes)})
    write_dataset_json(out, {"0": tcfg.contrast}, labels, n_total, extra)
    todo = [i for i in range(n) if not case_done(out, f"gan_{i:05d}")]
    bar = tqdm(total=n, initial=n - len(todo), desc="building", disable=None if progress else True)
    for i in todo:
        image, lab, affine, params = renderer.render(i, seed)
        written = (lab == schema.lesion_index).astype(np.uint8) if cfg.output_labels == "lesion" else lab
        write_case(out, f"gan_{i:05d}", [image], written, affine, params)
        if i < cfg.previews:
            from lesionsynth.viz import save_preview

            save_preview(out / "previews" / f"gan_{i:05d}.png", image, lesion=lab == schema.lesion_index,
                         labels=lab, title=f"gan_{i:05d} ({tcfg.arch})")
        bar.update(1)
    bar.close()
    return out
