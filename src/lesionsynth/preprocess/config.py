"""How a network's input images are prepared: the training config's section (:class:`PreprocessConfig`) and
the record stored in every checkpoint (:class:`Preprocessing`, the same keys plus orientation and patch size)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, Literal

from lesionsynth.config import from_dict
from lesionsynth.errors import ConfigError

NORMALISATIONS = ("zscore", "none")


@dataclass
class PreprocessConfig:
    """How training presents images to the network (a training config's ``preprocessing`` section); recorded
    in checkpoints for inference as :class:`Preprocessing`.

    Attributes:
        spacing: isotropic voxel size in mm. Real images are reoriented to RAS and resampled to it (in
            the augmentation's single resampling); synthetic images must be generated at it.
        normalisation: ``zscore``: random percentile clipping then mean 0, sd 1 over all voxels of the
            network's input crop (the last steps of the augmentation chain); validation on a folder and
            inference clip to the 0.5–99.5 percentiles and z-score the whole volume
            (:func:`lesionsynth.preprocess.normalise_intensity`).
    """

    spacing: float = 1.0
    normalisation: Literal["zscore"] = "zscore"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"normalisation: {self.normalisation!r} is not one of {list(NORMALISATIONS)}")
        sp = self.spacing if isinstance(self.spacing, tuple) else (self.spacing,)
        if any(s <= 0 for s in sp):
            raise ConfigError(f"spacing: must be positive, got {self.spacing!r}")

    def record(self, patch_size: tuple[int, ...] | list[int]) -> dict[str, Any]:
        """The checkpoint's ``preprocessing`` entry (:class:`Preprocessing` as plain data)."""
        return {"spacing": self.spacing, "normalisation": self.normalisation, "orientation": "RAS",
                "patch_size": [int(v) for v in patch_size]}


@dataclass
class Preprocessing(PreprocessConfig):
    """Image preparation the network was trained with (the checkpoint's ``preprocessing`` dict,
    written by training: :meth:`PreprocessConfig.record`).

    Attributes:
        spacing: working voxel size in mm (isotropic number or three values).
        normalisation: ``zscore`` (see :func:`lesionsynth.preprocess.normalise_intensity`) or ``none``.
        orientation: axis order the network expects; only ``RAS`` is supported.
        patch_size: training crop size; the default sliding-window size when given.
    """

    spacing: float | tuple[float, float, float] = 1.0  # type: ignore[assignment]
    normalisation: str = "zscore"  # type: ignore[assignment]
    orientation: str = "RAS"
    patch_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.orientation != "RAS":
            raise ConfigError(f"orientation: only 'RAS' is supported, got {self.orientation!r}")
        if self.patch_size is not None and any(p < 1 for p in self.patch_size):
            raise ConfigError(f"patch_size: must be positive, got {self.patch_size!r}")

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any] | None, where: str = "checkpoint.preprocessing"
                        ) -> Preprocessing:
        """Read the known keys of a checkpoint's ``preprocessing`` dict; other keys are reported once
        on stderr and ignored."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        extra = sorted(k for k in data if k not in known)
        if extra:
            logging.getLogger(__name__).info(f"note: {where}: ignoring key(s) {', '.join(extra)}")
        for k in ("spacing", "patch_size"):
            if isinstance(data.get(k), list):
                data[k] = tuple(data[k])
        return from_dict(cls, {k: v for k, v in data.items() if k in known}, where=where)
