"""lesionsynth.runs: the run engine every trainer uses (folder, resume rule, log, checkpoint header, loop)."""

import pytest
import torch

from lesionsynth.errors import ConfigError, InputError
from lesionsynth.runs import Intervals, MetricsLog, RunFolder, read_run_checkpoint, run_iterations, save_run_checkpoint
from lesionsynth.runs.checkpoint import FORMAT, checkpoint_kind
from lesionsynth.runs.folder import check_can_start


def test_checkpoint_header_kind_and_format(tmp_path):
    path = save_run_checkpoint(tmp_path / "checkpoints" / "last.pt", "mask-gan", {"model": {}, "iteration": 3})
    ck = read_run_checkpoint(tmp_path, "mask-gan")  # a run folder resolves to its last.pt
    assert ck["header"]["kind"] == "mask-gan" and ck["header"]["format"] == FORMAT and ck["iteration"] == 3
    with pytest.raises(InputError, match="is a mask-gan checkpoint, expected a translator checkpoint"):
        read_run_checkpoint(path, "translator")
    with pytest.raises(ValueError):
        save_run_checkpoint(tmp_path / "x.pt", "gan", {"model": {}})
    newer = tmp_path / "newer.pt"
    torch.save({"model": {}, "header": {"format": FORMAT + 1, "kind": "segmenter"}}, newer)
    with pytest.raises(InputError, match="newer lesionsynth"):
        read_run_checkpoint(newer, "segmenter")


def test_files_from_before_the_header_are_recognised():
    assert checkpoint_kind({"model": {}, "model_config": {}}) == "segmenter"
    assert checkpoint_kind({"model": {}, "kind": "translator"}) == "translator"
    assert checkpoint_kind({"model": {}, "ldm_format": 1, "stage": "diffusion", "kind": "mask"}) == "ldm-diffusion"
    assert checkpoint_kind({"model": {}}) is None


def test_resume_rule(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.resumable({"a": 1}, resume=False) is False  # a new folder starts
    assert run.resumable({"a": 1}, resume=True) is False  # --resume with nothing yet: starts too
    run.start({"a": 1, "iterations": 4, "device": "cpu"}, resume=False)
    save_run_checkpoint(run.last, "segmenter", {"model": {}})
    with pytest.raises(InputError, match="already holds a run; add --resume"):
        run.resumable({"a": 1}, resume=False)
    assert run.resumable({"a": 1, "iterations": 8, "device": "cuda"}, resume=True)  # length and runtime keys
    with pytest.raises(ConfigError, match="differs from the run's at 'a'"):
        check_can_start(run.root, {"a": 2, "iterations": 4}, resume=True)
    assert (run.root / "run.json").is_file() and (run.root / "config.yaml").is_file()


def test_metrics_log_drops_rows_after_the_resumed_checkpoint(tmp_path):
    log = MetricsLog(tmp_path)
    for it in (1, 2, 3):
        log.log(it, loss=1.0 / it)
    log.close()
    log = MetricsLog(tmp_path, start_iteration=2)
    log.log(3, loss=0.5)
    with pytest.raises(KeyError):
        log.log(4, other=1.0)  # the file's columns stay fixed
    log.close()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows == ["iteration,loss", "1,1", "2,0.5", "3,0.5"]


def test_metrics_log_trains_on_without_tensorboard(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    log = MetricsLog(tmp_path, tensorboard=True)
    log.log(1, loss=1.0)
    log.close()
    assert log.writer is None  # no events, no crash
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["iteration,loss", "1,1"]


def test_run_iterations_resumes_exactly_and_stops_on_time(tmp_path):
    def make(run):
        state = {"x": 0.0}

        def step(it):
            g = torch.Generator().manual_seed(it)  # the engine's scheme: draws of step it from (seed, it)
            state["x"] += float(torch.rand((), generator=g))
            return {"x": state["x"]}

        def save(it):
            save_run_checkpoint(run.last, "mask-gan", {"model": {}, "iteration": it, "x": state["x"]})

        return state, step, save

    every = Intervals(log_every=1, sample_every=0, checkpoint_every=2)
    full = RunFolder(tmp_path / "full")
    st_full, step, save = make(full)
    assert run_iterations(full, 0, 6, every, step, save, lambda it: None, "t", progress=False) == 6
    part = RunFolder(tmp_path / "part")
    st, step, save = make(part)
    assert run_iterations(part, 0, 6, every, step, save, lambda it: None, "t", progress=False,
                          time_limit_min=0.0) == 1  # stops after the first iteration, with a checkpoint
    ck = read_run_checkpoint(part.last, "mask-gan")
    st["x"] = ck["x"]
    run_iterations(part, ck["iteration"], 6, every, step, save, lambda it: None, "t", progress=False)
    assert read_run_checkpoint(part.last, "mask-gan")["x"] == pytest.approx(st_full["x"], abs=0)
    rows = [r.split(",")[0] for r in (part.root / "metrics.csv").read_text().splitlines()]
    assert rows == ["iteration", "1", "2", "3", "4", "5", "6"]
    with pytest.raises(ConfigError, match="already at iteration 6"):
        run_iterations(part, 6, 5, every, step, save, lambda it: None, "t", progress=False)
