"""Count lines of Python: non-blank, and code only (no comments, no docstrings), as issue #13 measures them.

    python tools/loc.py src                 # the working tree
    python tools/loc.py src --rev 8bcf520   # a commit (read through git archive)
"""

from __future__ import annotations

import argparse
import ast
import io
import pathlib
import subprocess
import tarfile
import tokenize

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def count(source: str) -> tuple[int, int]:
    """(non-blank lines, code lines) of one file's text; docstrings and comments are not code."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _SKIP:
            code.update(ln for ln in range(tok.start[0], tok.end[0] + 1) if ln not in docstrings)
    return sum(1 for line in source.splitlines() if line.strip()), len(code)


def sources(path: str, rev: str | None) -> list[str]:
    """The text of every .py file under ``path``, in the working tree or at commit ``rev``."""
    if rev is None:
        return [p.read_text() for p in sorted(pathlib.Path(path).rglob("*.py"))]
    blob = subprocess.run(["git", "archive", rev, path], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return [tar.extractfile(m).read().decode() for m in tar.getmembers() if m.name.endswith(".py")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--rev", help="a git commit (default: the working tree)")
    args = ap.parse_args()
    totals = [sum(t) for t in zip(*(count(s) for s in sources(args.path, args.rev)))]
    print(f"{args.path} at {args.rev or 'working tree'}: non-blank {totals[0]}, code {totals[1]}")


if __name__ == "__main__":
    main()
