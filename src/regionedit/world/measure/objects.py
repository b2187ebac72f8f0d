"""Finding and describing the objects of an image (:func:`measure_objects`: steps 3, 4 and 6 of
:mod:`regionedit.world.measure`) and the result, :class:`MeasuredObject`."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from regionedit.compose import dilate_square, erode
from regionedit.world.geometry import label_components
from regionedit.world.measure.background import estimate_background
from regionedit.world.measure.fitting import _fit_shapes
from regionedit.world.measure.palette import (FG_ALPHA, MAX_COLOR_DISTANCE, PALETTE_NAMES, UNKNOWN_COLOR, _check_image,
                                              _palette_labels, _unmix, classify_color)

# Splitting a component that holds two objects of different colours (joined by blur):
SPLIT_FRACTION = 0.2  # each colour must hold this share of the component (and >= min area),
SPLIT_COVER = 0.8  # the large single-colour pieces must cover this share of it,
SPLIT_MAX_SCORE = 0.9  # and only a component fitting no shape this well is considered.


@dataclasses.dataclass
class MeasuredObject:
    """One object measured in an image.

    Attributes:
        color: palette name (a key of ``spec.OBJECT_COLORS``) nearest to the object's interior
            colour, or ``UNKNOWN_COLOR`` when that is more than ``max_color_distance`` away.
        shape: one of ``spec.SHAPES`` (the best-fitting template).
        cx, cy: centre, normalised ``[0, 1]`` (x right, y down).
        r: circumscribed-radius estimate of the best shape, normalised (by ``sqrt(H * W)``).
        area_px: number of pixels in ``mask``.
        mask: ``(H, W)`` bool, the object's pixels (coverage >= 0.5).
        shape_scores: shape -> soft IoU ``[0, 1]`` of that shape's best-fitting template.
        color_distance: L2 RGB distance (0-441) of ``rgb`` to the nearest palette colour.
        rgb: measured interior colour (per-channel median), floats in ``[0, 255]``.
    """

    color: str
    shape: str
    cx: float
    cy: float
    r: float
    area_px: int
    mask: np.ndarray
    shape_scores: dict[str, float]
    color_distance: float
    rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def shape_score(self) -> float:
        """IoU of the chosen shape's template."""
        return self.shape_scores[self.shape]

    def summary(self) -> dict:
        """JSON-serialisable description (everything but the mask)."""
        return {
            "color": self.color,
            "shape": self.shape,
            "cx": round(self.cx, 4),
            "cy": round(self.cy, 4),
            "r": round(self.r, 4),
            "area_px": self.area_px,
            "shape_score": round(self.shape_score, 4),
            "color_distance": round(self.color_distance, 2),
        }


