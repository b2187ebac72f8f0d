"""Edits of the shapes world with exact ground truth (WORLD.md, "Instructions" and "Ground truth").

:func:`sample_edit` is the single entry point: ``(seed, index)`` -> :class:`EditSample`. Each sample is
drawn from its own generator ``numpy.random.default_rng([seed, index])``, so any sample can be
regenerated alone (random access, resumable exports) and the same seed gives byte-identical data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import language as lang
from . import spec
from .rendering import render, render_background
from .scene import (
    Background,
    Scene,
    WorldObject,
    color_allowed,
    fits,
    free_pairs,
    place,
    sample_radius,
    sample_scene,
)

# Default category mix: every category (absent referents included) equally often.
DEFAULT_CATEGORY_WEIGHTS: dict[str, float] = {c: 1.0 for c in spec.CATEGORIES}


@dataclasses.dataclass
class EditSample:
    """One edit with its ground truth. Images are ``(H, W, 3)`` uint8 RGB; ``mask`` is ``(H, W)``
    bool, True where source and target differ at native size, dilated by 1 px (3x3)."""

    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    instruction: str
    category: str  # one of spec.CATEGORIES
    source_caption: str
    target_caption: str
    source_scene: Scene
    target_scene: Scene
    edit: dict[str, Any]  # structured description of the edit (what the instruction means)

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable ground truth (everything but the pixel arrays)."""
        return {
            "instruction": self.instruction,
            "category": self.category,
            "source_caption": self.source_caption,
            "target_caption": self.target_caption,
            "source_scene": self.source_scene.to_dict(),
            "target_scene": self.target_scene.to_dict(),
            "edit": self.edit,
        }

    def local_description(self) -> str | None:
        """What the edited region shows in ``target`` (MagicBrush's "local description" of an output image), from
        the ground truth: the new or changed object as the captions phrase it (``"a large red star"``) for add,
        local, color and size edits; the target background (``"a white background"``) for background edits and
        removals (the removed object's place shows the background). None for absent referents: nothing is
        edited, so there is no edited region to describe."""
        if self.category == "absent":
            return None
        if self.category in ("remove", "background"):
            return lang.background_phrase(self.target_scene.background)
        changed = [o for o in self.target_scene.objects if o not in self.source_scene.objects]
        if len(changed) != 1:  # every add / local / color / size edit changes exactly one object
            raise ValueError(f"a {self.category} edit should change one object, this one changes {len(changed)}")
        return lang.object_phrase(changed[0])


def edit_mask(source: np.ndarray, target: np.ndarray, dilate: int = 1) -> np.ndarray:
    """Pixels that differ between two ``(H, W, 3)`` images, dilated by ``dilate`` px: ``(H, W)`` bool."""
    diff = np.any(source != target, axis=-1)
    out = diff.copy()
    h, w = diff.shape
    for dy in range(-dilate, dilate + 1):
        for dx in range(-dilate, dilate + 1):
            ys = slice(max(dy, 0), h + min(dy, 0))
            yd = slice(max(-dy, 0), h + min(-dy, 0))
            xs = slice(max(dx, 0), w + min(dx, 0))
            xd = slice(max(-dx, 0), w + min(-dx, 0))
            out[yd, xd] |= diff[ys, xs]
    return out


def _shape_unique(scene: Scene, shape: str) -> bool:
    return len(scene.find(None, shape)) == 1


def _ref_for(rng: np.random.Generator, scene: Scene, obj: WorldObject) -> tuple[str, dict]:
    """Referring expression for an object of the scene; shape alone when that shape is unique."""
    if _shape_unique(scene, obj.shape) and rng.random() < 0.3:
        return lang.refer(rng, None, obj.shape), {"color": None, "shape": obj.shape}
    return lang.refer(rng, obj.color, obj.shape, obj.size), {"color": obj.color, "shape": obj.shape}


def _replace(scene: Scene, old: WorldObject, new: WorldObject | None) -> Scene:
    objs = [o for o in scene.objects if o is not old]
    if new is not None:
        objs.append(new)
    return Scene(scene.background, tuple(objs))


