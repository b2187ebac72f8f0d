"""The protocols' samples: :class:`EvalSample` (one edit to evaluate, whatever the protocol) and
the data sources :class:`ShapesProtocol` (held-out shapes-world samples), :class:`MagicBrushProtocol`
and :class:`EmuProtocol` (dataset folders), with the jobs (setting, sample, input) each one runs."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .config import MB_RESIZE, PROTOCOLS, EvalConfig


@dataclasses.dataclass
class EvalSample:
    """One edit to evaluate, whatever the protocol.

    ``source_prompt`` / ``target_prompt`` are what prompt-driven baselines get (DiffEdit, SDEdit):
    the dataset's source / target caption when present; otherwise ``""`` for the source and the
    WorldDescriber target description (or, if it cannot read the instruction, the instruction) for
    the target. ``prompt_origin`` says which. ``local_caption`` is MagicBrush's local description of the turn's
    output (the edited region only; ``local_descriptions.json``), the text of its published CLIP-T, or None.
    """

    index: int
    id: str
    source: np.ndarray
    target: np.ndarray | None
    mask: np.ndarray | None
    instruction: str
    category: str | None
    source_caption: str | None
    target_caption: str | None
    source_prompt: str
    target_prompt: str
    prompt_origin: dict[str, str]
    world: Any = None  # the EditSample (shapes protocol)
    group: str | None = None  # MagicBrush img_id
    turn: int | None = None  # MagicBrush turn_index
    local_caption: str | None = None  # MagicBrush local description (clip_t_local); None elsewhere


def _prompts(instruction: str, source_caption: str | None, target_caption: str | None) -> tuple[str, str, dict]:
    from regionedit.world.grammar import WorldDescriber

    if source_caption:
        src, src_from = source_caption, "dataset source caption"
    else:
        src, src_from = "", "none (empty prompt)"
    if target_caption:
        return src, target_caption, {"source": src_from, "target": "dataset target caption"}
    desc = WorldDescriber()(instruction, source_caption)
    if desc.intent is not None and desc.target_description:
        return src, desc.target_description, {"source": src_from, "target": "WorldDescriber target description"}
    return src, instruction, {"source": src_from, "target": "instruction (WorldDescriber could not read it)"}


def _fit_mask(mask: np.ndarray | None, hw: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(hw):
        small = Image.fromarray(mask.astype(np.uint8) * 255)
        mask = np.asarray(small.resize((hw[1], hw[0]), Image.Resampling.NEAREST)) >= 128
    return mask


class _Cached:
    """``sample(i)`` through a small LRU cache (a sample is used by every method in turn)."""

    def sample(self, i: int) -> EvalSample:
        cache = self.__dict__.setdefault("_cache", OrderedDict())
        if i in cache:
            cache.move_to_end(i)
            return cache[i]
        s = cache[i] = self._load(i)
        if len(cache) > 8:
            cache.popitem(last=False)
        return s


class ShapesProtocol(_Cached):
    """Held-out shapes-world samples with exact ground truth."""

    name = "shapes"
    settings: tuple[str, ...] = ("shapes",)
    has_masks = True

    def __init__(self, n: int, seed: int, size: int, renderer: str = "regionedit"):
        self.n, self.seed, self.size, self.renderer = int(n), int(seed), int(size), renderer

    def describe(self) -> dict[str, Any]:
        out = {"data": f"regionedit.world.sample_edit(seed={self.seed}, i, size={self.size}) for i < {self.n}",
               "images": f"{self.size}x{self.size}"}
        if self.renderer != "regionedit":
            out["renderer"] = (f"{self.renderer}: images and masks redrawn by regionedit.world.alt_render "
                               "(an independent renderer of WORLD.md)")
        return out

    def _load(self, i: int) -> EvalSample:
        from regionedit.world.alt_render import drawn_by
        from regionedit.world import sample_edit

        s = drawn_by(sample_edit(self.seed, i, self.size), self.renderer)
        src, tgt, origin = _prompts(s.instruction, s.source_caption, s.target_caption)
        return EvalSample(i, f"{self.seed}_{i:09d}", s.source, s.target, s.mask, s.instruction, s.category,
                          s.source_caption, s.target_caption, src, tgt, origin, world=s)

    def jobs(self) -> list[tuple[str, int, tuple[str, int] | None, bool]]:
        """``(setting, index, input_from, reported)`` in execution order."""
        return [("shapes", i, None, True) for i in range(self.n)]


class _DatasetProtocol(_Cached):
    name = "dataset"
    fmt = "?"

    def __init__(self, data: str | Path, n: int, split: str | None = None):
        from regionedit.data.loaders import detect_format, load_dataset

        self.path = Path(data)
        found = detect_format(self.path)
        if found != self.fmt:
            raise ValueError(f"{self.path} holds a {found!r} dataset, not {self.fmt!r}: "
                             + (f"use --protocol {found}" if found in PROTOCOLS else "it has no edits to evaluate"))
        self.ds = load_dataset(self.path, fmt=self.fmt, split=split)
        self.split = split
        self.n = min(int(n), len(self.ds))
        if self.n == 0:
            raise ValueError(f"the dataset at {self.path} is empty")
        first = self.ds[0]
        self.has_masks = first["mask"] is not None
        self.has_targets = first["target"] is not None

    def describe(self) -> dict[str, Any]:
        return {"data": str(self.path), "format": self.ds.fmt, "layout": self.ds.layout, "split": self.split,
                "records_in_dataset": len(self.ds), "records_used": self.n,
                "dataset_info": self.ds.info}

    def _load(self, i: int) -> EvalSample:
        rec = self.ds[i]
        if not rec["instruction"]:
            raise ValueError(f"record {i} ({rec['id']}) of {self.path} has no instruction")
        src_img = rec["source"]
        src, tgt, origin = _prompts(rec["instruction"], rec["source_caption"], rec["target_caption"])
        group, turn = self._session(rec)
        return EvalSample(i, str(rec["id"]), src_img, rec["target"], _fit_mask(rec["mask"], src_img.shape[:2]),
                          rec["instruction"], rec["category"], rec["source_caption"], rec["target_caption"],
                          src, tgt, origin, group=group, turn=turn, local_caption=rec.get("local_caption"))

    @staticmethod
    def _session(rec: dict) -> tuple[str | None, int | None]:
        meta = rec.get("metadata") or {}
        img_id, turn = meta.get("img_id"), meta.get("turn_index")
        if (img_id is None or turn is None) and rec.get("id") and "-" in str(rec["id"]):
            img_id, _, t = str(rec["id"]).rpartition("-")
            turn = int(t) if t.isdigit() else None
        return (str(img_id) if img_id is not None else None), (int(turn) if turn is not None else None)


class MagicBrushProtocol(_DatasetProtocol):
    """MagicBrush: single-turn and multi-turn (chained) edits compared with the GT targets."""

    name = "magicbrush"
    fmt = "magicbrush"
    settings = ("single-turn", "multi-turn")

    def __init__(self, data, n, split=None):
        super().__init__(data, n, split)
        if not self.has_targets:
            raise ValueError(f"{self.path}: MagicBrush evaluation needs the GT target images (target_img)")
        # sessions among the first n records: one streaming pass, which reads on past record n only
        # while the records continue the last session (sessions are contiguous in MagicBrush's files)
        self.sessions: OrderedDict[str, list[tuple[int, int]]] = OrderedDict()
        cut_short: set[str] = set()
        last = None
        for i, rec in enumerate(self.ds):
            group, turn = self._session(rec)
            group = group if group is not None else str(rec["id"])
            if i >= self.n:
                if group == last:
                    cut_short.add(group)
                break
            self.sessions.setdefault(group, []).append((turn if turn is not None else 1, i))
            last = group
        for turns in self.sessions.values():
            turns.sort()
        # a session is chained only when all its turns (1, 2, ..., k) are among the first n records
        self.complete = [g for g, turns in self.sessions.items()
                         if g not in cut_short and [t for t, _ in turns] == list(range(1, len(turns) + 1))]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"sessions": len(self.sessions), "sessions_chained": len(self.complete),
                  "multi_turn_scope": "sessions whose every turn is among the first N records",
                  "resize_for_l1_l2": f"edited resized to the GT target size with {MB_RESIZE} when they differ"})
        return d

    def jobs(self):
        out = []
        for g, turns in self.sessions.items():
            for _, i in turns:
                out.append(("single-turn", i, None, True))
            if g not in self.complete:
                continue
            for k, (_, i) in enumerate(turns):
                final = k == len(turns) - 1
                if k == 0:
                    out.append(("multi-turn", i, ("single-turn", i), final))  # same input and seed: reuse
                else:
                    out.append(("multi-turn", i, ("multi-turn", turns[k - 1][1]), final))
        return out


class EmuProtocol(_DatasetProtocol):
    """Emu Edit: the edited image against the input and the captions, per task."""

    name = "emu"
    fmt = "emu"
    settings = ("emu",)

    def jobs(self):
        return [("emu", i, None, True) for i in range(self.n)]


def make_protocol(cfg: EvalConfig):
    if cfg.protocol == "shapes":
        return ShapesProtocol(cfg.n, cfg.seed, cfg.size, cfg.renderer)
    if cfg.protocol == "magicbrush":
        return MagicBrushProtocol(cfg.data, cfg.n, cfg.split)
    return EmuProtocol(cfg.data, cfg.n, cfg.split)
