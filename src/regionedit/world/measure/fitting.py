"""Shape fitting (step 5 of :mod:`regionedit.world.measure`): every shape's template, placed at a soft
mask's centroid with the radius its area implies, scored by soft IoU (:func:`_fit_shapes`)."""

from __future__ import annotations

import math

import numpy as np

from regionedit.world.geometry import SHAPE_AREA
from regionedit.world.rendering import object_sdf
from regionedit.world.scene import WorldObject

TEMPLATE_RADIUS_PX = 8.0  # large objects are block-averaged to about this radius before fitting
RADIUS_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)  # radius refinement around the area-implied radius
CENTRE_OFFSETS = (-0.5, 0.5)  # centre refinement, in (block-averaged) pixels
BLUR_LEVELS = 3  # templates are also compared blurred by a 3x3 box 1..BLUR_LEVELS-1 times


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    """Mean over non-overlapping ``s x s`` blocks (dimensions must be multiples of ``s``)."""
    if s == 1:
        return a
    h, w = a.shape
    return a.reshape(h // s, s, w // s, s).mean(axis=(1, 3))


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur over the last two axes (zero padding), as two 1-D passes."""
    # kept over scipy.ndimage.uniform_filter / cv2.boxFilter: those differ in the last bits (up to 5.6e-16 on
    # a (9, 24, 24) template stack, which can flip an IoU tie between templates) and are no faster (0.034 vs
    # 0.033 ms there)
    rows = a.copy()
    rows[..., 1:, :] += a[..., :-1, :]
    rows[..., :-1, :] += a[..., 1:, :]
    out = rows.copy()
    out[..., 1:] += rows[..., :-1]
    out[..., :-1] += rows[..., 1:]
    return out / 9.0


def _candidates(s: int) -> np.ndarray:
    """Template candidates ``(N, 3)``: (radius scale, dx, dy) with offsets in image pixels."""
    rows = [(f, 0.0, 0.0) for f in RADIUS_SCALES]
    rows += [(1.0, o * s, 0.0) for o in CENTRE_OFFSETS]
    rows += [(1.0, 0.0, o * s) for o in CENTRE_OFFSETS]
    return np.array(rows)


def _fit_shapes(
    soft: np.ndarray, offset: tuple[int, int], hw: tuple[int, int]
) -> tuple[dict[str, float], dict[str, tuple]]:
    """Fit every shape's template to a soft mask.

    For each shape, templates are placed at the soft centroid with the radius implied by the soft
    area, varied over ``RADIUS_SCALES`` and ``CENTRE_OFFSETS`` (all candidates of a shape in one
    call of the world's signed-distance function); each is also compared blurred by a 3x3 box
    (``BLUR_LEVELS - 1`` times; blurred or soft-edged images).

    Args:
        soft: ``(h, w)`` float coverage in ``[0, 1]`` of one object inside a box of the image (zero
            elsewhere); the box must hold all of the object's coverage.
        offset: ``(row, column)`` of the box's top-left pixel in the image.
        hw: image size ``(H, W)``.

    Returns:
        ``(scores, params)``: shape -> best soft IoU, and shape -> its ``(cx, cy, r)`` normalised.
    """
    h, w = hw
    oy, ox = offset
    area = float(soft.sum())
    ys, xs = np.nonzero(soft > 0)
    cy_px = oy + float((soft[ys, xs] * (ys + 0.5)).sum() / area)
    cx_px = ox + float((soft[ys, xs] * (xs + 0.5)).sum() / area)
    ys, xs = ys + oy, xs + ox
    # crop holding the object and the largest template tried (radius sqrt(area / k_min) at the
    # top scale and offset), in blocks of s x s pixels (s > 1 for large objects)
    r_max_px = math.sqrt(area / min(SHAPE_AREA.values()))
    s = max(1, int(r_max_px / TEMPLATE_RADIUS_PX))
    reach = r_max_px * max(RADIUS_SCALES) + (max(map(abs, CENTRE_OFFSETS)) + BLUR_LEVELS) * s
    y0 = max(0, min(ys.min(), int(math.floor(cy_px - reach))))
    x0 = max(0, min(xs.min(), int(math.floor(cx_px - reach))))
    y1 = min(h, max(ys.max() + 1, int(math.ceil(cy_px + reach))))
    x1 = min(w, max(xs.max() + 1, int(math.ceil(cx_px + reach))))
    y1 = y0 + int(math.ceil((y1 - y0) / s)) * s  # round up to whole blocks (may pass the edge)
    x1 = x0 + int(math.ceil((x1 - x0) / s)) * s
    crop = np.zeros((y1 - y0, x1 - x0))
    inside = np.zeros_like(crop)
    inside[: min(y1, h) - y0, : min(x1, w) - x0] = 1.0
    crop[ys - y0, xs - x0] = soft[ys - oy, xs - ox]
    target, inside = _block_mean(crop, s), _block_mean(inside, s)  # (hb, wb)
    hb, wb = target.shape

    # coarse pixel centres in image pixels, and the renderer's pixel size in normalised units
    gx = x0 + (np.arange(wb) + 0.5) * s
    gy = y0 + (np.arange(hb) + 0.5) * s
    pixel = 0.5 * (s / w + s / h)
    norm = math.sqrt(h * w)  # radius normalisation
    cand = _candidates(s)  # (N, 3)
    f = cand[:, 0, None, None]
    # every candidate (centre c + o, radius f r) through the one shape at (c, r):
    # sdf_{c+o, f r}(p) = f * sdf_{c, r}(c + (p - c - o) / f)
    px = (cx_px + (gx[None, None, :] - cx_px - cand[:, 1, None, None]) / f) / w  # (N, 1, wb)
    py = (cy_px + (gy[None, :, None] - cy_px - cand[:, 2, None, None]) / f) / h  # (N, hb, 1)
    px, py = np.broadcast_arrays(px, py)

    scores: dict[str, float] = {}
    params: dict[str, tuple] = {}
    for shape, k in SHAPE_AREA.items():
        r0 = math.sqrt(area / k)
        obj = WorldObject(shape, "red", cx_px / w, cy_px / h, r0 / norm)
        d = f * object_sdf(obj, px, py)  # (N, hb, wb), normalised units
        cov = np.clip(0.5 - d / pixel, 0.0, 1.0) * inside
        best_iou, best_i = -1.0, 0
        for level in range(BLUR_LEVELS):  # sharp, then soft-edge hypotheses: blurred 1, 2... times
            if level:
                cov = _box3(cov) * inside
            inter = np.minimum(cov, target).sum(axis=(1, 2))
            iou = inter / np.maximum(cov, target).sum(axis=(1, 2))
            i = int(np.argmax(iou))
            if iou[i] > best_iou:
                best_iou, best_i = float(iou[i]), i
        fi, dx, dy = cand[best_i]
        scores[shape] = best_iou
        params[shape] = (float(cx_px + dx) / w, float(cy_px + dy) / h, float(fi * r0) / norm)
    return scores, params
