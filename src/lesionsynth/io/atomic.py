"""Atomic file writing: write to a temporary file in the same folder, then rename.

A reader (or a resumed run) therefore never sees a half-written file, even after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the final suffixes (``.nii.gz``, ``.png``, ...) so libraries that infer
    the format from the name keep working. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give them the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` (``.NAME.XXXX.tmp.SUFFIX``)."""
    name = Path(path).name
    return name.startswith(".") and ".tmp" in name


def remove_stale_temporaries(folder: str | Path, recursive: bool = True, older_than_s: float = 0.0) -> list[Path]:
    """Delete the temporary files that writes killed mid-way (``kill -9``) left in ``folder``.

    Every command that writes into an output folder calls this first, so a re-run leaves none behind.
    Only names made by :func:`atomic_path` are touched; with ``older_than_s`` only those not modified for
    that long (processes sharing a folder with ``--num-parts`` never delete each other's writes).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*")
    removed = []
    for p in found:
        if p.is_file() and is_temporary(p) and (older_than_s <= 0 or time.time() - p.stat().st_mtime > older_than_s):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path: str | Path, header: list[str], rows: Iterable[list]) -> None:
    """Write a CSV table atomically; a NaN cell is written empty, other floats as ``repr``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(["" if (isinstance(v, float) and math.isnan(v)) else (repr(v) if isinstance(v, float) else v)
                 for v in r] for r in rows)
    write_text_atomic(path, buf.getvalue())
