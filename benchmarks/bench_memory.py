"""Host memory over a training run: resident set size against iterations, under two glibc heap settings.

Trains a config for a few hundred iterations in a fresh process per arm and samples the process's RSS
every second, against the iteration its ``metrics.csv`` has reached:

- ``default``: glibc's defaults;
- ``mmap-threshold``: ``MALLOC_MMAP_THRESHOLD_=1048576`` in the environment (every block of 1 MiB or more
  is its own mapping, handed back to the OS when freed; glibc otherwise raises the threshold as it goes and
  serves large tensors from a heap that fragments).

Prints RSS at the first metrics row and the peak, the growth per iteration (least squares over the
samples) and the wall time. A growth that stays above zero over thousands of iterations is what ended a
9000-iteration CPU run at 24 GB (with an earlier lesion cache, since fixed).

    python benchmarks/bench_memory.py                         # bundled-cpu (../shared/data) or tiny-cpu
    python benchmarks/bench_memory.py --config tiny-cpu --iterations 300 --threads 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ood import SHARED  # noqa: E402
from procstat import rss_mb  # noqa: E402

ARMS = {"default": {}, "mmap-threshold": {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}}


def _iteration(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return 0
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0


def run_arm(arm: str, config: str, iterations: int, threads: int, every: int) -> dict[str, float]:
    """One arm's training run: RSS at the first row, peak RSS, growth per iteration, wall seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "lesionsynth", "train", "--config", config, "--out", str(out), "--no-progress",
               "--epochs", "1", "--iterations-per-epoch", str(iterations), "--threads", str(threads),
               "--set", f"log_every={every}", "--set", "checkpoint_every=0", "--set", "val.synthetic_cases=0"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **ARMS[arm]})
        samples: list[tuple[int, float]] = []
        while proc.poll() is None:
            rss, it = rss_mb(proc.pid), _iteration(out / "metrics.csv")
            if rss is not None and it > 0:
                samples.append((it, rss))
            time.sleep(1.0)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{arm}: training failed (exit {proc.returncode}): {err.strip().splitlines()[-1:]}")
    wall = time.perf_counter() - t0
    if not samples:
        raise SystemExit(f"{arm}: no metrics row was written while the run lasted; use more --iterations")
    its, mb = np.array([s[0] for s in samples], float), np.array([s[1] for s in samples], float)
    slope = float(np.polyfit(its, mb, 1)[0]) if len(set(its.tolist())) > 1 else float("nan")
    return {"first": float(mb[0]), "peak": float(mb.max()), "slope": slope, "wall": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="training config (default: bundled-cpu with ../shared/data, "
                                                    "else tiny-cpu)")
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--every", type=int, default=25, help="metrics row every N iterations")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = ap.parse_args(argv)
    config = args.config or ("bundled-cpu" if SHARED.is_dir() else "tiny-cpu")
    print(f"config {config}, {args.iterations} iterations, metrics row every {args.every}, "
          f"{args.threads} thread(s)\n")
    print("| arm | RSS at first row (MB) | peak (MB) | growth (MB / iteration) | wall (s) |")
    print("|---|---|---|---|---|")
    for arm in args.arms:
        r = run_arm(arm, config, args.iterations, args.threads, args.every)
        print(f"| {arm} | {r['first']:.0f} | {r['peak']:.0f} | {r['slope']:.3f} | "
              f"{r['wall']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
