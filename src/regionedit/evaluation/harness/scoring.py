"""Scoring one edit: the CLIP / DINO feature extractors of a run (cached per image and caption)
and the per-sample metrics of each protocol."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import metrics as M
from .config import CLIP_KEYS, DINO_KEYS, EvalConfig
from .protocols import EvalSample

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
            out["clip_t_local"] = _f(M.clip_t(clip, edited, s.local_caption)) if s.local_caption else None
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
