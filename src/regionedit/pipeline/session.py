"""``EditSession``: many edits of one image in turn, with history and undo, and no drift outside what was edited.

    session = EditSession(editor, "photo.png")
    session.edit("remove the red circle")
    session.edit("make the star blue")
    session.undo()                       # back to the image after the first edit
    session.image, session.changed       # current image; union of the kept edits' masks

Each edit runs on the last one's result and is bit-identical to it outside its own reported mask, so after any
number of turns every pixel outside :attr:`EditSession.changed` is the original's, bit for bit: the drift that
full-image editors accumulate (each turn re-encodes the whole image) cannot happen outside the edited regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from regionedit.core import EditResult
from regionedit.io import load_image


class EditSession:
    """An image and the edits made to it. ``editor``: an :class:`~regionedit.pipeline.Editor`; ``image``: a path,
    PIL image or ``(H, W, 3)`` uint8 array (RGB; the original, never modified)."""

    def __init__(self, editor, image: Any):
        self.editor = editor
        self.original: np.ndarray = load_image(image).copy()
        self.original.setflags(write=False)
        self.turns: list[EditResult] = []  # the kept edits, in order (undo pops the last)
        self.history: list[EditResult] = []  # every call, "no_edit" included, in order (undo does not erase it)

    @property
    def image(self) -> np.ndarray:
        """The current image: ``(H, W, 3)`` uint8, the last kept edit's result (the original before any)."""
        return self.turns[-1].image if self.turns else self.original

    @property
    def changed(self) -> np.ndarray:
        """``(H, W)`` bool: the union of the kept edits' masks, the only pixels that may differ from the original."""
        out = np.zeros(self.original.shape[:2], bool)
        for r in self.turns:
            out |= r.mask
        return out

    def edit(self, instruction: str, seed: int | None = None, **kwargs) -> EditResult:
        """Edit the current image (``editor(image, instruction, seed, **kwargs)``; ``seed`` defaults to the turn's
        index, so a replayed session gives the same images). An edit is kept when its status is "edited"; a "no edit"
        leaves the image as it was. Returns the edit's result."""
        seed = len(self.history) if seed is None else seed
        result = self.editor(self.image, instruction, seed=seed, **kwargs)
        self.history.append(result)
        if result.status == "edited":
            self.turns.append(result)
        return result

    def undo(self) -> EditResult | None:
        """Drop the last kept edit (the image goes back to what it was before it); returns it, or None when there
        is nothing to undo."""
        return self.turns.pop() if self.turns else None

    def result(self) -> EditResult:
        """The session as one :class:`~regionedit.core.EditResult`: the current image, the union of the kept masks,
        the kept edits as ``steps``; status "edited" when at least one edit was kept."""
        instruction = "; ".join(r.instruction for r in self.turns) or "; ".join(r.instruction for r in self.history)
        last = self.turns[-1] if self.turns else (self.history[-1] if self.history else None)
        reasons = [r.reason for r in self.history if r.status != "edited" and r.reason]
        return EditResult(
            self.image, self.changed, None, "edited" if self.turns else "no_edit",
            "; ".join(reasons) or None, instruction, last.target_description if last else "",
            "; ".join(r.local_prompt for r in self.turns), self.turns[0].seed if self.turns else 0,
            last.method if last else "region", self.editor.model_id, sum(r.seconds for r in self.history),
            tuple(self.turns), priors=last.priors if last else ())
