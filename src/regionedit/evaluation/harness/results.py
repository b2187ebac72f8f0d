"""Aggregation: per-method (and per-category) means of the per-sample records, and the results dict
written to ``results.json`` (configuration, machine, extractors, metric definitions, tables)."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics as M
from .config import CATEGORY_METRICS, MB_RESIZE, METRICS, PROTOCOL_LABELS, PROTOCOL_METRICS, EvalConfig, _canonical_command
from .records import read_records

def _mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return (float(np.mean(vals)) if vals else None), len(vals)


def _summary(recs: list[dict], keys: Iterable[str]) -> dict[str, Any]:
    ok = [r for r in recs if r["status"] != "error"]
    out: dict[str, Any] = {"n": len(ok), "n_errors": len(recs) - len(ok), "metrics": {}, "counts": {}}
    for k in keys:
        if k in ("absent_no_edit", "false_no_edit"):
            if not ok:
                continue
            acc = M.absent_accuracy([r["status"] for r in ok], [r.get("category") == "absent" for r in ok])
            v = acc["no_edit_rate_on_absent" if k == "absent_no_edit" else "false_no_edit_rate"]
            n = acc["n_absent" if k == "absent_no_edit" else "n_present"]
            out["metrics"][k], out["counts"][k] = (None if math.isnan(v) else v), n
            continue
        vals = [r.get("seconds") if k == "seconds" else (r.get("metrics") or {}).get(k) for r in ok]
        mean, count = _mean(vals)
        if count:
            out["metrics"][k], out["counts"][k] = mean, count
    return out


def aggregate(records: list[dict], protocol: str, methods: list[str]) -> dict[str, Any]:
    """Means per method (overall and per category) of the reported records of one setting."""
    res: dict[str, Any] = {}
    for m in methods:
        recs = [r for r in records if r["method"] == m]
        entry = _summary(recs, PROTOCOL_METRICS[protocol])
        cats = sorted({r.get("category") for r in recs if r.get("category")})
        entry["categories"] = {c: _summary([r for r in recs if r.get("category") == c], CATEGORY_METRICS[protocol])
                               for c in cats}
        res[m] = entry
    return res


def machine_info() -> dict[str, Any]:
    import diffusers
    import transformers

    from regionedit import __version__

    return {
        "processor": platform.processor() or None,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "regionedit": __version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }


def build_results(cfg: EvalConfig, proto, methods: dict, skipped: dict[str, str], exts: dict, unavailable: dict[str, str],
                  out: Path, models=None) -> dict[str, Any]:
    """The results dict from the records in ``out`` (only the configured methods and samples)."""
    recs = read_records(out)
    jobs = proto.jobs()
    names = list(methods)
    settings: dict[str, Any] = {}
    sizes: set[tuple[int, int]] = set()
    for setting in proto.settings:
        keys = [(setting, m, j[1]) for j in jobs if j[0] == setting and j[3] for m in names]
        rows = [recs[k] for k in keys if k in recs]
        sizes |= {tuple(r["size"]) for r in rows if r.get("size")}
        settings[setting] = {
            "n_samples": sum(1 for j in jobs if j[0] == setting and j[3]),
            "methods": aggregate(rows, cfg.protocol, names),
            "errors": {m: [f"#{r['index']}: {r.get('reason')}" for r in rows if r["method"] == m and r["status"] == "error"][:5]
                       for m in names if any(r["method"] == m and r["status"] == "error" for r in rows)},
        }
        if setting == "multi-turn":
            settings[setting]["note"] = "final turn of each chained session vs its final GT target (MagicBrush 'final turn')"
        if setting == "single-turn":
            settings[setting]["note"] = "every turn edited from its GT input (MagicBrush 'all turns', independent)"
    keys_used = [k for k in PROTOCOL_METRICS[cfg.protocol] + CATEGORY_METRICS[cfg.protocol]]
    definitions = {k: METRICS[k][2] for k in dict.fromkeys(keys_used)}
    if cfg.protocol == "magicbrush":
        definitions["l1"] += f"; edited resized to the GT size with {MB_RESIZE} first when sizes differ"
        definitions["l2"] += f"; edited resized to the GT size with {MB_RESIZE} first when sizes differ"
        definitions["clip_t"] += ("; only when the dataset has target captions. Against the turn's global "
                                  "description (global_descriptions.json), not MagicBrush's published CLIP-T, "
                                  "which is clip_t_local (its local description)")
    not_computed = {
        "lpips": "not part of these protocols (needs torchvision backbone weights: metrics.lpips)",
        "fid": "not part of these protocols (needs thousands of images and Inception weights: metrics.fid)",
    }
    return {
        "command": cfg.command or _canonical_command(cfg),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "config": {
            "protocol": cfg.protocol,
            "seed": int(cfg.seed),
            "n": int(cfg.n),
            "steps": int(cfg.steps),
            "guidance": float(cfg.guidance),
            "model": str(cfg.model),
            "model_location": str(models.location) if models is not None else None,
            "methods_requested": list(cfg.methods),
            "sample_seed": "seed + sample index (torch.Generator on the CPU)",
            "data": proto.describe(),
            "resolution": {
                "images": sorted(f"{h}x{w}" for h, w in sizes),
                "methods": {m: p.get("resolution") for m, p in ((n, methods[n].params) for n in names)},
                "feature_extractors": {k: {"resize": e.config.get("resize"), "center_crop": e.config.get("center_crop")}
                                       for k, e in exts.items()},
            },
            "prompts": {
                "baselines": "diffedit/sdedit: source prompt = dataset source caption (else empty), target prompt = "
                             "dataset target caption (global) (else WorldDescriber target description, else the "
                             "instruction); instructpix2pix: the instruction",
                "editor": "region/oracle: the instruction only (WorldDescriber local prompt inside the region); no caption",
                "clip_t_caption": "dataset target caption (global)",
                **({"clip_t_local_caption": "the turn's local description (local_descriptions.json)"}
                   if cfg.protocol == "magicbrush" else {}),
                "clip_dir_captions": "dataset source and target captions (global)",
            },
            "grid_k": int(cfg.grid_k),
        },
        "methods": {n: methods[n].params for n in names},
        "skipped_methods": skipped,
        "feature_extractors": {k: {"name": e.name, "config": e.config} for k, e in exts.items()},
        "metric_definitions": definitions,
        "metric_columns": {"overall": list(PROTOCOL_METRICS[cfg.protocol]), "category": list(CATEGORY_METRICS[cfg.protocol])},
        "metric_labels": {k: {"label": PROTOCOL_LABELS.get(cfg.protocol, {}).get(k, v[0]), "higher_is_better": v[1]}
                          for k, v in METRICS.items()},
        "unavailable_metrics": unavailable,
        "not_computed": not_computed,
        "settings": settings,
    }
