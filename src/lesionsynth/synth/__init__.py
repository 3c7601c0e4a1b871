"""The domain-randomised (SynthSeg-style) generator, its Dataset and the ``synth`` command."""

from lesionsynth.synth.dataset import SynthDataset
from lesionsynth.synth.generator import SynthConfig, SynthGenerator, SynthSample, load_synth_config
from lesionsynth.synth.intensities import IntensityConfig

__all__ = ["IntensityConfig", "SynthConfig", "SynthDataset", "SynthGenerator", "SynthSample",
           "load_synth_config"]
