"""A second renderer of the shapes world, written independently of :mod:`regionedit.world.rendering`, to check
that nothing is tuned to one renderer's pixels (WORLD.md: "evaluation data made by other renderers that follow
it must work with the bundled models").

It follows the spec but makes the choices another implementer might make, each different from ours:

- anti-aliasing by supersampling: the scene is drawn with PIL at ``supersample`` x the size (polygons from
  trigonometry, circles as PIL ellipses) and box-filtered down (ours: exact signed-distance coverage with a
  1 px ramp); ``supersample=1`` draws hard, aliased edges (outside the spec: a stress test);
- gradients reach their end colours exactly on the first and last rows (ours: at the image's top and bottom
  edges, so row centres never quite reach them).

Shapes keep WORLD.md's geometry: centre and circumscribed-circle radius, triangle upright, star with a point up
and inner radius 0.45, diamond a square rotated 45 degrees.

    from regionedit.world.alt_render import render_pil, rerender_sample
    image = render_pil(scene, 64)                # (64, 64, 3) uint8 RGB
    sample = rerender_sample(sample)             # source, target and mask redrawn by this renderer
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw

from regionedit.world import spec
from regionedit.world.edits import EditSample, edit_mask
from regionedit.world.scene import Scene, WorldObject

__all__ = ["RENDERERS", "drawn_by", "render_by", "render_pil", "rerender_sample"]

RENDERERS = ("regionedit", "pil", "pil-aliased")  # names the benchmarks' --renderer takes


def _outline(obj: WorldObject) -> list[tuple[float, float]]:
    """The polygon of a non-circular object, in normalised coordinates (y down)."""
    n, radii, start = {
        "triangle": (3, (1.0,), -90.0),
        "square": (4, (1.0,), -45.0),
        "diamond": (4, (1.0,), -90.0),
        "star": (10, (1.0, 0.45), -90.0),
    }[obj.shape]
    pts = []
    for k in range(n):
        a = math.radians(start + 360.0 * k / n)
        rr = obj.r * radii[k % len(radii)]
        pts.append((obj.cx + rr * math.cos(a), obj.cy + rr * math.sin(a)))
    return pts


def render_pil(scene: Scene, size: int | tuple[int, int] = spec.NATIVE_SIZE, supersample: int = 4) -> np.ndarray:
    """``scene`` drawn by this module: ``(H, W, 3)`` uint8 RGB, row 0 at the top.

    Args:
        scene: the scene graph (geometry in normalised ``[0, 1]`` coordinates).
        size: an int for a square canvas or ``(H, W)``.
        supersample: drawing scale before the box-filter downsampling; 1 draws aliased edges.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    bh, bw = h * supersample, w * supersample
    top = np.array(spec.BACKGROUND_COLORS[scene.background.top], np.float64)
    if scene.background.bottom is None:
        rows = np.broadcast_to(top, (bh, 3))
    else:  # end colours exactly on the first and last rows of the output
        bottom = np.array(spec.BACKGROUND_COLORS[scene.background.bottom], np.float64)
        t = np.repeat(np.arange(h) / max(h - 1, 1), supersample)[:, None]  # constant within an output row
        rows = top * (1 - t) + bottom * t
    canvas = Image.fromarray(np.rint(np.broadcast_to(rows[:, None], (bh, bw, 3))).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for obj in scene.objects:
        if obj.shape == "circle":
            box = [(obj.cx - obj.r) * bw, (obj.cy - obj.r) * bh, (obj.cx + obj.r) * bw, (obj.cy + obj.r) * bh]
            draw.ellipse(box, fill=obj.rgb)
        else:
            draw.polygon([(x * bw, y * bh) for x, y in _outline(obj)], fill=obj.rgb)
    if supersample > 1:
        canvas = canvas.resize((w, h), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.uint8).copy()


def rerender_sample(sample: EditSample, supersample: int = 4) -> EditSample:
    """``sample`` with its source, target and ground-truth mask (pixels that differ, dilated by 1 px) drawn by
    :func:`render_pil` at the source's size; scenes, instruction and captions unchanged."""
    size = sample.source.shape[:2]
    src = render_pil(sample.source_scene, size, supersample)
    tgt = render_pil(sample.target_scene, size, supersample)
    return dataclasses.replace(sample, source=src, target=tgt, mask=edit_mask(src, tgt))


def render_by(scene: Scene, renderer: str, size: int | tuple[int, int] = spec.NATIVE_SIZE) -> np.ndarray:
    """``scene`` drawn by ``renderer`` (one of :data:`RENDERERS`): ``(H, W, 3)`` uint8 RGB, as :func:`drawn_by`
    draws samples."""
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}: use one of {', '.join(RENDERERS)}")
    if renderer == "regionedit":
        from regionedit.world import render

        return render(scene, size)
    return render_pil(scene, size, supersample=4 if renderer == "pil" else 1)


def drawn_by(sample: EditSample, renderer: str) -> EditSample:
    """``sample`` as ``renderer`` (one of :data:`RENDERERS`) draws it: ``"regionedit"`` returns it as is,
    ``"pil"`` / ``"pil-aliased"`` redraw it with :func:`rerender_sample` (supersample 4 / 1)."""
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}: use one of {', '.join(RENDERERS)}")
    if renderer == "regionedit":
        return sample
    return rerender_sample(sample, supersample=4 if renderer == "pil" else 1)
