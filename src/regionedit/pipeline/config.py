"""``EditorConfig``: the general Editor's settings (a plugin's own settings live with its priors)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class EditorConfig:
    steps: int = 20  # denoising steps of the generator
    guidance: float = 4.0  # classifier-free guidance scale (1 = off)
    threshold: float | None = None  # region probability -> binary region (None: the localizer's calibrated one, else 0.5)
    presence_threshold: float | None = None  # edits of an existing object: "no edit" below this presence probability
    # (None: the localizer's calibrated one; localizers without a presence score skip the check)
    min_region_frac: float = 0.002  # a region smaller than this share of the image counts as none
    context: float = 0.5  # crop margin around the region for the generator, as a fraction of its size
    blend: str = "feather"  # paste-back inside the region: "feather", "laplacian", "poisson" or "hard"
    work_side: int | None = None  # decide regions at this long side on larger images (None: the priors' choice,
    # else full size); the footprint comes back once by nearest neighbour
    candidates: int = 3  # the generator draws this many candidates in one batch and a prior's score keeps the best;
    # 1, or no prior that can score the edit: one draw
    domain_guard: bool = True  # refuse ("no_edit") images the model folder's domain guard reads as outside its domain
    # (regionedit.core.DomainGuard; folders without one, and swapped-in generators, have no guard)

    def __post_init__(self):
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps must be a whole number >= 1, got {self.steps!r}")
        if not math.isfinite(self.guidance) or self.guidance < 0:
            raise ValueError(f"guidance must be a finite number >= 0, got {self.guidance!r}")
        if self.work_side is not None and self.work_side < 16:
            raise ValueError(f"work_side must be None or >= 16 px, got {self.work_side}")
