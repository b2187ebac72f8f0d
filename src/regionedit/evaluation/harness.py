"""The evaluation harness: protocols x methods -> per-sample metrics -> ``results.json`` / ``.md``.

Published editing numbers are often not comparable because the protocol hides choices (which CLIP,
which DINO, which resolution, global or local captions, GT target or source as reference). Here a
run is fully determined by its :class:`EvalConfig`, and ``results.json`` states every choice: the
protocol, seed, N, steps, guidance, the images' and methods' resolutions, the prompts each method
got, the feature extractors by name with their preprocessing (``FeatureExtractor.name`` /
``.config``), the definition of every metric, and the metrics or methods that could not run, with
the reason.

    from regionedit.evaluation.harness import EvalConfig, run_evaluation
    results = run_evaluation(EvalConfig(protocol="shapes", methods=["oracle", "sdedit"], n=100, out="runs/eval"))

Protocols (:data:`PROTOCOLS`)
-----------------------------
``shapes``
    held-out shapes-world samples ``sample_edit(seed, i, size)`` for ``i < n`` (default seed 20000:
    training never uses seeds >= 20000). Exact ground truth: region IoU, leakage, preservation, edit
    success (measured objects vs the target scene graph), absent accuracy; plus L1/L2/CLIP-I/DINO
    against the GT target, CLIP-T against the target caption and CLIP-dir.
``magicbrush``
    a MagicBrush-layout folder (``regionedit world make --format magicbrush`` or the real
    MagicBrush parquet / release folder): L1, L2, CLIP-I and DINO of the edited image against the GT
    target (CLIP-T against the target caption too when the data has captions), in two settings as
    MagicBrush's ``image_eval.py``: ``single-turn`` (every turn edited from its GT input, all turns
    averaged) and ``multi-turn`` (turns of a session chained in ``turn_index`` order, each turn's
    output being the next turn's input; the final turn's output is compared with the final GT
    target, one value per session). Only sessions whose every turn is among the first N records
    are chained.
``emu``
    an Emu-Edit-layout folder (``regionedit world make --format emu`` or the real Emu Edit test
    set): the edited image against the *input* and the captions, per task: CLIP-I(source, edited),
    L1(source, edited), CLIP-T(edited, output_caption), CLIP-dir and DINO(source, edited).

Output folder
-------------
``samples.jsonl`` (one line per (setting, method, sample) as soon as it is computed; a rerun with
the same configuration skips the samples already there, so runs resume), ``eval_config.json`` (what
the records were computed with; a rerun with a different configuration into the same folder is
refused), ``results.json``, ``results.md`` (:mod:`regionedit.evaluation.report`),
``grid_<setting>.png`` (source | GT target | each method's output with its region outlined, first
K samples) and ``outputs/<setting>/<method>/<index>.png`` (the outputs the grids and the multi-turn
chains need).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import metrics as M
from .baselines import METHODS, MethodSettings, MethodUnavailable, build_methods

PROTOCOLS: tuple[str, ...] = ("shapes", "magicbrush", "emu")
DEFAULT_SEED = 20_000  # held-out world seeds (training uses seed 0 and never seeds >= 20000)
MB_RESIZE = "PIL bicubic"  # MagicBrush resizes the generated image to the GT size before L1/L2

# metric key -> (column label, higher is better, definition)
METRICS: dict[str, tuple[str, bool | None, str]] = {
    "region_iou": ("IoU", True, "region_iou(method region, GT edit mask); both empty = 1; not computed for "
                   "methods without a region (sdedit, instructpix2pix)"),
    "leakage": ("leak", False, "leakage(edited, source, GT mask): mean |edited - source| in [0, 1] outside the "
                "GT mask"),
    "preservation": ("pres", True, "preservation(edited, source, GT mask): share of pixels outside the GT mask left "
                     "bit-identical"),
    "edit_success": ("success", True, "edit_success_sample: measured objects of the edited image match the target "
                     "scene graph (per category rules; absent: success iff status is no_edit)"),
    "no_edit": ("no-edit", None, "share of samples answered with status no_edit"),
    "absent_no_edit": ("absent->no-edit", True, "absent_accuracy: share of absent-referent samples answered no_edit"),
    "false_no_edit": ("false no-edit", False, "absent_accuracy: share of the other samples answered no_edit"),
    "l1": ("L1", False, "l1(edited, GT target): mean |a - b| of [0, 1] pixels (MagicBrush L1)"),
    "l2": ("L2", False, "l2(edited, GT target): mean squared difference of [0, 1] pixels (MagicBrush 'L2' = MSE)"),
    "clip_i": ("CLIP-I", True, "clip_i(edited, GT target): cosine of CLIP image embeddings"),
    "clip_t": ("CLIP-T", True, "clip_t(edited, target caption): cosine of CLIP image and text embeddings "
               "(global caption of the desired output; Emu Edit CLIPout)"),
    "clip_dir": ("CLIP-dir", True, "clip_dir(source, edited, source caption, target caption): cosine of the "
                 "normalised image and caption embedding differences (Emu Edit CLIPdir)"),
    "dino": ("DINO", True, "dino_sim(edited, GT target): cosine of DINO CLS embeddings (MagicBrush DINO)"),
    "clip_i_src": ("CLIP-I(src)", True, "clip_i(edited, source): cosine of CLIP image embeddings of input and "
                   "output (Emu Edit CLIPim)"),
    "l1_src": ("L1(src)", False, "l1(edited, source): mean |a - b| of [0, 1] pixels (Emu Edit L1)"),
    "dino_src": ("DINO(src)", True, "dino_sim(edited, source): cosine of DINO CLS embeddings (Emu Edit DINO)"),
    "seconds": ("s/edit", False, "wall-clock seconds per edit on this machine"),
}

PROTOCOL_METRICS: dict[str, tuple[str, ...]] = {
    "shapes": ("region_iou", "leakage", "preservation", "edit_success", "absent_no_edit", "false_no_edit",
               "l1", "l2", "clip_i", "clip_t", "clip_dir", "dino", "seconds"),
    "magicbrush": ("l1", "l2", "clip_i", "dino", "clip_t", "seconds"),
    "emu": ("clip_i_src", "l1_src", "clip_t", "clip_dir", "dino_src", "seconds"),
}
CATEGORY_METRICS: dict[str, tuple[str, ...]] = {
    "shapes": ("region_iou", "leakage", "preservation", "edit_success", "no_edit", "l1", "clip_i", "clip_t", "dino"),
    "magicbrush": ("l1", "l2", "clip_i", "dino", "clip_t"),
    "emu": ("clip_i_src", "l1_src", "clip_t", "clip_dir", "dino_src"),
}
CLIP_KEYS = ("clip_i", "clip_t", "clip_dir", "clip_i_src")
DINO_KEYS = ("dino", "dino_src")


# ------------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass
class EvalConfig:
    """Everything a run depends on (CLI: ``regionedit eval``)."""

    protocol: str
    out: str | Path
    methods: list[str] = dataclasses.field(default_factory=lambda: list(METHODS))
    n: int = 100
    seed: int = DEFAULT_SEED
    data: str | Path | None = None  # dataset folder (magicbrush, emu)
    split: str | None = None  # parquet split of the dataset (e.g. "dev", "test"); None: all files
    model: str | Path = "shapes-64"
    steps: int = 20
    guidance: float = 4.0
    sdedit_strength: float = 0.6
    candidates: int = 3  # our editor's generator candidates (EditorConfig.candidates)
    size: int = 64  # shapes protocol: image side
    renderer: str = "regionedit"  # shapes protocol: who draws the scenes (evaluation.alt_render.RENDERERS)
    clip: str | Path | None = None  # CLIP for the metrics (folder / hub id); None: the model's own CLIP
    dino: str | Path | None = M.DEFAULT_DINO  # DINO for the metrics (folder / hub id in the local cache); None: skip
    grid_k: int = 8
    save_outputs: bool = False  # keep every output PNG (otherwise only those the grids and chains need)
    command: str | None = None

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {list(PROTOCOLS)}")
        if self.protocol != "shapes" and not self.data:
            raise ValueError(f"the {self.protocol} protocol needs --data DIR (a {self.protocol} dataset folder; "
                             f"`regionedit world make --format {self.protocol}` makes one)")
        if int(self.n) < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        from regionedit.world.alt_render import RENDERERS

        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; choose one of {list(RENDERERS)}")
        if self.renderer != "regionedit" and self.protocol != "shapes":
            raise ValueError("--renderer applies to the shapes protocol only (dataset protocols read their images)")
        if int(self.candidates) < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if int(self.steps) < 2:
            raise ValueError(f"steps must be >= 2 (DiffEdit's mask step needs two), got {self.steps}")
        if not self.methods:
            raise ValueError("give at least one method")

    def method_settings(self) -> MethodSettings:
        return MethodSettings(steps=int(self.steps), guidance=float(self.guidance), sdedit_strength=float(self.sdedit_strength),
                              candidates=int(self.candidates))


# ------------------------------------------------------------------------------------------------
# samples


@dataclasses.dataclass
class EvalSample:
    """One edit to evaluate, whatever the protocol.

    ``source_prompt`` / ``target_prompt`` are what prompt-driven baselines get (DiffEdit, SDEdit):
    the dataset's source / target caption when present; otherwise ``""`` for the source and the
    WorldDescriber target description (or, if it cannot read the instruction, the instruction) for
    the target. ``prompt_origin`` says which.
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
                          src, tgt, origin, group=group, turn=turn)

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