def _edit_remove(rng, scene):
    obj = scene.objects[rng.integers(len(scene.objects))]
    ref, refd = _ref_for(rng, scene, obj)
    return _replace(scene, obj, None), lang.phrase_remove(rng, ref), {"op": "remove", "ref": refd}


def _edit_add(rng, scene):
    if len(scene.objects) >= spec.MAX_OBJECTS:
        return None
    pairs = free_pairs(scene.objects, scene.background)
    color, shape = pairs[rng.integers(len(pairs))]
    size = "small" if rng.random() < 0.5 else "large"
    area = spec.AREAS[rng.integers(len(spec.AREAS))] if rng.random() < 0.5 else None
    new = place(rng, scene.objects, shape, color, sample_radius(rng, size), area)
    if new is None:
        return None
    say_size = size if rng.random() < 0.6 else None
    text = lang.phrase_add(rng, lang.new_object_phrase(rng, color, shape, say_size), area)
    target = Scene(scene.background, scene.objects + (new,))
    return target, text, {"op": "add", "color": color, "shape": shape, "size": say_size, "area": area}


def _edit_local(rng, scene):
    obj = scene.objects[rng.integers(len(scene.objects))]
    others = [o for o in scene.objects if o is not obj]
    used = {(o.color, o.shape) for o in others}
    keep_color = rng.random() < 0.25
    options = [
        (c, s)
        for c in spec.OBJECT_COLORS
        for s in spec.SHAPES
        if s != obj.shape
        and (c, s) not in used
        and color_allowed(c, scene.background)
        and (c == obj.color) == keep_color
    ]
    if not options:
        return None
    color, shape = options[rng.integers(len(options))]
    new = WorldObject(shape, color, obj.cx, obj.cy, obj.r)
    ref, refd = _ref_for(rng, scene, obj)
    new_text = lang.new_object_phrase(rng, None if keep_color else color, shape, None)
    text = lang.phrase_replace(rng, ref, new_text)
    return _replace(scene, obj, new), text, {"op": "local", "ref": refd, "color": color, "shape": shape}


def _edit_color(rng, scene):
    obj = scene.objects[rng.integers(len(scene.objects))]
    used = {(o.color, o.shape) for o in scene.objects}
    options = [
        c
        for c in spec.OBJECT_COLORS
        if c != obj.color and (c, obj.shape) not in used and color_allowed(c, scene.background)
    ]
    if not options:
        return None
    color = options[rng.integers(len(options))]
    new = dataclasses.replace(obj, color=color)
    ref, refd = _ref_for(rng, scene, obj)
    return _replace(scene, obj, new), lang.phrase_color(rng, ref, color), {"op": "color", "ref": refd, "color": color}


def _edit_size(rng, scene):
    obj = scene.objects[rng.integers(len(scene.objects))]
    bigger = obj.size == "small"
    new_size = "large" if bigger else "small"
    others = [o for o in scene.objects if o is not obj]
    for _ in range(20):
        new = dataclasses.replace(obj, r=sample_radius(rng, new_size))
        if fits(new, others):
            ref, refd = _ref_for(rng, scene, obj)
            text = lang.phrase_size(rng, ref, bigger)
            return _replace(scene, obj, new), text, {"op": "size", "ref": refd, "bigger": bigger}
    return None


# A background edit must visibly change every non-object pixel: at every height, some channel of the
# new background differs from the old by at least this many levels (checked on a fine grid of rows,
# so it holds at any render size).
MIN_BACKGROUND_CHANGE = 8.0


def _edit_background(rng, scene):
    names = list(spec.BACKGROUND_COLORS)
    rows = (1024, 1)
    old = render_background(scene.background, rows)
    for _ in range(100):
        top = names[rng.integers(len(names))]
        bottom = None
        if rng.random() < 0.3:
            bottom = [n for n in names if n != top][rng.integers(len(names) - 1)]
        bg = Background(top, bottom)
        if not all(color_allowed(o.color, bg) for o in scene.objects):
            continue
        change = np.abs(render_background(bg, rows) - old).max(axis=-1)  # (1024, 1)
        if change.min() < MIN_BACKGROUND_CHANGE:
            continue
        text = lang.phrase_background(rng, bg)
        return Scene(bg, scene.objects), text, {"op": "background", "top": top, "bottom": bottom}
    return None


