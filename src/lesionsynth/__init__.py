"""lesionsynth: synthetic, perfectly labelled brain MRI for lesion segmentation.

Package layout follows the pipeline stages:

- :mod:`lesionsynth.io` NIfTI reading/writing and resampling through affines.
- :mod:`lesionsynth.labels` label schemas (data, not code) and label-map sources.
- :mod:`lesionsynth.lesions` lesion sources (folders of masks, procedural) and pasting.
- :mod:`lesionsynth.augment` one corruption transform per module (sample, then apply).
- :mod:`lesionsynth.synth` the domain-randomised generator, its Dataset and CLI.
- :mod:`lesionsynth.generative` GAN and latent-diffusion generators.
- :mod:`lesionsynth.data` nnU-Net-style dataset folders.
- :mod:`lesionsynth.models`, :mod:`lesionsynth.train`, :mod:`lesionsynth.infer`,
  :mod:`lesionsynth.evaluate` the segmenter, its training, inference and scoring.
"""

__version__ = "0.1.0"
