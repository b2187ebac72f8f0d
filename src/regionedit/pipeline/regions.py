"""Stage 3 of the :class:`~regionedit.pipeline.Editor`, localize: the region an edit changes.

The localizer's map (``(image, text, size) -> (prob, presence)``) is decided into a region: the presence gate for
edits of an existing object, the threshold (the localizer's calibrated one unless the config sets it), each prior's
``refine`` and ``shape``, at a working side on large images. :class:`RegionFinding` is mixed into the Editor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from regionedit.localize.scale import downscale_nearest, upscale_nearest


class RegionFinding:
    """The Editor's localisation methods (they read ``self.localizer``, ``self.priors``, ``self.config`` and
    ``self.describer``)."""

    def _calibrated(self, name: str) -> float | None:
        get = getattr(self.localizer, "calibrated", None)
        return None if get is None else get(name, learned_only=not self.priors)

    @property
    def threshold(self) -> float:
        """The region threshold in use: ``config.threshold``, else the localizer's calibrated one (for the learned
        parts alone when this editor has no priors and the folder has one), else 0.5."""
        if self.config.threshold is not None:
            return float(self.config.threshold)
        v = self._calibrated("threshold")
        return 0.5 if v is None else float(v)

    @property
    def presence_threshold(self) -> float:
        """Edits of an existing object whose presence score is below this get "no edit": ``config.presence_threshold``,
        else the localizer's calibrated one (as :attr:`threshold`), else 0.5 (unused without a presence score)."""
        if self.config.presence_threshold is not None:
            return float(self.config.presence_threshold)
        v = self._calibrated("presence_threshold")
        return 0.5 if v is None else float(v)  # a calibrated 0.0 (no presence gate) stays 0.0

    @property
    def work_side(self) -> int | None:
        """The long side regions are decided at: ``config.work_side``, else the smallest the priors ask for."""
        if self.config.work_side is not None:
            return self.config.work_side
        sides = [p.work_side for p in self.priors if p.work_side]
        return min(sides) if sides else None

    # -- localisation ------------------------------------------------------------------------------
    def localize(self, image: np.ndarray, text: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float | None]:
        """``(region probability (h, w) float32 in [0, 1], presence or None)`` of ``text`` on an image."""
        if self.localizer is None:
            raise RuntimeError(
                "this editor has no localizer to find the region: pass one (--localizer clipseg:ID_OR_FOLDER, "
                "owlv2:ID+sam:ID, learned:FOLDER; Python: localizer=...), train a region predictor with `regionedit "
                "train region --out runs/region`, or give a mask (--mask MASK.png, method 'mask')")
        return self.localizer(image, text, size)

    def region_instruction(self, instruction: str, desc=None) -> str:
        """The text the localizer reads for ``instruction``: the priors' wording of the edit (``desc`` described
        here when not given); without priors, the instruction as given for a localizer that reads instructions (the
        seed-001 predictor), or the referent's noun phrase ("cat"; the anchor of an addition) for one whose
        ``reads`` attribute is ``"referent"`` (CLIPSeg, OWLv2, Grounding DINO)."""
        if not self.priors:
            if getattr(self.localizer, "reads", "instruction") != "referent":
                return instruction  # the seed-001 predictor reads the instruction itself
            # a zero-shot localizer reads a noun phrase: the edited object, or the anchor of an addition
            desc = desc if desc is not None else self.describer(instruction)
            return desc.referent_text or desc.target or desc.content or instruction
        desc = desc if desc is not None else self.describer(instruction)
        for p in self.priors:
            instruction = p.localizer_text(instruction, desc)
        return instruction

    def predict_region(self, image: np.ndarray, instruction: str) -> np.ndarray:
        """Region probability ``(H, W)`` float32 in [0, 1] for an instruction (the localizer reads
        :meth:`region_instruction`)."""
        return self.localize(image, self.region_instruction(instruction))[0]

    def _place(self, image: np.ndarray, desc) -> np.ndarray | None:
        for p in self.priors:
            placed = p.place(image, desc)
            if placed is not None:
                return placed
        return None

    def find_region(self, image: np.ndarray, instruction: str, desc=None, shape: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The region an edit will use: ``(region (H, W) bool, probability (H, W) float32)``.

        A prior that places the edit's region itself (free space for "add") decides it; else the localizer's
        map is decided by :meth:`region_from` (at :attr:`work_side` on larger images, the footprint brought back
        by nearest neighbour and shaped at full size). ``shape=False`` returns the referent's footprint."""
        desc = desc if desc is not None else self.describer(instruction)
        text = self.region_instruction(instruction, desc)
        placed = self._place(image, desc)
        small, up = downscale_nearest(image, self.work_side) if self.work_side else (image, None)
        if up is None or placed is not None:
            prob, presence = self.localize(image, text)
            if placed is not None:
                return (self.shape(placed, desc, image) if shape else placed), prob
            return self.region_from(prob, presence, image, desc, shape=shape), prob
        prob_small, presence = self.localize(image, text, size=small.shape[:2])
        footprint = upscale_nearest(self.region_from(prob_small, presence, small, desc, shape=False), up)
        prob = F.interpolate(torch.from_numpy(prob_small)[None, None], size=image.shape[:2], mode="bilinear",
                             align_corners=False)[0, 0].numpy()
        return (self.shape(footprint, desc, image) if shape else footprint), prob

    def region_from(self, prob: np.ndarray, presence: float | None, image: np.ndarray, desc,
                    threshold: float | None = None, presence_threshold: float | None = None, shape: bool = True,
                    **overrides: Any) -> np.ndarray:
        """The decision rule of :meth:`find_region` on a computed ``(prob, presence)``: ``(H, W)`` bool. An edit of
        an existing object whose presence is below the presence threshold gets an empty region; else the map at
        the threshold, put right by each prior's ``refine`` (``overrides`` go to them: calibration sweeps a
        prior's settings without re-running the localizer) and shaped."""
        th = self.threshold if threshold is None else threshold
        pth = self.presence_threshold if presence_threshold is None else presence_threshold
        if presence is not None and presence < pth and desc.on_referent:
            return np.zeros(prob.shape, bool)  # the referent is not in the image
        placed = self._place(image, desc)
        if placed is not None:
            return self.shape(placed, desc, image) if shape else placed
        region = prob >= th
        for p in self.priors:
            region = p.refine(region, prob, image, desc, **overrides)
        return self.shape(region, desc, image) if shape else region

    def shape(self, footprint: np.ndarray, desc, image: np.ndarray | None = None) -> np.ndarray:
        """The region an edit changes from the referent's footprint (each prior's ``shape``, in order)."""
        if _frac(footprint) < self.config.min_region_frac:
            return footprint
        for p in self.priors:
            footprint = p.shape(footprint, desc, image)
        return footprint

    def no_region_reason(self, desc, user_mask: bool = False) -> str:
        """Why an empty region means "no edit", for a :class:`~regionedit.describe.Description`."""
        for p in self.priors:
            reason = p.no_region_reason(desc, user_mask)
            if reason is not None:
                return reason
        what = desc.referent_text or desc.target or desc.content or "the edit"
        return f"no region found for {what!r}: nothing in the image matches the instruction"


def _frac(region: np.ndarray) -> float:
    """Share of an ``(H, W)`` bool region that is True (``region.mean()``, 10x faster on large images)."""
    return np.count_nonzero(region) / region.size
