"""Checks the seed-method trainer tests share (imported by tests/test_adaptedit.py and tests/test_fireedit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file


def check_trains_and_resumes(main, args: list[str], out: Path, batch: int = 2) -> None:
    """``regionedit train <method> ... --max-steps 2`` then ``--max-steps 3``: the second run resumes at step 2 (the
    log holds steps 1, 2, 3 once each), the checkpoint holds the data position, the export's record the steps."""
    assert main(args + ["--max-steps", "2"]) == 0
    assert main(args + ["--max-steps", "3"]) == 0  # resumes at step 2
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 3 and json.loads(state["data_states"]) == [{"used": 3 * batch}]
    card = json.loads((out / "export" / "config.json").read_text())
    assert card["training"]["steps"] == 3 and card["training"]["samples_seen"] == 3 * batch
    # a finished run rerun with --fp16-export re-exports its weights in fp16 (a bundle's copy), training no step
    assert main(args + ["--max-steps", "3", "--fp16-export", "--export", str(out / "fp16")]) == 0
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    (name,) = [p.name for p in (out / "export").glob("*.safetensors")]
    full, half = load_file(out / "export" / name), load_file(out / "fp16" / name)
    assert set(full) == set(half) and all(v.dtype == torch.float32 for v in full.values())
    assert all(half[k].dtype == torch.float16 and torch.equal(half[k], full[k].half()) for k in full)


def edit_batch(b: int = 2, seed: int = 0, size: int = 64):
    """A batch of edit pairs (source, target in [-1, 1], region in {0, 1}): random sources whose box at rows
    size/4..5size/8, columns size/8..size/2 turns red in the target, the box as the region."""
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    tgt = src.clone()
    rows, cols = slice(size // 4, size * 5 // 8), slice(size // 8, size // 2)
    tgt[:, :, rows, cols] = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    region = torch.zeros(b, 1, size, size)
    region[:, :, rows, cols] = 1
    return src, tgt, region


def checksum(module) -> float:
    """A float64 sum of every parameter (equal before and after = the module did not change)."""
    return float(sum(p.detach().double().sum() for p in module.parameters()))
