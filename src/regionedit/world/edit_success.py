"""Ground-truth metrics of the shapes world (exact scene graphs): :func:`edit_success` (and
:func:`edit_success_sample` for an :class:`~regionedit.world.EditSample`), :func:`absent_accuracy`
and :func:`add_iou_ceiling`.

These only make sense for the shapes world (they measure objects with
:mod:`regionedit.world.measure` and compare them with scene graphs), so they live in the world
plugin; :mod:`regionedit.evaluation.metrics` re-exports them next to the general metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from regionedit.world import spec
from regionedit.world.measure import background_l1, find_object, measure_objects, scene_match
from regionedit.world.rendering import object_coverage
from regionedit.world.scene import Scene, place, sample_radius

__all__ = [
    "SIZE_CLASS_THRESHOLD",
    "BACKGROUND_TOLERANCE",
    "edit_success",
    "edit_success_sample",
    "absent_accuracy",
    "add_iou_ceiling",
]

# A 3x3 square: growing a mask by it adds every pixel 8-adjacent to the mask.
_SQUARE = np.ones((3, 3), dtype=bool)

# Size classes: small r in [0.09, 0.12], large r in [0.15, 0.20] (WORLD.md); measured radii are
# within about 1% of the truth on rendered scenes, so the midpoint of the gap separates them.
SIZE_CLASS_THRESHOLD = 0.5 * (spec.SIZE_RANGES["small"][1] + spec.SIZE_RANGES["large"][0])
# A background edit matches when mean |edited - rendered target background| (in [0, 1]) outside
# the objects is below this. The smallest change between two world backgrounds is >= 0.075.
BACKGROUND_TOLERANCE = 0.05


def _size_class(r: float) -> str:
    return "small" if r < SIZE_CLASS_THRESHOLD else "large"


def _outside_objects(scene: Scene, hw: tuple[int, int]) -> np.ndarray:
    """Pixels no object of the scene covers at all, minus a 1-px ring (soft generated edges).

    Returns an ``(H, W)`` bool mask (``hw = (H, W)``): the complement of the objects' coverage
    grown by one pixel in the 8 directions (nothing grows in from outside the image).
    """
    inside = np.zeros(hw, dtype=bool)
    for obj in scene.objects:
        inside |= object_coverage(obj, hw) > 0
    return ~ndimage.binary_dilation(inside, structure=_SQUARE)


def _edit_check(
    edited,
    target_scene: Scene,
    category: str,
    source_scene: Scene | None,
    source,
    status: str | None,
    area: str | None,
    size: str | None,
) -> tuple[bool, str]:
    if category not in spec.CATEGORIES:
        raise ValueError(f"unknown category {category!r}; one of {spec.CATEGORIES}")
    img = np.asarray(edited)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"edited must be one (H, W, 3) uint8 image, got {img.shape} {img.dtype}")

    if category == "absent":
        if status is not None:
            return status == "no_edit", f"status {status!r}"
        if source is None:
            raise ValueError("absent: pass status= (the editor's) or source= (to check the image is unchanged)")
        same = np.array_equal(img, np.asarray(source))
        return same, "image unchanged" if same else "image changed"

    if status == "no_edit":
        return False, "no edit made"
    objects = measure_objects(img)

    if category == "remove":
        if source_scene is None:
            raise ValueError("remove: pass source_scene= (to know which object was removed)")
        kept = {(o.color, o.shape) for o in target_scene.objects}
        removed = [o for o in source_scene.objects if (o.color, o.shape) not in kept]
        for o in removed:
            if find_object(img, o.color, o.shape, objects=objects).found:
                return False, f"{o.color} {o.shape} still present"
        m = scene_match(img, target_scene, objects=objects)
        if not m["objects_correct"]:
            return False, "a kept object is missing or wrong"
        if m["extra_objects"]:
            return False, f"{m['extra_objects']} extra object(s)"
        return True, "removed, others intact"

    if category == "add":
        if source_scene is None:
            raise ValueError("add: pass source_scene= (to know which object is new)")
        old = {(o.color, o.shape) for o in source_scene.objects}
        new = [o for o in target_scene.objects if (o.color, o.shape) not in old]
        if len(new) != 1:
            raise ValueError(f"add: expected one new object in target_scene, found {len(new)}")
        m = scene_match(img, source_scene, objects=objects)
        if not m["objects_correct"]:
            return False, "an original object is missing or wrong"
        paired = {e["measured"] for e in m["objects"]}
        extras = [o for i, o in enumerate(objects) if i not in paired]
        if len(extras) != 1:
            return False, f"{len(extras)} new objects (expected 1)"
        got, want = extras[0], new[0]
        if (got.color, got.shape) != (want.color, want.shape):
            return False, f"added a {got.color} {got.shape}, not a {want.color} {want.shape}"
        if area is not None and not spec.in_area(area, got.cx, got.cy):
            return False, f"added outside the {area}"
        if size is not None and _size_class(got.r) != size:
            return False, f"added object is {_size_class(got.r)}, not {size}"
        return True, "added"

    m = scene_match(img, target_scene, objects=objects)
    if not m["objects_correct"]:
        return False, "an object is missing or has the wrong colour/shape"
    if m["extra_objects"]:
        return False, f"{m['extra_objects']} extra object(s)"
    if category == "size":
        for e, gt in zip(m["objects"], target_scene.objects):
            got = _size_class(objects[e["measured"]].r)
            if got != gt.size:
                return False, f"{gt.color} {gt.shape} is {got}, not {gt.size}"
        return True, "sizes correct"
    if category == "background":
        outside = _outside_objects(target_scene, img.shape[:2])
        err = background_l1(img, target_scene.background, outside)
        if not (err < BACKGROUND_TOLERANCE):
            return False, f"background differs (mean abs {err:.3f} >= {BACKGROUND_TOLERANCE})"
        return True, "objects intact, background matches"
    return True, "all objects correct"  # local, color


def edit_success(
    edited,
    target_scene: Scene,
    category: str,
    *,
    source_scene: Scene | None = None,
    source=None,
    status: str | None = None,
    area: str | None = None,
    size: str | None = None,
    return_reason: bool = False,
):
    """Whether an edited shapes-world image carries out the edit (exact ground truth, measured).

    Objects are measured with :func:`regionedit.world.measure.measure_objects` (palette
    colour, template-fitted shape, centre, radius) and paired with the ground truth by
    :func:`~regionedit.world.measure.scene_match`. Per category:

    * ``remove`` (needs ``source_scene``): the removed object (colour + shape) is found nowhere,
      every other object is present with the right colour and shape, and there is **no extra**
      object (``scene_match(target)["all_correct"]``: replacing the object by something else is not
      a removal).
    * ``add`` (needs ``source_scene``): every original object present and correct in place, exactly
      one extra object, of the new colour and shape; in the named ``area`` when given and of the
      named ``size`` class when given. The new object's position is *not* compared with the target
      scene's (any free position is a correct answer to "add a star").
    * ``local``, ``color``: ``scene_match(edited, target_scene)["all_correct"]``: every target
      object present at its place with the right colour and shape, no extra objects.
    * ``size``: as local/color, and every object's measured radius is in its target size class
      (small below / large above :data:`SIZE_CLASS_THRESHOLD`).
    * ``background``: objects as local/color, and ``mean |edited - rendered target background|``
      (``[0, 1]``, 3 channels) over the pixels no target object covers (minus a 1-px ring) below
      :data:`BACKGROUND_TOLERANCE` (0.05).
    * ``absent``: the right answer is no edit: with ``status`` given, success iff
      ``status == "no_edit"``; otherwise iff ``edited`` is identical to ``source``.

    For every other category a ``status == "no_edit"`` is a failure.

    Args:
        edited: ``(H, W, 3)`` uint8, one image (any size; coordinates are normalised).
        target_scene: the ground-truth target scene graph.
        category: one of ``spec.CATEGORIES``.
        source_scene, source: the source scene graph / image (see above).
        status: the editor's status (``"edited"`` / ``"no_edit"``), optional.
        area, size: for ``add``, the area / size class the instruction named (None if none).
        return_reason: also return a short explanation.

    Returns:
        ``bool``, or ``(bool, reason)`` with ``return_reason=True``.
    """
    ok, reason = _edit_check(edited, target_scene, category, source_scene, source, status, area, size)
    return (ok, reason) if return_reason else ok


def edit_success_sample(sample, edited, status: str | None = None, return_reason: bool = False):
    """:func:`edit_success` for a :class:`regionedit.world.EditSample` (its scenes, source image,
    category and, for ``add``, the instruction's area and size word)."""
    edit = sample.edit or {}
    area = edit.get("area") if sample.category == "add" else None
    size = edit.get("size") if sample.category == "add" else None
    return edit_success(
        edited,
        sample.target_scene,
        sample.category,
        source_scene=sample.source_scene,
        source=sample.source,
        status=status,
        area=area,
        size=size,
        return_reason=return_reason,
    )


def absent_accuracy(statuses: Sequence[str], is_absent: Sequence[bool]) -> dict:
    """How well an editor refuses absent-referent instructions, and how rarely it refuses others.

    Definition: ``no_edit_rate_on_absent`` = share of absent-referent samples with status
    ``"no_edit"`` (higher is better); ``false_no_edit_rate`` = share of the other samples with status
    ``"no_edit"`` (lower is better). A rate over zero samples is NaN. Counts are included.

    Args:
        statuses: the editor's status per sample (``"edited"`` / ``"no_edit"``).
        is_absent: per sample, whether its category is ``"absent"``.

    Returns:
        ``{"no_edit_rate_on_absent", "false_no_edit_rate", "n_absent", "n_present"}``.
    """
    st = list(statuses)
    ab = [bool(v) for v in is_absent]
    if len(st) != len(ab):
        raise ValueError(f"{len(st)} statuses for {len(ab)} samples")
    no_edit = np.array([s == "no_edit" for s in st], dtype=bool)
    ab_arr = np.array(ab, dtype=bool)
    n_abs, n_pre = int(ab_arr.sum()), int((~ab_arr).sum())
    return {
        "no_edit_rate_on_absent": float(no_edit[ab_arr].mean()) if n_abs else float("nan"),
        "false_no_edit_rate": float(no_edit[~ab_arr].mean()) if n_pre else float("nan"),
        "n_absent": n_abs,
        "n_present": n_pre,
    }



def add_iou_ceiling(source_scene: Scene, edit: Mapping[str, Any], size: int = 64, k: int = 200, seed: int = 0,
                    return_samples: bool = False):
    """An upper bound on the expected region IoU any method can reach on an ``add`` edit without seeing where
    the ground truth put the new object.

    WORLD.md places an added object uniformly in the free space (of the named area, when one is named), so
    its mask ``M`` is random given the image and the instruction. For any region ``R`` chosen from those,
    ``IoU(R, M) <= |R & M| / max(|R|, m)`` with ``m`` the smallest mask, so ``E[IoU] <= mean of the m
    largest values of q``, where ``q(p) = P(p in M)``. ``q`` and ``m`` are estimated from ``k`` placements
    drawn as the world draws them (:func:`regionedit.world.scene.place`; the size class from the instruction,
    else either; masks as the ground truth's: coverage > 0 dilated by 1 px).

    Args:
        source_scene: the scene before the edit; ``edit``: the sample's edit record (``color``, ``shape``,
            ``size`` or None, ``area`` or None).
        size: image side in pixels (the masks are ``(size, size)``); k: placements drawn; seed: their RNG seed.
        return_samples: also return the placement masks.
    Returns:
        the bound in [0, 1] (NaN when no placement fits); with ``return_samples``, also the ``(k', H, W)``
        bool placement masks.
    """
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(k):
        cls = edit.get("size") or ("small" if rng.random() < 0.5 else "large")
        new = place(rng, source_scene.objects, edit["shape"], edit["color"], sample_radius(rng, cls), edit.get("area"))
        if new is None:
            continue
        masks.append(ndimage.binary_dilation(object_coverage(new, size) > 0, structure=_SQUARE))
    if not masks:
        return (float("nan"), np.zeros((0, size, size), bool)) if return_samples else float("nan")
    stack = np.stack(masks)
    q = stack.mean(0).ravel()
    m = int(stack.sum((1, 2)).min())
    bound = float(np.sort(q)[::-1][:m].mean())
    return (bound, stack) if return_samples else bound
