"""Shared pieces of the bundled world models' trainers (:mod:`regionedit.world.training.world_models`): fp16
export of a component folder, its training record, the world tokenizer, the optimiser and the LR schedule."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from regionedit.models import configs as C
from regionedit.models.bundled import MODEL_INDEX

# --------------------------------------------------------------------------------------------------
# export helpers


def save_fp16(model, folder: Path) -> None:
    """``save_pretrained`` in fp16 safetensors, atomically (temp folder, then rename)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model = model.to(torch.float16)
    model.save_pretrained(tmp, safe_serialization=True)
    model.to(torch.float32)
    cfg_p = tmp / "config.json"  # a model loaded from a folder records its path: not ours to ship
    if cfg_p.exists():
        cfg = json.loads(cfg_p.read_text())
        changed = cfg.pop("_name_or_path", None) is not None
        for key in ("dtype", "torch_dtype"):  # transformers loads in the recorded dtype: fp16 storage, fp32 default
            if cfg.get(key) == "float16":
                cfg[key], changed = "float32", True
        if changed:
            cfg_p.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    cards = [folder / "README.md", folder / "training_state.json"]
    keep = {p.name: p.read_text() for p in cards if p.exists()}
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    for name, text in keep.items():
        (folder / name).write_text(text)


def write_state(folder: Path, component: str, step: int, seconds: float, seed: int, extra: dict) -> None:
    st = {"component": component, "steps": step, "cpu_minutes": round(seconds / 60, 1), "seed": seed, **extra}
    (folder / "training_state.json").write_text(json.dumps(st, indent=2) + "\n")


def add_finetune_record(folder: Path, component: str, key: str, record: dict) -> None:
    """Keep ``folder``'s training record and add a later fine-tune under ``key`` (the card shows both)."""
    state_p = folder / "training_state.json"
    st = json.loads(state_p.read_text()) if state_p.exists() else {"component": component}
    st[key] = record
    state_p.write_text(json.dumps(st, indent=2) + "\n")


def load_tokenizer(export: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(export / "tokenizer")


def write_model_index(export: Path) -> None:
    """The folder's diffusers index, scheduler, and ``regionedit.json`` naming the shapes plugin (its describer
    and priors are what an Editor of these models edits with)."""
    (export / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n")
    (export / "regionedit.json").write_text(json.dumps({"plugin": "shapes"}) + "\n")
    sched = C.build_scheduler()
    sched.save_pretrained(export / "scheduler")


# --------------------------------------------------------------------------------------------------
# optimiser and schedule


def adamw(model, lr, wd=0.01):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=wd)


def cosine_lr(lr: float, warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    return f
