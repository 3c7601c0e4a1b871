"""Data-parallel training with 2 gloo processes on CPU: it completes and both ranks hold identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from lesionsynth.train.toy import toy_config, write_blob_dataset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, data: dict, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from lesionsynth.train.config import config_from_dict
    from lesionsynth.train.loop import train

    res = train(config_from_dict(data), out, progress_bar=False)
    torch.save({k: v.clone() for k, v in res.model.state_dict().items()}, f"{out}/rank{rank}.pt")


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return write_blob_dataset(tmp_path_factory.mktemp("data") / "blobs", n=4, shape=(20, 20, 20))


def test_two_gloo_ranks_hold_identical_weights(tmp_path, blobs):
    data = toy_config(blobs, epochs=1, iterations_per_epoch=6, val={"path": str(blobs)},
                      model={"channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.2})
    out = tmp_path / "run"
    mp.start_processes(_rank_main, args=(2, _free_port(), data, str(out)), nprocs=2, join=True,
                       start_method="spawn")
    w0 = torch.load(out / "rank0.pt")
    w1 = torch.load(out / "rank1.pt")
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert last["progress"]["iteration"] == 6
    for k in w0:
        assert torch.equal(w0[k], last["model"][k]), k
    # training moved the weights away from their (seeded) initialisation
    from lesionsynth.models import ModelConfig, build_unet

    torch.manual_seed(0)  # the config's seed
    init = build_unet(ModelConfig(out_channels=2, channels=(4, 8, 16), strides=(2, 2), dropout=0.2)).state_dict()
    assert init.keys() == w0.keys()
    assert not all(torch.equal(init[k], w0[k]) for k in w0)
    info = (out / "run.json").read_text()
    assert '"world_size": 2' in info
    val = [r for r in (out / "metrics.csv").read_text().splitlines() if ",val," in r]
    assert len(val) == 1 and val[0].split(",")[8] == "4"  # 4 cases, 2 scored by each rank, summed


def test_torchrun_cli_runs_two_processes(tmp_path, blobs):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(toy_config(blobs, epochs=1, iterations_per_epoch=3)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "lesionsynth", "train", "--config", str(cfg), "--out", str(tmp_path / "run")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("trained 3 iterations") == 1  # printed by rank 0 only
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
