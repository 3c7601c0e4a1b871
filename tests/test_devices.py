"""lesionsynth.devices: device names and the one mixed-precision policy of training and prediction."""

import pytest
import torch

from lesionsynth.devices import PRECISIONS, autocast, autocast_dtype, resolve_device
from lesionsynth.errors import ConfigError, InputError


def test_resolve_device_names_and_one_line_errors():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda") and resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(InputError, match="not a device"):
        resolve_device("bogus")
    if not torch.cuda.is_available():
        for name in ("cuda", "gpu", "cuda:1"):
            with pytest.raises(InputError, match="CUDA is not available"):
                resolve_device(name)
    if not torch.backends.mps.is_available():
        with pytest.raises(InputError, match="MPS is not available"):
            resolve_device("mps")


def test_precision_policy_is_the_same_for_every_mode_and_device():
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16 and autocast_dtype("fp16", cpu) is torch.float16
    with pytest.raises(ConfigError, match="not one of"):
        autocast_dtype("off", cpu)  # read as fp32 by the training config only, never here
    assert set(PRECISIONS) == {"auto", "fp32", "bf16", "fp16"}


def test_autocast_context_casts_only_when_asked():
    conv = torch.nn.Conv3d(1, 1, 3)
    x = torch.randn(1, 1, 6, 6, 6)
    with autocast(x.device, None):
        assert conv(x).dtype == torch.float32
    with autocast(x.device, torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16


def test_training_and_prediction_configs_share_the_vocabulary():
    from lesionsynth.infer.config import PredictConfig
    from lesionsynth.train.config import load_train_config

    for mode in PRECISIONS:
        assert PredictConfig(precision=mode).precision == mode
        assert load_train_config("tiny-cpu", {"amp": mode}).amp == mode
    assert load_train_config("tiny-cpu", {"amp": "off"}).amp == "fp32"  # older run folders still resume
