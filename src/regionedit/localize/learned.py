"""``LearnedLocalizer``: the seed-001 region predictor over frozen CLIP patch features and instruction features.

    loc = LearnedLocalizer(models, load_region_predictor(folder))
    prob, presence = loc(image, "remove the red circle")   # (H, W) float32 in [0, 1], float in [0, 1] or None

Any CLIP (vision + text towers) and instruction encoder that :class:`regionedit.models.Models` loads can feed it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F


class LearnedLocalizer:
    """A region predictor (:class:`regionedit.localize.RegionPredictor`) on ``models.clip`` patch features and
    ``models.instruction_encoder`` features. CLIP features are cached per image content (as SAM's predictor
    does), so a second instruction on the same image is cheap."""

    def __init__(self, models, predictor, dtype: torch.dtype | None = None):
        """``models``: a :class:`regionedit.models.Models` (any dtype / device); ``predictor``: a region predictor,
        moved (in place) to the models' device; ``dtype``: the dtype it runs in (None: its own, float32 as
        :func:`~regionedit.localize.load_region_predictor` loads it: the predictor is small, and its calibrated
        thresholds were chosen in float32). Features of float16 / bfloat16 models are cast to the predictor's dtype,
        and the region map comes back float32 either way."""
        self.models = models
        self.predictor = predictor.eval().requires_grad_(False)
        self._cache: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self.to(getattr(models, "device", None), dtype)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "LearnedLocalizer":
        """Run the region predictor on ``device`` in ``dtype`` (None: keep the current one); returns self. Moves the
        predictor module in place (as ``nn.Module.to`` does); the cached CLIP features stay valid."""
        if device is not None or dtype is not None:
            self.predictor.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        """Device the region predictor runs on."""
        return next(self.predictor.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype the region predictor runs in (its features are cast to it)."""
        return next(self.predictor.parameters()).dtype

    def clear_cache(self) -> None:
        """Forget the cached CLIP features of earlier images."""
        self._cache.clear()

    def calibrated(self, name: str, learned_only: bool) -> float | None:
        """A calibrated threshold of the predictor's folder (``threshold``, ``presence_threshold``,
        ``verify_threshold``): the one chosen for the learned parts alone when ``learned_only`` and the folder
        has it, else the one chosen with the plugin's priors; None when the folder has neither."""
        learned = getattr(self.predictor, "learned_thresholds", None) or {}
        if learned_only and name in learned:
            return learned[name]
        return getattr(self.predictor, name, None)

    @torch.no_grad()
    def embed_image(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F_img (1, N, D) CLIP patch features in the CLIP model's dtype and on its device, the image at CLIP's side
        (1, 3, S, S) float32 in [-1, 1] on the CPU)`` of an ``(H, W, 3)`` uint8 image, cached by content."""
        from .features import clip_pixels, image_features, resize_image

        h = hashlib.sha1(repr(image.shape).encode())
        h.update(memoryview(np.ascontiguousarray(image)).cast("B"))  # no copy of the pixels
        key = h.digest()
        if key in self._cache:
            return self._cache[key]
        proc = self.models.clip_processor
        size = proc.crop_size["height"]
        small = resize_image(image, size).float() / 127.5 - 1  # (1, 3, S, S) float32 in [-1, 1], CPU
        clip = self.models.clip
        p = next(clip.parameters())
        pixels = clip_pixels(small.to(p.device), size, proc.image_mean, proc.image_std).to(p.dtype)  # normalised in fp32
        f_img, _ = image_features(clip, pixels)
        if len(self._cache) > 16:
            self._cache.clear()
        self._cache[key] = (f_img, small)
        return self._cache[key]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, text: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float | None]:
        """``(region probability (h, w) float32 in [0, 1], presence probability or None)`` of ``text`` on an
        ``(H, W, 3)`` uint8 image; ``size`` = ``(h, w)`` the map is interpolated to (default: the image's);
        presence is None for predictors without a presence head."""
        from .features import instruction_inputs

        f_img, small = self.embed_image(image)
        dev, dt = self.device, self.dtype
        ins = {k: v.to(dev, dt) if v.is_floating_point() else v.to(dev)
               for k, v in instruction_inputs(self.models, self.predictor, [text]).items()}
        out = self.predictor(f_img.to(dev, dt), pixels=small.to(dev, dt), **ins)
        logits = out["region_logits"].float()  # the map is interpolated and squashed in float32
        prob = F.interpolate(logits, size=size or image.shape[:2], mode="bilinear", align_corners=False).sigmoid()
        presence = float(out["presence"][0].float()) if "presence" in out else None
        return prob[0, 0].cpu().numpy().astype(np.float32), presence