def _edit_absent(rng, scene):
    """An instruction naming an object that is not in the scene: the right answer is no edit."""
    present = {(o.color, o.shape) for o in scene.objects}
    present_shapes = {o.shape for o in scene.objects}
    if rng.random() < 0.25 and len(present_shapes) < len(spec.SHAPES):
        shape = [s for s in spec.SHAPES if s not in present_shapes][rng.integers(len(spec.SHAPES) - len(present_shapes))]
        color = None
    else:
        # prefer near misses: a colour or shape that is present, in a pair that is not
        near = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if (c, s) not in present]
        hard = [(c, s) for (c, s) in near if any(c == pc or s == ps for pc, ps in present)]
        pool = hard if hard and rng.random() < 0.7 else near
        color, shape = pool[rng.integers(len(pool))]
    ref = lang.refer(rng, color, shape)
    op = ("remove", "color", "size", "local")[rng.integers(4)]
    if op == "remove":
        text = lang.phrase_remove(rng, ref)
    elif op == "color":
        c2 = [c for c in spec.OBJECT_COLORS if c != color][rng.integers(len(spec.OBJECT_COLORS) - 1)]
        text = lang.phrase_color(rng, ref, c2)
    elif op == "size":
        text = lang.phrase_size(rng, ref, bool(rng.random() < 0.5))
    else:
        s2 = [s for s in spec.SHAPES if s != shape][rng.integers(len(spec.SHAPES) - 1)]
        text = lang.phrase_replace(rng, ref, lang.new_object_phrase(rng, None, s2, None))
    return scene, text, {"op": "absent", "as": op, "ref": {"color": color, "shape": shape}}


_EDITORS = {
    "remove": _edit_remove,
    "add": _edit_add,
    "local": _edit_local,
    "color": _edit_color,
    "size": _edit_size,
    "background": _edit_background,
    "absent": _edit_absent,
}


def make_edit(
    rng: np.random.Generator, scene: Scene, category: str, size: int = spec.NATIVE_SIZE
) -> EditSample | None:
    """Apply one edit of ``category`` to ``scene``; None when the scene does not allow it."""
    out = _EDITORS[category](rng, scene)
    if out is None:
        return None
    target_scene, instruction, edit = out
    source = render(scene, size)
    target = render(target_scene, size)
    # ground-truth mask at native size, then nearest-resized to the requested size
    if size == spec.NATIVE_SIZE:
        mask = edit_mask(source, target)
    else:
        m64 = edit_mask(render(scene), render(target_scene))
        idx = (np.arange(size) * spec.NATIVE_SIZE) // size
        mask = m64[idx][:, idx]
    src_caption = lang.caption(scene, rng, size_words=0.7)
    tgt_caption = src_caption if category == "absent" else lang.caption(target_scene, rng, size_words=0.7)
    return EditSample(
        source, target, mask, instruction, category, src_caption, tgt_caption, scene, target_scene, edit
    )


def sample_edit(
    seed: int,
    index: int,
    size: int = spec.NATIVE_SIZE,
    category: str | None = None,
    weights: dict[str, float] | None = None,
) -> EditSample:
    """The ``index``-th edit of the dataset with seed ``seed`` (deterministic, random access).

    The category is drawn first (from ``weights``, default uniform over ``spec.CATEGORIES``) and scenes
    are redrawn until that category is possible, so categories appear at exactly their expected rates.
    """
    rng = np.random.default_rng([seed, index])
    if category is None:
        w = weights or DEFAULT_CATEGORY_WEIGHTS
        cats = list(w)
        p = np.array([w[c] for c in cats], dtype=np.float64)
        category = cats[rng.choice(len(cats), p=p / p.sum())]
    if category not in _EDITORS:
        raise ValueError(f"unknown edit category {category!r}; choose one of {list(_EDITORS)}")
    while True:
        scene = sample_scene(rng)
        sample = make_edit(rng, scene, category, size)
        if sample is not None:
            return sample
