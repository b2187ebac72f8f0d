"""Measured quality into the trained seed methods' model folders (``regionedit eval ... --write-cards``).

Each evaluated row whose parameters name a ``weights`` folder (``descriptive``, ``region_in_context``, ``adaptedit``,
``fireedit`` and their ``-compose`` / ablation rows, and ``instructpix2pix``'s ``unet_ip2p``) gets its overall
metrics recorded in that folder: ``quality.json`` (every row measured on the folder, per setting, with its command
under ``"<row>/<setting>"``, the date and N) and a "Measured quality" section in the folder's model card
``README.md`` (replaced on every write, so it never repeats; other sections, such as a world model's "Measured
quality (held-out world data)", are kept). ``config.json`` is left alone: the methods read it to rebuild
themselves. Writes are atomic; a folder inside the installed package's bundled weights is refused unless
``allow_bundled``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

QUALITY_FILE = "quality.json"
SECTION = "## Measured quality"
# the overall metrics a card shows, in this order (the eval's metric names)
CARD_METRICS = ("region_iou", "leakage", "preservation", "edit_success", "absent_no_edit", "false_no_edit", "l1",
                "clip_i", "clip_t", "clip_t_local", "clip_dir", "dino", "seconds")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rows_by_folder(results: dict[str, Any]) -> dict[Path, dict[str, dict[str, dict[str, float]]]]:
    """``{weights folder: {row: {setting: overall metrics}}}`` of an evaluation's ``results`` (``results.json``)."""
    out: dict[Path, dict[str, dict[str, dict[str, float]]]] = {}
    for name, params in results.get("methods", {}).items():
        weights = params.get("weights") if isinstance(params, dict) else None
        if not weights:
            continue
        for setting, block in results.get("settings", {}).items():
            row = block.get("methods", {}).get(name)
            if row is None:
                continue
            metrics = {k: row["metrics"][k] for k in CARD_METRICS if row["metrics"].get(k) is not None}
            out.setdefault(Path(weights), {}).setdefault(name, {})[setting] = {**metrics, "n": row["n"]}
    return out


def _section(quality: dict[str, Any], labels: dict[str, Any]) -> str:
    cols = [k for k in CARD_METRICS if any(k in m for rows in quality["rows"].values() for m in rows.values())]
    head = "| row | setting | n | " + " | ".join(labels.get(k, {}).get("label", k) for k in cols) + " |"
    lines = [SECTION, "", head, "|" + "---|" * (3 + len(cols))]
    for name, settings in sorted(quality["rows"].items()):
        for setting, m in settings.items():
            vals = " | ".join(f"{m[k]:.3f}" if k in m else "" for k in cols)
            lines.append(f"| {name} | {setting} | {m['n']} | {vals} |")
    lines += ["", f"Measured {quality['created']} by (each row's own command when rows came from several runs):", ""]
    lines += [f"    {c}" for c in sorted(set(quality["commands"].values()))]
    return "\n".join(lines) + "\n"


def write_cards(results: dict[str, Any], allow_bundled: bool = False) -> list[Path]:
    """Record ``results`` (an evaluation's ``results.json``) in every trained seed method's folder it measured;
    returns the folders written. Rows measured earlier on a folder are kept; a row measured again is replaced."""
    from regionedit.training.common import inside_bundled

    folders = rows_by_folder(results)
    for folder in folders:
        if inside_bundled(folder) and not allow_bundled:
            raise ValueError(f"{folder} is inside the installed package's bundled weights; pass --overwrite-bundled "
                             "to record quality in the shipped model cards (maintainers), or evaluate a copy")
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} (weights of an evaluated row) is not a folder; rerun the evaluation "
                                    "with the model folder that holds it")
    for folder, rows in folders.items():
        path = folder / QUALITY_FILE
        quality = json.loads(path.read_text()) if path.exists() else {"rows": {}, "commands": {}}
        commands = quality.setdefault("commands", {})
        for old in [k for k in commands if "/" not in k]:  # files written before commands were per setting
            for setting in quality["rows"].get(old, {}):
                commands.setdefault(f"{old}/{setting}", commands[old])
            del commands[old]
        for name, settings in rows.items():
            # a row measured again in a setting replaces that setting only (shapes and magicbrush rows live side by side)
            quality["rows"].setdefault(name, {}).update(settings)
            for setting in settings:
                commands[f"{name}/{setting}"] = results.get("command", "")
        quality["created"] = results.get("created", "")
        _atomic_write(path, json.dumps(quality, indent=2) + "\n")
        card = folder / "README.md"
        text = card.read_text() if card.exists() else f"# {folder.name}\n"
        lines = text.split("\n")
        if SECTION in lines:  # replace the section (the heading line exactly; up to the next second-level heading)
            start = lines.index(SECTION)
            nxt = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            text = "\n".join(lines[:start] + lines[nxt:])
        _atomic_write(card, text.rstrip("\n") + "\n\n" + _section(quality, results.get("metric_labels", {})))
    return list(folders)
