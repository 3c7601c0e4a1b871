"""A physics-based generator of labelled MR scans, independent of the domain-randomised one.

Where :class:`lesionsynth.synth.SynthGenerator` paints each label with a random Gaussian intensity, this
generator renders a *plausible scan*: tissue fractions get literature relaxation times, proton density
and diffusivity (``tissues.yaml``), a sequence turns them into signal with its MR signal equation
(:mod:`lesionsynth.physics.sequences`), and an acquisition samples the signal on an oblique grid with a
slice profile, a bias field and Rician noise. Lesions are chronic (a CSF-like cavity inside a gliotic rim)
or acute (cytotoxic oedema: low ADC, mildly long T2). It is the project's out-of-distribution test bed
(``benchmarks/bench_ood.py``) and can serve as a training source.

Draws are split in two, so one *subject* can be scanned many ways:

- the subject, from ``(seed, index)``: anatomy, lesion mask and type, tissue properties;
- the scan, from ``(seed, index, modality, resolution)``: sequence settings, grid, bias, noise.

:meth:`PhysicsGenerator.draw` returns the JSON-serialisable record of both; :meth:`PhysicsGenerator.render`
turns a record into the image, lesion truth and tissue labels on the acquisition grid, deterministically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io.resample import resample_to_grid
from lesionsynth.labels.schema import TISSUE
from lesionsynth.labels.sources import LabelMap, load_label_source
from lesionsynth.lesions import (
    LesionFolder,
    ProceduralLesionConfig,
    ProceduralLesionParams,
    apply_procedural,
    sample_procedural,
)
from lesionsynth.lesions.placement import fit_to_map, world_box
from lesionsynth.ops import (
    bernoulli,
    case_seed,
    gaussian_blur,
    make_generator,
    rotation_matrix,
    sample_seed,
    smooth_noise,
    uniform,
)
from lesionsynth.physics import sequences
from lesionsynth.physics.sequences import SequenceParams

MODALITIES = ("t1w", "t2w", "flair", "dwi", "adc")
RESOLUTIONS = ("1mm", "2mm", "thick")
LESION_TYPES = ("chronic", "acute")
TISSUES_YAML = Path(__file__).with_name("tissues.yaml")
_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass
class PhysicsConfig:
    """Configuration of the physics-based generator.

    Attributes:
        labels: anatomy sources, as for ``synth``: ``default`` (MNI152, brain only), FreeSurfer/SynthSeg
            label maps (files, folders, globs; whole head).
        mapping: table from label values to the tissue schema (brain labels).
        resolution: voxel size (mm) the label maps are used at (None: their own).
        lesions: ``procedural``, or MNI-space lesion masks (folder, glob or list).
        lesion_procedural_prob: with masks, the share of procedural lesions instead.
        lesion_flip: probability of mirroring a mask left-right.
        lesion_fit_brain: fit MNI masks to a native map's brain box (see :mod:`lesionsynth.lesions.placement`).
        procedural: procedural lesion priors.
        lesion_types: ``chronic`` and/or ``acute``, drawn uniformly.
        rim_mm: width range of a chronic lesion's gliotic rim.
        modalities: drawn uniformly when a draw does not name one.
        resolutions: drawn uniformly when a draw does not name one: ``1mm`` isotropic, ``2mm``
            isotropic, ``thick`` (in-plane ``inplane_mm``, slices ``slice_mm``, along a random axis).
        inplane_mm: in-plane voxel size range of ``thick`` scans.
        slice_mm: slice thickness range of ``thick`` scans.
        rotation_deg: the grid is rotated by up to this angle about each axis (oblique acquisition).
        bias_std: range of the bias field's log-amplitude.
        snr: range of the signal-to-noise ratio (mean brain signal / noise sd) of structural scans.
        snr_dwi: the same for DWI (the b = 1000 image; the b = 0 image has the same noise sd).
        texture: amplitude of a smooth multiplicative tissue texture.
        tissues: tissue-property table (YAML path; default: the shipped ``tissues.yaml``).
    """

    labels: list[str] = field(default_factory=lambda: ["default"])
    mapping: str = "freesurfer-to-tissue"
    resolution: float | None = None
    lesions: str | list[str] = "procedural"
    lesion_procedural_prob: float = 0.0
    lesion_flip: float = 0.5
    lesion_fit_brain: bool = True
    procedural: ProceduralLesionConfig = field(default_factory=ProceduralLesionConfig)
    lesion_types: list[str] = field(default_factory=lambda: list(LESION_TYPES))
    rim_mm: tuple[float, float] = (1.0, 3.0)
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))
    resolutions: list[str] = field(default_factory=lambda: list(RESOLUTIONS))
    inplane_mm: tuple[float, float] = (0.8, 1.0)
    slice_mm: tuple[float, float] = (3.0, 6.0)
    rotation_deg: float = 15.0
    bias_std: tuple[float, float] = (0.05, 0.25)
    snr: tuple[float, float] = (15.0, 40.0)
    snr_dwi: tuple[float, float] = (8.0, 20.0)
    texture: float = 0.03
    tissues: str | None = None

    def check(self) -> None:
        """Raise :class:`ConfigError` on values outside their domain."""
        for name, vals, allowed in (("modalities", self.modalities, MODALITIES),
                                    ("resolutions", self.resolutions, RESOLUTIONS),
                                    ("lesion_types", self.lesion_types, LESION_TYPES)):
            if not vals or any(v not in allowed for v in vals):
                raise ConfigError(f"physics.{name}: {vals} must be a non-empty list of {', '.join(allowed)}")
        for name, (lo, hi) in (("rim_mm", self.rim_mm), ("inplane_mm", self.inplane_mm),
                               ("slice_mm", self.slice_mm), ("snr", self.snr), ("snr_dwi", self.snr_dwi),
                               ("bias_std", self.bias_std)):
            if not (0 <= lo <= hi) or not math.isfinite(hi):
                raise ConfigError(f"physics.{name}: need 0 <= low <= high, got [{lo}, {hi}]")
        if self.snr[0] <= 0 or self.snr_dwi[0] <= 0 or self.inplane_mm[0] <= 0 or self.slice_mm[0] <= 0:
            raise ConfigError("physics: snr, snr_dwi, inplane_mm and slice_mm must be positive")
        for name, p in (("lesion_procedural_prob", self.lesion_procedural_prob),
                        ("lesion_flip", self.lesion_flip)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"physics.{name} must be in [0, 1], got {p}")


@dataclass
class PhysicsSample:
    """One rendered scan, everything on the acquisition grid.

    Attributes:
        image: (X, Y, Z) float32: arbitrary units (x1000) for t1w/t2w/flair/dwi; ADC in 1e-6 mm^2/s.
        lesion: (X, Y, Z) uint8 lesion truth (the lesion's partial-volume fraction >= 0.5).
        labels: (X, Y, Z) uint8 tissue-schema labels (lesion = 5).
        affine: 4x4 voxel-to-world matrix of the (oblique) acquisition grid.
        params: the record this sample was rendered from.
    """

    image: np.ndarray
    lesion: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    params: dict[str, Any]


@lru_cache(maxsize=4)
def load_tissue_table(path: str | None = None) -> dict[str, Any]:
    """The tissue-property table (``tissues``, ``lesions``, ``extracerebral``)."""
    p = Path(path) if path else TISSUES_YAML
    if not p.is_file():
        raise ConfigError(f"{p}: tissue table not found")
    data = yaml.safe_load(p.read_text())
    for key in ("tissues", "lesions", "extracerebral"):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise ConfigError(f"{p}: tissue table needs a '{key}' mapping")
    bad = set(data["extracerebral"].values()) - set(data["tissues"])
    if bad:
        raise ConfigError(f"{p}: extracerebral labels name unknown tissues {sorted(bad)}")
    return data


def _signal(seq: SequenceParams, p: dict[str, float], b: float | None) -> float:
    return float(sequences.signal(seq, p["pd"], p["t1"], p["t2"], p["adc"], b=b))


@dataclass
class _Anatomy:
    lm: LabelMap
    target: torch.Tensor        # (X, Y, Z) tissue-schema labels
    parenchyma: torch.Tensor    # bool: grey, white matter or partial volume
    tissue_of_gen: list[str]    # physics tissue of each generation class ("pv" = half gm, half wm)
    head_lo: np.ndarray         # voxel bounding box of the head (non-air)
    head_hi: np.ndarray
    mni_to_map: np.ndarray


class PhysicsGenerator:
    """Draws and renders physics-based scans (see the module docstring).

    Args:
        cfg: the configuration.
        label_maps: pre-loaded label maps (default: from ``cfg.labels``).
    """

    def __init__(self, cfg: PhysicsConfig | None = None, label_maps: list[LabelMap] | None = None):
        self.cfg = cfg or PhysicsConfig()
        self.cfg.check()
        self.table = load_tissue_table(self.cfg.tissues)
        if label_maps is None:
            label_maps = [lm for spec in self.cfg.labels
                          for lm in load_label_source(spec, TISSUE, self.cfg.mapping, self.cfg.resolution)]
        if not label_maps:
            raise InputError("no label maps given")
        self.anatomies = [self._prepare(lm) for lm in label_maps]
        self.lesions = None if self.cfg.lesions == "procedural" else LesionFolder(self.cfg.lesions)

    def _prepare(self, lm: LabelMap) -> _Anatomy:
        lm = lm.to("cpu")
        target = lm.target_probs_argmax()
        s = lm.schema
        paren_classes = [s.index(n) for n in ("grey_matter", "white_matter", "partial_volume") if n in s.classes]
        paren = torch.isin(target, torch.tensor(paren_classes, dtype=target.dtype))
        if not paren.any():
            raise InputError(f"{lm.name}: label map has no grey or white matter")
        by_target = {"grey_matter": "gm", "white_matter": "wm", "partial_volume": "pv", "csf": "csf"}
        extra = {int(k): v for k, v in self.table["extracerebral"].items()}
        tissue_of_gen = []
        for g, t in enumerate(lm.gen_to_target):
            cls = s.classes[t]
            if cls in by_target:
                tissue_of_gen.append(by_target[cls])
            elif lm.index is None:  # soft map: its background is outside the head
                tissue_of_gen.append("air")
            else:
                try:
                    value = int(float(lm.gen_names[g]))
                except ValueError:
                    value = -1
                tissue_of_gen.append(extra.get(value, "muscle"))
        head = (target != s.background_index if lm.index is None
                else ~torch.tensor([t == "air" for t in tissue_of_gen])[lm.index])
        idx = head.nonzero()
        lo, hi = idx.min(0).values.numpy(), idx.max(0).values.numpy()
        brain = (target != s.background_index).nonzero()
        fit = fit_to_map(lm.affine, brain.min(0).values.numpy(), brain.max(0).values.numpy(), lm.name)
        return _Anatomy(lm, target, paren, tissue_of_gen, lo, hi, fit if self.cfg.lesion_fit_brain else np.eye(4))

    def _draw_props(self, gen: torch.Generator, section: str) -> dict[str, dict[str, float]]:
        return {name: {k: uniform(gen, float(v[0]), float(v[1])) if isinstance(v, (list, tuple)) else float(v)
                       for k, v in rng.items()} for name, rng in self.table[section].items()}

    def draw(self, index: int, seed: int = 0, modality: str | None = None, resolution: str | None = None,
             lesion_type: str | None = None) -> dict[str, Any]:
        """The record of scan ``(modality, resolution)`` of subject ``index`` of a run seeded ``seed``.

        Unnamed modality/resolution/lesion type are drawn from the config's lists. The subject part of
        the record does not depend on which scan is asked for.
        """
        cfg = self.cfg
        for name, v, allowed in (("modality", modality, MODALITIES), ("resolution", resolution, RESOLUTIONS),
                                 ("lesion_type", lesion_type, LESION_TYPES)):
            if v is not None and v not in allowed:
                raise InputError(f"{name} {v!r} is not one of {', '.join(allowed)}")
        subject_seed = case_seed(seed, index)
        gen = make_generator(subject_seed)
        a_idx = int(torch.randint(0, len(self.anatomies), (), generator=gen))
        an = self.anatomies[a_idx]
        if self.lesions is None or bernoulli(gen, cfg.lesion_procedural_prob):
            pp = sample_procedural(gen, cfg.procedural, an.parenchyma, an.lm.affine)
            lesion: dict[str, Any] = {"source": "procedural", "procedural": asdict(pp)}
        else:
            i = int(torch.randint(0, len(self.lesions), (), generator=gen))
            lesion = {"source": "file", "file": str(self.lesions.files[i]), "file_index": i,
                      "flip": bernoulli(gen, cfg.lesion_flip)}
        drawn_type = cfg.lesion_types[int(torch.randint(0, len(cfg.lesion_types), (), generator=gen))]
        lesion["type"] = lesion_type or drawn_type
        lesion["rim_mm"] = uniform(gen, *cfg.rim_mm)
        lesion["props"] = self._draw_props(gen, "lesions")
        tissues = self._draw_props(gen, "tissues")
        texture_seed = sample_seed(gen)

        choose = make_generator(case_seed(subject_seed, 1))
        m_drawn = cfg.modalities[int(torch.randint(0, len(cfg.modalities), (), generator=choose))]
        r_drawn = cfg.resolutions[int(torch.randint(0, len(cfg.resolutions), (), generator=choose))]
        modality, resolution = modality or m_drawn, resolution or r_drawn
        sgen = make_generator(case_seed(subject_seed, 2 + 16 * MODALITIES.index(modality)
                                        + RESOLUTIONS.index(resolution)))
        seq_kind = "dwi" if modality == "adc" else modality
        seq = sequences.sample(sgen, seq_kind, csf_t1=tissues["csf"]["t1"])
        if resolution == "thick":
            vox = [uniform(sgen, *cfg.inplane_mm)] * 3
            vox[int(torch.randint(0, 3, (), generator=sgen))] = uniform(sgen, *cfg.slice_mm)
        else:
            vox = [1.0 if resolution == "1mm" else 2.0] * 3
        angles = [uniform(sgen, -cfg.rotation_deg, cfg.rotation_deg) for _ in range(3)]
        snr_rng = cfg.snr_dwi if seq_kind == "dwi" else cfg.snr
        scan = {"modality": modality, "resolution": resolution, "sequence": asdict(seq), "voxel_mm": vox,
                "angles_deg": angles, "bias_std": uniform(sgen, *cfg.bias_std), "bias_seed": sample_seed(sgen),
                "snr": uniform(sgen, *snr_rng), "noise_seed": sample_seed(sgen)}
        return {"generator": "physics", "seed": int(seed), "index": int(index), "label_map": a_idx,
                "label_map_name": an.lm.name, "lesion": lesion, "tissues": tissues,
                "texture_seed": texture_seed, "scan": scan}

    def _lesion_mask(self, rec: dict[str, Any], an: _Anatomy) -> torch.Tensor:
        les = rec["lesion"]
        if les["source"] == "procedural":
            m = apply_procedural(ProceduralLesionParams(**les["procedural"]), an.parenchyma, an.lm.affine)
        else:
            if self.lesions is None:
                raise InputError("this record uses a lesion file, but the generator has no lesion masks")
            m = self.lesions.load(les["file_index"], an.lm.affine, an.lm.shape, flip=les["flip"],
                                  placement=an.mni_to_map)
        m = (m > 0.5) & an.parenchyma
        if not m.any():
            raise InputError(f"lesion of case {rec['index']} does not overlap the parenchyma of {an.lm.name}")
        return m

    def _tissue_signal(self, rec: dict[str, Any], seq: SequenceParams, b: float | None) -> dict[str, float]:
        out = {}
        for name, p in rec["tissues"].items():
            s = _signal(seq, p, b)
            if seq.kind == "dwi":
                s *= p.get("dwi_pd_scale", 1.0)
            s *= 1.0 - p.get("flow_void", 0.0)
            out[name] = float(s)
        out["pv"] = 0.5 * (out["gm"] + out["wm"])
        return out

    def _fine_signal(self, rec: dict[str, Any], an: _Anatomy, seq: SequenceParams, b: float | None,
                     lesion_w: torch.Tensor, core: torch.Tensor) -> torch.Tensor:
        sig = self._tissue_signal(rec, seq, b)
        lut = torch.tensor([sig[t] for t in an.tissue_of_gen], dtype=torch.float32)
        if an.lm.index is not None:
            img = lut[an.lm.index]
        else:
            assert an.lm.probs is not None
            img = torch.einsum("g,gxyz->xyz", lut, an.lm.probs.float())
        if self.cfg.texture > 0:
            tex = smooth_noise(img.shape, 6.0, make_generator(rec["texture_seed"]))
            img = img * (1 + self.cfg.texture * tex)
        lp = rec["lesion"]["props"]
        if rec["lesion"]["type"] == "chronic":
            lsig = torch.where(core, _signal(seq, lp["cavity"], b), _signal(seq, lp["gliosis"], b))
        else:
            lsig = torch.full_like(img, _signal(seq, lp["acute"], b))
        return (1 - lesion_w) * img + lesion_w * lsig

    def _grids(self, rec: dict[str, Any], an: _Anatomy) -> tuple[np.ndarray, tuple, np.ndarray, tuple]:
        """(intermediate affine, shape) at the fine spacing and (acquisition affine, shape), both oblique."""
        sc = rec["scan"]
        rot = rotation_matrix(sc["angles_deg"])
        aff = an.lm.affine
        lo, hi = world_box(aff, an.head_lo, an.head_hi, rotation=rot)  # the head's box in the rotated frame
        lo, hi = lo - 2.0, hi + 2.0
        fine = float(np.abs(aff[:3, :3]).sum(0).min())
        vox = np.asarray(sc["voxel_mm"], dtype=np.float64)

        def grid(sp: np.ndarray) -> tuple[np.ndarray, tuple]:
            shape = tuple(int(math.ceil((h - l) / s)) + 1 for l, h, s in zip(lo, hi, sp))
            m = np.eye(4)
            m[:3, :3] = rot @ np.diag(sp)
            m[:3, 3] = rot @ lo
            return m, shape

        return (*grid(np.minimum(vox, fine)), *grid(vox))

    def _acquire(self, fine: torch.Tensor, an: _Anatomy, grids: tuple, vox: np.ndarray) -> torch.Tensor:
        """Fine-grid data -> acquisition grid through the slice profile (Gaussian, FWHM = voxel size)."""
        inter_aff, inter_shape, acq_aff, acq_shape = grids
        x = resample_to_grid(fine, an.lm.affine, inter_aff, inter_shape, mode="linear")
        sp = np.linalg.norm(inter_aff[:3, :3], axis=0)
        fine_sp = float(np.linalg.norm(an.lm.affine[:3, :3], axis=0).min())
        sig = [math.sqrt(max(v ** 2 - fine_sp ** 2, 0.0)) / _FWHM / s for v, s in zip(vox, sp)]
        if max(sig) > 0.3:
            x = gaussian_blur(x, sig)
        return resample_to_grid(x, inter_aff, acq_aff, acq_shape, mode="linear")

    def render(self, rec: dict[str, Any]) -> PhysicsSample:
        """Render a record from :meth:`draw` (or a saved JSON) into a scan on its acquisition grid."""
        an = self.anatomies[rec["label_map"]]
        sc = rec["scan"]
        mask = self._lesion_mask(rec, an)
        fine_vs = float(np.linalg.norm(an.lm.affine[:3, :3], axis=0).mean())
        # partial-volume lesion fraction (soft edge of ~0.5 mm) and the chronic cavity (beyond the rim)
        lesion_w = gaussian_blur(mask.float(), 0.5 / fine_vs).clamp(0, 1) if fine_vs < 1.5 else mask.float()
        core = torch.zeros_like(mask)
        if rec["lesion"]["type"] == "chronic":
            from scipy import ndimage

            dist = ndimage.distance_transform_edt(mask.numpy(), sampling=np.linalg.norm(an.lm.affine[:3, :3], axis=0))
            core = torch.from_numpy(dist > rec["lesion"]["rim_mm"])
        seq = SequenceParams(**sc["sequence"])
        grids = self._grids(rec, an)
        vox = np.asarray(sc["voxel_mm"], dtype=np.float64)
        acq_aff, acq_shape = grids[2], grids[3]
        truth = self._acquire(mask.float(), an, grids, vox) >= 0.5
        labels = resample_to_grid(an.target, an.lm.affine, acq_aff, acq_shape, mode="nearest").to(torch.uint8)
        labels[truth] = TISSUE.lesion_index
        brain = labels != TISSUE.background_index
        bias = torch.exp(sc["bias_std"] * smooth_noise(acq_shape, [max(4, s // 3) for s in acq_shape],
                                                       make_generator(sc["bias_seed"])))
        ngen = make_generator(sc["noise_seed"])

        def scan(b: float | None) -> tuple[torch.Tensor, float]:
            s = self._acquire(self._fine_signal(rec, an, seq, b, lesion_w, core), an, grids, vox) * bias
            return s, float(s[brain].mean()) if brain.any() else float(s.mean())

        def rician(s: torch.Tensor, sd: float) -> torch.Tensor:
            n1 = torch.randn(s.shape, generator=ngen)
            n2 = torch.randn(s.shape, generator=ngen)
            return torch.sqrt((s + sd * n1) ** 2 + (sd * n2) ** 2)

        if sc["modality"] == "adc":
            s1, ref1 = scan(None)
            s0, ref0 = scan(0.0)
            sd = ref1 / sc["snr"]
            n0, n1 = rician(s0, sd), rician(s1, sd)
            image = torch.log(n0.clamp_min(1e-6) / n1.clamp_min(1e-6)) / seq.b  # mm^2/s
            image = (image * 1e6).clamp(0, 4000)
            image[n0 < 0.15 * ref0] = 0.0                                        # scanners mask the background
        else:
            s, ref = scan(None)
            image = rician(s, ref / sc["snr"]) * 1000.0
        return PhysicsSample(image=image.numpy().astype(np.float32), lesion=truth.numpy().astype(np.uint8),
                             labels=labels.numpy(), affine=acq_aff, params=rec)

    def sample(self, index: int, seed: int = 0, modality: str | None = None, resolution: str | None = None,
               lesion_type: str | None = None) -> PhysicsSample:
        """Draw and render scan ``(modality, resolution)`` of subject ``index``."""
        return self.render(self.draw(index, seed, modality, resolution, lesion_type))
