"""Interrupted and resumed runs end bit-identical to uninterrupted ones (CPU, deterministic settings)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from lesionsynth.train.config import config_from_dict
from lesionsynth.train.loop import train
from lesionsynth.train.toy import toy_config, write_blob_dataset


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return write_blob_dataset(tmp_path_factory.mktemp("data") / "blobs", n=3, shape=(20, 20, 20))


def _config(blobs, **over):
    # dropout and the real-image augmentation chain on, so every random stream matters
    spatial = {"crop_size": [16, 16, 16], "elastic_spacing_mm": 8.0}
    data = toy_config(blobs, real={"path": str(blobs), "cache": True, "augment": {"spatial": spatial}},
                      model={"channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.2},
                      epochs=3, iterations_per_epoch=8, checkpoint_every=3)
    data.update(over)
    return data


def _assert_same_state(a, b):
    ca = torch.load(a, weights_only=False)
    cb = torch.load(b, weights_only=False)
    assert ca["progress"] == cb["progress"]
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    for p in sa:
        for k in sa[p]:
            assert torch.equal(torch.as_tensor(sa[p][k]), torch.as_tensor(sb[p][k])), (p, k)
    assert ca["scheduler"] == cb["scheduler"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, blobs):
    run = tmp_path_factory.mktemp("ref") / "run"
    train(config_from_dict(_config(blobs)), run, progress_bar=False)
    return run


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, blobs, reference):
    cfg = config_from_dict(_config(blobs))
    run = tmp_path / "run"
    first = train(cfg, run, stop_after=10, progress_bar=False)
    assert first.iterations == 10
    train(cfg, run, resume=True, progress_bar=False)
    _assert_same_state(reference / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    with open(run / "metrics.csv") as f:
        its = [int(r["iteration"]) for r in csv.DictReader(f) if r["phase"] == "train"]
    assert its == list(range(1, 25))


def test_a_time_limit_stops_with_a_checkpoint_and_resume_finishes_exactly(tmp_path, blobs, reference):
    """``--time-limit``: the run stops after the iteration that crosses the limit (here at once: 0 minutes),
    writes last.pt there, and a resumed run ends as the uninterrupted one."""
    cfg = config_from_dict(_config(blobs))
    run = tmp_path / "run"
    first = train(cfg, run, progress_bar=False, time_limit_min=0.0)
    assert first.iterations == 1
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["progress"]["iteration"] == 1
    r = _run_cli(["--out", str(run), "--resume", "--time-limit", "60"])
    assert r.returncode == 0 and "trained 24 iterations" in r.stdout and "time limit" not in r.stdout, r.stderr
    _assert_same_state(reference / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")


def test_a_time_budget_shortens_the_run_to_whole_epochs_and_refits_the_schedule(tmp_path, blobs, reference):
    """``time_budget_min``: a budget spent by the first epoch ends the run there, with the learning rate
    decayed to 0 at its new last iteration; a resumed run keeps that length. A budget the run fits in
    changes nothing."""
    run = tmp_path / "short"
    res = train(config_from_dict(_config(blobs, time_budget_min=1e-6)), run, progress_bar=False)
    assert (res.iterations, res.planned_iterations, res.config_iterations) == (8, 8, 24)
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ck["progress"]["iteration"] == 8 and ck["progress"]["planned_iterations"] == 8
    assert ck["train_seconds"] > 0
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.0  # the poly schedule ends at iteration 8
    again = train(config_from_dict(_config(blobs, time_budget_min=1e-6)), run, resume=True, progress_bar=False)
    assert (again.iterations, again.iterations_run) == (8, 0)
    # the budget may change on resume (a length key); a shortened run keeps its length under any budget
    again = train(config_from_dict(_config(blobs, time_budget_min=600.0)), run, resume=True, progress_bar=False)
    assert (again.iterations, again.iterations_run) == (8, 0)
    r = _run_cli(["--out", str(tmp_path / "cli"), "--config", str(_yaml(tmp_path, blobs)), "--time-budget", "1e-6"])
    assert r.returncode == 0 and "trained 8 iterations" in r.stdout and "fitted the run to 8 of 24" in r.stdout, \
        r.stdout + r.stderr
    roomy = tmp_path / "roomy"
    res = train(config_from_dict(_config(blobs, time_budget_min=600.0)), roomy, progress_bar=False)
    assert (res.iterations, res.planned_iterations, res.config_iterations) == (24, 24, 24)
    _assert_same_state(reference / "checkpoints" / "last.pt", roomy / "checkpoints" / "last.pt")


def _yaml(tmp_path, blobs):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_config(blobs)))
    return path


def _run_cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "lesionsynth", "train", *args], env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def test_kill_9_five_times_mid_run_then_resume(tmp_path, blobs):
    """A training subprocess is SIGKILLed at five random moments, each after it wrote a new checkpoint and
    resumed through the CLI in between; the finished run equals the uninterrupted one bit for bit."""
    import random

    # a checkpoint after every iteration makes kills during writes likely; 48 iterations leave room for five
    # kills even on a fast machine
    data = _config(blobs, checkpoint_every=1, epochs=6)
    reference = tmp_path / "reference"
    train(config_from_dict(data), reference, progress_bar=False)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = random.Random(0)
    done = [0]
    for k in range(5):
        args = ["--config", str(cfg_path)] if k == 0 else ["--resume"]
        proc = subprocess.Popen([sys.executable, "-m", "lesionsynth", "train", *args, "--out", str(run)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120

        def progress() -> int:
            try:
                return torch.load(last, weights_only=False)["progress"]["iteration"] if last.is_file() else 0
            except Exception:  # noqa: BLE001 - a checkpoint being replaced right now
                return done[-1]

        while proc.poll() is None and progress() <= done[-1] and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        done.append(torch.load(last, weights_only=False)["progress"]["iteration"])
    assert done == sorted(set(done)) and done[-1] < 48, done  # five kills, each after progress, mid-run
    r = _run_cli(["--out", str(run), "--resume"])  # the recorded config
    assert r.returncode == 0, r.stderr[-2000:]
    assert not list((run / "checkpoints").glob(".*"))  # temporaries of a killed write are gone
    ref = torch.load(reference / "checkpoints" / "last.pt", weights_only=False)
    got = torch.load(last, weights_only=False)
    assert got["progress"]["iteration"] == 48
    for key, v in ref["model"].items():
        assert torch.equal(v, got["model"][key]), key


KILL_DURING_SAVE = """
import os, signal, sys, torch
from lesionsynth.models import save_checkpoint
real_save = torch.save
def half_then_die(obj, f, *a, **k):
    f.write(b"PK\\x03\\x04 partial checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = half_then_die
save_checkpoint(sys.argv[1], {"model": {}})
"""


def test_kill_9_while_a_checkpoint_is_written(tmp_path, blobs):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(blobs, epochs=1, iterations_per_epoch=4, checkpoint_every=2)))
    run = tmp_path / "run"
    r = _run_cli(["--config", str(cfg_path), "--out", str(run), "--stop-after", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()
    p = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(last)], timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert last.read_bytes() == before  # the old checkpoint is intact ...
    assert list((run / "checkpoints").glob(".last.*"))  # ... next to the killed write's temporary file
    r = _run_cli(["--out", str(run), "--resume"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert torch.load(last, weights_only=False)["progress"]["iteration"] == 4
    assert not list((run / "checkpoints").glob(".*"))


def test_resume_with_more_epochs_refits_the_schedule(tmp_path, blobs):
    """``--resume --set epochs=N``: the run goes on to N epochs and the poly schedule ends there."""
    cfg = _config(blobs, epochs=2)
    run = tmp_path / "run"
    train(config_from_dict(cfg), run, stop_after=10, progress_bar=False)
    r = _run_cli(["--out", str(run), "--resume", "--set", "epochs=4", "--stop-after", "20"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 4
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["progress"]["iteration"] == 20
    assert ckpt["scheduler"]["lr_lambdas"][0]["total"] == 32
    lr0 = ckpt["scheduler"]["base_lrs"][0]
    power = ckpt["scheduler"]["lr_lambdas"][0]["power"]
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr0 * (1 - 20 / 32) ** power)
    with open(run / "metrics.csv") as f:
        its = [int(r["iteration"]) for r in csv.DictReader(f) if r["phase"] == "train"]
    assert its == list(range(1, 21))


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path, blobs):
    run = tmp_path / "run"
    train(config_from_dict(_config(blobs, epochs=2)), run, stop_after=10, progress_bar=False)
    before = (run / "config.yaml").read_text()
    r = _run_cli(["--out", str(run), "--resume", "--set", "epochs=1"])
    assert r.returncode != 0
    assert "already at iteration 10" in r.stderr and "Traceback" not in r.stderr
    assert (run / "config.yaml").read_text() == before  # nothing rewritten
