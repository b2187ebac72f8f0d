"""The run: :func:`run_evaluation` (protocol x methods -> records -> results and grids), resumable,
and the identity of a run that a rerun into the same folder must match."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..baselines import MethodUnavailable, build_methods
from .config import EvalConfig
from .contact import write_contact_sheets
from .grids import _grid_indices, _write_grids
from .protocols import make_protocol
from .records import CONFIG_FILE, _append_record, _end_torn_line, _jsonable, _load_png, _save_png, output_path, read_records
from .results import build_results
from .scoring import _first_line, _resize_to, build_extractors, sample_metrics


def model_fingerprint(location: str | Path) -> str | None:
    """sha1 over a local model folder's file names and sizes and the contents of its small files
    (configs, tokenizers, training states): changes when a component is retrained or replaced."""
    root = Path(location)
    if not root.is_dir():
        return None
    h = hashlib.sha1()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        size = f.stat().st_size
        h.update(f"{f.relative_to(root)}:{size}\n".encode())
        if size < 1 << 20:
            h.update(f.read_bytes())
    return h.hexdigest()


def _identity(cfg: EvalConfig, proto, exts: dict, method_params: dict, models) -> dict[str, Any]:
    """What per-sample records depend on; a rerun into the same folder must match it."""
    return _jsonable({
        "model_fingerprint": model_fingerprint(models.location),
        "protocol": cfg.protocol, "seed": int(cfg.seed), "data": str(Path(cfg.data).resolve()) if cfg.data else None,
        "split": cfg.split, "size": int(cfg.size) if cfg.protocol == "shapes" else None,
        "model": str(Path(cfg.model).resolve()) if Path(cfg.model).exists() else str(cfg.model),
        "steps": int(cfg.steps), "guidance": float(cfg.guidance),
        "sdedit_strength": float(cfg.sdedit_strength),
        "feature_extractors": {k: e.name for k, e in exts.items()},
        "method_params": method_params,
        # only when not ours, so folders written before the option existed still resume
        **({"renderer": cfg.renderer} if cfg.renderer != "regionedit" else {}),
    })


def _check_identity(out: Path, ident: dict) -> None:
    path = out / CONFIG_FILE
    if path.exists():
        old = json.loads(path.read_text())
        new_params = ident.get("method_params", {})
        old_params = old.get("method_params", {})
        keys = list(ident) + [k for k in ("renderer",) if k in old and k not in ident]  # optional keys, either side
        diffs = [k for k in keys if k != "method_params" and old.get(k) != ident.get(k)]
        diffs += [f"method {m}" for m in new_params if m in old_params and old_params[m] != new_params[m]]
        if diffs:
            raise ValueError(
                f"{out} holds results of a different configuration ({', '.join(diffs)} changed; see {path}); "
                "use another --out folder, or delete that one to start over"
            )
        merged = dict(old_params)
        merged.update(new_params)
        ident = {**ident, "method_params": merged}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ident, indent=2, sort_keys=True) + "\n")


def run_evaluation(cfg: EvalConfig, progress: bool = True, log=None) -> dict[str, Any]:
    """Run (or resume) an evaluation and write ``results.json``, ``results.md``, the grids (PNG) and the contact
    sheets (HTML: source | ground truth | each method's region and result, per sampled case).

    Args:
        cfg: the configuration.
        progress: show a tqdm progress bar (stderr).
        log: ``print``-like callable for messages (skipped methods, unavailable metrics); None: silent.

    Returns:
        The results dict (as written to ``results.json``), plus ``"computed"``: the number of
        (method, sample) edits this call computed (0 when everything was already in ``samples.jsonl``).
    """
    from tqdm.auto import tqdm

    from regionedit import models as Mod

    from ..report import write_markdown

    cfg.validate()
    say = log or (lambda *a, **k: None)
    out = Path(cfg.out)
    proto = make_protocol(cfg)
    models = Mod.load(cfg.model)
    methods, skipped = build_methods(list(cfg.methods), models, cfg.method_settings(), has_masks=proto.has_masks)
    for name, why in skipped.items():
        say(f"skipping method {name}: {why}")
    exts, unavailable = build_extractors(cfg, models)
    for name, why in unavailable.items():
        say(f"metric unavailable: {why}")
    method_params = {name: m.params for name, m in methods.items()}
    _check_identity(out, _identity(cfg, proto, exts, method_params, models))

    jobs = proto.jobs()
    _end_torn_line(out)
    records = read_records(out)
    done = {k for k, r in records.items() if r.get("status") != "error"}
    pending = [(j, m) for j in jobs for m in methods if (j[0], m, j[1]) not in done]
    grid_idx = _grid_indices(jobs, proto.settings, cfg.grid_k)
    needed_inputs = {j[2] for j in jobs if j[2] is not None}  # outputs that later jobs take as input
    computed = 0
    bar = tqdm(total=len(jobs) * len(methods), initial=len(jobs) * len(methods) - len(pending), disable=not progress,
               desc=f"eval {cfg.protocol}", unit="edit", file=sys.stderr)
    try:
        for (setting, index, input_from, reported), name in pending:
            s = proto.sample(index)
            method = methods[name]
            seed = int(cfg.seed) + index
            t0 = time.perf_counter()
            rec: dict[str, Any] = {"setting": setting, "method": name, "index": index, "id": s.id,
                                   "category": s.category, "seed": seed, "reported": reported,
                                   "size": list(s.source.shape[:2]), "prompts": {"source": s.source_prompt,
                                   "target": s.target_prompt, **{f"{k}_from": v for k, v in s.prompt_origin.items()}}}
            if s.group is not None:
                rec.update({"group": s.group, "turn": s.turn})
            try:
                reused = None
                if input_from is not None and input_from[1] == index:
                    # first turn of a chain: same input and seed as the single-turn edit, reuse it
                    prev = records.get((input_from[0], name, index))
                    prev_png = output_path(out, input_from[0], name, index)
                    if prev is not None and prev.get("status") != "error" and prev_png.exists():
                        reused = prev
                if reused is not None:
                    edited = _load_png(output_path(out, input_from[0], name, index))
                    rp = output_path(out, input_from[0], name, index, region=True)
                    region = (_load_png(rp)[..., 0] >= 128) if rp.exists() else None
                    rec.update({"status": reused["status"], "reason": reused.get("reason"), "metrics": reused["metrics"],
                                "seconds": reused.get("seconds"), "reused_from": input_from[0]})
                else:
                    image = s.source
                    if input_from is not None and input_from[1] != index:
                        src_path = output_path(out, input_from[0], name, input_from[1])
                        if not src_path.exists():
                            raise RuntimeError(f"the chained input {src_path} is missing (the previous turn failed "
                                               "or its output was deleted); rerun to retry")
                        image = _resize_to(_load_png(src_path), s.source.shape[:2])
                    edited, region, status = method(image, s.instruction, seed, s)
                    seconds = time.perf_counter() - t0
                    edited = np.asarray(edited, dtype=np.uint8)
                    if edited.shape != image.shape:
                        raise ValueError(f"method {name} returned {edited.shape} for a {image.shape} input")
                    mets = sample_metrics(cfg.protocol, s, edited, region, status, exts)
                    rec.update({"status": status, "reason": getattr(method, "last_reason", None), "metrics": mets,
                                "seconds": seconds})
                if cfg.save_outputs or (setting, index) in needed_inputs or index in grid_idx.get(setting, ()):
                    _save_png(output_path(out, setting, name, index), edited)
                    if region is not None:
                        _save_png(output_path(out, setting, name, index, region=True),
                                  np.repeat((np.asarray(region, bool).astype(np.uint8) * 255)[..., None], 3, axis=2))
            except MethodUnavailable as e:
                rec.update({"status": "error", "reason": str(e), "metrics": None})
            except Exception as e:  # one failing sample must not lose the run; it is recorded and retried
                rec.update({"status": "error", "reason": _first_line(e), "metrics": None})
                say(f"error: {name} on sample {index} ({setting}): {_first_line(e)}")
            _append_record(out, rec)
            records[(setting, name, index)] = rec
            computed += 1
            bar.update(1)
    finally:
        bar.close()

    results = _jsonable(build_results(cfg, proto, methods, skipped, exts, unavailable, out, models))
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    write_markdown(results, out / "results.md")
    _write_grids(cfg, proto, list(methods), out, grid_idx)
    write_contact_sheets(proto, list(methods), out, grid_idx)
    results["computed"] = computed
    return results
