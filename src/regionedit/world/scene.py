"""Scene graphs of the shapes world and their seeded sampling.

A :class:`Scene` is the exact ground truth of an image: its background and 1-3 objects, each with a
shape, a colour name, a centre ``(cx, cy)`` and a circumscribed-circle radius ``r`` in normalised
``[0, 1]`` coordinates (x right, y down). Scene graphs are for training and evaluation only: no
inference path may read them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from . import spec


@dataclasses.dataclass(frozen=True)
class WorldObject:
    shape: str  # one of spec.SHAPES
    color: str  # a key of spec.OBJECT_COLORS
    cx: float  # centre x in [0, 1], left to right
    cy: float  # centre y in [0, 1], top to bottom
    r: float  # circumscribed-circle radius in normalised units

    @property
    def size(self) -> str:
        """Size class ("small" or "large") of the radius."""
        return "small" if self.r <= spec.SIZE_RANGES["small"][1] + 1e-9 else "large"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return spec.OBJECT_COLORS[self.color]


@dataclasses.dataclass(frozen=True)
class Background:
    top: str  # a key of spec.BACKGROUND_COLORS
    bottom: str | None = None  # None for a solid background, else the gradient's bottom colour

    @property
    def ends(self) -> tuple[str, ...]:
        return (self.top,) if self.bottom is None else (self.top, self.bottom)

    @property
    def is_gradient(self) -> bool:
        return self.bottom is not None


@dataclasses.dataclass(frozen=True)
class Scene:
    background: Background
    objects: tuple[WorldObject, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "background": dataclasses.asdict(self.background),
            "objects": [dataclasses.asdict(o) for o in self.objects],
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Scene":
        return Scene(Background(**d["background"]), tuple(WorldObject(**o) for o in d["objects"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def find(self, color: str | None, shape: str | None) -> list[WorldObject]:
        """Objects matching a colour and/or shape (``None`` matches anything)."""
        return [
            o
            for o in self.objects
            if (color is None or o.color == color) and (shape is None or o.shape == shape)
        ]


def color_allowed(color: str, background: Background) -> bool:
    """An object colour must not be within ``MIN_COLOR_DISTANCE`` of any background end."""
    rgb = spec.OBJECT_COLORS[color]
    return all(
        spec.color_distance(rgb, spec.BACKGROUND_COLORS[e]) >= spec.MIN_COLOR_DISTANCE
        for e in background.ends
    )


def fits(obj: WorldObject, others: tuple[WorldObject, ...] | list[WorldObject]) -> bool:
    """Whether ``obj`` lies fully inside the canvas and keeps ``MIN_GAP`` from every other object."""
    if not (obj.r <= obj.cx <= 1 - obj.r and obj.r <= obj.cy <= 1 - obj.r):
        return False
    for o in others:
        if np.hypot(obj.cx - o.cx, obj.cy - o.cy) < obj.r + o.r + spec.MIN_GAP:
            return False
    return True


def sample_radius(rng: np.random.Generator, size: str) -> float:
    lo, hi = spec.SIZE_RANGES[size]
    return float(rng.uniform(lo, hi))


def sample_background(rng: np.random.Generator, gradient_prob: float = 0.3) -> Background:
    names = list(spec.BACKGROUND_COLORS)
    top = names[rng.integers(len(names))]
    if rng.random() < gradient_prob:
        bottom = [n for n in names if n != top][rng.integers(len(names) - 1)]
        return Background(top, bottom)
    return Background(top)


def place(
    rng: np.random.Generator,
    others: list[WorldObject] | tuple[WorldObject, ...],
    shape: str,
    color: str,
    r: float,
    area: str | None = None,
    tries: int = 200,
) -> WorldObject | None:
    """Place a new object uniformly in free space (optionally in a named area); None if no room."""
    for _ in range(tries):
        cx, cy = rng.uniform(r, 1 - r, size=2)
        if area is not None and not spec.in_area(area, cx, cy):
            continue
        cand = WorldObject(shape, color, float(cx), float(cy), r)
        if fits(cand, others):
            return cand
    return None


def free_pairs(scene_objects, background: Background) -> list[tuple[str, str]]:
    """(colour, shape) pairs allowed on this background and not yet used in the scene."""
    used = {(o.color, o.shape) for o in scene_objects}
    return [
        (c, s)
        for c in spec.OBJECT_COLORS
        for s in spec.SHAPES
        if (c, s) not in used and color_allowed(c, background)
    ]


def sample_scene(
    rng: np.random.Generator,
    n_objects: int | None = None,
    gradient_prob: float = 0.3,
) -> Scene:
    """Sample a scene per WORLD.md: 1-3 non-overlapping objects, unique (colour, shape) pairs."""
    while True:
        background = sample_background(rng, gradient_prob)
        n = int(rng.integers(1, spec.MAX_OBJECTS + 1)) if n_objects is None else n_objects
        objects: list[WorldObject] = []
        for _ in range(n):
            pairs = free_pairs(objects, background)
            color, shape = pairs[rng.integers(len(pairs))]
            size = "small" if rng.random() < 0.5 else "large"
            obj = place(rng, objects, shape, color, sample_radius(rng, size))
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == n:
            return Scene(background, tuple(objects))
