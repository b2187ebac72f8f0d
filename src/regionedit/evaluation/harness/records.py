"""The output folder's files: per-sample records in ``samples.jsonl`` (appended, resumable) and the
output / region PNGs under ``outputs/<setting>/<method>/``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "eval_config.json"


def _jsonable(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return _jsonable(x.item())
    if isinstance(x, Path):
        return str(x)
    return x


def read_records(out: Path) -> dict[tuple[str, str, int], dict]:
    """The last record per ``(setting, method, index)`` of ``samples.jsonl`` (a torn last line, from
    an interrupted write, is ignored)."""
    path = Path(out) / SAMPLES_FILE
    recs: dict[tuple[str, str, int], dict] = {}
    if not path.exists():
        return recs
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        recs[(r["setting"], r["method"], int(r["index"]))] = r
    return recs


def _end_torn_line(out: Path) -> None:
    """A run killed mid-write leaves a torn last line: end it so new records start on a fresh line."""
    path = out / SAMPLES_FILE
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _append_record(out: Path, rec: dict) -> None:
    with open(out / SAMPLES_FILE, "a") as f:
        f.write(json.dumps(_jsonable(rec), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def output_path(out: Path, setting: str, method: str, index: int, region: bool = False) -> Path:
    return out / "outputs" / setting / method / (f"{index:06d}_region.png" if region else f"{index:06d}.png")


def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)


def _load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8).copy()
