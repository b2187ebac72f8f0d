"""Binary morphology and distances on masks, by OpenCV.

Coordinate frame: image pixels, row 0 at the top, column 0 at the left. Masks are ``(H, W)``
(bool, or anything where nonzero means inside). Distances are Euclidean, between pixel centres.

Which library, and why (timings: 2 shared CPU cores, a disk region of radius 368 px in a 2048 x 2048
image, milliseconds; every variant is bit-identical to a brute-force reference, see
tests/test_compose.py):

- Euclidean distances: ``cv2.distanceTransform(DIST_L2, DIST_MASK_PRECISE)`` (exact EDT,
  Felzenszwalb-Huttenlocher, float32; <= 1.5e-5 from ``scipy.ndimage.distance_transform_edt``).
  45 ms on the full 2048 x 2048 frame, against 465 ms for scipy's EDT and 366 ms for the former
  hand-written capped transform (``_dist_to_true``, limit 47).
- :func:`dilate` / :func:`erode` by a Euclidean disk: ``cv2.dilate`` / ``cv2.erode`` with the exact
  disk kernel up to radius 8 (1.3-2.6 ms at 2048 px, radius 1-6), the distance transform above
  beyond (8.6 ms at radius 47; the disk kernel costs O(r^2) per pixel there: 54 ms). The former
  O(H W) running-extrema dilation took 16-26 ms at every radius.
- :func:`dilate_square`: ``cv2.dilate`` with a ``(2 r + 1)``-square kernel (separable): 1.7 / 1.9 /
  4.2 / 10.7 ms at r = 1 / 4 / 16 / 47 against 2.1 / 4.4 / 7.3 / 9.9 ms for the former doubling
  shifted ORs (a tie at r = 47, so one implementation).

Image borders: pixels beyond the array do not exist for :func:`dilate` and
:func:`inside_distance` (the distance to the outside of a mask touching the border does not fade
towards it), and count as *outside* for :func:`erode` (a pixel near the border is eroded).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["bbox_slices", "dilate", "dilate_square", "erode", "inside_distance"]

# Radius up to which a disk-kernel cv2.dilate/erode beats the distance transform (measured, above).
_KERNEL_MAX_PX = 8


def _check_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got {m.shape}")
    return m.astype(bool, copy=False)


def _check_px(px: int, name: str) -> int:
    if not isinstance(px, (int, np.integer)) or isinstance(px, bool) or px < 0:
        raise ValueError(f"{name} must be an int >= 0 (pixels), got {px!r}")
    return int(px)


def _u8(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool -> contiguous ``(H, W)`` uint8 0/1 (OpenCV's input)."""
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _disk(px: int) -> np.ndarray:
    """``(2 px + 1, 2 px + 1)`` uint8 kernel: 1 where ``dy^2 + dx^2 <= px^2`` (the exact Euclidean disk,
    not OpenCV's MORPH_ELLIPSE, which differs from it)."""
    yy, xx = np.ogrid[-px : px + 1, -px : px + 1]
    return (yy * yy + xx * xx <= px * px).astype(np.uint8)


def _edt(nonzero: np.ndarray) -> np.ndarray:
    """Distance from each True pixel of ``(H, W)`` bool ``nonzero`` to the nearest False pixel of the
    array: ``(H, W)`` float32, 0 on False pixels, ~1.8e19 everywhere if there is no False pixel."""
    return cv2.distanceTransform(_u8(nonzero), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _within_px(d: np.ndarray, px: int) -> np.ndarray:
    """``d <= px`` for Euclidean distances between pixel centres, robust to float32 rounding: compared
    squared, between the integers ``px^2`` and ``px^2 + 1`` (cv2's EDT is within 1.5e-5 px)."""
    d64 = d.astype(np.float64)
    return d64 * d64 <= px * px + 0.5


def bbox_slices(m: np.ndarray, margin: int) -> tuple[slice, slice]:
    """``(rows, cols)`` slices of the bounding box of the True pixels of ``(H, W)`` bool ``m``, grown by
    ``margin`` pixels on every side and clipped to the array. ``m`` must have a True pixel."""
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    h, w = m.shape
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h)),
        slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w)),
    )


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Binary dilation by a Euclidean disk of radius ``px`` pixels.

    Args:
        mask: ``(H, W)`` bool (or anything where nonzero means inside), image pixels.
        px: radius in pixels, int >= 0 (0 returns a copy).

    Returns:
        ``(H, W)`` bool: the pixels whose centre lies within distance ``px`` of a mask pixel's centre
        (a superset of ``mask``). Work is limited to the mask's bounding box grown by ``px``.
    """
    m = _check_mask(mask)
    px = _check_px(px, "px")
    if px == 0 or not m.any():
        return m.copy()
    win = bbox_slices(m, px)
    out = np.zeros(m.shape, dtype=bool)
    if px <= _KERNEL_MAX_PX:
        out[win] = cv2.dilate(_u8(m[win]), _disk(px)).astype(bool)
    else:
        out[win] = _within_px(_edt(~m[win]), px)
    return out


def erode(region: np.ndarray, px: int) -> np.ndarray:
    """Binary erosion by a Euclidean disk of radius ``px`` pixels.

    Args:
        region: ``(H, W)`` bool (or anything where nonzero means inside), image pixels.
        px: radius in pixels (<= 0 returns a copy).

    Returns:
        ``(H, W)`` bool: the pixels whose whole disk lies in ``region``; pixels beyond the image
        count as outside the region, so a pixel within ``px`` of the border is eroded.
    """
    r = _check_mask(region)
    px = int(px)
    if px <= 0 or not r.any():
        return r.copy()
    win = bbox_slices(r, 1)  # beyond it: non-region pixels, or the image edge (outside as well)
    out = np.zeros(r.shape, dtype=bool)
    if px <= _KERNEL_MAX_PX:
        out[win] = cv2.erode(
            _u8(r[win]), _disk(px), borderType=cv2.BORDER_CONSTANT, borderValue=0
        ).astype(bool)
    else:
        d = _edt(np.pad(r[win], 1, constant_values=False))[1:-1, 1:-1]
        out[win] = ~_within_px(d, px)
    return out


def dilate_square(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a ``(2 r + 1) x (2 r + 1)`` square (Chebyshev radius ``r``).

    Args:
        mask: ``(H, W)`` bool (or anything where nonzero means inside), image pixels.
        r: half side in pixels, int >= 0 (0 returns a copy).

    Returns:
        ``(H, W)`` bool: pixels with a mask pixel within ``r`` rows and ``r`` columns.
    """
    m = _check_mask(mask)
    r = int(r)
    if r <= 0:
        return m.copy()
    return cv2.dilate(_u8(m), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


def inside_distance(mask: np.ndarray) -> np.ndarray:
    """Distance from each mask pixel to the nearest pixel outside the mask.

    Args:
        mask: ``(H, W)`` bool, image pixels. Pixels beyond the array do not count as outside; to make
            an array side a boundary, put a row/column of False pixels there.

    Returns:
        ``(H, W)`` float32: 0 outside the mask, >= 1 inside it (1 on its edge pixels, those with an
        outside pixel among their 4 neighbours), ``inf`` everywhere inside if nothing is outside.
    """
    m = _check_mask(mask)
    if m.all():
        return np.where(m, np.float32(np.inf), np.float32(0.0))
    return _edt(m)
