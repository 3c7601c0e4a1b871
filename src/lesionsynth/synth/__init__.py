"""The domain-randomised (SynthSeg-style) generator, its Dataset and the ``synth`` command."""

from lesionsynth.synth.build import BuildResult, build_dataset
from lesionsynth.synth.dataset import SynthDataset
from lesionsynth.synth.generator import SynthConfig, SynthGenerator, SynthSample, load_synth_config
from lesionsynth.synth.intensities import IntensityConfig

__all__ = ["BuildResult", "IntensityConfig", "SynthConfig", "SynthDataset", "SynthGenerator", "SynthSample",
           "build_dataset", "load_synth_config"]
