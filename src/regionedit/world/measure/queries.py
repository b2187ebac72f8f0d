"""Questions about a measured image: is an object of a colour and shape there (:func:`find_object`), how
does the image compare with a ground-truth scene (:func:`scene_match`), how close is it to a background
(:func:`background_l1`)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from regionedit.world import spec
from regionedit.world.measure.objects import MeasuredObject, measure_objects
from regionedit.world.measure.palette import _check_image
from regionedit.world.rendering import render_background
from regionedit.world.scene import Background, Scene


@dataclasses.dataclass
class MatchResult:
    """Answer of :func:`find_object`.

    Attributes:
        found: whether an object of the colour and shape exists (inside the region, if given).
        best: the matching object (highest shape score), or when nothing matches the closest miss
            (right colour, else right shape), else None.
        reason: a short human-readable explanation.
    """

    found: bool
    best: MeasuredObject | None
    reason: str


def find_object(
    image: np.ndarray,
    color: str,
    shape: str,
    region: np.ndarray | None = None,
    objects: list[MeasuredObject] | None = None,
) -> MatchResult:
    """Whether an object of a colour and shape is in an image (optionally inside a region).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        color: a key of ``spec.OBJECT_COLORS``.
        shape: one of ``spec.SHAPES``.
        region: optional ``(H, W)`` bool; the object's centroid pixel must lie in it.
        objects: measurements of ``image`` already made by :func:`measure_objects` (saves time).

    Returns:
        :class:`MatchResult`.
    """
    if color not in spec.OBJECT_COLORS:
        raise ValueError(f"unknown colour {color!r}")
    if shape not in spec.SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    image = _check_image(image)
    h, w, _ = image.shape
    if objects is None:
        objects = measure_objects(image)
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != (h, w):
            raise ValueError(f"region shape {region.shape} != image shape {(h, w)}")

    def in_region(o: MeasuredObject) -> bool:
        if region is None:
            return True
        y = min(h - 1, max(0, int(o.cy * h)))
        x = min(w - 1, max(0, int(o.cx * w)))
        return bool(region[y, x])

    name = f"{color} {shape}"
    exact = [o for o in objects if o.color == color and o.shape == shape]
    hits = [o for o in exact if in_region(o)]
    if hits:
        return MatchResult(True, max(hits, key=lambda o: o.shape_score), f"{name} found")
    if exact:
        return MatchResult(False, exact[0], f"{name} found only outside the region")
    same_color = [o for o in objects if o.color == color and in_region(o)]
    if same_color:
        o = max(same_color, key=lambda o: o.shape_scores[shape])
        return MatchResult(False, o, f"a {color} object was found but it is a {o.shape}")
    same_shape = [o for o in objects if o.shape == shape and in_region(o)]
    if same_shape:
        o = same_shape[0]
        return MatchResult(False, o, f"a {shape} was found but it is {o.color}")
    where = " in the region" if region is not None else ""
    return MatchResult(False, None, f"no {color} object and no {shape}{where}")


def scene_match(
    image: np.ndarray, scene: Scene, objects: list[MeasuredObject] | None = None
) -> dict:
    """Compare an image with a ground-truth scene, object by object.

    Each ground-truth object is paired with at most one measured object whose centre lies within
    ``max(r, 0.08)`` (normalised) of its centre: first every full (colour and shape) match, then,
    for the objects left, the candidate with the right colour, else the right shape, else the
    nearest. A measured object is paired at most once.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        scene: the ground truth.
        objects: measurements of ``image`` already made by :func:`measure_objects` (saves time).

    Returns:
        A dict with
        ``objects``: one dict per scene object (scene order) with ``color``, ``shape``, ``correct``
        (colour and shape both right), ``color_correct``, ``shape_correct`` (bools) and ``measured``
        (index into ``measured`` or None);
        ``objects_correct``: every scene object correct;
        ``all_correct``: ``objects_correct`` and no extra objects;
        ``color_correct_rate``, ``shape_correct_rate``, ``correct_rate``: fractions over scene
        objects (1.0 for a scene without objects);
        ``extra_objects``: the number of measured objects paired with no scene object;
        ``measured``: the measured objects (:class:`MeasuredObject`, left to right).
    """
    if objects is None:
        objects = measure_objects(image)
    pairing: dict[int, int] = {}  # scene object index -> measured object index

    def pair(full_only: bool) -> None:
        for g, gt in enumerate(scene.objects):
            if g in pairing:
                continue
            cands = []
            for i, o in enumerate(objects):
                dist = math.hypot(o.cx - gt.cx, o.cy - gt.cy)
                if i in pairing.values() or dist > max(gt.r, 0.08):
                    continue
                color_ok, shape_ok = o.color == gt.color, o.shape == gt.shape
                if full_only and not (color_ok and shape_ok):
                    continue
                cands.append((not color_ok, not shape_ok, dist, i))
            if cands:
                pairing[g] = min(cands)[3]

    pair(full_only=True)
    pair(full_only=False)

    per_object = []
    for g, gt in enumerate(scene.objects):
        o = objects[pairing[g]] if g in pairing else None
        color_ok = o is not None and o.color == gt.color
        shape_ok = o is not None and o.shape == gt.shape
        per_object.append(
            {
                "color": gt.color,
                "shape": gt.shape,
                "correct": color_ok and shape_ok,
                "color_correct": color_ok,
                "shape_correct": shape_ok,
                "measured": pairing.get(g),
            }
        )

    n = len(per_object)

    def rate(key: str) -> float:
        return sum(e[key] for e in per_object) / n if n else 1.0

    objects_correct = all(e["correct"] for e in per_object)
    extra = len(objects) - len(pairing)
    return {
        "objects": per_object,
        "objects_correct": objects_correct,
        "all_correct": objects_correct and extra == 0,
        "color_correct_rate": rate("color_correct"),
        "shape_correct_rate": rate("shape_correct"),
        "correct_rate": rate("correct"),
        "extra_objects": extra,
        "measured": objects,
    }


def background_l1(image: np.ndarray, background: Background, mask: np.ndarray) -> float:
    """Mean absolute difference between an image and a rendered background, inside a mask.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        background: the expected background (rendered at the image's size).
        mask: ``(H, W)`` bool, the pixels to compare (e.g. where a removed object was).

    Returns:
        ``mean |image - background| / 255`` over the masked pixels and the 3 channels, in
        ``[0, 1]``; NaN for an empty mask.
    """
    image = _check_image(image)
    h, w, _ = image.shape
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (h, w):
        raise ValueError(f"mask shape {mask.shape} != image shape {(h, w)}")
    if not mask.any():
        return float("nan")
    ref = np.rint(render_background(background, (h, w)))
    return float(np.abs(image[mask].astype(np.float64) - ref[mask]).mean() / 255.0)
