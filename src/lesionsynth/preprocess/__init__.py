"""Preparing images for a network, shared by training, validation, ``predict`` and the generative models:
the preparation record (:class:`Preprocessing`), RAS orientation and working grid (:func:`prepare`), the
foreground box and its windows, and intensity normalisation (:mod:`lesionsynth.preprocess.intensity`)."""

from lesionsynth.preprocess.config import NORMALISATIONS, Preprocessing
from lesionsynth.preprocess.intensity import normalise_intensity, percentiles, scale_unit, zscore
from lesionsynth.preprocess.prepare import Prepared, foreground_mask, network_input, plan_windows, prepare

__all__ = ["NORMALISATIONS", "Prepared", "Preprocessing", "foreground_mask", "network_input", "normalise_intensity",
           "percentiles", "plan_windows", "prepare", "scale_unit", "zscore"]
