"""Latent diffusion generators (guided synthesis of labelled brain MRI, after Ruschke et al.).

- a *mask LDM* generates label maps whose volume ratio of a chosen class (ventricles, lesion) follows a
  scalar condition c, with classifier-free guidance;
- a *SPADE image LDM* renders an image for a given label map.

Both are built from MONAI's generative networks; see ``docs/ldm.md``.
"""

from lesionsynth.generative.ldm.config import (
    AutoencoderConfig,
    DataConfig,
    DiffusionConfig,
    GridConfig,
    LDMConfig,
    SamplingConfig,
    TrainConfig,
)
from lesionsynth.generative.ldm.data import Condition, LabelSet, load_label_set
from lesionsynth.generative.ldm.models import ImageLDM, MaskLDM, load_autoencoder, load_ldm
from lesionsynth.generative.ldm.train import train_autoencoder, train_diffusion

__all__ = [
    "AutoencoderConfig", "Condition", "DataConfig", "DiffusionConfig", "GridConfig", "ImageLDM", "LDMConfig",
    "LabelSet", "MaskLDM", "SamplingConfig", "TrainConfig", "load_autoencoder", "load_label_set", "load_ldm",
    "train_autoencoder", "train_diffusion",
]
