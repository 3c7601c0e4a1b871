"""Bad-input corpus: every verb against broken files, absurd numbers and bad configs.

Each case runs ``lesionsynth VERB ...`` in a fresh process and counts as *clean* when it exits with the
documented code (2 for a user error; ``predict`` 1 when a bad scan is skipped among good ones), prints
no traceback, says why in at most two stderr lines (the error, plus predict's summary), and leaves no
temporary file behind. Prints a table (verb x cases tried / clean) and the cases that were not clean.

    python benchmarks/bad_input_corpus.py              # all verbs (about 2-4 min on 2 cores)
    python benchmarks/bad_input_corpus.py --verbs predict evaluate
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np


def _nii(path: Path, data, affine=None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) * 2 + np.diag([0, 0, 0, -1]) if affine is None
                             else affine), str(path))
    return path


def fixtures(d: Path) -> dict[str, Path]:
    """Good and bad files in ``d``."""
    rng = np.random.default_rng(0)
    f: dict[str, Path] = {}
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, 24)] * 3, indexing="ij"))
    r = np.sqrt((g ** 2).sum(0))
    img = (100 * (r < 0.8) + 50 * (r < 0.5) + rng.normal(0, 3, r.shape)).astype(np.float32)
    f["good"] = _nii(d / "good.nii.gz", img)
    f["good2"] = _nii(d / "good2.nii.gz", img * 1.5)
    lab = np.where(r < 0.5, 2, np.where(r < 0.7, 3, np.where(r < 0.8, 24, 0))).astype(np.int16)
    f["labelmap"] = _nii(d / "seg.nii.gz", lab)
    f["unknown_labels"] = _nii(d / "seg_unknown.nii.gz", np.where(lab > 0, 9999, 0).astype(np.int16))
    les = (np.sqrt(((g - 0.2) ** 2).sum(0)) < 0.2).astype(np.uint8)
    (d / "lesions").mkdir()
    f["lesion_dir"] = d / "lesions"
    _nii(d / "lesions" / "l1.nii.gz", les)
    (d / "empty_dir").mkdir()
    f["empty_dir"] = d / "empty_dir"
    f["missing"] = d / "missing.nii.gz"
    f["empty"] = d / "empty.nii.gz"
    f["empty"].write_bytes(b"")
    f["garbage"] = d / "garbage.nii.gz"
    f["garbage"].write_bytes(os.urandom(2000))
    raw = gzip.compress(nib.Nifti1Image(img, np.eye(4)).to_bytes())
    f["truncated"] = d / "truncated.nii.gz"
    f["truncated"].write_bytes(raw[: len(raw) // 2])
    f["2d"] = _nii(d / "2d.nii.gz", img[:, :, 0])
    f["4d"] = _nii(d / "4d.nii.gz", np.stack([img, img], -1))
    nan = img.copy()
    nan[3, 3, 3] = np.nan
    f["nan"] = _nii(d / "nan.nii.gz", nan)
    f["zeros"] = _nii(d / "zeros.nii.gz", np.zeros_like(img))
    f["complex"] = _nii(d / "complex.nii.gz", (img + 1j).astype(np.complex64))
    f["notyaml"] = d / "bad.yaml"
    f["notyaml"].write_text("a: [1, 2\n  b: }")
    f["badkey"] = d / "badkey.yaml"
    f["badkey"].write_text("learning_rate: 3\n")
    f["a_file"] = d / "a_file"
    f["a_file"].write_text("x")
    ro = d / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    f["readonly"] = ro
    f["malicious"] = d / "evil.pt"
    f["malicious"].write_bytes(b"\x80\x04\x95" + os.urandom(64))
    # a tiny model
    import torch

    from lesionsynth.labels import TISSUE
    from lesionsynth.models import ModelConfig, build_unet, model_state, save_checkpoint

    cfg = ModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)
    torch.manual_seed(0)
    f["model"] = save_checkpoint(d / "model.pt", model_state(build_unet(cfg), cfg, TISSUE,
                                                              {"spacing": 2.0, "normalisation": "zscore"}))
    # nnU-Net dataset folders
    for name, meta in (("ds_list", "[1, 2]"), ("ds_garbage", "{not json"),
                       ("ds_escape", '{"labels": {"background": 0, "lesion": 1}, "channel_names": {"0": "x"},'
                                     ' "numTraining": 1, "file_ending": ".nii.gz"}')):
        (d / name / "imagesTr").mkdir(parents=True)
        (d / name / "labelsTr").mkdir()
        (d / name / "dataset.json").write_text(meta)
        f[name] = d / name
    _nii(d / "ds_escape" / "imagesTr" / "..%2f..%2fx_0000.nii.gz", img)
    (d / "truth").mkdir()
    _nii(d / "truth" / "c1.nii.gz", (r < 0.3).astype(np.uint8))
    f["truth"] = d / "truth"
    (d / "pred_rgb").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 24), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]), np.eye(4)),
             str(d / "pred_rgb" / "c1.nii.gz"))
    f["pred_rgb"] = d / "pred_rgb"
    (d / "pred_nan").mkdir()
    _nii(d / "pred_nan" / "c1.nii.gz", nan)
    f["pred_nan"] = d / "pred_nan"
    exp = d / "exp_escape.yaml"
    exp.write_text(f"name: x\narms: [{{name: '../../escape', model: {f['model']}}}]\n"
                   f"test_sets: [{{name: t, images: [{f['good']}], truth: {f['truth']}}}]\n")
    f["exp_escape"] = exp
    return f


def cases(f: dict[str, Path], out: Path) -> list[tuple[str, str, list[str], int]]:
    """(verb, case name, argv, expected exit code)."""
    o = str(out)
    c: list[tuple[str, str, list[str], int]] = []
    # predict: bad files alone -> exit 1 (every scan skipped) or 2 (nothing to do); among good ones -> 1
    for k in ("missing", "empty", "garbage", "truncated", "2d", "4d", "nan", "complex"):
        c.append(("predict", f"{k} alone", ["predict", "-i", str(f[k]), "-o", o, "--model", str(f["model"])], 1))
        c.append(("predict", f"{k} among good", ["predict", "-i", str(f["good"]), str(f[k]), "-o", o,
                                                 "--model", str(f["model"]), "--fast"], 1))
    c += [("predict", "empty folder", ["predict", "-i", str(f["empty_dir"]), "-o", o], 2),
          ("predict", "model missing", ["predict", "-i", str(f["good"]), "-o", o, "--model", "nope"], 2),
          ("predict", "model garbage", ["predict", "-i", str(f["good"]), "-o", o, "--model", str(f["garbage"])], 2),
          ("predict", "malicious .pt", ["predict", "-i", str(f["good"]), "-o", o, "--model", str(f["malicious"])], 2),
          ("predict", "out is a file", ["predict", "-i", str(f["good"]), "-o", str(f["a_file"]), "--model",
                                        str(f["model"])], 2),
          ("predict", "device bogus", ["predict", "-i", str(f["good"]), "-o", o, "--device", "bogus"], 2),
          ("predict", "device cuda", ["predict", "-i", str(f["good"]), "-o", o, "--device", "cuda"], 2),
          ("predict", "overlap nan", ["predict", "-i", str(f["good"]), "-o", o, "--overlap", "nan"], 2),
          ("predict", "window abc", ["predict", "-i", str(f["good"]), "-o", o, "--window", "abc"], 2),
          ("predict", "window -5", ["predict", "-i", str(f["good"]), "-o", o, "--window", "-5"], 2),
          ("predict", "threads 0", ["predict", "-i", str(f["good"]), "-o", o, "--threads", "0"], 2)]
    if os.geteuid() != 0:  # root writes anywhere
        c.append(("predict", "out not writable", ["predict", "-i", str(f["good"]), "-o", str(f["readonly"] / "x"),
                                                  "--model", str(f["model"])], 2))
    # synth
    s = ["synth", "-o", o, "-n", "1"]
    c += [("synth", "labels missing", [*s, "--labels", str(f["missing"])], 2),
          ("synth", "labels garbage", [*s, "--labels", str(f["garbage"])], 2),
          ("synth", "labels truncated", [*s, "--labels", str(f["truncated"])], 2),
          ("synth", "labels 2D", [*s, "--labels", str(f["2d"])], 2),
          ("synth", "labels NaN", [*s, "--labels", str(f["nan"])], 2),
          ("synth", "labels all zero", [*s, "--labels", str(f["zeros"])], 2),
          ("synth", "unknown label values", [*s, "--labels", str(f["unknown_labels"])], 2),
          ("synth", "lesions empty folder", [*s, "--labels", str(f["labelmap"]), "--lesions",
                                             str(f["empty_dir"])], 2),
          ("synth", "config not YAML", [*s, "--config", str(f["notyaml"])], 2),
          ("synth", "config unknown key", [*s, "--config", str(f["badkey"])], 2),
          ("synth", "n 1e12", ["synth", "-o", o, "-n", "1000000000000"], 2),
          ("synth", "n 0", ["synth", "-o", o, "-n", "0"], 2),
          ("synth", "seed 2**64", [*s, "--seed", "18446744073709551616"], 2),
          ("synth", "device gpu", [*s, "--device", "gpu"], 2),
          ("synth", "device mps", [*s, "--device", "mps"], 2),
          ("synth", "out is a file", ["synth", "-o", str(f["a_file"]), "-n", "1", "--labels", str(f["labelmap"])], 2)]
    # train
    t = ["train", "-o", o, "--config", "tiny-cpu"]
    c += [("train", "config not YAML", ["train", "-o", o, "--config", str(f["notyaml"])], 2),
          ("train", "config unknown key", ["train", "-o", o, "--config", str(f["badkey"])], 2),
          ("train", "config missing", ["train", "-o", o, "--config", "nope.yaml"], 2),
          ("train", "lr nan", [*t, "--set", "optim.lr=nan"], 2),
          ("train", "lr -1", [*t, "--set", "optim.lr=-1"], 2),
          ("train", "seed 2**64", [*t, "--seed", "18446744073709551616"], 2),
          ("train", "threads -2", [*t, "--threads", "-2"], 2),
          ("train", "stop-after 0", [*t, "--stop-after", "0"], 2),
          ("train", "epochs 0", [*t, "--epochs", "0"], 2),
          ("train", "crop not divisible", [*t, "--set", "crop_size=[33,33,33]"], 2),
          ("train", "dataset.json a list", [*t, "--set", f"real.path={f['ds_list']}"], 2),
          ("train", "dataset.json garbage", [*t, "--set", f"real.path={f['ds_garbage']}"], 2),
          ("train", "real.path missing", [*t, "--set", "real.path=/nonexistent"], 2),
          ("train", "device cuda:7", [*t, "--device", "cuda:7"], 2),
          ("train", "resume malicious", ["train", "-o", str(f["malicious"].parent / "evilrun"), "--config", "tiny-cpu",
                                         "--set", f"init_from={f['malicious']}"], 2),
          ("train", "init_from other net", [*t, "--set", f"init_from={f['model']}"], 2)]
    # evaluate
    e = ["evaluate", "--truth", str(f["truth"]), "-o", o]
    c += [("evaluate", "pred RGB", [*e, "--pred", f"m={f['pred_rgb']}"], 2),
          ("evaluate", "pred NaN", [*e, "--pred", f"m={f['pred_nan']}"], 2),
          ("evaluate", "pred folder missing", [*e, "--pred", "m=/nonexistent"], 2),
          ("evaluate", "truth missing", ["evaluate", "--truth", "/nonexistent", "--pred", f"m={f['truth']}",
                                         "-o", o], 2),
          ("evaluate", "pred empty folder", [*e, "--pred", f"m={f['empty_dir']}"], 2),
          ("evaluate", "label -3", [*e, "--pred", f"m={f['truth']}", "--label", "-3"], 2)]
    # gan
    c += [("gan", "train-masks no masks", ["gan", "train-masks", "-o", o, "--lesions", str(f["empty_dir"])], 2),
          ("gan", "train-masks time nan", ["gan", "train-masks", "-o", o, "--time-limit", "nan"], 2),
          ("gan", "sample-masks model missing", ["gan", "sample-masks", "--model", "/nonexistent", "-o", o], 2),
          ("gan", "sample-masks malicious", ["gan", "sample-masks", "--model", str(f["malicious"]), "-o", o], 2),
          ("gan", "sample-masks n 0", ["gan", "sample-masks", "--model", str(f["model"]), "-o", o, "-n", "0"], 2),
          ("gan", "sample-masks wrong kind", ["gan", "sample-masks", "--model", str(f["model"]), "-o", o], 2),
          ("gan", "build-dataset translator garbage", ["gan", "build-dataset", "--translator", str(f["garbage"]),
                                                       "-o", o], 2),
          ("gan", "train-translator config not YAML", ["gan", "train-translator", "-o", o, "--config",
                                                       str(f["notyaml"])], 2)]
    # ldm
    c += [("ldm", "sample model missing", ["ldm", "sample", "--model", "/nonexistent", "-o", o], 2),
          ("ldm", "sample malicious", ["ldm", "sample", "--model", str(f["malicious"]), "-o", o], 2),
          ("ldm", "sample n 2e6", ["ldm", "sample", "--model", str(f["model"]), "-o", o, "-n", "2000000"], 2),
          ("ldm", "train-autoencoder config not YAML", ["ldm", "train-autoencoder", "-o", o, "--config",
                                                        str(f["notyaml"])], 2),
          ("ldm", "train-diffusion autoencoder malicious", ["ldm", "train-diffusion", "-o", o, "--config",
                                                            "ldm-tiny-cpu", "--autoencoder", str(f["malicious"])], 2),
          ("ldm", "render labels garbage", ["ldm", "render", "--model", str(f["model"]), "--labels",
                                            str(f["garbage"]), "-o", o], 2)]
    # experiment, demo, models
    c += [("experiment", "name escapes --out", ["experiment", "run", str(f["exp_escape"]), "-o", o], 2),
          ("experiment", "config not YAML", ["experiment", "run", str(f["notyaml"]), "-o", o], 2),
          ("experiment", "config missing", ["experiment", "run", "/nonexistent.yaml", "-o", o], 2),
          ("demo", "epochs 0", ["demo", "--epochs", "0", "-o", o], 2),
          ("demo", "device bogus", ["demo", "--device", "bogus", "-o", o], 2),
          ("demo", "gan masks missing", ["demo", "--gan-masks", "/nonexistent", "--gan-translator", "/x", "-o", o,
                                         "--epochs", "1", "--iterations-per-epoch", "1", "--n-heldout", "1"], 2),
          ("models", "unknown flag", ["models", "--bogus"], 2)]
    return c


def run_case(argv: list[str], out: Path, env: dict[str, str]) -> tuple[int, str]:
    try:
        r = subprocess.run([sys.executable, "-m", "lesionsynth", *argv], capture_output=True, text=True,
                           env=env, timeout=300)
    except subprocess.TimeoutExpired:
        return -9, "timeout (300 s)"
    return r.returncode, r.stderr


def clean(rc: int, err: str, expected: int, out: Path) -> tuple[bool, str]:
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "Warning" not in ln]
    temps = [p for p in out.rglob(".*") if p.is_file()] if out.is_dir() else []
    if "Traceback" in err:
        return False, "traceback: " + (lines[-1] if lines else "")
    if rc != expected:
        return False, f"exit {rc}, expected {expected}: {lines[-1] if lines else '(no message)'}"
    if not lines or len(lines) > 2:
        return False, f"{len(lines)} stderr lines"
    if temps:
        return False, f"temporary files left: {temps[0].name}"
    return True, lines[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verbs", nargs="+", default=None, help="only these verbs")
    ap.add_argument("--show", action="store_true", help="print every case's message")
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env.pop("LESIONSYNTH_DEBUG", None)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        f = fixtures(d)
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        bad: list[str] = []
        for i, (verb, name, cmd, expected) in enumerate(cases(f, d / "out")):
            if args.verbs and verb not in args.verbs:
                continue
            out = d / f"out{i}"
            cmd = [str(out) if a == str(d / "out") else a for a in cmd]
            rc, err = run_case(cmd, out, env)
            ok, msg = clean(rc, err, expected, out)
            tally[verb][0] += 1
            tally[verb][1] += ok
            if not ok:
                bad.append(f"{verb} / {name}: {msg}")
            if args.show or not ok:
                print(f"{'ok ' if ok else 'BAD'} {verb:10s} {name:38s} {msg[:150]}", file=sys.stderr, flush=True)
        f["readonly"].chmod(0o700)
    print("| verb | cases | clean |")
    print("|---|---|---|")
    for verb, (n, ok) in tally.items():
        print(f"| {verb} | {n} | {ok} ({100 * ok / n:.0f}%) |")
    total, ok = sum(v[0] for v in tally.values()), sum(v[1] for v in tally.values())
    print(f"| **all** | {total} | {ok} ({100 * ok / max(total, 1):.0f}%) |")
    if bad:
        print("\nNot clean:")
        for b in bad:
            print(f"- {b}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
