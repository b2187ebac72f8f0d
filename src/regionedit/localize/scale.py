"""Working at a smaller size: nearest-neighbour downscaling of an image or map and the way back.

A region decision on a large image (thresholding, a plugin's snapping) runs at a working size and the found
footprint comes back once by nearest neighbour: exact colours, no new edge pixels. Frames: ``(H, W)`` or
``(H, W, C)`` arrays, row 0 at the top.
"""

from __future__ import annotations

import math

import numpy as np


def _take(a: np.ndarray, rows_cols) -> np.ndarray:
    """``a[np.ix_(rows, cols)]``, in two gathers (4x faster on a 2048 px image)."""
    rows, cols = rows_cols
    return a[rows][:, cols]


def downscale_nearest(a: np.ndarray, max_side: int = 256):
    """``a`` ((H, W) or (H, W, C)) at ``max_side`` px on the long side by nearest neighbour (exact colours, no
    new edge pixels), and what brings a map of that size back: ``(small, up)``; ``up`` is None (and ``small``
    is ``a``) when ``a`` is already that small. :func:`upscale_nearest` ``(m, up)`` returns an ``(H, W)`` map."""
    scale = _working_scale(a.shape[0], a.shape[1], max_side)
    if scale is None:
        return a, None
    return _take(a, scale[0]), scale[1]


def upscale_nearest(small: np.ndarray, up) -> np.ndarray:
    """A map of :func:`downscale_nearest`'s working size back at the full size (``small`` when ``up`` is None)."""
    return small if up is None else _take(small, up)


def working_block(h: int, w: int, max_side: int = 256) -> int:
    """How many full-size pixels one pixel of :func:`downscale_nearest`'s working size spans (rounded up):
    ``ceil(max(h, w) / max_side)``, 1 when the image is already that small."""
    return max(1, math.ceil(max(h, w) / max_side))


def _working_scale(h: int, w: int, max_side: int):
    """Nearest-neighbour index arrays to work at ``max_side`` px on the long side and come back:
    ``((rows, cols) down, (rows, cols) up)``, or None when the image is already that small."""
    s = max(h, w) / max_side
    if s <= 1:
        return None
    ys = (np.arange(int(round(h / s))) * s).astype(int).clip(0, h - 1)
    xs = (np.arange(int(round(w / s))) * s).astype(int).clip(0, w - 1)
    yi = np.minimum((np.arange(h) / s).astype(int), len(ys) - 1)
    xi = np.minimum((np.arange(w) / s).astype(int), len(xs) - 1)
    return (ys, xs), (yi, xi)
