"""``lesionsynth predict``: tissue and lesion maps for scans, on the scans' own grids."""

from __future__ import annotations

import argparse
import sys

from lesionsynth import argtypes
from lesionsynth.devices import PRECISIONS
from lesionsynth.errors import InputError
from lesionsynth.infer.config import PredictConfig
from lesionsynth.infer.decide import FUSIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="segment scans (tissue classes and lesions) with a trained model",
        description="Segment scans of any contrast, resolution and orientation. Outputs per input "
                    "(same shape and affine as the input): {stem}_labels.nii.gz, {stem}_lesion.nii.gz, "
                    "{stem}_uncertainty.nii.gz, {stem}_qc.png, optional {stem}_probabilities.nii.gz, and "
                    "one volumes.csv row. Inputs whose outputs exist are skipped. Exit code 1 if any "
                    "input failed. See docs/predict.md.",
    )
    p.add_argument("-i", "--input", "--i", nargs="+", required=True, metavar="INPUT",
                   help="NIfTI files, folders, glob patterns (quote them), a BIDS dataset "
                        "(sub-*/[ses-*/]anat|dwi/*.nii.gz; outputs keep that layout) or a .txt/.csv list of paths")
    p.add_argument("-o", "--out", "--o", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--vol", metavar="FILE", help="also write the volumes table (ml per class, lesion count) here")
    p.add_argument("--qc", metavar="FILE",
                   help="also write per-scan QC scores here (1 - mean flip disagreement; needs flips)")
    p.add_argument("--threads", type=argtypes.positive_int, help="CPU threads for torch (default: torch's)")
    p.add_argument("--cpu", action="store_const", const="cpu", dest="device", help="same as --device cpu")
    argtypes.add_parts(p, "subject")
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="a bundled model name (see `lesionsynth models`; default: the bundled "
                        "stroke model), a training run folder (uses checkpoints/best.pt, else last.pt) "
                        "or a .pt file")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--no-tta", action="store_true", help="no flip test-time augmentation (8x fewer passes)")
    p.add_argument("--fast", action="store_true",
                   help="no flips and window overlap 0.25 (about 8x faster; no uncertainty map)")
    p.add_argument("--ensemble", action="store_true",
                   help="fuse each subject's co-registered modalities (see --fusion): nnU-Net "
                        "CASE_0000/CASE_0001... files are grouped per case; plain files are the modalities "
                        "of ONE subject; outputs are named after, and on the grid of, its first input")
    p.add_argument("--fusion", choices=list(FUSIONS), default="probs",
                   help="with --ensemble, how the modalities are combined: probs (mean of probabilities, "
                        "default), logits (mean of logits), union (mean of probabilities, and lesion "
                        "wherever any one modality finds lesion)")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write {stem}_probabilities.nii.gz (X, Y, Z, classes)")
    p.add_argument("--overwrite", action="store_true", help="recompute inputs whose outputs exist")
    p.add_argument("--window", type=int, default=None,
                   help="largest window edge in voxels (default: the model's training patch size, else 192)")
    p.add_argument("--overlap", type=float, default=0.5, help="window overlap (default: 0.5)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="network batch (window flips per pass); default: 1 on CPU, from free memory on GPU")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: bf16/fp16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--no-crop", action="store_true",
                   help="run windows over the whole volume, not just the foreground bounding box")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionsynth.infer.files import predict_files
    from lesionsynth.infer.outputs import read_volumes, write_volumes

    if args.qc and (args.fast or args.no_tta):
        raise InputError("--qc needs the flips (drop --fast/--no-tta)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    cfg = PredictConfig(window=args.window, overlap=args.overlap, tta=not args.no_tta, fast=args.fast,
                        crop_foreground=not args.no_crop, batch_size=args.batch_size,
                        precision=args.precision, save_probabilities=args.save_probabilities,
                        fusion=args.fusion)
    from lesionsynth.pretrained import DEFAULT_MODEL

    results, failures = predict_files(args.input, args.out, args.model or DEFAULT_MODEL, config=cfg,
                                      ensemble=args.ensemble, device=args.device, overwrite=args.overwrite,
                                      part=args.part, num_parts=args.num_parts)
    rows = read_volumes(args.out)
    mine = {r.stem: rows[r.stem] for r in results if r.stem in rows}
    if args.vol:
        write_volumes(args.out, mine, path=args.vol)
    if args.qc:
        write_volumes(args.out, mine, path=args.qc, columns=["stem", "input", "qc"])
    done = sum(r.status == "done" for r in results)
    print(f"lesionsynth predict: {done} done, {len(results) - done} already done (skipped), {len(failures)} failed; "
          f"outputs in {args.out}", file=sys.stderr)
    return 1 if failures else 0
