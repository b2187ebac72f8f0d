"""Region shaping by edit type: turn the predicted footprint of the referent into the region the edit
needs, using only the region itself and the parsed instruction (never the scene).

The predictor outputs where the referent *is*; the edit changes a different set of pixels:

* ``size`` with ``bigger``: the object grows about its centre, so the region is the footprint scaled by
  :attr:`ShapingConfig.grow` about its centroid (the same shape, larger) minus its *core*, the footprint
  eroded by :attr:`ShapingConfig.core_erode` px, which keeps its colour (the generator extends the object
  around it);
* ``size`` with ``smaller``: the region is the footprint minus its core scaled by
  :attr:`ShapingConfig.shrink`: the ring the background reclaims, around a kept, smaller copy of the
  object;
* ``local`` (replace by another shape): the new shape shares the old one's centre and circumscribed
  circle, so the region becomes that disc;
* everything else keeps the predicted region.

In the shapes world (WORLD.md) a small object has a circumscribed radius of 0.09-0.12 and a large one
0.15-0.20, so the radius ratio is 1.25-2.2 either way; ``grow`` 1.5 and ``shrink`` 0.6 are the factors that
maximise region IoU with the ground truth (the pixels that differ) on oracle footprints of held-out scenes
(``benchmarks/region.py`` measures them on predicted ones). ``mode="disc"`` restores the earlier rule for
``bigger`` (a disc of radius ``disc_grow`` times the footprint's) and leaves ``smaller`` unchanged.

Regions are ``(H, W)`` bool arrays in image pixels (row 0 at the top); pixel margins are given at 64 px
and scale with the image's long side.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regionedit.compose import erode
from regionedit.compose.transform import scaled_window


@dataclasses.dataclass
class ShapingConfig:
    mode: str = "scaled"  # "scaled": scaled footprint / ring for size edits; "disc": earlier disc rule
    grow: float = 1.5  # "make it bigger": scale factor of the footprint about its centroid
    shrink: float = 0.6  # "make it smaller": scale factor of the kept core
    core_erode: float = 3.0  # px (at 64 px) the footprint is eroded by before it is kept as a core
    disc_grow: float = 1.75  # mode "disc": radius factor of the disc for "make it bigger"
    margin: float = 1.0  # extra pixels (at 64 px) added to every disc


def _disc(region: np.ndarray, scale: float, margin: float) -> np.ndarray:
    ys, xs = np.nonzero(region)
    cy, cx = ys.mean(), xs.mean()
    r = np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max()) + 0.5
    h, w = region.shape
    yy = (np.arange(h) - cy)[:, None] ** 2
    xx = (np.arange(w) - cx)[None, :] ** 2
    return region | ((yy + xx) <= (r * scale + margin) ** 2)


def scale_about_centroid(region: np.ndarray, factor: float, center: tuple[float, float] | None = None) -> np.ndarray:
    """``region`` scaled by ``factor`` about ``center`` (default: its centroid), nearest-neighbour:
    ``(H, W)`` bool -> ``(H, W)`` bool (clipped to the image). Pixel ``p`` is inside the result when
    ``center + (p - center) / factor`` rounds to a pixel inside ``region``."""
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    h, w = region.shape
    if not region.any():
        return region.copy()
    wy, wx, fy, fx = scaled_window(region, factor, center)
    sy, sx = np.round(fy).astype(np.int64), np.round(fx).astype(np.int64)
    oky, okx = (sy >= 0) & (sy < h), (sx >= 0) & (sx < w)
    win = region[np.clip(sy, 0, h - 1)[:, None], np.clip(sx, 0, w - 1)[None, :]] & oky[:, None] & okx[None, :]
    out = np.zeros_like(region, dtype=bool)
    out[wy, wx] = win
    return out


def shape_region(region: np.ndarray, intent, config: ShapingConfig | None = None) -> np.ndarray:
    """The region an edit needs, from the predicted referent footprint ``region`` and the instruction's
    :class:`~regionedit.describe.EditIntent` (``None`` leaves the region as it is)."""
    cfg = config or ShapingConfig()
    if cfg.mode not in ("scaled", "disc"):
        raise ValueError(f"unknown shaping mode {cfg.mode!r}: use 'scaled' or 'disc'")
    if intent is None or not region.any():
        return region
    unit = max(region.shape) / 64
    margin = cfg.margin * unit
    if intent.op == "size" and cfg.mode == "disc":
        return _disc(region, cfg.disc_grow, margin) if intent.bigger else region
    if intent.op == "size":
        ys, xs = np.nonzero(region)
        center = (ys.mean(), xs.mean())
        core = erode(region, int(round(cfg.core_erode * unit)))
        if intent.bigger:
            out = scale_about_centroid(region, cfg.grow, center) & ~core
        else:
            out = region & ~scale_about_centroid(core, cfg.shrink, center)
        return out if out.any() else region
    if intent.op == "local":
        return _disc(region, 1.0, margin)
    return region

