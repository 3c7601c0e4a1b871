"""Every transform's config checks its ranges when built (from Python or YAML)."""

from __future__ import annotations

import dataclasses

import pytest

from lesionsynth.augment import AugmentConfig
from lesionsynth.config import from_dict
from lesionsynth.errors import ConfigError
from lesionsynth.lesions.paste import PasteConfig
from lesionsynth.lesions.procedural import ProceduralLesionConfig
from lesionsynth.synth.generator import SynthConfig
from lesionsynth.synth.intensities import IntensityConfig

TRANSFORM_CONFIGS = [f.default_factory for f in dataclasses.fields(AugmentConfig)
                     if f.default_factory is not dataclasses.MISSING]


def test_every_transform_config_is_covered():
    assert len(TRANSFORM_CONFIGS) == 10


@pytest.mark.parametrize("cls", TRANSFORM_CONFIGS, ids=lambda c: c.__name__)
def test_defaults_are_valid_and_probabilities_are_checked(cls):
    cfg = cls()
    probs = [f.name for f in dataclasses.fields(cfg) if f.name == "p" or f.name.startswith("p_")]
    for name in probs:
        for bad in (1.5, -0.1):
            with pytest.raises(ConfigError, match=name):
                dataclasses.replace(cfg, **{name: bad})


@pytest.mark.parametrize("section, values", [
    ("spatial", {"rotation_deg": -1.0}),
    ("spatial", {"scaling": 1.0}),
    ("spatial", {"crop_size": [0, 32, 32]}),
    ("spatial", {"elastic_spacing_mm": 0.0}),
    ("bias", {"control_points": [6, 3]}),
    ("bias", {"max_std": -0.5}),
    ("gamma", {"log_gamma": -0.1}),
    ("motion", {"time": [0.5, 1.2]}),
    ("lowres", {"min_thickness_mm": 9.0}),
    ("noise", {"max_std": -1.0}),
    ("blur", {"max_sigma_vox": -1.0}),
    ("skullstrip", {"max_erode": -1}),
    ("clip", {"lower": [0.0, 60.0], "upper": [50.0, 100.0]}),
    ("clip", {"upper": [99.0, 101.0]}),
])
def test_out_of_range_transform_values_are_refused_with_their_path(section, values):
    with pytest.raises(ConfigError, match=rf"^my\.yaml\.augment\.{section}: "):
        from_dict(SynthConfig, {"augment": {section: values}}, "my.yaml")


@pytest.mark.parametrize("cls, values", [
    (ProceduralLesionConfig, {"volume_ml": (0.0, 5.0)}),
    (ProceduralLesionConfig, {"components": (3, 1)}),
    (ProceduralLesionConfig, {"elongation": (0.5, 2.0)}),
    (ProceduralLesionConfig, {"hemisphere": "both"}),
    (PasteConfig, {"grade_min": (0.3, 1.5)}),
    (IntensityConfig, {"std": (-1.0, 3.0)}),
    (IntensityConfig, {"mean": (200.0, 100.0)}),
    (SynthConfig, {"lesion_probability": 1.5}),
    (SynthConfig, {"resolution": 0.0}),
])
def test_out_of_range_generator_values_are_refused(cls, values):
    with pytest.raises(ConfigError):
        cls(**values)


def test_shipped_values_pass():
    assert from_dict(SynthConfig, {"augment": {"clip": {"lower": [0, 1], "upper": [99, 100]}}}).augment.clip
