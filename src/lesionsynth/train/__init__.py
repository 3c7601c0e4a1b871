"""Training of the segmenter: typed config, data sources, masked Dice + CE loss, loop, checkpoints and the
``train`` command; the run folder, metrics log and checkpoint format are the run engine's (:mod:`lesionsynth.runs`).
"""

from lesionsynth.train.config import TrainConfig, load_train_config
from lesionsynth.train.losses import MaskedDiceCELoss

__all__ = ["MaskedDiceCELoss", "TrainConfig", "load_train_config", "train"]


def train(*args, **kwargs):
    """See :func:`lesionsynth.train.loop.train` (imported lazily)."""
    from lesionsynth.train.loop import train as _train

    return _train(*args, **kwargs)
