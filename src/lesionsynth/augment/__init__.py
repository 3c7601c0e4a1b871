"""Corruption transforms, one per module (``sample`` then deterministic ``apply``), and their chain."""

from lesionsynth.augment.chain import AugmentConfig, ChainParams, apply_chain, augment, sample_chain

__all__ = ["AugmentConfig", "ChainParams", "apply_chain", "augment", "sample_chain"]