# ------------------------------------------------------------------------------------------------
# feature extractors (cached per image / caption)


class CachedExtractor:
    """A :class:`~regionedit.evaluation.metrics.FeatureExtractor` with an LRU cache of embeddings
    (the source, target and captions of a sample are embedded once for all methods)."""

    def __init__(self, ext, size: int = 256):
        self.ext, self.name, self.config, self.size = ext, ext.name, dict(ext.config), size
        self._img: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._txt: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _get(self, cache: OrderedDict, key, fn):
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        v = fn()
        cache[key] = v
        if len(cache) > self.size:
            cache.popitem(last=False)
        return v

    def image_embed(self, images) -> torch.Tensor:
        x = M._raw_batch(images, "images")
        rows = []
        for im in x:
            key = hashlib.sha1(repr((im.shape, im.dtype.str)).encode() + np.ascontiguousarray(im).tobytes()).digest()
            rows.append(self._get(self._img, key, lambda im=im: self.ext.image_embed(im)[0]))
        return torch.stack(rows)

    def text_embed(self, texts) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return torch.stack([self._get(self._txt, t, lambda t=t: self.ext.text_embed([t])[0]) for t in texts])


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0] if s else ''}"


def build_extractors(cfg: EvalConfig, models) -> tuple[dict[str, CachedExtractor], dict[str, str]]:
    """CLIP and DINO extractors for the metrics; ``(extractors, unavailable reasons)``."""
    from regionedit import models as Mod

    exts: dict[str, CachedExtractor] = {}
    unavailable: dict[str, str] = {}
    try:
        clip_models = models if cfg.clip is None else Mod.load(cfg.model, clip=cfg.clip)
        exts["clip"] = CachedExtractor(M.clip_extractor(clip_models))
    except Exception as e:  # missing CLIP folder / weights
        unavailable["clip"] = (f"CLIP metrics ({', '.join(CLIP_KEYS)}) not computed: cannot load the CLIP "
                               f"{cfg.clip or str(cfg.model) + '/clip'} ({_first_line(e)})")
    if cfg.dino is None:
        unavailable["dino"] = "DINO metrics not computed: disabled (--dino none)"
    else:
        try:
            exts["dino"] = CachedExtractor(M.dino_extractor(str(cfg.dino), local_files_only=True))
        except (M.MetricUnavailable, ValueError) as e:
            unavailable["dino"] = f"DINO metrics ({', '.join(DINO_KEYS)}) not computed: {e}"
    return exts, unavailable


