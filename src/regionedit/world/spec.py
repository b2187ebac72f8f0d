"""Constants of the shapes world, exactly as ``WORLD.md`` (spec v1) defines them.

Coordinates: normalised ``[0, 1]`` with x to the right and y **down** (image convention); a scene
renders at any pixel size by scaling these.
"""

from __future__ import annotations

NATIVE_SIZE = 64  # native canvas size in pixels (models are trained at this size)

# Background colours (RGB uint8).
BACKGROUND_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "beige": (240, 230, 180),
    "sky blue": (120, 170, 230),
    "light green": (150, 200, 150),
}

# Object colours (RGB uint8).
OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (240, 130, 30),
    "yellow": (245, 210, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 170),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")

# Circumscribed-circle radius ranges, in normalised units.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.09, 0.12), "large": (0.15, 0.20)}

MIN_GAP = 0.03  # minimum distance between two objects' circumscribed circles
MIN_COLOR_DISTANCE = 60.0  # L2 RGB distance an object colour keeps from every background colour end
MAX_OBJECTS = 3
STAR_INNER_RATIO = 0.45

# Named areas for "add ... in the top left": a predicate on the new object's centre (cx, cy).
AREAS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "center")
CENTER_HALF_WIDTH = 0.15  # "center" means |cx - 0.5| <= 0.15 and |cy - 0.5| <= 0.15

CATEGORIES: tuple[str, ...] = ("remove", "add", "local", "color", "size", "background", "absent")


def in_area(area: str, cx, cy):
    """Whether a centre ``(cx, cy)`` (normalised, y down) lies in a named area: a bool for floats, a bool
    array for arrays of centres (elementwise)."""
    if area == "center":
        return (abs(cx - 0.5) <= CENTER_HALF_WIDTH) & (abs(cy - 0.5) <= CENTER_HALF_WIDTH)
    vert, horiz = area.split()
    ok_y = (cy < 0.5) if vert == "top" else (cy > 0.5)
    ok_x = (cx < 0.5) if horiz == "left" else (cx > 0.5)
    return ok_x & ok_y


def color_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5)
