"""Training configuration: typed dataclasses loaded from YAML (unknown keys are errors naming the key).

The top-level keys and sections are :class:`TrainConfig`'s; see also ``docs/train.md`` and the shipped
configs in ``lesionsynth/configs``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from lesionsynth.augment import AugmentConfig
from lesionsynth.config import from_dict, load_config, resolve_config_path, to_dict
from lesionsynth.errors import ConfigError
from lesionsynth.generative.gan.database import BuildConfig
from lesionsynth.generative.ldm.config import SourceBuildConfig
from lesionsynth.labels.schema import LabelSchema, load_schema
from lesionsynth.models import ModelConfig
from lesionsynth.physics.generator import PhysicsConfig
from lesionsynth.preprocess.config import PreprocessConfig
from lesionsynth.synth import SynthConfig


@dataclass
class RealDataConfig:
    """A folder of real training images in nnU-Net layout (``imagesTr/``, ``labelsTr/``, ``dataset.json``).

    Attributes:
        path: the dataset folder.
        split: ``Tr`` (``imagesTr``/``labelsTr``) or ``Ts``.
        label_names: renames dataset label names onto schema class names (``{stroke: lesion}``);
            names not listed must already be schema class names.
        augment: the real-image augmentation chain (``lesionsynth.augment.AugmentConfig``); null
            disables augmentation.
        cache: keep the preprocessed volumes in memory (per data-loader worker): for small datasets.
        max_cases: use only the first N cases (sorted by name); null for all.
    """

    path: str
    split: str = "Tr"
    label_names: dict[str, str] = field(default_factory=dict)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    cache: bool = False
    max_cases: int | None = None


SOURCE_KINDS = ("synth", "physics", "folder", "gan", "ldm")


@dataclass
class SourceConfig:
    """One entry of ``sources``: a kind of training data and its share of the iterations.

    Attributes:
        kind: ``synth`` (the ``synth`` section's domain-randomised generator, on the training device),
            ``physics`` (the ``physics`` section's renderer), ``folder`` (an nnU-Net-style folder, e.g. real
            scans), ``gan`` / ``ldm`` (a folder written by ``lesionsynth gan build-dataset`` /
            ``ldm build-dataset``; read like ``folder``, the kind names the provenance in the logs).
        weight: relative share of the iterations (> 0); each iteration draws its source by weight from
            ``(seed, iteration, rank)``.
        name: the source's name in ``metrics.csv`` (``loss_NAME``); default: its kind, numbered when
            a kind repeats.
        path, split, label_names, augment, cache, max_cases: folder kinds, as in :class:`RealDataConfig`.
        checkpoint: ``gan`` / ``ldm``, instead of ``path``: a generator sampled on the fly, case ``k`` being what
            its ``build-dataset`` would write as case ``k`` with the same settings and seed, cropped and
            normalised on the training grid. ``gan``: a translator run (or checkpoint); ``ldm``: a mask LDM
            ``train-diffusion`` run.
        build: with ``checkpoint``, the builder's settings: ``gan``:
            :class:`lesionsynth.generative.gan.database.BuildConfig` (e.g. ``{lesions: MASK_GAN_RUN}``);
            ``ldm`` (required): :class:`lesionsynth.generative.ldm.config.SourceBuildConfig` (``{image:
            IMAGE_LDM_RUN, condition_range: [0.6, 1.0]}``).
    """

    kind: str
    weight: float = 1.0
    name: str | None = None
    path: str | None = None
    split: str = "Tr"
    label_names: dict[str, str] = field(default_factory=dict)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    cache: bool = False
    max_cases: int | None = None
    checkpoint: str | None = None
    build: dict[str, Any] | BuildConfig | SourceBuildConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.build, dict) and self.kind in ("gan", "ldm"):  # typed by kind
            self.build = from_dict(SourceBuildConfig if self.kind == "ldm" else BuildConfig, self.build, "build")

    @property
    def generated(self) -> bool:
        """Drawn from an on-the-fly generator (``synth``, ``physics``, a ``gan`` checkpoint) rather than read
        from a folder."""
        return self.kind in ("synth", "physics") or self.checkpoint is not None


@dataclass
class LossConfig:
    """Dice + cross-entropy (see :mod:`lesionsynth.train.losses` for the treatment of background).

    Attributes:
        dice_weight: weight of the soft Dice term.
        ce_weight: weight of the cross-entropy term.
        dice_include_background: include the background channel in the Dice term (default: no).
        class_weights: per-class weights of the Dice term (one per schema class), or null for equal
            weights (the paper). E.g. ``[1, 1, 1, 1, 1, 3]`` stresses the lesion of the tissue schema.
        dice_skip_absent: leave a class out of a sample's Dice term when the sample's target has none of it
            (the cross-entropy still penalises predicting it there). The soft Dice of an empty class is
            ~1 unless the class is predicted nowhere, so crops without lesion reward an all-zero lesion map.
    """

    dice_weight: float = 1.0
    ce_weight: float = 1.0
    dice_include_background: bool = False
    class_weights: list[float] | None = None
    dice_skip_absent: bool = False


@dataclass
class OptimConfig:
    """AdamW with a per-iteration poly schedule ``lr = lr0 * (1 - n / N) ** power``.

    Attributes:
        lr: initial learning rate.
        weight_decay: AdamW weight decay.
        poly_power: exponent of the poly schedule.
        grad_clip: maximum gradient norm (null disables clipping).
        warmup_iterations: scale the learning rate linearly from ``lr / W`` up to the poly schedule's value
            over the first ``W`` iterations of the schedule (0: no warm-up). Each start of a schedule (a
            new run, or one that starts from ``init_from`` with a fresh optimiser) warms up; a resumed run
            continues where it was.
    """

    lr: float = 1e-4
    weight_decay: float = 1e-5
    poly_power: float = 0.9
    grad_clip: float | None = 12.0
    warmup_iterations: int = 0


@dataclass
class ValConfig:
    """Validation every ``every_epochs`` epochs, on a held-out folder or held-out synthetic cases.

    Attributes:
        path: an nnU-Net-style folder (real or written by ``lesionsynth synth``); ``split`` picks
            ``imagesTr``/``imagesTs``.
        split: which split of ``path`` to read.
        synthetic_cases: when ``path`` is null, generate this many held-out synthetic cases (a seed
            distinct from training) with the ``synth`` config; 0 disables validation.
        every_epochs: validate after every K-th epoch (and after the last one).
        max_cases: at most this many cases of ``path``.
        overlap: sliding-window overlap (``predict``'s default).
        sw_batch_size: windows per forward pass.

    Only a held-out folder selects ``best.pt``; synthetic validation is logged, never used to select.
    """

    path: str | None = None
    split: str = "Tr"
    synthetic_cases: int = 0
    every_epochs: int = 1
    max_cases: int | None = None
    overlap: float = 0.5
    sw_batch_size: int = 1


@dataclass
class TrainConfig:
    """Everything a training run needs; loaded with :func:`load_train_config`.

    Attributes:
        schema: output label schema: a built-in name (``tissue``), a YAML path, or an inline mapping
            ``{name, classes, background, lesion}``.
        model: network hyper-parameters; ``out_channels`` is set from the schema.
        synth: on-the-fly synthetic data (generated on the training device), or null.
        physics: on-the-fly physics-rendered scans (:mod:`lesionsynth.physics`; CPU) in place of
            ``synth``, e.g. ``{modalities: [t1w]}`` for a single-contrast baseline; both only through
            ``sources`` (``[{kind: synth, weight: 2}, {kind: physics, weight: 1}]``: a mixed recipe).
        sources: the training data as a weighted list (:class:`SourceConfig`), e.g. ``[{kind: synth,
            weight: 1}, {kind: folder, path: data/, weight: 1}]``; null: ``synth``/``physics`` and
            ``real`` with ``mix`` (the older form, still read: ``real: {path: P}`` with ``mix: [a, b]`` is
            ``sources: [{kind: synth, weight: a}, {kind: folder, path: P, weight: b}]``, except that it
            alternates ``a`` then ``b`` iterations instead of drawing).
        real: (older form) real data folder, or null.
        mix: (older form) ``[a, b]``: with both, ``a`` synthetic then ``b`` real iterations, repeated.
        preprocessing: spacing and intensity normalisation.
        loss: loss weights.
        optim: optimiser and schedule.
        val: validation.
        epochs: number of epochs.
        iterations_per_epoch: optimiser steps per epoch.
        batch_size: cases per step per process.
        crop_size: training patch size (voxels); each a multiple of the network's stride product.
        lesion_crop_prob: probability that a crop is centred on a random lesion voxel (when present).
        synth_crop_size: size of the synthetic volumes the generator renders (null: ``crop_size``); when
            larger, each training crop is a random ``crop_size`` sub-crop of it (lesion-centred with
            ``lesion_crop_prob``).
        synth_repeats: each synthetic case feeds this many consecutive iterations (different
            sub-crops): amortises the generator's cost on CPUs; the paper uses 1.
        seed: seeds every random draw; each draw is derived from (seed, iteration, rank).
        init_seed: seed of the network's random initial weights alone (null: ``seed``), so that the
            initial weights and the data stream can be varied apart (e.g. to tell which one makes a
            seed's run fail).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ...
        amp: mixed precision, the vocabulary of ``predict --precision`` (:data:`lesionsynth.devices.PRECISIONS`):
            ``auto`` (bf16 on CUDA when supported, else fp16; fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
            ``off``, from older configs, is read as ``fp32``.
            Ignored on CPU.
        checkpoint_every: also write ``last.pt`` every N iterations (0: only at the end of each epoch).
        log_every: write a metrics row every N iterations.
        num_workers: data-loader processes for real data.
        threads: CPU threads for torch (null: torch's default).
        deterministic: ask torch for deterministic algorithms (bitwise-reproducible runs on CPU).
        init_from: start from these weights instead of random ones (a bundled model name, run folder or
            checkpoint with the same network and classes); the optimiser and schedule start afresh.
        time_budget_min: fit the run into this many minutes of training (null: no budget): at each epoch's
            end the measured speed decides how many whole epochs still fit, the run is shortened to them
            and its poly schedule re-fitted to end there (:mod:`lesionsynth.train.budget`); never more
            than ``epochs``, at least one epoch. The ``demo`` uses it to stay within its time on slow
            machines.
    """

    schema: str | dict[str, Any] = "tissue"
    model: ModelConfig = field(default_factory=ModelConfig)
    synth: SynthConfig | None = None
    physics: PhysicsConfig | None = None
    sources: list[SourceConfig] | None = None
    real: RealDataConfig | None = None
    mix: tuple[int, int] = (1, 1)
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)
    epochs: int = 1200
    iterations_per_epoch: int = 500
    batch_size: int = 1
    crop_size: tuple[int, int, int] = (192, 192, 192)
    lesion_crop_prob: float = 0.0
    synth_crop_size: tuple[int, int, int] | None = None
    synth_repeats: int = 1
    seed: int = 0
    init_seed: int | None = None
    device: str = "auto"
    amp: Literal["auto", "fp32", "bf16", "fp16", "off"] = "auto"
    checkpoint_every: int = 0
    log_every: int = 10
    num_workers: int = 2
    threads: int | None = None
    deterministic: bool = False
    init_from: str | None = None
    time_budget_min: float | None = None

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iterations_per_epoch

    @property
    def weights_seed(self) -> int:
        """The seed of the initial weights: ``init_seed``, or ``seed`` when it is null."""
        return self.seed if self.init_seed is None else self.init_seed

    def training_sources(self) -> list[SourceConfig]:
        """The sources with their names filled in; the older ``real``/``mix`` form as its equivalent list
        (weights ``mix``; it alternates instead of drawing: see :attr:`alternates`)."""
        if self.sources is not None:
            out = [replace(s) for s in self.sources]
        else:
            out = []
            if self.synth is not None or self.physics is not None:
                out.append(SourceConfig("synth" if self.synth is not None else "physics", float(self.mix[0])))
            if self.real is not None:  # RealDataConfig's fields are SourceConfig's folder fields
                out.append(SourceConfig("folder", float(self.mix[1]), "real", **vars(self.real)))
        counts = {k: sum(s.kind == k for s in out) for k in {s.kind for s in out}}
        seen: dict[str, int] = {}
        for s in out:
            if s.name is None:
                seen[s.kind] = seen.get(s.kind, 0) + 1
                s.name = s.kind if counts[s.kind] == 1 else f"{s.kind}{seen[s.kind]}"
        return out

    @property
    def alternates(self) -> bool:
        """The older ``real``/``mix`` form: iterations alternate ``mix[0]`` generated then ``mix[1]`` real."""
        return self.sources is None

    def label_schema(self) -> LabelSchema:
        """The output label schema (an inline schema's ``lesion`` defaults to a class named ``lesion``)."""
        if isinstance(self.schema, dict):
            data = dict(self.schema)
            classes = data.get("classes")
            names = classes.values() if isinstance(classes, dict) else classes or []
            if "lesion" not in data and "lesion" in [str(n) for n in names]:
                data["lesion"] = "lesion"
            return LabelSchema.from_dict(data, where="schema")
        return load_schema(self.schema)


def _non_finite(data: Any, key: str = "") -> str | None:
    """The dotted key of the first NaN or infinite number in plain config data, else None."""
    if isinstance(data, float) and not math.isfinite(data):
        return key or "value"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else []
    for k, v in items:
        found = _non_finite(v, f"{key}.{k}" if key else str(k))
        if found:
            return found
    return None


def _check_sources(cfg: TrainConfig, where: str) -> None:
    """One line naming the first bad ``sources`` entry."""
    if cfg.real is not None or tuple(cfg.mix) != (1, 1):
        path = cfg.real.path if cfg.real is not None else "P"
        a, b = cfg.mix
        raise ConfigError(f"{where}: give 'sources' or the older 'real'/'mix', not both; rewrite them as sources: "
                          f"[{{kind: synth, weight: {a}}}, {{kind: folder, path: {path}, weight: {b}}}]")
    if not cfg.sources:
        raise ConfigError(f"{where}: sources is empty; list at least one source")
    listed = {s.kind for s in cfg.sources}
    for section in ("synth", "physics"):
        if getattr(cfg, section) is not None and section not in listed:
            raise ConfigError(f"{where}: the '{section}' section is set but no source uses it; add "
                              f"{{kind: {section}}} to sources or remove the section")
    names: set[str] = set()
    for j, s in enumerate(cfg.training_sources()):
        at = f"{where}: sources[{j}]"
        if s.kind not in SOURCE_KINDS:
            raise ConfigError(f"{at}: kind '{s.kind}' is not one of {', '.join(SOURCE_KINDS)}")
        if not (math.isfinite(s.weight) and s.weight > 0):
            raise ConfigError(f"{at}: weight must be a positive number, got {s.weight}")
        if s.checkpoint is not None and s.kind not in ("gan", "ldm"):
            raise ConfigError(f"{at}: checkpoint is for kinds gan and ldm only (a generator sampled on the fly)")
        if s.checkpoint is not None and s.kind == "ldm" and s.build is None:
            raise ConfigError(f"{at}: an ldm checkpoint (the mask LDM) needs build: {{image: IMAGE_LDM_RUN}}, the "
                              f"image LDM that renders its maps")
        if s.build is not None and s.checkpoint is None:
            raise ConfigError(f"{at}: build settings need checkpoint: a generator run to sample")
        wanted = {"gan": BuildConfig, "ldm": SourceBuildConfig}.get(s.kind)
        if s.build is not None and wanted is not None and not isinstance(s.build, wanted):
            raise ConfigError(f"{at}: build of a {s.kind} source must be a {wanted.__name__}, got "
                              f"{type(s.build).__name__}")
        if s.checkpoint is not None:
            if s.path is not None:
                raise ConfigError(f"{at}: give path (a built folder) or checkpoint (sampled on the fly), not both")
            if not Path(s.checkpoint).exists():
                what = "a translator run or checkpoint" if s.kind == "gan" else "a mask LDM run"
                raise ConfigError(f"{at}: checkpoint {s.checkpoint}: not found ({what})")
            if isinstance(s.build, SourceBuildConfig) and not Path(s.build.image).exists():
                raise ConfigError(f"{at}: build.image {s.build.image}: not found (an image LDM run)")
        elif s.generated:
            if getattr(cfg, s.kind) is None:
                raise ConfigError(f"{at}: kind '{s.kind}' needs the '{s.kind}' section")
            if sum(t.kind == s.kind for t in cfg.sources or []) > 1:
                raise ConfigError(f"{at}: kind '{s.kind}' is listed twice (it is the one '{s.kind}' section)")
            if s.path is not None:
                raise ConfigError(f"{at}: kind '{s.kind}' takes no path (its data is the '{s.kind}' section)")
        else:
            if s.path is None:
                raise ConfigError(f"{at}: kind '{s.kind}' needs path: a dataset folder")
            if not Path(s.path).is_dir():
                raise ConfigError(f"{at}: path {s.path}: dataset folder not found")
        if s.name in names or not re.fullmatch(r"[A-Za-z0-9_-]+", str(s.name)):
            raise ConfigError(f"{at}: name '{s.name}' must be unique and of letters, digits, '_' or '-'")
        names.add(str(s.name))


def validate_config(cfg: TrainConfig, where: str = "config") -> TrainConfig:
    """Check values that types cannot express; returns ``cfg`` with ``model.out_channels`` from the schema.

    Raises:
        ConfigError: one line naming the first bad key.
    """
    if cfg.amp == "off":
        cfg.amp = "fp32"
    schema = cfg.label_schema()
    if schema.lesion_index is None:
        raise ConfigError(f"{where}: schema '{schema.name}' has no lesion class")
    cfg.model.out_channels = schema.num_classes
    cw = cfg.loss.class_weights
    if cw is not None and (len(cw) != schema.num_classes or any(w < 0 for w in cw) or sum(cw) <= 0):
        raise ConfigError(f"{where}: loss.class_weights needs {schema.num_classes} non-negative values "
                          f"(one per class of schema '{schema.name}'), got {cw}")
    if cfg.synth is not None and cfg.physics is not None and cfg.sources is None:
        raise ConfigError(f"{where}: set 'synth' or 'physics' as the generated source, not both, or list both "
                          f"in sources: [{{kind: synth, weight: 2}}, {{kind: physics, weight: 1}}]")
    if cfg.physics is not None:
        cfg.physics.check()
    if cfg.sources is not None:
        _check_sources(cfg, where)
    elif cfg.synth is None and cfg.physics is None and cfg.real is None:
        raise ConfigError(f"{where}: no training data: set 'sources', or 'synth' (or 'physics') and/or 'real'")
    positive = {"epochs": cfg.epochs, "iterations_per_epoch": cfg.iterations_per_epoch,
                "batch_size": cfg.batch_size, "log_every": cfg.log_every,
                "val.every_epochs": cfg.val.every_epochs, "synth_repeats": cfg.synth_repeats}
    for key, v in positive.items():
        if v < 1:
            raise ConfigError(f"{where}: {key} must be at least 1, got {v}")
    for key, v in {"checkpoint_every": cfg.checkpoint_every, "num_workers": cfg.num_workers,
                   "val.synthetic_cases": cfg.val.synthetic_cases}.items():
        if v < 0:
            raise ConfigError(f"{where}: {key} must be 0 or more, got {v}")
    if any(m < 0 for m in cfg.mix) or sum(cfg.mix) == 0:
        raise ConfigError(f"{where}: mix must be two non-negative counts, not both 0, got {list(cfg.mix)}")
    if (cfg.synth is not None or cfg.physics is not None) and cfg.real is not None and 0 in cfg.mix:
        raise ConfigError(f"{where}: mix {list(cfg.mix)} leaves one of 'synth' and 'real' unused")
    div = cfg.model.divisor
    if any(c < div or c % div for c in cfg.crop_size):
        raise ConfigError(f"{where}: crop_size {list(cfg.crop_size)} must be multiples of {div} "
                          f"(the product of model.strides)")
    if len(cfg.model.strides) != len(cfg.model.channels) - 1:
        raise ConfigError(f"{where}: model.strides needs {len(cfg.model.channels) - 1} values "
                          f"(one fewer than model.channels), got {len(cfg.model.strides)}")
    if cfg.synth_crop_size is not None and any(s < c for s, c in zip(cfg.synth_crop_size, cfg.crop_size)):
        raise ConfigError(f"{where}: synth_crop_size {list(cfg.synth_crop_size)} must be at least crop_size "
                          f"{list(cfg.crop_size)}")
    if not 0.0 <= cfg.lesion_crop_prob <= 1.0:
        raise ConfigError(f"{where}: lesion_crop_prob must be in [0, 1], got {cfg.lesion_crop_prob}")
    bad = _non_finite(to_dict(cfg))
    if bad:
        raise ConfigError(f"{where}: {bad} must be a finite number")
    if cfg.optim.lr <= 0:
        raise ConfigError(f"{where}: optim.lr must be positive, got {cfg.optim.lr}")
    if cfg.optim.warmup_iterations < 0:
        raise ConfigError(f"{where}: optim.warmup_iterations must be >= 0, got {cfg.optim.warmup_iterations}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"{where}: threads must be at least 1 (or null: torch's default), got {cfg.threads}")
    if cfg.time_budget_min is not None and cfg.time_budget_min <= 0:
        raise ConfigError(f"{where}: time_budget_min must be positive (or null: no budget), got {cfg.time_budget_min}")
    for key in ("seed", "init_seed"):
        value = getattr(cfg, key)
        if value is not None and not 0 <= value < 2**63:
            raise ConfigError(f"{where}: {key} must be in [0, 2**63 - 1], got {value}")
    if cfg.optim.grad_clip is not None and cfg.optim.grad_clip <= 0:
        raise ConfigError(f"{where}: optim.grad_clip must be positive or null, got {cfg.optim.grad_clip}")
    if cfg.val.synthetic_cases and cfg.val.path is None and cfg.synth is None and cfg.physics is None:
        raise ConfigError(f"{where}: val.synthetic_cases needs a 'synth' (or 'physics') section")
    if not 0.0 <= cfg.val.overlap < 1.0:
        raise ConfigError(f"{where}: val.overlap must be in [0, 1), got {cfg.val.overlap}")
    if cfg.real is not None and not Path(cfg.real.path).is_dir():
        raise ConfigError(f"{where}: real.path {cfg.real.path}: dataset folder not found")
    if cfg.val.path is not None and cfg.model.in_channels != 1:
        raise ConfigError(f"{where}: val.path needs single-channel images (model.in_channels 1)")
    if cfg.val.path is not None and not Path(cfg.val.path).is_dir():
        raise ConfigError(f"{where}: val.path {cfg.val.path}: dataset folder not found")
    if not re.fullmatch(r"auto|cpu|mps|(cuda|gpu)(:\d+)?", str(cfg.device).strip().lower()):
        raise ConfigError(f"{where}: device must be auto, cpu, cuda, cuda:N or mps, got '{cfg.device}'")
    return cfg


def load_train_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load and check a training config (a path or a shipped config name such as ``tiny-cpu``)."""
    if path is not None:
        path = resolve_config_path(path)
    cfg = load_config(TrainConfig, path, overrides)
    return validate_config(cfg, where=str(path) if path is not None else "config")


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build and check a config from plain data (e.g. a run folder's recorded ``config.yaml``)."""
    return validate_config(from_dict(TrainConfig, data, where=where), where=where)
