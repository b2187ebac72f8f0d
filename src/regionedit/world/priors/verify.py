"""Referent check: does the region the predictor found look like what the instruction names?

The region predictor's presence head answers "is the referent in the image?" from the instruction and the
patch features together; on near misses ("remove the red star" when the image has a red circle and a blue
star) it often says yes and the map lands on the look-alike. This is a second, independent check with the
frozen CLIP, the way seed 001 scores edits: the region's pixels are isolated (copied at their own scale onto
a canvas of the colour around them, centred, in CLIP's input frame, so CLIP sees what it was trained on: one
object on a background) and CLIP scores the canvas against every (colour, shape) of the vocabulary,
prompt-ensembled over the background names. The referent's named attributes get their marginal
probabilities (``p(colour) = sum over shapes``, and the converse); the check's score is the smaller of the
named ones. When it is below a threshold calibrated on held-out data (``benchmarks/region.py --write-card``)
the editor does not give up at once: :meth:`ReferentVerifier.relocate` lets CLIP score every class-agnostic
object proposal of the image (its colour segments, :func:`regionedit.world.priors.refine.object_segments`) and takes
the best one that reaches the threshold, so a region that landed on the wrong object moves to the right one;
only when no proposal reads as the referent is the answer "no edit".

Only pixels, the instruction's parse and learned models are read. A referent with neither colour nor shape
(or with words outside the vocabulary) is not checked (score None).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from regionedit.world import spec


@dataclasses.dataclass
class VerifierConfig:
    colors: tuple[str, ...] = tuple(spec.OBJECT_COLORS)  # the colour vocabulary (canonical names)
    shapes: tuple[str, ...] = tuple(spec.SHAPES)  # the shape vocabulary
    contexts: tuple[str, ...] = tuple(spec.BACKGROUND_COLORS)  # prompt ensembling: "a red star on a white background"
    ring: tuple[int, int] = (1, 3)  # the canvas colour is the median of the ring between these dilations (px, CLIP frame)
    cache_size: int = 8192  # scores kept per (image, region) in the CLIP frame (a threshold sweep revisits each)
    proposal_tol: float = 12.0  # colour tolerance (0-255) of the object proposals relocation scores: at 24 a
    # star's anti-aliased tips chain it to the background, so it is no proposal at all
    flat_proposals: bool = True  # also propose the flat-pixel segments (refine.flat_segments): between close colours
    # (a white star on beige) an edge fading over several pixels chains even at tolerance 12
    core_erode: float = 2.0  # a region is an object only if eroding it by this many px (per 64 px of CLIP's frame) ...
    min_core_px: float = 10.0  # ... leaves at least this many pixels (per 64x64 of it); thinner regions (a lone anti-aliased edge, a
    # stray line of the map: CLIP reads such slivers as anything, often a star) score 0. The smallest shapes-world
    # object, grown by its 1 px edge, keeps >= 19 px at 64 (tests/test_verify.py)


class ReferentVerifier:
    """CLIP zero-shot check of a region against a referent. ``models`` needs ``clip``,
    ``clip_tokenizer`` and ``clip_processor`` (:class:`regionedit.models.Models`)."""

    def __init__(self, models, config: VerifierConfig | None = None):
        self.models = models
        self.config = config or VerifierConfig()
        self._classes: torch.Tensor | None = None  # (C * S, D) normalised text embeddings, colour-major
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def size(self) -> int:
        return int(self.models.clip_processor.crop_size["height"])

    @torch.no_grad()
    def _class_embeddings(self) -> torch.Tensor:
        if self._classes is None:
            from regionedit.localize.features import text_embeddings

            cfg, m = self.config, self.models
            rows = []
            for c in cfg.colors:
                for s in cfg.shapes:
                    texts = [f"a {c} {s} on {'an' if b[0] in 'aeiou' else 'a'} {b} background" for b in cfg.contexts]
                    e = F.normalize(text_embeddings(m.clip, m.clip_tokenizer, texts), dim=-1).mean(0)
                    rows.append(F.normalize(e, dim=0))
            self._classes = torch.stack(rows)
        return self._classes

    def to_clip_frame(self, image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` (H, W, 3) uint8 and ``region`` (H, W) bool resized to CLIP's square input (S, S):
        ``(clip_image(image), clip_region(region))``."""
        return self.clip_image(image), self.clip_region(region)

    def clip_image(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H, W, 3) uint8 as the editor's CLIP features see it: (S, S, 3) uint8, bilinear with
        antialiasing (the image itself when already that size). Compute it once per image and pass it as
        ``clip_image=`` to :meth:`score` / :meth:`relocate`: at 2048 px the resize costs more than a score."""
        s = self.size
        if image.shape[:2] == (s, s):
            return image
        from regionedit.localize.features import resize_image

        return np.ascontiguousarray(resize_image(image, s)[0].permute(1, 2, 0).numpy())

    def clip_region(self, region: np.ndarray) -> np.ndarray:
        """``region`` (H, W) bool in CLIP's frame: (S, S) bool, a pixel in when at least half its area is."""
        s = self.size
        if region.shape == (s, s):
            return region
        return F.adaptive_avg_pool2d(torch.from_numpy(region.astype(np.float32))[None, None], (s, s))[0, 0].numpy() >= 0.5

    def isolate(self, image: np.ndarray, region: np.ndarray) -> np.ndarray:
        """The region's pixels, centred on a canvas of the colour around them: ``(S, S, 3)`` uint8.

        ``image`` (S, S, 3) uint8 and ``region`` (S, S) bool, both in CLIP's frame (:meth:`to_clip_frame`).
        The object keeps its scale (no zoom: CLIP never saw zoomed objects).
        """
        from regionedit.compose import dilate

        a, b = self.config.ring
        ring = dilate(region, b) & ~dilate(region, a)
        if not ring.any():
            ring = ~region
        bg = np.median(image[ring], axis=0) if ring.any() else np.zeros(3)
        canvas = np.empty_like(image)
        canvas[:] = np.round(bg).astype(np.uint8)
        ys, xs = np.nonzero(region)
        h, w = region.shape
        dy = h // 2 - int(round((ys.min() + ys.max()) / 2))
        dx = w // 2 - int(round((xs.min() + xs.max()) / 2))
        ty, tx = ys + dy, xs + dx
        ok = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        canvas[ty[ok], tx[ok]] = image[ys[ok], xs[ok]]
        return canvas

    @torch.no_grad()
    def attribute_probabilities(self, image: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p_colour (C,), p_shape (S,))``: CLIP's marginal probabilities over the vocabulary for the
        isolated region. ``image`` (H, W, 3) uint8, ``region`` (H, W) bool, any size (non-empty)."""
        from regionedit.localize.features import clip_pixels

        img, r = self.to_clip_frame(image, region)
        if not r.any():
            raise ValueError("the region is empty in CLIP's frame: nothing to check")
        key = hashlib.sha1(img.tobytes() + np.packbits(r).tobytes()).digest()
        if key in self._cache:
            return self._cache[key]
        canvas = self.isolate(img, r)
        proc, clip = self.models.clip_processor, self.models.clip
        x = torch.from_numpy(canvas).permute(2, 0, 1)[None].float() / 127.5 - 1
        pixels = clip_pixels(x, self.size, proc.image_mean, proc.image_std).to(clip.device, clip.dtype)
        e = clip.get_image_features(pixel_values=pixels)
        e = F.normalize(getattr(e, "pooler_output", e).float(), dim=-1)
        p = (clip.logit_scale.exp().float() * e @ self._class_embeddings().float().T).softmax(-1)[0].cpu()
        p = p.reshape(len(self.config.colors), len(self.config.shapes)).numpy()
        out = (p.sum(1), p.sum(0))
        if len(self._cache) >= self.config.cache_size:
            self._cache.clear()
        self._cache[key] = out
        return out

    def score(self, image: np.ndarray, region: np.ndarray, referent, clip_image: np.ndarray | None = None) -> float | None:
        """The smaller of CLIP's probabilities for the referent's named colour and shape on the region, in
        [0, 1] (0 for a sliver, :meth:`is_object`); None when the referent names neither (or only words outside the vocabulary) or the region is
        empty. ``referent``: a :class:`regionedit.world.intent.Referent`; ``clip_image``: :meth:`clip_image` of
        ``image`` when already computed."""
        cfg = self.config
        named = [(cfg.colors.index(referent.color), 0) if referent.color in cfg.colors else None,
                 (cfg.shapes.index(referent.shape), 1) if referent.shape in cfg.shapes else None]
        named = [n for n in named if n is not None]
        if not named or not region.any():
            return None
        img = self.clip_image(image) if clip_image is None else clip_image
        r = self.clip_region(region)
        if not r.any():
            return None
        if not self.is_object(r):
            return 0.0
        probs = self.attribute_probabilities(img, r)
        return float(min(probs[which][i] for i, which in named))

    def is_object(self, region: np.ndarray) -> bool:
        """Whether a region ``(S, S)`` bool in CLIP's frame is thick enough to be an object rather than a
        sliver (see ``VerifierConfig.core_erode`` / ``min_core_px``)."""
        from regionedit.compose import erode

        px = max(1, round(self.config.core_erode * region.shape[0] / 64))
        return int(erode(region, px).sum()) >= self.config.min_core_px * region.size / 64 ** 2

    def relocate(self, image: np.ndarray, referent, threshold: float, min_frac: float = 0.002,
                 max_frac: float = 0.4, snap_grow: int | None = None,
                 clip_image: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
        """The object proposal CLIP reads best as ``referent``: ``(region (H, W) bool or None, its score)``.

        ``image`` (H, W, 3) uint8, any size; proposals are the colour segments of the image in CLIP's frame
        covering ``min_frac``..``max_frac`` of it (:func:`regionedit.world.priors.refine.object_segments`), each
        scored by :meth:`score`. The best proposal is returned, scaled back to (H, W) by nearest neighbour, when its score
        reaches ``threshold``; otherwise ``(None, best score)`` (score 0.0 when nothing could be scored).
        With ``snap_grow`` (px) an image of another size gets the proposal's upscaling snapped to its own
        full-resolution colour segments (:func:`regionedit.world.priors.refine.snap_region`, grown by that much).
        ``clip_image``: :meth:`clip_image` of ``image`` when already computed.
        """
        from regionedit.world.priors.refine import snap_region

        h, w = image.shape[:2]
        img = self.clip_image(image) if clip_image is None else clip_image
        best, best_score = None, 0.0
        for seg, sc in self._scored_proposals(img, referent, min_frac, max_frac):
            if sc is not None and sc > best_score:
                best, best_score = seg, sc
        if best is None or best_score < threshold:
            return None, best_score
        s = best.shape[0]
        if (h, w) == (s, s):
            return best, best_score
        yi = np.minimum((np.arange(h) + 0.5) * s / h, s - 1).astype(int)
        xi = np.minimum((np.arange(w) + 0.5) * s / w, s - 1).astype(int)
        region = best[yi][:, xi]
        return (region if snap_grow is None else snap_region(region, image, grow=snap_grow)), best_score

    def _scored_proposals(self, img: np.ndarray, referent, min_frac: float, max_frac: float):
        """``(proposal (S, S) bool, score or None)`` for every object proposal of ``img`` (CLIP's frame, (S, S, 3)
        uint8): :func:`regionedit.world.priors.refine.object_segments` at ``config.proposal_tol``, largest first."""
        from regionedit.world.priors.refine import object_segments

        for seg in object_segments(img, min_frac, max_frac, tol=self.config.proposal_tol, flat=self.config.flat_proposals):
            yield seg, self.score(img, seg, referent)

    def readings(self, image: np.ndarray, referent, min_score: float = 0.5, min_frac: float = 0.002,
                 max_frac: float = 0.4, clip_image: np.ndarray | None = None) -> list[tuple[np.ndarray, str]]:
        """Every object proposal CLIP reads as ``referent``: ``[(region (S, S) bool in CLIP's frame, "red
        circle"), ...]``, largest first. A proposal (:func:`regionedit.world.priors.refine.object_segments`, as
        :meth:`relocate`) counts when CLIP's most probable colour and shape agree with every attribute the
        referent names and its :meth:`score` reaches ``min_score``. ``image`` (H, W, 3) uint8, any size; an
        empty list when the referent names neither colour nor shape. Two of them for a referent that leaves
        its colour or shape unsaid ("the circle" with a red and a blue circle) make the instruction ambiguous."""
        cfg = self.config
        if referent.color not in cfg.colors and referent.shape not in cfg.shapes:
            return []
        img = self.clip_image(image) if clip_image is None else clip_image
        out = []
        for seg, sc in self._scored_proposals(img, referent, min_frac, max_frac):
            if sc is None or sc < min_score:
                continue
            colour, shape = self.read(img, seg)
            if referent.color in (None, colour) and referent.shape in (None, shape):
                out.append((seg, f"{colour} {shape}"))
        return out

    def read(self, image: np.ndarray, region: np.ndarray) -> tuple[str, str]:
        """CLIP's reading of the region as ``(colour, shape)``, words of the vocabulary (e.g. to fill in
        what an instruction leaves out: "replace the square with a triangle" keeps the square's colour).
        ``image`` (H, W, 3) uint8 and ``region`` (H, W) bool (non-empty), any size."""
        pc, ps = self.attribute_probabilities(image, region)
        return self.config.colors[int(pc.argmax())], self.config.shapes[int(ps.argmax())]

    def best(self, image: np.ndarray, region: np.ndarray) -> str:
        """CLIP's reading of the region, e.g. ``"blue circle"`` (for messages)."""
        return " ".join(self.read(image, region))


__all__ = ["ReferentVerifier", "VerifierConfig"]
