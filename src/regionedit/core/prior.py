"""``Prior``: domain knowledge that is not learned, consulted by the Editor at fixed points.

The Editor (:class:`regionedit.pipeline.Editor`) runs describe -> localize -> generate -> compose with learned
and frozen models only. A plugin that knows its domain (the shapes world: colour segments, one object per
referent, free-space placement for "add", CLIP verification against WORLD.md's vocabulary) supplies
:class:`Prior` objects; the Editor calls their hooks in order, each hook's default leaving things as they are,
so an Editor with ``priors=()`` is the learned system alone. Hooks come in three kinds:

- *chains* (``localizer_text``, ``refine``, ``shape``, ``complete``, ``finish``): each prior transforms the
  previous prior's output;
- *first answer wins* (``place``, ``refuse``, ``direct_edit``, ``score``, ``no_region_reason``): the first prior
  that returns something other than None decides;
- ``split``: the first prior that splits an instruction into several edits decides.

Frames: images ``(H, W, 3)`` uint8 RGB, row 0 at the top; regions ``(H, W)`` bool in the same frame;
probabilities ``(H, W)`` float32 in [0, 1]. ``desc`` is the :class:`regionedit.describe.Description` of the edit
(a prior reads ``desc.intent`` only when its own plugin's describer made it).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


class Prior:
    """Base class: every hook leaves its input as it is (subclass and override what the domain knows)."""

    name: str = "prior"
    work_side: int | None = None  # regions are decided at this long side on larger images (None: full size)

    def split(self, instruction: str) -> list[str] | None:
        """Several edits in one instruction, in order, or None (one edit)."""
        return None

    def localizer_text(self, instruction: str, desc) -> str:
        """The text the localizer reads for this edit (default: the instruction as given)."""
        return instruction

    def place(self, image: np.ndarray, desc) -> np.ndarray | None:
        """A region chosen without the localizer (e.g. free space for "add"), or None."""
        return None

    def refine(self, region: np.ndarray, prob: np.ndarray, image: np.ndarray, desc, **overrides: Any) -> np.ndarray:
        """The thresholded localizer region, put right (an empty region means nothing in the image matches).
        ``overrides``: settings a caller sweeps (calibration), ignored when the prior has no such setting."""
        return region

    def shape(self, footprint: np.ndarray, desc, image: np.ndarray) -> np.ndarray:
        """The pixels the edit changes, from the referent's footprint."""
        return footprint

    def refuse(self, image: np.ndarray, desc, footprint: np.ndarray) -> str | None:
        """A reason not to edit (an ambiguous referent...), or None."""
        return None

    def complete(self, desc, image: np.ndarray, footprint: np.ndarray):
        """The description with what the instruction leaves unsaid filled in from the image."""
        return desc

    def direct_edit(self, image: np.ndarray, desc, footprint: np.ndarray, region: np.ndarray,
                    inpaint: Callable[[np.ndarray, np.ndarray, str], np.ndarray]):
        """``(edited image, region it changed, local prompt)`` for an edit done without generating the region
        (e.g. resampling an object at a new size), or None. ``footprint``: the referent as found; ``region``:
        the shaped region; ``inpaint(image, region, prompt)`` runs the Editor's generator and compose."""
        return None

    def prepare(self, image: np.ndarray, region: np.ndarray, desc, footprint: np.ndarray | None,
                user_mask: bool) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(region, generator region, state)`` before generating: the generator may be shown less than the
        region (pixels the prior repaints itself in :meth:`finish`); ``state`` goes to :meth:`finish`."""
        return region, region, None

    def finish(self, image: np.ndarray, out: np.ndarray, region: np.ndarray, desc, footprint: np.ndarray | None,
               state: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(image, region it changed)`` after generating: a drawn result put right."""
        return out, region

    def can_score(self, desc) -> bool:
        """Whether :meth:`score` can read an edit of ``desc`` (cheap: no model call)."""
        return False

    def score(self, edited: np.ndarray, region: np.ndarray, desc) -> float | None:
        """How well ``edited`` reads as the edit done (higher is better), for choosing among candidates."""
        return None

    def no_region_reason(self, desc, user_mask: bool) -> str | None:
        """Why an empty region means no edit, when the prior knows better than the Editor's generic reason."""
        return None
