"""Region shaping by edit type: turn the predicted footprint of the referent into the region the edit
needs, using only the region itself and the parsed instruction (never the scene).

The predictor outputs where the referent *is*; some edits also need room where the new content will be:

* ``size`` with ``bigger``: the enlarged object grows about its centre, so the region becomes the disc
  around the footprint's centroid scaled by :attr:`ShapingConfig.grow` (small -> large in the shapes
  world is about x1.6 in radius);
* ``local`` (replace by another shape): the new shape shares the old one's centre and circumscribed
  circle, so the region becomes that disc;
* everything else keeps the predicted region.

Regions are ``(H, W)`` bool arrays in image pixels (row 0 at the top).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class ShapingConfig:
    grow: float = 1.75  # radius factor of the disc for "make it bigger"
    margin: float = 1.0  # extra pixels (at 64 px; scaled with the image) added to every disc


def _disc(region: np.ndarray, scale: float, margin: float) -> np.ndarray:
    ys, xs = np.nonzero(region)
    cy, cx = ys.mean(), xs.mean()
    r = np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max()) + 0.5
    h, w = region.shape
    yy, xx = np.mgrid[0:h, 0:w]
    return region | (((yy - cy) ** 2 + (xx - cx) ** 2) <= (r * scale + margin) ** 2)


def shape_region(region: np.ndarray, intent, config: ShapingConfig | None = None) -> np.ndarray:
    """The region an edit needs, from the predicted referent footprint ``region`` and the instruction's
    :class:`~regionedit.describe.EditIntent` (``None`` leaves the region as it is)."""
    cfg = config or ShapingConfig()
    if intent is None or not region.any():
        return region
    margin = cfg.margin * max(region.shape) / 64
    if intent.op == "size" and intent.bigger:
        return _disc(region, cfg.grow, margin)
    if intent.op == "local":
        return _disc(region, 1.0, margin)
    return region
