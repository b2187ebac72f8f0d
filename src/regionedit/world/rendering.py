"""Anti-aliased rendering of shapes-world scenes at any size, from normalised geometry.

Every object is drawn from its exact signed distance field (SDF): a pixel's coverage is
``clip(0.5 - d / pixel, 0, 1)`` where ``d`` is the signed distance of the pixel centre to the shape
boundary. Only float64 arithmetic and correctly rounded ``sqrt`` are used (shape vertices are literal
constants, no trigonometry), so the same scene gives byte-identical images on any IEEE-754 machine.
"""

from __future__ import annotations

import numpy as np

from . import spec
from .scene import Background, Scene, WorldObject

# Unit vertices (circumradius 1, y down, first vertex at the top), as literal constants.
_UNIT_POLYGONS: dict[str, np.ndarray] = {
    "square": np.array(
        [
            (-0.7071067811865476, -0.7071067811865476),
            (0.7071067811865476, -0.7071067811865476),
            (0.7071067811865476, 0.7071067811865476),
            (-0.7071067811865476, 0.7071067811865476),
        ]
    ),
    "triangle": np.array([(0.0, -1.0), (0.8660254037844386, 0.5), (-0.8660254037844386, 0.5)]),
    "diamond": np.array([(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]),
    "star": np.array(
        [
            (0.0, -1.0),
            (0.2645033635316129, -0.3640576474687264),
            (0.9510565162951535, -0.3090169943749474),
            (0.4279754323328191, 0.13905764746872634),
            (0.5877852522924731, 0.8090169943749475),
            (0.0, 0.45),
            (-0.587785252292473, 0.8090169943749475),
            (-0.4279754323328191, 0.13905764746872637),
            (-0.9510565162951536, -0.3090169943749473),
            (-0.26450336353161297, -0.3640576474687263),
        ]
    ),
}

Window = tuple[float, float, float, float]  # (x0, y0, x1, y1) in normalised scene coordinates
FULL_WINDOW: Window = (0.0, 0.0, 1.0, 1.0)


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _polygon_sdf(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points to a simple polygon (even-odd rule)."""
    d2 = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    n = len(verts)
    for i in range(n):
        ax, ay = verts[i]
        bx, by = verts[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        wx, wy = px - ax, py - ay
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = wx - ex * t, wy - ey * t
        d2 = np.minimum(d2, dx * dx + dy * dy)
        # crossing test for a horizontal ray to the right
        cond = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = ax + (py - ay) * ex / np.where(ey == 0, 1.0, ey)
        inside ^= cond & (px < xint)
    d = np.sqrt(d2)
    return np.where(inside, -d, d)


def object_sdf(obj: WorldObject, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Signed distance (normalised units, negative inside) of points ``(px, py)`` to ``obj``."""
    if obj.shape == "circle":
        dx, dy = px - obj.cx, py - obj.cy
        return np.sqrt(dx * dx + dy * dy) - obj.r
    verts = _UNIT_POLYGONS[obj.shape] * obj.r + np.array([obj.cx, obj.cy])
    return _polygon_sdf(px, py, verts)


def _grid(size_hw: tuple[int, int], window: Window):
    h, w = size_hw
    x0, y0, x1, y1 = window
    xs = x0 + (np.arange(w) + 0.5) * ((x1 - x0) / w)
    ys = y0 + (np.arange(h) + 0.5) * ((y1 - y0) / h)
    pixel = 0.5 * ((x1 - x0) / w + (y1 - y0) / h)
    return xs, ys, pixel


def object_coverage(
    obj: WorldObject, size: int | tuple[int, int] = spec.NATIVE_SIZE, window: Window = FULL_WINDOW
) -> np.ndarray:
    """Anti-aliased coverage of one object: ``(H, W)`` float64 in ``[0, 1]``, image pixels."""
    hw = _size_hw(size)
    xs, ys, pixel = _grid(hw, window)
    cov = np.zeros(hw)
    # restrict work to the object's bounding box (plus one pixel)
    xm = np.nonzero(np.abs(xs - obj.cx) <= obj.r + pixel)[0]
    ym = np.nonzero(np.abs(ys - obj.cy) <= obj.r + pixel)[0]
    if len(xm) == 0 or len(ym) == 0:
        return cov
    px, py = np.meshgrid(xs[xm[0] : xm[-1] + 1], ys[ym[0] : ym[-1] + 1])
    d = object_sdf(obj, px, py)
    cov[ym[0] : ym[-1] + 1, xm[0] : xm[-1] + 1] = np.clip(0.5 - d / pixel, 0.0, 1.0)
    return cov


def render_background(
    background: Background, size: int | tuple[int, int] = spec.NATIVE_SIZE, window: Window = FULL_WINDOW
) -> np.ndarray:
    """Background only: ``(H, W, 3)`` float64 RGB in ``[0, 255]``; gradients run top to bottom."""
    hw = _size_hw(size)
    xs, ys, _ = _grid(hw, window)
    top = np.array(spec.BACKGROUND_COLORS[background.top], dtype=np.float64)
    if background.bottom is None:
        return np.broadcast_to(top, (hw[0], hw[1], 3)).copy()
    bottom = np.array(spec.BACKGROUND_COLORS[background.bottom], dtype=np.float64)
    t = np.clip(ys, 0.0, 1.0)[:, None, None]
    col = top * (1.0 - t) + bottom * t  # (H, 1, 3)
    return np.broadcast_to(col, (hw[0], hw[1], 3)).copy()


def render(
    scene: Scene, size: int | tuple[int, int] = spec.NATIVE_SIZE, window: Window = FULL_WINDOW
) -> np.ndarray:
    """Render a scene: ``(H, W, 3)`` uint8 RGB, image pixels (row 0 at the top).

    Args:
        scene: the scene graph.
        size: output size, an int for a square canvas or ``(H, W)``.
        window: the part of the scene to draw, ``(x0, y0, x1, y1)`` in normalised coordinates; the
            default draws the whole canvas. A smaller window zooms in (used for crop-level training).
    """
    img = render_background(scene.background, size, window)
    for obj in scene.objects:
        a = object_coverage(obj, size, window)[..., None]
        img = img * (1.0 - a) + np.array(obj.rgb, dtype=np.float64) * a
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