# ------------------------------------------------------------------------------------------------
# per-sample metrics


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _resize_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == tuple(hw):
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def sample_metrics(protocol: str, s: EvalSample, edited: np.ndarray, region: np.ndarray | None, status: str,
                   exts: dict[str, Any]) -> dict[str, float | None]:
    """The per-sample metrics of a protocol (keys in :data:`METRICS`; None = not defined here)."""
    clip, dino = exts.get("clip"), exts.get("dino")
    out: dict[str, float | None] = {}
    if protocol == "shapes":
        gt = s.mask
        out["region_iou"] = _f(M.region_iou(region, gt)) if region is not None else None
        out["leakage"] = _f(M.leakage(edited, s.source, gt))
        out["preservation"] = _f(M.preservation(edited, s.source, gt))
        out["edit_success"] = float(bool(M.edit_success_sample(s.world, edited, status=status)))
        out["no_edit"] = float(status == "no_edit")
        out["l1"] = _f(M.l1(edited, s.target))
        out["l2"] = _f(M.l2(edited, s.target))
        if clip is not None:
            out["clip_i"] = _f(M.clip_i(clip, edited, s.target))
            out["clip_t"] = _f(M.clip_t(clip, edited, s.target_caption))
            out["clip_dir"] = _f(M.clip_dir(clip, s.source, edited, s.source_caption, s.target_caption))
        if dino is not None:
            out["dino"] = _f(M.dino_sim(dino, edited, s.target))
    elif protocol == "magicbrush":
        gen = _resize_to(edited, s.target.shape[:2])
        out["l1"] = _f(M.l1(gen, s.target))
        out["l2"] = _f(M.l2(gen, s.target))
        if clip is not None:
            out["clip_i"] = _f(M.clip_i(clip, edited, s.target))
            out["clip_t"] = _f(M.clip_t(clip, edited, s.target_caption)) if s.target_caption else None
        if dino is not None:
            out["dino"] = _f(M.dino_sim(dino, edited, s.target))
    elif protocol == "emu":
        out["l1_src"] = _f(M.l1(edited, s.source))
        if clip is not None:
            out["clip_i_src"] = _f(M.clip_i(clip, edited, s.source))
            out["clip_t"] = _f(M.clip_t(clip, edited, s.target_caption)) if s.target_caption else None
            out["clip_dir"] = (_f(M.clip_dir(clip, s.source, edited, s.source_caption, s.target_caption))
                               if s.source_caption and s.target_caption else None)
        if dino is not None:
            out["dino_src"] = _f(M.dino_sim(dino, edited, s.source))
    return out


