"""tools/: the device scripts parse (bash -n); they run end to end only where a GPU is lent (docs/train.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", sorted(p.name for p in (TOOLS / "device").glob("*.sh")))
def test_device_scripts_parse(script):
    r = subprocess.run(["bash", "-n", str(TOOLS / "device" / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
