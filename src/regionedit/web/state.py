"""The state the web handlers keep per browser session (:class:`Session`, one :class:`Turn` per edit), the
refusal they raise (:class:`UIError`), and the small helpers on its images (region display) and form values
(range-checked numbers). No Gradio, no model: :mod:`regionedit.web.handlers` uses them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

OVERLAY_COLOR = np.array([255, 0, 255], np.float32)
REGION_LAYER_RGBA = (255, 0, 255, 150)  # the found region as a paint layer: translucent magenta


class UIError(Exception):
    """A refusal shown to the user (``gr.Error`` in the UI), with what is wrong and how to fix it."""


# ------------------------------------------------------------------------------------------------
# session state


@dataclasses.dataclass
class Turn:
    """One edit: what was asked, what came back, and the PNG (with metadata) offered for download."""

    instruction: str
    status: str
    reason: str | None
    method: str
    seed: int
    steps: int
    guidance: float
    source: np.ndarray
    image: np.ndarray
    mask: np.ndarray
    target_description: str
    metadata: dict[str, str]
    png: str | None = None  # path of the result PNG (save_png: metadata + mask)

    def line(self, n: int) -> str:
        what = f"{self.status} ({self.method}, seed {self.seed}, {self.steps} steps)"
        why = f": {self.reason}" if self.reason else ""
        return f"{n}. {self.instruction!r} -> {what}{why}"


@dataclasses.dataclass
class Session:
    """One browser session: the current source, the last result on it, the history (one line per edit) and the
    undo stack (the states before each edit or "use result"; the images of older states are dropped first)."""

    source: np.ndarray | None = None
    result: Turn | None = None
    history: list[str] = dataclasses.field(default_factory=list)
    undo_stack: list[tuple[np.ndarray | None, Turn | None, int]] = dataclasses.field(default_factory=list)
    region: np.ndarray | None = None  # the last found region (bool), shown on the brush layer
    name: str = ""  # what the source is (file name or example)

    def push(self, max_steps: int, max_bytes: int) -> None:
        """Remember the current state for undo: at most ``max_steps`` states holding at most ``max_bytes`` of
        images (always the last one)."""
        self.undo_stack = [*self.undo_stack, (self.source, self.result, len(self.history))][-max_steps:]
        while len(self.undo_stack) > 1 and self.undo_bytes() > max_bytes:
            self.undo_stack = self.undo_stack[1:]

    def undo_bytes(self) -> int:
        arrays = {}
        for source, result, _ in self.undo_stack:
            for a in (source, *((result.source, result.image, result.mask) if result else ())):
                if a is not None:
                    arrays[id(a)] = a.nbytes
        return sum(arrays.values())


# ------------------------------------------------------------------------------------------------
# image helpers


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with ``mask`` tinted magenta (the region display)."""
    out = image.copy()
    if mask.any():
        out[mask] = ((1 - alpha) * image[mask].astype(np.float32) + alpha * OVERLAY_COLOR).round().astype(np.uint8)
    return out


def region_layer(mask: np.ndarray) -> np.ndarray:
    """A region as an RGBA paint layer for the ImageEditor (translucent magenta where True)."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = REGION_LAYER_RGBA
    return layer


def _resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(mask.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.Resampling.NEAREST)
    return np.asarray(im) > 127


def _int(value, name: str, default, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        n = int(value)
    except (TypeError, ValueError):
        raise UIError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}") from None
    if not lo <= n <= hi:
        raise UIError(f"{name} must be from {lo} to {hi}, got {n}")
    return n


def _float(value, name: str, default, lo: float, hi: float) -> float:
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        x = float(value)
    except (TypeError, ValueError):
        raise UIError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise UIError(f"{name} must be from {lo:g} to {hi:g}, got {value!r}")
    return x
