"""Multi-band (Burt-Adelson) blending inside the region, on OpenCV's Gaussian pyramid.

Coordinate frame: image pixels of one window, row 0 at the top. Images ``(h, w, 3)``; masks
``(h, w)`` bool.

The difference ``edited - source`` is split into Laplacian-pyramid bands (``cv2.pyrDown`` /
``cv2.pyrUp``: the 5-tap binomial kernel [1, 4, 6, 4, 1] / 16). Band ``k`` of ``N`` (0 = finest) is
brought back to full resolution and added with its own in-region alpha
``ramp(d, w / 2 ** (N - 1 - k))`` (:func:`~regionedit.compose.weights.width_map`): the finest band
ramps over 1-2 px, the coarsest over the full width ``w``. Colour shifts fade out smoothly while
fine detail keeps a sharp edge instead of a ghosted one. Every band's alpha is 0 outside the
region, so the result equals the source there; where the widest alpha is 1 it is exactly
``edited``.

OpenCV against the former numpy pyramid (same filters): equal to 1.2e-5 grey levels away from the
window border (OpenCV reflects the border as reflect-101, the numpy code as symmetric/edge: it
only matters where the region touches the image frame), and 10-30x faster: one reduce of a
1477 x 1476 x 3 float32 window 4.6 ms against 52 ms, one expand 5.6 ms against 162 ms.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from regionedit.compose.weights import ramp, width_map

__all__ = ["laplacian_blend", "laplacian_levels"]


def laplacian_levels(width: int, h: int, w: int) -> int:
    """Number of pyramid levels for a ramp of ``width`` px: ``1 + floor(log2(width))``, such that
    the coarsest level of an ``h`` x ``w`` window keeps >= 1 px."""
    n = 1 + int(math.floor(math.log2(max(width, 1))))
    n_size = 1 + int(math.floor(math.log2(max(min(h, w), 1))))
    return max(1, min(n, n_size))


def _up_to(a: np.ndarray, shapes: list[tuple[int, int]], level: int) -> np.ndarray:
    """Expand ``a`` (pyramid level ``level``) back to ``shapes[0]`` by repeated ``cv2.pyrUp``."""
    for j in range(level - 1, -1, -1):
        a = cv2.pyrUp(a, dstsize=(shapes[j][1], shapes[j][0]))
    return a


def laplacian_blend(src: np.ndarray, ed: np.ndarray, region: np.ndarray, width: int) -> np.ndarray:
    """Multi-band blend of ``ed`` into ``src`` inside ``region``.

    Args:
        src: ``(h, w, 3)`` uint8 source window.
        ed: ``(h, w, 3)`` uint8 or float32 (0..255) edited window, same frame.
        region: ``(h, w)`` bool; pixels beyond the window do not count as outside (put False pixels
            where a window side is a boundary).
        width: ramp width of the coarsest band in pixels, int >= 1.

    Returns:
        ``(h, w, 3)`` uint8: ``src`` outside ``region`` (bit-identical), ``ed`` (rounded) where the
        coarsest band's alpha is 1, the multi-band blend between.
    """
    h, w = region.shape
    d, wmap = width_map(region, width)
    n = laplacian_levels(width, h, w)
    srcf = src.astype(np.float32)
    edf = ed.astype(np.float32, copy=False)
    gauss = [edf - srcf]
    for _ in range(n - 1):
        gauss.append(cv2.pyrDown(gauss[-1]))
    shapes = [g.shape[:2] for g in gauss]
    # With B_k = gauss[k] expanded to full size, band k at full size is B_k - B_{k+1} (the last: B_{N-1}),
    # so sum_k A_k band_k = A_0 B_0 + sum_{k >= 1} (A_k - A_{k-1}) B_k: one expansion chain per level.
    prev = ramp(d, wmap / np.float32(2.0 ** (n - 1)))
    out = srcf + prev[:, :, None] * gauss[0]
    for k in range(1, n):
        a_k = ramp(d, wmap / np.float32(2.0 ** (n - 1 - k)))
        out += (a_k - prev)[:, :, None] * _up_to(gauss[k], shapes, k)
        prev = a_k
    res = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    ed_u8 = ed if ed.dtype == np.uint8 else np.clip(np.rint(edf), 0, 255).astype(np.uint8)
    full = prev >= 1.0  # the coarsest band's alpha (every finer one is 1 there too)
    np.copyto(res, ed_u8, where=full[:, :, None])
    return np.where(region[:, :, None], res, src)