def _color_parts(m: np.ndarray, label: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Candidate split of a component into single-colour parts (two objects joined, e.g. by blur).

    Returns the parts, or ``[]`` when the component is not a clean union of large single-colour
    pieces: at least two colours must each hold ``SPLIT_FRACTION`` of it (and ``min_area``), and
    the large pieces must cover ``SPLIT_COVER`` of it. An object whose colour lies between two
    palette colours votes for both in a salt-and-pepper pattern and is not split.
    """
    size = int(m.sum())
    lab = label[m]
    votes = np.bincount(lab[lab >= 0], minlength=len(PALETTE_NAMES))  # -1 = no palette colour
    strong = np.flatnonzero(votes >= max(min_area, SPLIT_FRACTION * size))
    if len(strong) < 2:
        return []
    parts: list[np.ndarray] = []
    for k in strong:
        sub, n_sub = label_components(m & (label == k))
        sub_sizes = np.bincount(sub.ravel(), minlength=n_sub + 1)
        parts.extend(sub == j for j in range(1, n_sub + 1) if sub_sizes[j] >= min_area)
    if len(parts) < 2 or sum(int(p.sum()) for p in parts) < SPLIT_COVER * size:
        return []
    return parts


def _describe(
    m: np.ndarray,
    img: np.ndarray,
    diff: np.ndarray,
    bg: np.ndarray,
    taken: np.ndarray,
    max_color_distance: float,
) -> MeasuredObject:
    """Colour, shape, centre and radius of one object mask (arguments as in ``measure_objects``)."""
    h, w = m.shape
    # work in the mask's bounding box grown by 1 px (room for the soft ring)
    rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    y0, y1 = max(0, rows[0] - 1), min(h, rows[-1] + 2)
    x0, x1 = max(0, cols[0] - 1), min(w, cols[-1] + 2)
    mb = m[y0:y1, x0:x1]
    # colour: median of the interior (the edge is blended with the background)
    core = erode(mb, 1)  # the 4-neighbour erosion (a disk of radius 1 is the cross)
    if core.sum() < 3:
        core = mb
    rgb = np.median(img[y0:y1, x0:x1][core], axis=0)
    color, cdist = classify_color(rgb)
    if cdist > max_color_distance:
        color = UNKNOWN_COLOR
    # soft coverage by the measured colour, on the mask plus a 1-px ring of unclaimed pixels
    support = mb | (dilate_square(mb, 1) & ~taken[y0:y1, x0:x1])
    alpha = np.clip(_unmix(diff[y0:y1, x0:x1], rgb[None, :] - bg[y0:y1]), 0.0, 1.0)
    soft = np.where(support, alpha, 0.0)
    soft[mb] = np.maximum(soft[mb], FG_ALPHA)  # mask pixels are at least half covered
    scores, params = _fit_shapes(soft, (y0, x0), (h, w))
    shape = max(scores, key=scores.get)
    cx, cy, r = params[shape]
    return MeasuredObject(
        color=color,
        shape=shape,
        cx=cx,
        cy=cy,
        r=r,
        area_px=int(m.sum()),
        mask=m,
        shape_scores=scores,
        color_distance=cdist,
        rgb=(float(rgb[0]), float(rgb[1]), float(rgb[2])),
    )


def measure_objects(
    image: np.ndarray, min_area_frac: float = 0.004, max_color_distance: float = MAX_COLOR_DISTANCE
) -> list[MeasuredObject]:
    """Find and describe the palette objects of a shapes-world image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, any size (64 to 512 typical), solid or vertical-gradient
            background.
        min_area_frac: components smaller than this fraction of ``H * W`` are ignored (speckles).
            The default 0.004 is ~16 px at 64x64; the smallest world object (r = 0.09) covers ~0.01.
        max_color_distance: objects whose interior colour is farther than this (L2 RGB) from every
            palette colour get the colour ``UNKNOWN_COLOR`` (they still count, e.g. as extras).

    Returns:
        The measured objects sorted left to right (by ``cx``); see :class:`MeasuredObject`.
    """
    image = _check_image(image)
    h, w, _ = image.shape
    img = image.astype(np.float64)
    bg = estimate_background(image)  # (H, 3)
    diff = img - bg[:, None, :]
    fg, label = _palette_labels(diff, bg)
    min_area = max(1, int(math.ceil(min_area_frac * h * w)))
    comps, n = label_components(fg)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    masks = [comps == c for c in range(1, n + 1) if sizes[c] >= min_area]
    taken = np.isin(comps, np.flatnonzero(sizes >= min_area)) & (comps > 0)

    objects: list[MeasuredObject] = []
    for m in masks:
        obj = _describe(m, img, diff, bg, taken, max_color_distance)
        # two objects joined into one component (e.g. by blur)? split by colour when that is
        # clean and the parts fit their shapes better than the whole does
        parts = _color_parts(m, label, min_area) if obj.shape_score < SPLIT_MAX_SCORE else []
        if parts:
            subs = [_describe(p, img, diff, bg, taken, max_color_distance) for p in parts]
            fit = sum(o.shape_score * o.area_px for o in subs) / sum(o.area_px for o in subs)
            if fit > obj.shape_score:
                objects.extend(subs)
                continue
        objects.append(obj)
    objects.sort(key=lambda o: o.cx)
    return objects
