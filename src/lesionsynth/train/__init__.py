"""Training of the segmenter: configs, data sources, loss, loop, checkpoints and the ``train`` command.

Modules: :mod:`~lesionsynth.train.config` (typed config), :mod:`~lesionsynth.train.data` (real
nnU-Net folders, label mapping), :mod:`~lesionsynth.train.sources` (synthetic/real alternation),
:mod:`~lesionsynth.train.losses` (masked Dice + CE), :mod:`~lesionsynth.train.optim`,
:mod:`~lesionsynth.train.state` (checkpoints), :mod:`~lesionsynth.train.ddp`,
:mod:`~lesionsynth.train.validate`, :mod:`~lesionsynth.train.loop` and :mod:`~lesionsynth.train.cli`; the run
folder, metrics log and checkpoint format are the run engine's (:mod:`lesionsynth.runs`).
"""

from lesionsynth.train.config import TrainConfig, load_train_config
from lesionsynth.train.losses import MaskedDiceCELoss

__all__ = ["MaskedDiceCELoss", "TrainConfig", "load_train_config", "train"]


def train(*args, **kwargs):
    """See :func:`lesionsynth.train.loop.train` (imported lazily)."""
    from lesionsynth.train.loop import train as _train

    return _train(*args, **kwargs)
