"""Choosing among the generator's candidates in the shapes world: CLIP reads each one as the edit asked.

For a new object (add, replace, recolour) the score is the log-probability of its colour and shape in the
region (:meth:`~regionedit.world.priors.verify.ReferentVerifier.attribute_probabilities`); for a background edit,
the margin of the whole image's CLIP cosine with "on a <asked> background" over the best other background of
WORLD.md's palette. Higher is better.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from regionedit.world import spec


class CandidateScorer:
    """``scorer(edited (H, W, 3) uint8, region (H, W) bool, intent) -> float | None``; ``verifier()`` gives the
    :class:`~regionedit.world.priors.verify.ReferentVerifier` (built lazily by its owner)."""

    def __init__(self, models, verifier: Callable):
        self.models = models
        self._verifier = verifier
        self._background_embeddings: dict[tuple, torch.Tensor] = {}

    def readable(self, intent) -> bool:
        """Whether an edit of ``intent`` can be read (cheap: no model call)."""
        if intent is None:
            return False
        if intent.op == "background":
            return intent.background is not None and tuple(intent.background) in self.background_texts()
        if intent.op not in ("add", "local", "color"):
            return False
        v = self._verifier()
        shape = intent.new_shape if intent.op != "color" else (intent.target.shape if intent.target else None)
        return intent.new_color in v.config.colors or shape in v.config.shapes

    def __call__(self, edited: np.ndarray, region: np.ndarray, intent) -> float | None:
        """The candidate's score; None when there is nothing to read (a removal, a resize, an unnamed colour or
        shape, an empty region, a background outside the palette)."""
        if not self.readable(intent) or not region.any():
            return None
        if intent.op == "background":
            options = self.background_texts()
            want = tuple(intent.background)
            f = F.normalize(self._clip_features(edited), dim=-1)
            z = (f @ options[want][None].T)[0, 0], (f @ torch.stack([e for k, e in options.items() if k != want]).T).max()
            return float(z[0] - z[1])
        v = self._verifier()
        color = intent.new_color
        shape = intent.new_shape if intent.op != "color" else (intent.target.shape if intent.target else None)
        if not v.to_clip_frame(edited, region)[1].any():
            return None  # a region too small to survive CLIP's input size: nothing to read
        p_color, p_shape = v.attribute_probabilities(edited, region)
        score = 0.0
        if color in v.config.colors:
            score += float(np.log(p_color[v.config.colors.index(color)] + 1e-9))
        if shape in v.config.shapes:
            score += float(np.log(p_shape[v.config.shapes.index(shape)] + 1e-9))
        return score

    def background_texts(self) -> dict:
        """``{(top, bottom or None): unit CLIP text embedding of "on a <top>[ to <bottom>] background"}`` over
        WORLD.md's background palette (computed once)."""
        cache = self._background_embeddings
        if not cache:
            from regionedit.localize.features import text_embeddings

            keys = [(a, None) for a in spec.BACKGROUND_COLORS] + [
                (a, b) for a in spec.BACKGROUND_COLORS for b in spec.BACKGROUND_COLORS if a != b]
            texts = [f"on a {a} background" if b is None else f"on a {a} to {b} background" for a, b in keys]
            with torch.no_grad():
                e = F.normalize(text_embeddings(self.models.clip, self.models.clip_tokenizer, texts), dim=-1)
            cache.update(zip(keys, e))
        return cache

    @torch.no_grad()
    def _clip_features(self, image: np.ndarray) -> torch.Tensor:
        """``(1, D)`` CLIP image embedding (unnormalised) of a whole ``(H, W, 3)`` uint8 image, resized to CLIP's
        input side as the referent verifier does."""
        from regionedit.localize.features import clip_pixels, image_features

        proc = self.models.clip_processor
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
        clip = self.models.clip
        pixels = clip_pixels(x, self._verifier().size, proc.image_mean, proc.image_std).to(clip.device, clip.dtype)
        return image_features(clip, pixels)[1].float()  # float32 whatever the models' precision
