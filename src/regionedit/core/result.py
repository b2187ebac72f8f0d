"""``EditResult``: what one edit returns (image, reported mask, status, provenance)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np


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
