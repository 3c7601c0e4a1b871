"""The domain-randomised generator: healthy label map + lesion -> synthetic MR image and target.

Every case is a pure function of ``(seed, index)``: :meth:`SynthGenerator.draw` turns them into a
JSON-serialisable parameter record (which label map and lesion, pasting, intensities, every corruption
step), and :meth:`SynthGenerator.render` turns a record into the image and target deterministically.
Records are saved next to each case, so any case can be explained and replayed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lesionsynth.augment import AugmentConfig, ChainParams, apply_chain, sample_chain
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.labels.schema import LabelSchema, load_schema
from lesionsynth.labels.sources import LabelMap, load_label_source, merge_by_target
from lesionsynth.lesions import (
    LesionFolder,
    PasteConfig,
    PasteParams,
    ProceduralLesionConfig,
    ProceduralLesionParams,
    sample_paste,
    sample_procedural,
)
from lesionsynth.lesions.placement import fit_to_map
from lesionsynth.ops import bernoulli, case_seed, make_generator
from lesionsynth.synth import intensities
from lesionsynth.synth.intensities import IntensityConfig, IntensityParams
from lesionsynth.synth.scene import Scene, apply_intensity, apply_paste, apply_procedural_lesion


@dataclass
class SynthConfig:
    """Configuration of the domain-randomised generator (defaults: SynthStroke paper).

    Attributes:
        labels: label sources: ``default`` (MNI152 GM/WM/PV/CSF), NIfTI files or folders.
        mapping: mapping table for hard label maps (built-in name or YAML path).
        schema: target label schema (built-in name or YAML path).
        resolution: voxel size (mm) at which label maps are used; None keeps their own.
        merge_tissue_labels: hard label maps: all labels of one target tissue class share one random
            intensity (background labels keep their own); off = SynthSeg's one intensity per label.
        lesions: ``procedural``, or a folder, glob or list of those, of binary lesion masks.
        lesion_procedural_prob: with mask files, the share of lesions that are procedural instead
            (mixes real shapes with procedural ones; 0 = masks only).
        lesion_probability: share of cases that get a lesion.
        lesion_flip: probability of mirroring a real lesion left-right.
        lesion_fit_brain: fit the MNI-space masks to a native label map's brain box (see
            :mod:`lesionsynth.lesions.placement`); off: masks are placed by world coordinates as they are.
        lesion_random_position: move a real lesion to a random place in the brain (off: keep its
            MNI position, as in the paper).
        procedural: procedural lesion parameters.
        paste: Soft-CP / infarct-grade parameters.
        intensity: per-class intensity parameters.
        augment: the corruption chain (includes the crop size).
    """

    labels: list[str] = field(default_factory=lambda: ["default"])
    mapping: str = "freesurfer-to-tissue"
    schema: str = "tissue"
    resolution: float | None = None
    merge_tissue_labels: bool = False
    lesions: str | list[str] = "procedural"
    lesion_procedural_prob: float = 0.0
    lesion_probability: float = 1.0
    lesion_flip: float = 0.5
    lesion_fit_brain: bool = True
    lesion_random_position: bool = False
    procedural: ProceduralLesionConfig = field(default_factory=ProceduralLesionConfig)
    paste: PasteConfig = field(default_factory=PasteConfig)
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for name in ("lesion_procedural_prob", "lesion_probability", "lesion_flip"):
            check_probability(name, getattr(self, name))
        check_at_least("resolution", self.resolution, 0.0, strict=True)


@dataclass
class SynthSample:
    """One synthetic case on the output (crop) grid."""

    image: torch.Tensor   # (1, X, Y, Z) float32, z-scored
    target: torch.Tensor  # (X, Y, Z) int64, schema classes
    affine: np.ndarray
    params: dict[str, Any]


@dataclass
class _Anatomy:
    lm: LabelMap
    target: torch.Tensor
    brain: torch.Tensor
    centre_vox: np.ndarray
    mni_to_map: np.ndarray  # world (MNI) -> world (this map) of its lesion placement, 4x4
    strip_masks: dict[int, torch.Tensor] = field(default_factory=dict)  # skull-strip masks by radius


class SynthGenerator:
    """Draws and renders synthetic cases.

    Args:
        cfg: the configuration.
        device: where label maps live and every step runs (``cpu`` or ``cuda``).
        label_maps: pre-loaded label maps (default: loaded from ``cfg.labels``).
    """

    def __init__(self, cfg: SynthConfig, device: str | torch.device = "cpu",
                 label_maps: list[LabelMap] | None = None):
        self.cfg = cfg
        self.device = torch.device(device)
        self.schema: LabelSchema = load_schema(cfg.schema)
        if self.schema.lesion_index is None:
            raise InputError(f"schema {self.schema.name}: the synthetic generator needs a lesion class")
        for key, names in (("lesion_contrast_to", cfg.intensity.lesion_contrast_to or []),
                           ("class_means", list(cfg.intensity.class_means))):
            unknown = set(names) - set(self.schema.classes)
            if unknown:
                raise ConfigError(f"intensity.{key}: {sorted(unknown)} not in schema {self.schema.name} "
                                  f"(classes {list(self.schema.classes)})")
        if label_maps is None:
            label_maps = [lm for spec in cfg.labels
                          for lm in load_label_source(spec, self.schema, cfg.mapping, cfg.resolution)]
        if not label_maps:
            raise InputError("no label maps given")
        if cfg.merge_tissue_labels:
            label_maps = [merge_by_target(lm) for lm in label_maps]
        self.anatomies = [self._prepare(lm) for lm in label_maps]
        self.lesions = None if cfg.lesions == "procedural" else LesionFolder(cfg.lesions)

    def _prepare(self, lm: LabelMap) -> _Anatomy:
        lm = lm.to(self.device)
        target = lm.target_probs_argmax()
        brain = target != self.schema.background_index
        if not brain.any():
            raise InputError(f"{lm.name}: label map has no brain (only background)")
        idx = brain.nonzero()
        lo_v, hi_v = idx.min(0).values.cpu().numpy(), idx.max(0).values.cpu().numpy()
        centre = ((lo_v + hi_v) / 2).astype(np.float64)
        fit = fit_to_map(lm.affine, lo_v, hi_v, lm.name) if self.cfg.lesion_fit_brain else np.eye(4)
        return _Anatomy(lm, target, brain, centre, fit)

    def draw(self, index: int, seed: int = 0) -> dict[str, Any]:
        """The full parameter record of case ``index`` of a run seeded with ``seed``."""
        gen = make_generator(case_seed(seed, index))
        a_idx = int(torch.randint(0, len(self.anatomies), (), generator=gen))
        an = self.anatomies[a_idx]
        lesion: dict[str, Any] | None = None
        if bernoulli(gen, self.cfg.lesion_probability):
            procedural = self.lesions is None or (
                self.cfg.lesion_procedural_prob > 0 and bernoulli(gen, self.cfg.lesion_procedural_prob))
            if procedural:
                pp = sample_procedural(gen, self.cfg.procedural, an.brain, an.lm.affine)
                lesion = {"source": "procedural", "procedural": asdict(pp)}
            else:
                i = int(torch.randint(0, len(self.lesions), (), generator=gen))
                flip = bernoulli(gen, self.cfg.lesion_flip)
                shift = None
                if self.cfg.lesion_random_position:
                    coords = an.brain.nonzero()
                    shift = coords[int(torch.randint(0, len(coords), (), generator=gen))].tolist()
                lesion = {"source": "file", "file": str(self.lesions.files[i]), "file_index": i,
                          "flip": flip, "move_to_vox": shift}
            lesion["paste"] = asdict(sample_paste(gen, self.cfg.paste))
        intensity = intensities.sample(gen, self.cfg.intensity, an.lm.num_gen + 1, self._contrast_classes(an.lm),
                                       self._mean_ranges(an.lm))
        return {"seed": int(seed), "index": int(index), "label_map": a_idx, "label_map_name": an.lm.name,
                "lesion": lesion, "intensity": asdict(intensity),
                "augment": sample_chain(gen, self.cfg.augment, an.lm.affine).to_dict()}

    def _contrast_classes(self, lm: LabelMap) -> list[int]:
        """Generation classes the lesion must contrast with: those whose target class is in
        ``intensity.lesion_contrast_to``, by default every one whose target is not background (a hard
        map's extra-cerebral labels map to background and are not tissue)."""
        names = self.cfg.intensity.lesion_contrast_to
        if names is None:
            wanted = set(range(lm.schema.num_classes)) - {lm.schema.background_index}
        else:
            wanted = {lm.schema.index(n) for n in names}
        return [k for k, t in enumerate(lm.gen_to_target) if t in wanted]

    def _mean_ranges(self, lm: LabelMap) -> list[tuple[float, float]]:
        """The mean range of every generation class (by its target class's name) and of the lesion, last."""
        ic = self.cfg.intensity
        names = [lm.schema.classes[t] for t in lm.gen_to_target] + [self.schema.lesion]
        return [tuple(ic.class_means.get(n, ic.mean)) for n in names]

    def _lesion(self, les: dict[str, Any], an: _Anatomy, s: Scene) -> Scene:
        """The scene with the record's lesion mask: procedural, or a real mask placed on this map."""
        if les["source"] == "procedural":
            return apply_procedural_lesion(ProceduralLesionParams(**les["procedural"]), s)
        if self.lesions is None:
            raise InputError("this parameter record uses a lesion file, but the generator has no lesion folder")
        i = les["file_index"]
        m = self.lesions.load(i, an.lm.affine, an.lm.shape, flip=les["flip"],
                              placement=an.mni_to_map).to(self.device)
        if les.get("move_to_vox") is not None and m.any():
            c = m.nonzero().float().mean(0).round().long().tolist()
            shift = [int(t) - int(s) for t, s in zip(les["move_to_vox"], c)]
            m = torch.roll(m, shifts=shift, dims=(0, 1, 2))
        m = m * an.brain
        if not m.any():
            raise InputError(f"{self.lesions.files[i]}: lesion mask does not overlap the brain of {an.lm.name}")
        return replace(s, lesion=m)

    def render(self, rec: dict[str, Any]) -> SynthSample:
        """Render a parameter record (from :meth:`draw` or a saved JSON) into a sample: the scene steps
        (:mod:`lesionsynth.synth.scene`: lesion, pasting, intensities), then the corruption chain."""
        an = self.anatomies[rec["label_map"]]
        s = Scene(image=torch.empty(0), labels=an.target, affine=an.lm.affine, mask=an.brain, label_map=an.lm,
                  lesion_index=self.schema.lesion_index)
        if rec["lesion"] is not None:
            s = apply_paste(PasteParams(**rec["lesion"]["paste"]), self._lesion(rec["lesion"], an, s))
        s = apply_intensity(IntensityParams(**rec["intensity"]), s)
        chain = ChainParams.from_dict(rec["augment"])
        img, tgt, out_affine = apply_chain(chain, self.cfg.augment, s.image, s.labels, an.lm.affine,
                                           an.centre_vox, self.schema.background_index, an.strip_masks)
        return SynthSample(image=img[None].float(), target=tgt.long(), affine=out_affine, params=rec)

    def sample(self, index: int, seed: int = 0) -> SynthSample:
        """Draw and render case ``index`` of the run seeded with ``seed``."""
        return self.render(self.draw(index, seed))


def load_synth_config(path: str | Path | None, **overrides: Any) -> SynthConfig:
    """Load a :class:`SynthConfig` from YAML (None: defaults), with optional top-level overrides.

    ``path`` may be a generator config or a training config (its ``synth:`` section is used, so
    ``synth --config bundled-cpu`` writes the bundled model's training data); a shipped name works too.
    """
    from lesionsynth.config import deep_update, expand_extends, from_dict, read_yaml, resolve_config_path

    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = resolve_config_path(path)
        data, where = expand_extends(read_yaml(p), str(path)), str(path)  # a training config may extend another
        if isinstance(data.get("synth"), dict):  # a training config
            data, where = data["synth"], f"{path}: synth"
        elif "synth" in data or "model" in data:
            raise ConfigError(f"{path}: a training config without a 'synth' section (it trains on "
                              f"{'physics' if data.get('physics') else 'real'} data); give a generator config")
    data = deep_update(data, {k: v for k, v in overrides.items() if v is not None})
    return from_dict(SynthConfig, data, where=where)
