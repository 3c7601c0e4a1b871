"""Evaluation of lesion segmentations: metrics, case matching, statistics and reports.

Python API: :func:`evaluate_folders`; metrics are pure functions in :mod:`lesionsynth.evaluate.metrics`.
"""

from lesionsynth.evaluate.accumulator import MetricAccumulator, Stat, summarise
from lesionsynth.evaluate.api import evaluate_folders
from lesionsynth.evaluate.matching import list_cases, match_cases
from lesionsynth.evaluate.metrics import (
    LesionCounts,
    abs_lesion_count_diff,
    abs_volume_diff_ml,
    dice,
    hausdorff,
    hd95,
    lesion_counts,
    lesion_wise_f1,
    per_class_dice,
    volume_error_ml,
)
from lesionsynth.evaluate.stats import compare_models, paired_wilcoxon, stars

__all__ = [
    "LesionCounts", "MetricAccumulator", "Stat", "abs_lesion_count_diff", "abs_volume_diff_ml",
    "compare_models", "dice", "evaluate_folders", "hausdorff", "hd95", "lesion_counts", "lesion_wise_f1",
    "list_cases", "match_cases", "paired_wilcoxon", "per_class_dice", "stars", "summarise", "volume_error_ml",
]
