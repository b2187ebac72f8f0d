"""An editor saved as a folder (``Editor.save_pretrained`` / ``Editor.from_pretrained``).

The folder is a model folder (diffusers layout where the editor has one) plus, in ``regionedit.json``::

    {"plugin": "shapes",                      # as before: the folder's plugin, its domain guard
     "editor_config": {...},                  # the EditorConfig the editor ran with
     "components": {"generator": "generator", # a saved pipeline (a path relative to the folder) ...
                    "localizer": "clipseg:CIDAS/clipseg-rd64-refined",   # ... or a spec / id, by reference
                    "describer": "grammar"}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from regionedit.core.plugin import FOLDER_FILE

from .config import EditorConfig


def read_editor_folder(folder: str | Path) -> tuple[dict[str, str], EditorConfig | None]:
    """``(components, config)`` a saved editor folder records (``({}, None)`` for any other folder). Relative
    component paths are resolved against the folder."""
    path = Path(folder) / FOLDER_FILE
    if not path.is_file():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix or remove it") from None
    comps = {}
    for k, v in (data.get("components") or {}).items():
        if k not in ("generator", "localizer", "describer", "clip", "instruction_encoder") or not isinstance(v, str):
            raise ValueError(f"{path}: components.{k} = {v!r} is not a generator / localizer / describer name")
        local = Path(folder) / v
        comps[k] = str(local) if (not v.startswith(("learned", "clipseg:", "owl", "gdino", "grounding", "sam"))
                                  and local.exists()) else v
    cfg = data.get("editor_config")
    if cfg is not None:
        known = {f.name for f in dataclasses.fields(EditorConfig)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"{path}: editor_config has unknown settings {unknown}; known: {sorted(known)}")
        cfg = EditorConfig(**cfg)
    return comps, cfg


def write_editor_folder(editor, folder: str | Path, overwrite: bool = False) -> Path:
    """See :meth:`regionedit.pipeline.Editor.save_pretrained`. Returns the folder."""
    from regionedit.generate import PipelineInpaintGenerator
    from regionedit.localize import save_region_predictor

    folder = Path(folder).expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty; choose a new folder or pass overwrite=True")
    models = editor.models
    source = Path(models.location) if models is not None and Path(models.location).is_dir() else None
    if source is not None and folder == source.resolve():
        raise ValueError(f"{folder} is the folder the editor was loaded from; save to another folder")
    tmp = folder.parent / f".{folder.name}.saving-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        if source is not None:
            shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.tmp", ".*"))
        else:
            tmp.mkdir(parents=True)
        data: dict[str, Any] = json.loads((tmp / FOLDER_FILE).read_text()) if (tmp / FOLDER_FILE).is_file() else {}
        specs = dict(getattr(editor, "component_specs", {}))
        comps: dict[str, str] = {}
        if isinstance(editor.generator, PipelineInpaintGenerator):
            editor.generator.pipeline.save_pretrained(tmp / "generator")
            comps["generator"] = "generator"
            data.pop("domain_guard", None)  # the folder's guard reads the folder's own generator
        elif "generator" in specs:
            comps["generator"] = specs["generator"]
        loc = specs.get("localizer")
        if loc is not None and loc.lower().startswith("learned:"):
            save_region_predictor(editor.region_predictor, tmp / "region_predictor", {"saved_from": loc})
            comps["localizer"] = "learned"
        elif loc is not None:
            comps["localizer"] = loc
        for k in ("describer", "clip", "instruction_encoder"):
            if k in specs:
                comps[k] = specs[k]
        if comps:
            data["components"] = comps
        data["editor_config"] = dataclasses.asdict(editor.config)
        (tmp / FOLDER_FILE).write_text(json.dumps(data, indent=2) + "\n")
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
