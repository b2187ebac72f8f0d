"""The layout's rule: the general core never imports the shapes world, and works without it.

Nothing under ``src/regionedit/`` outside ``world/`` imports ``regionedit.world`` (absolute or relative, at
module level or inside a function), except the apps' wiring that selects the bundled default (``cli/``,
``web/``) and the evaluation protocols that use the world as a dataset (``evaluation/``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "regionedit"
ALLOWED = ("world", "cli", "web", "evaluation")  # top-level subpackages that may import the world


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import statement in a module of the package at ``root``."""
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]  # ("regionedit", "pipeline")
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]  # "from regionedit import world"
    return out


def _violations(root: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ALLOWED:
            continue
        lines = sorted({line for line, mod in _imports(path, root)
                        if mod == "regionedit.world" or mod.startswith("regionedit.world.")})
        bad += [f"{rel}:{line} imports the world" for line in lines]
    return bad


def test_core_never_imports_the_world():
    assert _violations() == []


def test_import_rule_catches_every_form(tmp_path):
    """The walker sees absolute, relative, from-package and function-level imports of the world."""
    root = tmp_path / "regionedit"
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "__init__.py").write_text("")
    (root / "pipeline" / "a.py").write_text("import regionedit.world.spec\n")
    (root / "pipeline" / "b.py").write_text("from ..world import spec\n")
    (root / "pipeline" / "c.py").write_text("def f():\n    from regionedit import world\n")
    (root / "pipeline" / "d.py").write_text("from regionedit.worldly import x\nimport regionedit.pipeline\n")
    found = _violations(root)
    assert [f.split(":")[0] for f in found] == ["pipeline/a.py", "pipeline/b.py", "pipeline/c.py"]


def test_core_edits_with_the_world_deleted(tmp_path):
    """A copy of the package without ``world/`` (and without the bundled world weights) imports and edits a photo
    through tiny random models of the real classes: mask-free and with a mask, bit-exact outside the mask."""
    copy = tmp_path / "src" / "regionedit"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("world", "weights", "__pycache__"))
    assert not (copy / "world").exists()
    script = textwrap.dedent(f"""
        import importlib.util, sys
        import numpy as np
        import regionedit
        assert regionedit.__file__.startswith({str(tmp_path)!r}), regionedit.__file__
        assert importlib.util.find_spec("regionedit.world") is None
        from skimage import data
        from regionedit.models.tiny import save_tiny_models
        from regionedit.pipeline import Editor, EditorConfig
        folder = save_tiny_models({str(tmp_path / "tiny")!r}, region_bias=3.0)
        ed = Editor.from_pretrained(folder, config=EditorConfig(steps=2, candidates=1))
        assert ed.priors == [] and type(ed.describer).__name__ == "TemplateDescriber"
        img = np.ascontiguousarray(data.astronaut()[::4, ::4])  # (128, 128, 3) uint8
        r = ed(img, "replace the cat with a dog", seed=0)
        assert r.status == "edited", r.reason
        assert r.image.shape == img.shape and r.mask.any()
        assert not ((r.image != img).any(-1) & ~r.mask).any()
        assert (r.image != img).any()
        mask = np.zeros(img.shape[:2], bool); mask[40:80, 30:90] = True
        m = ed(img, "make the sky pink", mask=mask, seed=1)
        assert m.status == "edited" and (m.mask == mask).all()
        assert not ((m.image != img).any(-1) & ~mask).any() and (m.image[mask] != img[mask]).any()
        print("edited without the world")
    """)
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "edited without the world" in proc.stdout
