#!/usr/bin/env bash
# Continue the bundled model on a lent GPU in one device call, then score it out of distribution.
#
# Here, once:  make install && bash tools/device/prepare.sh        (builds the git-ignored .device/)
# Device call: run(command="bash tools/device/train_bundled.sh", carry=[".device"], timeout_s=600)
#
# On the device machine (python 3.12 + CUDA torch, no network) it
#   1. unpacks from .device/whl only the dependencies that are missing (into /tmp/site, nothing else
#      touched, no pip needed) and uses the package from src/ (PYTHONPATH, no build);
#   2. points ../shared/data at .device/data (the recipe's and bench_ood's default paths);
#   3. probes the training speed (configs/bundled-gpu.yaml, PROBE iterations), sets the schedule's length
#      so its poly decay ends when MINUTES of training do, and trains (--time-limit as a safety net);
#   4. exports the fp16 inference weights and runs bench_ood (held-out anatomy and lesions, 2 subjects,
#      no flips, network on the GPU).
# $OUT gets: stroke-2mm-gpu.pt (fp16, what pretrained/ would ship), ood.md/.csv, metrics.csv,
# config.yaml, log.txt, env.txt. A CPU dry run (no GPU): DEVICE=cpu MINUTES=1 PROBE=4 OUT=/tmp/o bash $0
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lesionsynth-device-out}
MINUTES=${MINUTES:-5}    # training budget, probe included (the whole call: about MINUTES + 3 < 10)
PROBE=${PROBE:-40}       # probe iterations
DEVICE=${DEVICE:-cuda}
SUBJECTS=${SUBJECTS:-2}
THREADS=${THREADS:-8}
WORK=${WORK:-/tmp/lesionsynth-device}
PY=${PY:-python3}
INIT=${INIT:-}            # start from these weights instead of stroke-2mm (e.g. .device/stroke-2mm-gpu.pt of a
                         # previous call: copy it into .device/ before the call)
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
say() { echo "[$(date -u +%T)] $*"; }
start=$(date +%s)

say "1. dependencies"
{ nvidia-smi 2>&1 | head -15; $PY -c "import sys, torch; print(sys.version); print('torch', torch.__version__,
'cuda', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
$PY - <<'EOF' || { say "dependency install failed"; exit 3; }
import glob
import importlib.util
import zipfile

wanted = {"monai": "monai", "nibabel": "nibabel", "nilearn": "nilearn", "pandas": "pandas",
          "dateutil": "python_dateutil", "tzdata": "tzdata", "einops": "einops"}
wheels = [w for mod, dist in wanted.items() if importlib.util.find_spec(mod) is None
          for w in glob.glob(f".device/whl/{dist}-*.whl")]
print("installing:", [w.split("/")[-1] for w in wheels] or "nothing")
for w in wheels:  # a wheel is a zip of the installed files: unpacking it needs no pip and no network
    zipfile.ZipFile(w).extractall("/tmp/site")
EOF
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import lesionsynth.train.loop, lesionsynth.labels.sources, nilearn.datasets" \
  || { say "lesionsynth does not import (see above)"; exit 3; }

say "2. data"
if [ ! -e ../shared/data ]; then
  mkdir -p ../shared && ln -s "$PWD/.device/data" ../shared/data || { say "cannot link ../shared/data"; exit 3; }
fi
ls ../shared/data/labelmaps-synthseg | head -2 || { say "no ../shared/data (carry .device)"; exit 3; }

say "3a. speed probe ($PROBE iterations)"
train() { $PY -m lesionsynth --threads "$THREADS" train --config bundled-gpu --set device="$DEVICE" \
  ${INIT:+--set init_from="$INIT"} "$@"; }
rm -rf "$WORK/probe" "$WORK/run"
train --out "$WORK/probe" --set epochs=1 --set iterations_per_epoch="$PROBE" --set log_every=10 \
  --set checkpoint_every=0 || { say "probe failed"; exit 4; }
t1=$(date +%s)
epochs=$($PY - "$WORK/probe/metrics.csv" "$MINUTES" "$((t1 - start))" <<'EOF'
import csv
import sys

rows = [r for r in csv.DictReader(open(sys.argv[1])) if r.get("phase") == "train" and r.get("iter_per_s")]
rate = sum(float(r["iter_per_s"]) for r in rows[1:]) / max(len(rows) - 1, 1) if len(rows) > 1 else \
    float(rows[-1]["iter_per_s"])
left = float(sys.argv[2]) * 60 - float(sys.argv[3]) - 45  # start-up of the real run and its last checkpoint
epochs = max(1, int(rate * left) // 100)  # bundled-gpu: 100 iterations per epoch
print(f"probe: {rate:.2f} it/s -> {epochs} epochs", file=sys.stderr)
print(epochs)
EOF
)
say "3b. training $epochs x 100 iterations"
left_min=$($PY -c "print(max(1.0, ($MINUTES * 60 - ($(date +%s) - $start)) / 60))")
train --out "$WORK/run" --set epochs="$epochs" --time-limit "$left_min"
rc=$?
say "training exit $rc"
cp "$WORK/run/metrics.csv" "$WORK/run/config.yaml" "$OUT/" 2>/dev/null
[ -f "$WORK/run/checkpoints/last.pt" ] || { say "no checkpoint"; exit 5; }

say "4. export and OOD benchmark"
$PY -c "from lesionsynth.models import export_model; export_model('$WORK/run/checkpoints/last.pt', '$OUT/stroke-2mm-gpu.pt')"
$PY benchmarks/bench_ood.py --model "$WORK/run/checkpoints/last.pt" --subjects "$SUBJECTS" --fast \
  --threads "$THREADS" --device "$DEVICE" --out "$OUT/ood.md"
say "done in $(( $(date +%s) - start )) s"
