#!/usr/bin/env bash
# Build .device/ (git-ignored), what tools/device/train_bundled.sh needs on a lent GPU machine that has
# python 3.12 and CUDA torch but maybe not this project's other dependencies, and cannot reach the network:
#   .device/whl/   wheels of monai, nibabel, nilearn (+ pandas, python-dateutil, tzdata, einops), the
#                  versions of this .venv; the device script installs only those it lacks
#   .device/data/  the shared data the bundled recipe and bench_ood read: the LESYMAP masks as they are,
#                  the SynthSeg label maps re-saved as uint16 (same labels; 0.6 MB instead of 1.7 MB each),
#                  so the working tree stays under the device tool's 64 MiB
# Usage, from the repository root after `make install`:  bash tools/device/prepare.sh [SHARED_DATA]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${1:-../shared/data}
PY=.venv/bin/python
[ -x "$PY" ] || { echo "prepare.sh: run 'make install' first (no .venv)" >&2; exit 2; }
[ -d "$SHARED/labelmaps-synthseg" ] && [ -d "$SHARED/lesions-lesymap" ] \
  || { echo "prepare.sh: $SHARED: no labelmaps-synthseg/ and lesions-lesymap/" >&2; exit 2; }
rm -rf .device && mkdir -p .device/whl .device/data/lesions-lesymap .device/data/labelmaps-synthseg
pins=$($PY -c "from importlib.metadata import version as v
print(' '.join(f'{n}=={v(n)}' for n in ['monai', 'nibabel', 'nilearn', 'pandas', 'python-dateutil', 'tzdata', 'einops']))")
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/whl $pins
cp "$SHARED"/lesions-lesymap/*.nii.gz .device/data/lesions-lesymap/
$PY - "$SHARED" <<'EOF'
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

nib.openers.Opener.default_compresslevel = 9  # smallest files: they travel to the device

for f in sorted(Path(sys.argv[1], "labelmaps-synthseg").glob("*.nii.gz")):
    img = nib.load(f)
    data = np.asarray(img.dataobj)
    labels = data.astype(np.uint16)
    assert np.array_equal(labels, data), f"{f}: labels are not whole numbers in [0, 65535]"
    out = nib.Nifti1Image(labels, img.affine, img.header)
    out.set_data_dtype(np.uint16)
    nib.save(out, Path(".device/data/labelmaps-synthseg") / f.name)
EOF
du -sh .device/whl .device/data
echo "prepare.sh: .device/ ready; on the device: run(command='bash tools/device/train_bundled.sh', carry=['.device'])"
