"""Training batches from the config's sources: generated (on the training device) and folders (DataLoader
workers).

Iteration ``i`` of rank ``r`` among ``W`` processes uses sample indices ``k = (i * W + r) * B + b`` for
``b < B`` (B: batch size). Its source is drawn by weight with the uniform number of ``case_seed(case_seed(seed,
SOURCE_STREAM), i * W + r)`` (``sources``), or, in the older ``real``/``mix = [a, b]`` form, iterations with
``i mod (a + b) < a`` are generated and the others real. Generated case ``k`` is ``generator.sample(k, seed)``
(with ``synth_repeats`` R > 1: case ``((s // R) * W + r) * B + b``, where ``s`` counts the generated
iterations before ``i``, and a random sub-crop drawn from (seed, k) when ``synth_crop_size`` exceeds
``crop_size``); a folder source's sample ``k`` is its :class:`RealTrainingSet` item ``k``. Every draw is
therefore a pure function of (seed, iteration, rank): nothing to save, and a resumed run sees exactly the
batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lesionsynth.errors import ConfigError
from lesionsynth.labels.schema import LabelSchema, load_schema
from lesionsynth.ops import bernoulli, case_seed, case_seeds, make_generator
from lesionsynth.train.config import SourceConfig, TrainConfig
from lesionsynth.train.data import RealTrainingSet, open_folder, real_augment_config

CROP_STREAM = 0xC409  # random stream of synthetic sub-crops
SOURCE_STREAM = 0x50C5  # random stream of the per-iteration source draws


@dataclass
class Batch:
    """One training batch on the training device."""

    image: torch.Tensor     # (B, C, X, Y, Z) float32
    target: torch.Tensor    # (B, 1, X, Y, Z) int64
    labelled: torch.Tensor  # (B, K) bool
    synthetic: bool         # drawn from a generator (synth/physics) rather than a folder
    source: str = ""        # the source's name (``loss_NAME`` in metrics.csv)


def uniform_draws(seed: int, slots: np.ndarray) -> np.ndarray:
    """``case_seed(seed, k) / 2**63`` for every slot ``k`` (uniform in [0, 1))."""
    return case_seeds(seed, slots).astype(np.float64) / float(1 << 63)


def source_schedule(cfg: TrainConfig, rank: int = 0, world: int = 1) -> np.ndarray:
    """The source index (into ``cfg.training_sources()``) of every iteration of this rank, (total,) int."""
    n = cfg.total_iterations
    i = np.arange(n, dtype=np.int64)
    specs = cfg.training_sources()
    if cfg.alternates:
        if len(specs) < 2:
            return np.zeros(n, dtype=np.int64)
        a, b = cfg.mix
        return (i % (a + b) >= a).astype(np.int64)
    w = np.cumsum([s.weight for s in specs], dtype=np.float64)
    u = uniform_draws(case_seed(cfg.seed, SOURCE_STREAM), i * world + rank)
    return np.minimum(np.searchsorted(w / w[-1], u, side="right"), len(specs) - 1)


def schema_lut(source: LabelSchema, target: LabelSchema) -> list[int]:
    """Class index in ``target`` of each class of ``source``, by name; missing classes -> background."""
    return [target.index(n) if n in target.classes else target.background_index for n in source.classes]


def synth_config_for_training(cfg: TrainConfig):  # -> SynthConfig
    """The generator config with the training crop size and spacing imposed on its augmentation chain."""
    import copy

    s = copy.deepcopy(cfg.synth)
    size = cfg.synth_crop_size or cfg.crop_size
    s.augment.spatial = replace(s.augment.spatial, crop_size=tuple(size), spacing=float(cfg.preprocessing.spacing))
    return s


def random_subcrop(image: torch.Tensor, target: torch.Tensor, size: tuple[int, int, int], gen: torch.Generator,
                   lesion_index: int, lesion_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``size`` crop of (C, X, Y, Z) ``image`` and (X, Y, Z) ``target``: uniform, or centred on a random
    lesion voxel with probability ``lesion_prob`` (drawn with the CPU generator ``gen``)."""
    shape = target.shape
    if tuple(shape) == tuple(size):
        return image, target
    start = [int(torch.randint(0, s - c + 1, (), generator=gen)) for s, c in zip(shape, size)]
    if bernoulli(gen, lesion_prob):
        idx = (target == lesion_index).nonzero()
        if len(idx):
            centre = idx[int(torch.randint(0, len(idx), (), generator=gen))].tolist()
            start = [min(max(int(p) - c // 2, 0), s - c) for p, s, c in zip(centre, shape, size)]
    sl = tuple(slice(a, a + c) for a, c in zip(start, size))
    return image[(slice(None), *sl)], target[sl]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class TrainingSources:
    """Produces the batch of every iteration, from ``start`` on.

    Args:
        cfg: the training config.
        schema: the training schema.
        device: the training device (the synthetic generator runs there).
        rank: this process's rank.
        world: number of processes.
        start: first iteration to produce (a resumed run's counter).
        generator: a pre-built :class:`SynthGenerator` (default: built from ``cfg.synth``).
    """

    def __init__(self, cfg: TrainConfig, schema: LabelSchema, device: torch.device, rank: int = 0,
                 world: int = 1, start: int = 0, generator=None):
        self.cfg = cfg
        self.schema = schema
        self.device = device
        self.rank = rank
        self.world = world
        self.start = start
        self.specs: list[SourceConfig] = cfg.training_sources()
        self.schedule = source_schedule(cfg, rank, world)
        self.synth = None  # the synth (else the physics) generator, if one is a source (validation uses it)
        self.generated: dict[int, Any] = {}  # source index -> generator with sample(k, seed)
        self._luts: dict[int, torch.Tensor] = {}
        self._before: dict[int, np.ndarray] = {}  # generated iterations of the source before each iteration
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.folders: dict[int, RealTrainingSet] = {}
        for j, spec in enumerate(self.specs):
            if spec.generated:
                g = self._generator(spec, generator)
                if spec.kind == self._main_kind:
                    self.synth = g
                self.generated[j] = g
                lut = schema_lut(load_schema(g.cfg.schema), schema)  # g.cfg.schema: a schema or a name
                self._luts[j] = torch.tensor(lut, dtype=torch.long, device=device)
                self._before[j] = np.concatenate([[0], np.cumsum(self.schedule == j)])
            else:
                seed = cfg.seed if cfg.alternates else case_seed(cfg.seed, SOURCE_STREAM + 1 + j)
                self.folders[j] = self._open(spec, seed)
        self._gen_index = next((j for j, sp in enumerate(self.specs) if sp.kind == self._main_kind), -1)
        self._iters: dict[int, Iterator[dict]] = {}

    @property
    def _main_kind(self) -> str:
        """The generated source that a pre-built generator stands for and validation draws from: ``synth``
        when its section is set, else ``physics`` (a mixed recipe lists both)."""
        return "synth" if self.cfg.synth is not None else "physics"

    def _generator(self, spec: SourceConfig, prebuilt):
        """The on-the-fly generator of a generated source (``prebuilt`` stands for the :attr:`_main_kind` one)."""
        cfg, size = self.cfg, tuple(self.cfg.synth_crop_size or self.cfg.crop_size)
        if spec.kind == self._main_kind and prebuilt is not None:
            return prebuilt
        if spec.kind == "synth":
            from lesionsynth.synth import SynthGenerator

            return SynthGenerator(synth_config_for_training(cfg), self.device)
        if spec.kind == "physics":
            from lesionsynth.train.physics_source import PhysicsTrainingSource

            return PhysicsTrainingSource(cfg.physics, size, cfg.preprocessing.spacing)
        from lesionsynth.train.rendered_source import RenderedTrainingSource

        # a gan / ldm checkpoint, its build settings typed and checked by the config (validate_config)
        if spec.kind == "ldm":
            from lesionsynth.generative.ldm.build import CaseRenderer as LDMCaseRenderer

            renderer = LDMCaseRenderer(spec.checkpoint, spec.build, self.device)
        else:
            from lesionsynth.generative.gan.database import BuildConfig
            from lesionsynth.generative.gan.database import CaseRenderer as GANCaseRenderer

            renderer = GANCaseRenderer(spec.checkpoint, spec.build or BuildConfig(), self.device)
        return RenderedTrainingSource(renderer, size, cfg.preprocessing.spacing)

    def _open(self, spec: SourceConfig, seed: int) -> RealTrainingSet:
        cfg, schema = self.cfg, self.schema
        folder, dl = open_folder(spec.path, spec.split, schema, spec.label_names, spec.max_cases)
        if not dl.labelled[schema.lesion_index]:
            raise ConfigError(f"{folder.root / 'dataset.json'}: training data must label '{schema.lesion}'")
        aug = real_augment_config(spec.augment, cfg.crop_size, cfg.preprocessing.spacing, dl, schema)
        return RealTrainingSet(folder, dl, schema, aug, cfg.crop_size, cfg.preprocessing.spacing, seed,
                               cfg.lesion_crop_prob, spec.cache, cfg.model.in_channels)

    @property
    def real(self) -> RealTrainingSet | None:
        """The first folder source's data (the older form's ``real``), or None."""
        return next(iter(self.folders.values()), None)

    def source_of(self, i: int) -> SourceConfig:
        """The source iteration ``i`` draws from on this rank."""
        return self.specs[int(self.schedule[i])]

    def is_synthetic(self, i: int) -> bool:
        """Whether iteration ``i`` draws generated data (synth, physics or a GAN sampled on the fly)."""
        return int(self.schedule[i]) in self.generated

    def synthetic_count(self, i: int, source: int | None = None) -> int:
        """How many iterations of a generated source (default: the synth/physics one) come before ``i``."""
        j = self._gen_index if source is None else source
        return int(self._before[j][i]) if j in self._before else 0

    def indices(self, i: int) -> list[int]:
        """Sample indices of iteration ``i`` on this rank."""
        B = self.cfg.batch_size
        return [(i * self.world + self.rank) * B + b for b in range(B)]

    def _generated_case(self, j: int, i: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Case of slot ``b`` of iteration ``i`` from generated source ``j``, on the device, target in the
        training schema.

        With ``synth_repeats`` R, R consecutive iterations *of that source* share their cases (index
        ``((s // R) * W + r) * B + b``, ``s`` = :meth:`synthetic_count`), kept from one to the next, also
        when other sources' iterations come between them.
        """
        R = self.cfg.synth_repeats
        k = ((self.synthetic_count(i, j) // R) * self.world + self.rank) * self.cfg.batch_size + b
        if (j, k) not in self._cache:
            mine = [key for key in self._cache if key[0] == j]
            if len(mine) >= self.cfg.batch_size:  # keep one batch of cases per source
                for key in mine:
                    del self._cache[key]
            s = self.generated[j].sample(k, self.cfg.seed)
            self._cache[(j, k)] = (s.image.to(self.device), self._luts[j][s.target.to(self.device)])
        return self._cache[(j, k)]

    def _loader(self, j: int) -> Iterator[dict]:
        # the sampler: the sample indices of this source's iterations from ``start`` on, in order
        idx = [k for i in range(self.start, self.cfg.total_iterations) if int(self.schedule[i]) == j
               for k in self.indices(i)]
        nw = self.cfg.num_workers
        loader = DataLoader(self.folders[j], batch_size=self.cfg.batch_size, sampler=idx, num_workers=nw,
                            pin_memory=self.device.type == "cuda", worker_init_fn=_worker_init if nw else None,
                            persistent_workers=False, prefetch_factor=2 if nw else None,
                            # its own generator: creating the iterator must not draw from the global
                            # stream (that would shift the dropout masks of the iteration it starts at)
                            generator=torch.Generator().manual_seed(self.cfg.seed))
        return iter(loader)

    def batch(self, i: int) -> Batch:
        """The batch of iteration ``i`` (iterations must be requested in order from ``start``)."""
        ks = self.indices(i)
        j = int(self.schedule[i])
        name = str(self.specs[j].name)
        if j in self.generated:
            imgs, tgts = [], []
            for b, k in enumerate(ks):
                image, target = self._generated_case(j, i, b)
                gen = make_generator(case_seed(case_seed(self.cfg.seed, CROP_STREAM), k))
                image, target = random_subcrop(image, target, tuple(self.cfg.crop_size), gen,
                                               self.schema.lesion_index, self.cfg.lesion_crop_prob)
                imgs.append(image.contiguous())
                tgts.append(target[None].contiguous())
            labelled = torch.ones(len(ks), self.schema.num_classes, dtype=torch.bool, device=self.device)
            return Batch(torch.stack(imgs).float(), torch.stack(tgts), labelled, True, name)
        if j not in self._iters:
            self._iters[j] = self._loader(j)
        d = next(self._iters[j])
        got = [int(x) for x in d["index"]]
        if got != ks:  # the loader must stay in step with the loop
            raise RuntimeError(f"{name} loader out of step at iteration {i}: {got} != {ks}")
        nb = self.device.type == "cuda"
        return Batch(d["image"].to(self.device, non_blocking=nb),
                     d["target"].to(self.device, non_blocking=nb), d["labelled"].to(self.device), False, name)

    def close(self) -> None:
        self._iters = {}
