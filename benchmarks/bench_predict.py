"""Benchmark of ``lesionsynth predict`` on a 1 mm brain volume (MNI grid), CPU or GPU.

The volume is nilearn's MNI152 T1 template resampled onto the MNI152NLin2009c 1 mm grid
(193 x 229 x 193). The network is the paper's UNet (``ModelConfig()`` defaults, 6 classes), randomly
initialised (seeded) unless ``--checkpoint`` gives a trained one: timings do not depend on the weights.

Methods, each in a fresh process (so its peak memory is its own):

- ``lesionsynth``: :func:`lesionsynth.infer.predict_volume` (foreground box, windows of at most 192^3,
  8-flip TTA inside each window), and with ``fast=True`` (one pass);
- ``monai``: the plain route: z-score the whole volume, then for each flip one MONAI
  ``sliding_window_inference`` over the whole (padded) volume (roi 192^3, overlap 0.5, Gaussian
  sigma 0.125, ``sw_batch_size=1``), flips undone, logits averaged, softmax and argmax.

Seconds are wall time per volume from the array in memory to the labels (model already loaded, no
warm-up pass), peak memory is the process's maximum resident set size (and CUDA's peak allocation on a
GPU). Label agreement compares a variant with its reference (lesionsynth with the MONAI route with the
same flips; bf16 with fp32) over the voxels either labels as non-background. With random weights the
class margins are tiny, so this shows how much the output changes, not accuracy. Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_predict.py [--device cpu|cuda] [--methods ...]
        [--checkpoint RUN_OR_PT] [--workdir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MNI_2009C_SHAPE = (193, 229, 193)
MNI_2009C_AFFINE = np.array([[1.0, 0, 0, -96], [0, 1, 0, -132], [0, 0, 1, -78], [0, 0, 0, 1]])
METHODS = {  # name: (route, flip TTA, precision)
    "lesionsynth-tta": ("lesionsynth", True, "auto"),
    "lesionsynth-fast": ("lesionsynth", False, "auto"),
    "lesionsynth-tta-bf16": ("lesionsynth", True, "bf16"),
    "monai-tta": ("monai", True, "auto"),
    "monai-notta": ("monai", False, "auto"),
}
DEFAULT_METHODS = ["lesionsynth-tta", "lesionsynth-fast", "monai-tta", "monai-notta"]
REFERENCE = {"lesionsynth-tta": "monai-tta", "lesionsynth-fast": "monai-notta",
             "lesionsynth-tta-bf16": "lesionsynth-tta"}


def make_volume(path: Path) -> None:
    from lesionsynth.io import resample_to_grid
    from lesionsynth.labels import mni_t1_template

    t = mni_t1_template()
    vol = resample_to_grid(np.asarray(t.data, np.float32), t.affine, MNI_2009C_AFFINE, MNI_2009C_SHAPE)
    np.save(path, vol.astype(np.float32))


def make_checkpoint(path: Path) -> None:
    from lesionsynth.labels import TISSUE
    from lesionsynth.models import ModelConfig, build_unet, model_state, save_checkpoint

    cfg = ModelConfig(out_channels=TISSUE.num_classes)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_unet(cfg)
    save_checkpoint(path, model_state(model, cfg, TISSUE, {"spacing": 1.0, "normalisation": "zscore"}))


def monai_route(seg, image: np.ndarray, tta: bool) -> np.ndarray:
    """Plain MONAI sliding windows over the whole padded volume, one call per flip."""
    from monai.inferers import sliding_window_inference

    from lesionsynth.infer.sliding import flip_combinations
    from lesionsynth.preprocess import normalise_intensity

    dev = seg.device
    x = torch.from_numpy(normalise_intensity(image, seg.preprocessing.normalisation))[None, None].to(dev)
    total = None
    with torch.inference_mode():
        for f in flip_combinations(tta):
            xi = torch.flip(x, f) if f else x
            out = sliding_window_inference(xi, (192, 192, 192), 1, seg.model, overlap=0.5, mode="gaussian",
                                           sigma_scale=0.125, device=torch.device("cpu"))
            out = torch.flip(out, f) if f else out
            total = out if total is None else total + out
        probs = torch.softmax(total[0] / len(flip_combinations(tta)), 0)
        return probs.argmax(0).numpy().astype(np.uint8)


def child(args: argparse.Namespace) -> None:
    """Run one method in this process and print a JSON line."""
    from lesionsynth.infer import PredictConfig, load_segmenter, predict_volume

    kind, tta, precision = METHODS[args.method]
    seg = load_segmenter(args.checkpoint, args.device)
    image = np.load(args.volume)
    passes = [0]
    seg.model.register_forward_hook(lambda m, i, o: passes.__setitem__(0, passes[0] + i[0].shape[0]))
    if seg.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    if kind == "lesionsynth":
        pred = predict_volume(seg, image, MNI_2009C_AFFINE, config=PredictConfig(fast=not tta, precision=precision))
        labels = pred.labels
    else:
        labels = monai_route(seg, image, tta)
    if seg.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    np.save(Path(args.child_dir) / f"{args.method}.npy", labels)
    res = {"method": args.method, "seconds": seconds, "passes": passes[0],
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
    if seg.device.type == "cuda":
        res["cuda_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    print("RESULT " + json.dumps(res), flush=True)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    m = (a > 0) | (b > 0)
    return float((a[m] == b[m]).mean()) if m.any() else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    ap.add_argument("--workdir", dest="keep", default=None, help="reuse/keep volume, model and labels here")
    ap.add_argument("--checkpoint", default=None, help="trained run folder or .pt (default: random weights)")
    ap.add_argument("--out", default=None, help="also write the raw results as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--volume", help=argparse.SUPPRESS)
    ap.add_argument("--child-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_predict_"))
    work.mkdir(parents=True, exist_ok=True)
    volume = work / "mni_1mm.npy"
    if not volume.is_file():
        make_volume(volume)
    ckpt = args.checkpoint or str(work / "paper_unet_random.pt")
    if args.checkpoint is None and not Path(ckpt).is_file():
        make_checkpoint(Path(ckpt))
    load0 = os.getloadavg()
    results = {}
    for m in args.methods:
        cmd = [sys.executable, __file__, "--child", "--method", m, "--volume", str(volume), "--child-dir",
               str(work), "--checkpoint", ckpt, "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"{m}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results[m] = json.loads(lines[-1][len("RESULT "):])
        print(f"{m}: {results[m]['seconds']:.1f} s", file=sys.stderr, flush=True)
    for m, r in results.items():
        ref = REFERENCE.get(m)
        if ref and (work / f"{ref}.npy").is_file():
            r["agreement_vs_" + ref] = agreement(np.load(work / f"{m}.npy"), np.load(work / f"{ref}.npy"))
    load1 = os.getloadavg()
    env = {"device": args.device, "torch_threads": torch.get_num_threads(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "cpu": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "loadavg_before": load0, "loadavg_after": load1,
           "weights": args.checkpoint or "random (seed 0)", "torch": torch.__version__}
    print(f"\nVolume {MNI_2009C_SHAPE} at 1 mm (MNI152 T1 on the 2009c grid); paper UNet; {env}\n")
    print("| method | flips | forward passes | seconds | peak RSS (GB) | label agreement (with) |")
    print("|---|---|---|---|---|---|")
    for m, r in results.items():
        agree = next((f"{v:.3f} ({k[len('agreement_vs_'):]})" for k, v in r.items()
                      if k.startswith("agreement_vs_")), "-")
        gpu = f" (CUDA {r['cuda_peak_gb']:.2f})" if "cuda_peak_gb" in r else ""
        print(f"| {m} | {8 if METHODS[m][1] else 1} | {r['passes']} | {r['seconds']:.1f} | "
              f"{r['peak_rss_gb']:.2f}{gpu} | {agree} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"env": env, "results": results}, indent=2))


if __name__ == "__main__":
    main()
