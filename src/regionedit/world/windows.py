"""Square windows (normalised ``(x0, y0, x1, y1)`` in scene coordinates) and region masks around
objects: the crops the editor inpaints, used by training and by model-quality evaluation."""

from __future__ import annotations

import numpy as np

from . import spec
from .scene import Scene

SIZE = spec.NATIVE_SIZE


def zoom_window(rng: np.random.Generator, scene: Scene, min_frac: float = 0.35) -> tuple[float, float, float, float]:
    """A square window around a random object, side in ``[min_frac, 1]`` of the canvas (crop zoom)."""
    side = float(rng.uniform(min_frac, 1.0))
    if scene.objects:
        o = scene.objects[rng.integers(len(scene.objects))]
        side = max(side, 2.6 * o.r)
        cx = o.cx + rng.uniform(-0.15, 0.15) * side
        cy = o.cy + rng.uniform(-0.15, 0.15) * side
    else:
        cx, cy = rng.uniform(0.3, 0.7, size=2)
    x0 = float(np.clip(cx - side / 2, 0.0, 1.0 - side))
    y0 = float(np.clip(cy - side / 2, 0.0, 1.0 - side))
    return (x0, y0, x0 + side, y0 + side)


def random_window(rng: np.random.Generator, min_frac: float = 0.25) -> tuple[float, float, float, float]:
    """A square window anywhere in the canvas (may show only background)."""
    side = float(rng.uniform(min_frac, 1.0))
    x0, y0 = rng.uniform(0.0, 1.0 - side, size=2)
    return (float(x0), float(y0), float(x0) + side, float(y0) + side)


def zoom_window_for(rng: np.random.Generator, o) -> tuple[float, float, float, float]:
    """A square window that shows object ``o`` with its radius at 15-35% of the window side."""
    side = float(np.clip(o.r / rng.uniform(0.15, 0.35), 2.6 * o.r, 1.0))
    cx = o.cx + rng.uniform(-0.12, 0.12) * side
    cy = o.cy + rng.uniform(-0.12, 0.12) * side
    x0 = float(np.clip(cx - side / 2, 0.0, 1.0 - side))
    y0 = float(np.clip(cy - side / 2, 0.0, 1.0 - side))
    return (x0, y0, x0 + side, y0 + side)


def region_mask(rng: np.random.Generator, cx: float, cy: float, r: float, window, shape_kind: str | None = None) -> np.ndarray:
    """A region around ``(cx, cy, r)``: a disc or box with a random margin, in window pixels."""
    x0, y0, x1, y1 = window
    side = x1 - x0
    xs = x0 + (np.arange(SIZE) + 0.5) * side / SIZE
    ys = y0 + (np.arange(SIZE) + 0.5) * side / SIZE
    px, py = np.meshgrid(xs, ys)
    m = float(rng.uniform(1.15, 1.7)) * r + 2 * side / SIZE
    kind = shape_kind or ("disc" if rng.random() < 0.5 else "box")
    jx, jy = rng.uniform(-0.1, 0.1, size=2) * r
    if kind == "disc":
        mask = (px - cx - jx) ** 2 + (py - cy - jy) ** 2 <= m * m
    else:
        mask = (np.abs(px - cx - jx) <= m) & (np.abs(py - cy - jy) <= m)
    return mask
