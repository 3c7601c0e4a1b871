"""Training throughput: the synthetic generator on the training device vs a fixed input tensor.

For a training config (default: the paper's ``synth`` config, 192³ crops) this times optimiser steps
(forward, Dice+CE, backward, clipping, AdamW, poly schedule, AMP on CUDA: the loop's own
``train_step``) in two modes, each in a fresh process:

- ``synth``: every step draws a new case from the on-the-fly generator on the training device;
- ``fixed``: every step reuses one pre-generated case (no generation cost).

The ratio of the two step rates is the generator's overhead. Peak memory is CUDA's
``max_memory_allocated`` on a GPU, the process's peak resident set size on CPU.

Examples::

    python benchmarks/bench_train.py                         # paper config, 192³, CUDA if available
    python benchmarks/bench_train.py --small                 # CPU-sized: tiny-cpu config, 64³
    python benchmarks/bench_train.py --config synth --size 96 --device cpu --iterations 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch


def measure(config: str, size: int, device_name: str, mode: str, iterations: int, warmup: int) -> dict:
    from lesionsynth.devices import autocast_dtype, resolve_device
    from lesionsynth.models import build_unet
    from lesionsynth.train.config import load_train_config
    from lesionsynth.train.loop import train_step
    from lesionsynth.train.losses import MaskedDiceCELoss
    from lesionsynth.train.optim import build_optimizer, build_scaler
    from lesionsynth.train.sources import Batch, TrainingSources

    cfg = load_train_config(config, {"crop_size": [size] * 3, "real": None, "device": device_name})
    device = resolve_device(cfg.device)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    schema = cfg.label_schema()
    t0 = time.perf_counter()
    sources = TrainingSources(cfg, schema, device)
    setup_s = time.perf_counter() - t0
    torch.manual_seed(0)
    model = build_unet(cfg.model).to(device).train()
    optimizer, scheduler = build_optimizer(model, cfg.optim, cfg.total_iterations)
    dtype = autocast_dtype(cfg.amp, device)
    scaler = build_scaler(dtype, device)
    loss_fn = MaskedDiceCELoss(schema.background_index)
    fixed: Batch | None = sources.batch(0) if mode == "fixed" else None

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(i: int) -> None:
        batch = fixed if fixed is not None else sources.batch(i)
        train_step(model, batch, loss_fn, optimizer, scheduler, scaler, dtype, 12.0)

    for i in range(warmup):
        step(i)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for i in range(warmup, warmup + iterations):
        step(i)
    sync()
    dt = time.perf_counter() - t
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        kind = "GPU allocated"
        name = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
        kind = "process RSS"
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return {"mode": mode, "config": config, "size": size, "device": str(device), "device_name": name,
            "amp": str(dtype).replace("torch.", "") if dtype else "off", "iterations": iterations,
            "seconds": dt, "it_per_s": iterations / dt, "peak_gib": peak, "peak_kind": kind,
            "setup_s": setup_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="training config (default: synth; tiny-cpu with --small)")
    ap.add_argument("--size", type=int, default=None, help="crop size (default: 192; 64 with --small)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--iterations", type=int, default=None, help="timed steps (default 20; 10 with --small)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="CPU-sized run: tiny-cpu config at 64³")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--_mode", help=argparse.SUPPRESS)
    a = ap.parse_args()
    config = a.config or ("tiny-cpu" if a.small else "synth")
    size = a.size or (64 if a.small else 192)
    iterations = a.iterations or (10 if a.small else 20)
    if a._mode:
        print(json.dumps(measure(config, size, a.device, a._mode, iterations, a.warmup)))
        return 0
    results = []
    for mode in ("fixed", "synth"):
        cmd = [sys.executable, __file__, "--config", config, "--size", str(size), "--device", a.device,
               "--iterations", str(iterations), "--warmup", str(a.warmup), "--_mode", mode]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if r.returncode != 0:
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
    fixed, synth = results
    overhead = fixed["it_per_s"] / synth["it_per_s"] - 1.0
    print(f"# bench_train: config {config}, {size}³ crops, {fixed['device']} ({fixed['device_name']}), "
          f"AMP {fixed['amp']}, {iterations} timed steps after {a.warmup} warm-up\n")
    print("| input | it/s | s/it | peak memory (GiB) |")
    print("|---|---:|---:|---:|")
    for r in results:
        label = "fixed tensor" if r["mode"] == "fixed" else "synthetic generator on device"
        print(f"| {label} | {r['it_per_s']:.3f} | {1 / r['it_per_s']:.2f} | {r['peak_gib']:.2f} "
              f"({r['peak_kind']}) |")
    print(f"\ngenerator overhead: {100 * overhead:.1f}% (fixed it/s / synthetic it/s - 1)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "overhead": overhead}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
