"""``EditResult``: what one edit returns (image, reported mask, status, provenance)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np


OUTPUT_TYPES = ("np", "pil", "pt")


def check_output_type(output_type: str) -> str:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {list(OUTPUT_TYPES)}, got {output_type!r}")
    return output_type


def convert_image(image: np.ndarray, output_type: str = "np") -> Any:
    """An ``(H, W, 3)`` uint8 RGB image as ``output_type``: ``"np"`` the array itself, ``"pil"`` a ``PIL.Image``
    (mode RGB), ``"pt"`` a ``(3, H, W)`` float32 tensor in [0, 1] (diffusers' "pt" range)."""
    check_output_type(output_type)
    if output_type == "np":
        return image
    if output_type == "pil":
        from PIL import Image

        return Image.fromarray(image)
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


@dataclasses.dataclass
class EditResult:
    """One edit's outcome. ``image`` equals the input bit-for-bit outside ``mask``, always (the Editor enforces
    it as its last step), so ``mask`` is a superset of every changed pixel."""

    image: np.ndarray  # (H, W, 3) uint8, the edited image (the input itself when status is "no_edit")
    mask: np.ndarray  # (H, W) bool, every pixel the edit may have changed (empty for "no_edit")
    region_probability: np.ndarray | None  # (H, W) float32 in [0, 1] from the localizer (None for user masks)
    status: str  # "edited" or "no_edit"
    reason: str | None  # why nothing was edited; for an edit, what was set aside (an unreadable caption...) or None
    instruction: str
    target_description: str
    local_prompt: str
    seed: int
    method: str
    model_id: str
    seconds: float
    steps: tuple["EditResult", ...] = ()  # an instruction of several edits: each one's result, in order
    candidate: int = 0  # which of the generator's candidates was kept (its seed: seed + candidate * CANDIDATE_STRIDE)
    candidate_scores: tuple[float, ...] = ()  # each candidate's score (empty: one draw)
    priors: tuple[str, ...] = ()  # names of the priors the edit ran with (empty: the learned parts alone)
    output_type: str = "np"  # the type of ``images`` ("np", "pil", "pt"; diffusers' convention)

    @property
    def images(self) -> list:
        """``[the edited image]`` as ``output_type`` asked (diffusers-style ``result.images[0]``)."""
        return [convert_image(self.image, self.output_type)]

    def metadata(self) -> dict[str, str]:
        """Provenance for PNG text chunks."""
        return {
            "regionedit:instruction": self.instruction,
            "regionedit:status": self.status,
            "regionedit:reason": self.reason or "",
            "regionedit:target_description": self.target_description,
            "regionedit:local_prompt": self.local_prompt,
            "regionedit:seed": str(self.seed),
            "regionedit:method": self.method,
            "regionedit:model": self.model_id,
            "regionedit:priors": ",".join(self.priors),
        } | ({"regionedit:steps": json.dumps([r.instruction for r in self.steps])} if self.steps else {}) | (
            {"regionedit:candidate": str(self.candidate),
             "regionedit:candidate_scores": json.dumps([round(x, 4) for x in self.candidate_scores])}
            if self.candidate_scores else {})

    def to_json(self) -> dict[str, Any]:
        out = {"status": self.status, "reason": self.reason, "method": self.method,
               "target_description": self.target_description, "seconds": round(self.seconds, 3),
               "priors": list(self.priors)}
        if self.steps:
            out["steps"] = [{"instruction": r.instruction, **r.to_json()} for r in self.steps]
        if self.candidate_scores:
            out["candidate"], out["candidate_scores"] = self.candidate, [round(x, 4) for x in self.candidate_scores]
        return out


CANDIDATE_STRIDE = 1_000_003  # candidate k of an edit with seed s uses seed s + k * CANDIDATE_STRIDE
