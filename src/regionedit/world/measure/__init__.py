"""Palette/shape measurement of shapes-world images, for scoring generated images.

This is an **evaluation** tool: it reads the world's palette (``world.spec``) to name what it sees
in an image (a text-to-image sample, an inpainting result, an edited image) so that it can be
compared with the ground truth. No inference path may use it.

It is built to survive imperfect generated images: colours a little off the palette (model output,
VAE colour drift), blur and soft edges, pixel noise and small speckles.

Pipeline of :func:`measure_objects`
-----------------------------------
1. **Background model** (:func:`estimate_background`). Backgrounds are solid or vertical
   gradients, so the background is one colour per row. Row medians are fitted by a robust straight
   line in ``y`` (Theil-Sen start, Tukey-weighted refinement), which ignores rows dominated by
   objects; each row is then re-estimated as the median of its pixels close to that line
   (tolerating non-linear or noisy backgrounds), falling back to the line where a row has too few
   such pixels.
2. **Foreground by unmixing.** Every pixel ``p`` of a row with background ``b`` is explained as
   ``b + alpha * (c - b)`` for each palette colour ``c`` (the anti-aliasing / blur model). A pixel
   explained by the colour whose blend line it is nearest (within ``COLOR_TOL``); it is foreground
   when ``alpha >= 0.5`` (at least half covered, as the renderer's coverage is) and it is at least
   ``MIN_CONTRAST`` from the background (so noise is not foreground). A pixel no palette colour
   explains is foreground when it is ``FG_DISTANCE`` from the background (off-palette objects are
   measured too, with the colour ``"unknown"``).
3. **Components.** 4-connected components of the foreground (a small vectorised union-find);
   components below ``min_area_frac`` of the image are dropped (speckles).
4. **Colour** of a component: the per-channel median RGB of its interior (the mask eroded by one
   pixel), named by :func:`classify_color` (``"unknown"`` when far from every palette colour).
5. **Shape.** A soft mask (each pixel's coverage by the component's *measured* colour, re-unmixed,
   so colour drift does not shrink it) gives a sub-pixel centroid and area. Every shape of the world
   has its centroid at its circumcentre, so each shape's template (the world renderer's signed
   distance and coverage rule) is placed at the centroid with the radius implied by the area
   (``area = k_shape * r^2``), refined over a few radius scales and centre offsets and compared
   sharp and blurred; the score is the soft IoU and the shape is the argmax. Large objects are
   block-averaged to an 8-16 px radius first, so fitting costs the same at any image size.
6. **Split.** A component that fits no shape well and is a clean union of large single-colour
   pieces (two objects of different colours joined, e.g. by blur) is replaced by those pieces
   when they fit their shapes better.

Coordinates
-----------
Images are ``(H, W, 3)`` uint8 RGB, row 0 at the top. Positions are normalised like the world's:
``cx = x_px / W`` and ``cy = y_px / H`` in ``[0, 1]`` (x right, y **down**, pixel centres at
``+0.5``); a radius ``r`` is normalised by ``sqrt(H * W)`` (by the side for square images).

Modules
-------
:mod:`.palette` (palette colours, foreground by unmixing), :mod:`.background` (step 1),
:mod:`.fitting` (step 5), :mod:`.objects` (:func:`measure_objects`, :class:`MeasuredObject`; steps 3, 4
and 6) and :mod:`.queries` (:func:`find_object`, :func:`scene_match`, :func:`background_l1`). Components
and the shape areas are :mod:`regionedit.world.geometry`'s. Every name in ``__all__`` is importable from
``regionedit.world.measure``.
"""

from regionedit.world.geometry import SHAPE_AREA, label_components
from regionedit.world.measure.background import BG_INLIER_DIST, estimate_background
from regionedit.world.measure.fitting import BLUR_LEVELS, CENTRE_OFFSETS, RADIUS_SCALES, TEMPLATE_RADIUS_PX
from regionedit.world.measure.objects import (SPLIT_COVER, SPLIT_FRACTION, SPLIT_MAX_SCORE, MeasuredObject,
                                              measure_objects)
from regionedit.world.measure.palette import (COLOR_TOL, FG_ALPHA, FG_DISTANCE, MAX_COLOR_DISTANCE, MIN_CONTRAST,
                                              MIN_PALETTE_CONTRAST, PALETTE_NAMES, UNKNOWN_COLOR, classify_color)
from regionedit.world.measure.queries import MatchResult, background_l1, find_object, scene_match

__all__ = [
    "MeasuredObject",
    "MatchResult",
    "measure_objects",
    "find_object",
    "scene_match",
    "background_l1",
    "classify_color",
    "estimate_background",
    "label_components",
    "SHAPE_AREA",
    "PALETTE_NAMES",
    "UNKNOWN_COLOR",
    "FG_ALPHA",
    "COLOR_TOL",
    "FG_DISTANCE",
    "MIN_CONTRAST",
    "MIN_PALETTE_CONTRAST",
    "MAX_COLOR_DISTANCE",
    "BG_INLIER_DIST",
    "SPLIT_FRACTION",
    "SPLIT_COVER",
    "SPLIT_MAX_SCORE",
    "TEMPLATE_RADIUS_PX",
    "RADIUS_SCALES",
    "CENTRE_OFFSETS",
    "BLUR_LEVELS",
]
