"""Inference (``lesionsynth predict``): tissue and lesion maps on the input scans' own grids.

Python API: :func:`load_segmenter`, :func:`predict_volume` (arrays + affine) and
:func:`predict_files` (files, folders, globs -> output folder). See ``docs/predict.md``.
"""

from lesionsynth.infer.config import PredictConfig
from lesionsynth.infer.files import Failure, FileResult, predict_files
from lesionsynth.infer.predict import Prediction, Segmenter, load_segmenter, predict_volume
from lesionsynth.preprocess import Preprocessing, normalise_intensity  # re-exported: the API of predict

__all__ = ["Failure", "FileResult", "PredictConfig", "Prediction", "Preprocessing", "Segmenter",
           "load_segmenter", "normalise_intensity", "predict_files", "predict_volume"]
