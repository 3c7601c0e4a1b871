"""The package's layers (docs/architecture.md): no module imports a package of a higher layer.

Every import counts, including those inside functions (the CLI imports its stages lazily, but a lazy
import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lesionsynth

ROOT = Path(lesionsynth.__file__).parent

# lowest first; a module may import its own package and those of lower layers only
LAYERS: list[set[str]] = [
    {"", "errors"},                                    # the root package holds __version__ only
    {"log", "config", "ops", "devices", "argtypes"},   # plumbing
    {"io"},                                            # NIfTI, resampling, atomic writes
    {"labels", "viz", "preprocess"},                   # label schemas and sources; figures; image preparation
    {"lesions", "augment", "data", "pretrained"},      # lesion sources, transforms, dataset folders
    {"models", "synth", "physics"},                    # networks; the two image generators
    {"infer", "runs"},                                 # sliding windows, predict; the run engine
    {"evaluate"},                                      # metrics, scoring, statistics, reports
    {"generative.gan", "generative.ldm", "generative"},  # the generative families and their trainers
    {"train"},                                         # the segmenter's trainer (draws from any generator)
    {"demo"},                                          # the demo and the experiment runner
    {"cli"},                                           # the command line dispatches to every stage
    {"__main__"},
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def package_of(module: str) -> str:
    """``lesionsynth.generative.gan.nets`` -> ``generative.gan``; ``lesionsynth.io.nifti`` -> ``io``."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if parts[0] == "generative" and len(parts) > 1:
        return f"generative.{parts[1]}"
    return parts[0]


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "lesionsynth":  # from lesionsynth import x: x may be a subpackage
                out += [(node.lineno, f"lesionsynth.{a.name}") for a in node.names if a.name != "__version__"]
                out += [(node.lineno, "lesionsynth") for a in node.names if a.name == "__version__"]
            elif node.module.startswith("lesionsynth."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("lesionsynth.")]
    return out


def violations(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = package_of(module_name(path, root))
        if src not in LAYER_OF:
            bad.append(f"{path.relative_to(root)}: package '{src}' has no layer")
            continue
        for line, mod in imported_modules(path):
            dst = package_of(mod)
            if dst == src or (src.startswith("generative") and dst == "generative"):
                continue
            if dst not in LAYER_OF:
                bad.append(f"{path.relative_to(root)}:{line}: imports '{mod}' (no layer)")
            elif LAYER_OF[dst] >= LAYER_OF[src] and not (src == "generative" and dst.startswith("generative")):
                bad.append(f"{path.relative_to(root)}:{line}: '{src}' (layer {LAYER_OF[src]}) imports '{mod}' "
                           f"(layer {LAYER_OF[dst]})")
    return bad


def test_every_package_has_a_layer():
    pkgs = {package_of(module_name(p)) for p in ROOT.rglob("*.py")}
    assert pkgs <= set(LAYER_OF), pkgs - set(LAYER_OF)


def test_no_module_imports_a_higher_or_equal_layer():
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path):
    probe = tmp_path / "lesionsynth" / "io" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from lesionsynth.train.loop import train\n")
    assert violations(tmp_path / "lesionsynth") == [
        "io/probe.py:2: 'io' (layer 2) imports 'lesionsynth.train.loop' (layer 9)"]


def test_the_check_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from lesionsynth.train.loop import train\n")
    assert imported_modules(f) == [(2, "lesionsynth.train.loop")]