# ------------------------------------------------------------------------------------------------
# output folder: records, images


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


# ------------------------------------------------------------------------------------------------
# grids


def _outline(mask: np.ndarray) -> np.ndarray:
    m = np.pad(mask, 1, mode="constant", constant_values=False)  # a full-image region outlines the border
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def _panel(image: np.ndarray | None, size: int, region: np.ndarray | None = None) -> Image.Image:
    if image is None:
        p = Image.new("RGB", (size, size), (200, 200, 200))
        ImageDraw.Draw(p).text((4, size // 2 - 6), "n/a", fill=(80, 80, 80))
        return p
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BICUBIC
    arr = np.asarray(Image.fromarray(image).resize((nw, nh), resample)).copy()
    if region is not None and region.any():
        r = np.asarray(Image.fromarray(region.astype(np.uint8) * 255).resize((nw, nh), Image.Resampling.NEAREST)) >= 128
        edge = _outline(r)
        edge = edge | np.roll(edge, 1, 0) | np.roll(edge, 1, 1) if size >= 128 else edge
        arr[edge] = (255, 0, 255)
    p = Image.new("RGB", (size, size), (255, 255, 255))
    p.paste(Image.fromarray(arr), ((size - nw) // 2, (size - nh) // 2))
    return p


def make_grid(rows: list[tuple[str, list[tuple[str, np.ndarray | None, np.ndarray | None]]]], path: Path) -> Path:
    """A PNG grid: one row per sample (label, [(column title, image, region)...])."""
    cols = [title for title, _, _ in rows[0][1]]
    biggest = max((im.shape[0] for _, panels in rows for _, im, _ in panels if im is not None), default=64)
    size = 128 if biggest <= 128 else 256
    label_h, pad = 14, 4
    width = pad + len(cols) * (size + pad)
    height = label_h + len(rows) * (size + label_h + pad)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(cols):
        draw.text((pad + c * (size + pad), 1), title[: size // 6], fill=(0, 0, 0))
    y = label_h
    for label, panels in rows:
        draw.text((pad, y), label[: width // 6], fill=(60, 60, 60))
        y += label_h
        for c, (_, im, region) in enumerate(panels):
            grid.paste(_panel(im, size, region), (pad + c * (size + pad), y))
        y += size + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, format="PNG")
    return path


# ------------------------------------------------------------------------------------------------
# aggregation


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


# ------------------------------------------------------------------------------------------------
# the run


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


def _canonical_command(cfg: EvalConfig) -> str:
    parts = ["regionedit", "eval", "--protocol", cfg.protocol, "--methods", ",".join(cfg.methods), "--n", str(cfg.n),
             "--seed", str(cfg.seed), "--out", str(cfg.out)]
    if cfg.data:
        parts += ["--data", str(cfg.data)]
    if cfg.split:
        parts += ["--split", cfg.split]
    parts += ["--model", str(cfg.model), "--steps", str(cfg.steps), "--guidance", str(cfg.guidance),
              "--candidates", str(cfg.candidates)]
    if cfg.protocol == "shapes":
        parts += ["--size", str(cfg.size)]
        if cfg.renderer != "regionedit":
            parts += ["--renderer", cfg.renderer]
    if cfg.clip:
        parts += ["--clip", str(cfg.clip)]
    parts += ["--dino", str(cfg.dino) if cfg.dino else "none"]
    return " ".join(parts)


def run_evaluation(cfg: EvalConfig, progress: bool = True, log=None) -> dict[str, Any]:
    """Run (or resume) an evaluation and write ``results.json``, ``results.md`` and the grids.

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

    from .report import write_markdown

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
    results["computed"] = computed
    return results


def _grid_indices(jobs, settings, k: int) -> dict[str, list[int]]:
    idx: dict[str, list[int]] = {s: [] for s in settings}
    for setting, index, _, reported in jobs:
        if reported and len(idx[setting]) < k:
            idx[setting].append(index)
    return idx


def _write_grids(cfg: EvalConfig, proto, methods: list[str], out: Path, grid_idx: dict[str, list[int]]) -> list[Path]:
    paths = []
    for setting, indices in grid_idx.items():
        rows = []
        for i in indices:
            s = proto.sample(i)
            source = s.source
            if setting == "multi-turn" and s.group is not None:
                first = proto.sessions[s.group][0][1]
                source = proto.sample(first).source
            panels: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [
                ("source", source, None), ("GT target", s.target, s.mask)]
            for m in methods:
                p = output_path(out, setting, m, i)
                rp = output_path(out, setting, m, i, region=True)
                im = _load_png(p) if p.exists() else None
                region = (_load_png(rp)[..., 0] >= 128) if rp.exists() else None
                panels.append((m, im, region))
            label = f"#{i} {s.category or ''}: {s.instruction}"
            rows.append((label, panels))
        if rows:
            paths.append(make_grid(rows, out / f"grid_{setting}.png"))
    return paths


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
        definitions["clip_t"] += "; only when the dataset has target captions"
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
                "clip_dir_captions": "dataset source and target captions (global)",
            },
            "grid_k": int(cfg.grid_k),
        },
        "methods": {n: methods[n].params for n in names},
        "skipped_methods": skipped,
        "feature_extractors": {k: {"name": e.name, "config": e.config} for k, e in exts.items()},
        "metric_definitions": definitions,
        "metric_columns": {"overall": list(PROTOCOL_METRICS[cfg.protocol]), "category": list(CATEGORY_METRICS[cfg.protocol])},
        "metric_labels": {k: {"label": v[0], "higher_is_better": v[1]} for k, v in METRICS.items()},
        "unavailable_metrics": unavailable,
        "not_computed": not_computed,
        "settings": settings,
    }
