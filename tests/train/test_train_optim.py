"""The poly learning-rate schedule and its optional linear warm-up."""

from __future__ import annotations

import pytest
import torch

from lesionsynth.errors import ConfigError
from lesionsynth.train.config import OptimConfig, config_from_dict
from lesionsynth.train.optim import build_optimizer, set_schedule_length
from lesionsynth.train.toy import toy_config


def _lrs(cfg: OptimConfig, total: int, steps: int) -> list[float]:
    opt, sched = build_optimizer(torch.nn.Linear(2, 2), cfg, total)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_without_warmup_the_schedule_is_the_poly_one():
    lrs = _lrs(OptimConfig(lr=1.0, poly_power=0.9), total=10, steps=10)
    assert lrs == pytest.approx([(1 - n / 10) ** 0.9 for n in range(10)])


def test_warmup_ramps_linearly_then_follows_the_poly_schedule():
    lrs = _lrs(OptimConfig(lr=1.0, poly_power=1.0, warmup_iterations=4), total=10, steps=10)
    poly = [1 - n / 10 for n in range(10)]
    assert lrs[:4] == pytest.approx([poly[n] * (n + 1) / 4 for n in range(4)])
    assert lrs[4:] == pytest.approx(poly[4:])
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3]


def test_a_schedule_saved_before_warmup_existed_resumes_unchanged():
    opt, sched = build_optimizer(torch.nn.Linear(2, 2), OptimConfig(lr=1.0), 10)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    del state["lr_lambdas"][0]["warmup"]  # what a checkpoint written before the warm-up existed holds
    opt2, sched2 = build_optimizer(torch.nn.Linear(2, 2), OptimConfig(lr=1.0), 10)
    sched2.load_state_dict(state)
    set_schedule_length(opt2, sched2, 10)
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_negative_warmup_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="warmup_iterations"):
        config_from_dict(toy_config(tmp_path, optim={"lr": 1e-3, "warmup_iterations": -1}))
