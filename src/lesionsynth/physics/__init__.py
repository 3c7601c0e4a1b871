"""Physics-based rendering of labelled MR scans (T1w, T2w, FLAIR, DWI, ADC) from tissue maps."""

from lesionsynth.physics.generator import (
    LESION_TYPES,
    MODALITIES,
    RESOLUTIONS,
    PhysicsConfig,
    PhysicsGenerator,
    PhysicsSample,
    load_tissue_table,
)
from lesionsynth.physics.sequences import SequenceParams, signal

__all__ = ["LESION_TYPES", "MODALITIES", "RESOLUTIONS", "PhysicsConfig", "PhysicsGenerator", "PhysicsSample",
           "SequenceParams", "load_tissue_table", "signal"]
