"""A torch ``Dataset`` of on-the-fly synthetic cases (reproducible from (seed, index))."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from lesionsynth.synth.generator import SynthConfig, SynthGenerator


class SynthDataset(Dataset):
    """Yields ``(image (1, X, Y, Z) float32, target (1, X, Y, Z) int64)``.

    Case ``i`` is a pure function of ``(seed, i)``, so samples are bit-identical whatever the number of
    DataLoader workers or their order. The generator (and its label maps) is built lazily in each
    worker process.

    Args:
        cfg: generator configuration.
        seed: run seed.
        length: number of cases per epoch.
        device: where the generator runs (use the training device to keep a GPU fed; with CUDA use
            ``num_workers=0``).
    """

    def __init__(self, cfg: SynthConfig, seed: int = 0, length: int = 1000, device: str = "cpu",
                 generator: SynthGenerator | None = None):
        self.cfg = cfg
        self.seed = seed
        self.length = length
        self.device = device
        self._gen = generator

    @property
    def generator(self) -> SynthGenerator:
        if self._gen is None:
            self._gen = SynthGenerator(self.cfg, self.device)
        return self._gen

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.generator.sample(int(i), self.seed)
        return s.image, s.target[None]
