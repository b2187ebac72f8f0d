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
0.15-0.20, and "bigger" / "smaller" swap the class. With :attr:`ShapingConfig.size_classes` (the default) the
factor is :func:`size_factor`: the object's radius is estimated from the footprint and scaled to the middle of
the other class (0.175 or 0.105), so a 0.09 object grows to large (a fixed 1.5 left it at 0.135, below the
large class). Without (``size_classes=None``, e.g. for photos) the fixed ``grow`` 1.5 and ``shrink`` 0.6 apply:
the factors that maximised region IoU with the ground truth on oracle footprints of held-out scenes.
``mode="disc"`` restores the earlier rule for ``bigger`` (a disc of radius ``disc_grow`` times the
footprint's) and leaves ``smaller`` unchanged.

Regions are ``(H, W)`` bool arrays in image pixels (row 0 at the top); pixel margins are given at 64 px
and scale with the image's long side.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regionedit.compose import erode
from regionedit.world.geometry import SHAPE_AREA as AREA_PER_R2  # area of each WORLD.md shape over its circumradius^2
from regionedit.world.geometry import circumradius
from regionedit.world.priors.transform import scaled_window
from regionedit.world import spec


@dataclasses.dataclass
class ShapingConfig:
    mode: str = "scaled"  # "scaled": scaled footprint / ring for size edits; "disc": earlier disc rule
    grow: float = 1.5  # "make it bigger": scale factor of the footprint about its centroid (without size_classes)
    shrink: float = 0.6  # "make it smaller": scale factor of the kept core (without size_classes)
    # circumscribed-radius classes (small, large) as fractions of the image side; a size edit scales the object to
    # the middle of the other class (size_factor). None: the fixed grow / shrink
    size_classes: tuple[tuple[float, float], tuple[float, float]] | None = (
        spec.SIZE_RANGES["small"], spec.SIZE_RANGES["large"])
    solid_tol: float = 40.0  # size_factor: footprint pixels within this of the object's median colour are solid
    solid_edge_px: float = 0.46  # ... and the solid area's equivalent radius falls this short of the object's
    # (its anti-aliased rim; 0.949 of r on held-out 64 px scenes, sd 0.037)
    edge_ratio: float = 1.16  # without image or shape: the footprint's farthest pixel from its centroid over the
    # object's radius (anti-aliased edge and snap margin; 1.12 diamond .. 1.26 circle, sd 0.08 on held-out scenes)
    grow_range: tuple[float, float] = (1.3, 2.5)  # the factor size_factor may give for "bigger" (always visible)
    shrink_range: tuple[float, float] = (0.4, 0.75)  # ... and for "smaller"
    core_erode: float = 3.0  # px (at 64 px) the footprint is eroded by before it is kept as a core
    disc_grow: float = 1.75  # mode "disc": radius factor of the disc for "make it bigger"
    margin: float = 1.0  # extra pixels (at 64 px) added to every disc
    local_disc: str = "radius"  # replace: "radius", a disc of the old object's estimated radius (object_radius) and
    # its footprint; "footprint", the disc around the footprint's farthest pixel


def _disc(region: np.ndarray, scale: float, margin: float) -> np.ndarray:
    ys, xs = np.nonzero(region)
    cy, cx = ys.mean(), xs.mean()
    r = circumradius(region)
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


def object_radius(footprint: np.ndarray, image: np.ndarray | None = None, shape: str | None = None,
                  config: ShapingConfig | None = None) -> float:
    """The circumscribed radius of the object under ``footprint`` ((H, W) bool, non-empty), in fractions of the
    image's short side. With ``image`` ((H, W, 3) uint8) and a WORLD.md ``shape``: from the area of its solid
    pixels (within ``solid_tol`` of the median colour of the footprint's interior) and the shape's area per r^2;
    otherwise from the footprint's farthest pixel from its centroid over ``edge_ratio``."""
    cfg = config or ShapingConfig()
    side = min(footprint.shape)
    if image is not None and shape in AREA_PER_R2:
        inner = erode(footprint, max(1, round(2 * side / 64)))
        med = np.median(image[inner if inner.any() else footprint].reshape(-1, 3).astype(np.float32), 0)
        solid = footprint & (np.abs(image.astype(np.float32) - med).max(-1) < cfg.solid_tol)
        if solid.any():
            return (np.sqrt(np.count_nonzero(solid) / AREA_PER_R2[shape]) + cfg.solid_edge_px * side / 64) / side
    return circumradius(footprint) / cfg.edge_ratio / side  # to the farthest pixel's far side


def size_factor(footprint: np.ndarray, bigger: bool, config: ShapingConfig | None = None,
                image: np.ndarray | None = None, shape: str | None = None) -> float:
    """Linear scale factor of a size edit on the object under ``footprint`` ((H, W) bool).

    With ``config.size_classes``: the factor takes the object's radius (:func:`object_radius`, from ``image``
    and its ``shape`` when given) to the middle of the other class, clipped to ``grow_range`` /
    ``shrink_range``. Without: the fixed ``grow`` / ``shrink``.
    """
    cfg = config or ShapingConfig()
    if cfg.size_classes is None or not footprint.any():
        return cfg.grow if bigger else cfg.shrink
    r = object_radius(footprint, image, shape, cfg)
    lo, hi = cfg.size_classes[1] if bigger else cfg.size_classes[0]
    lo_f, hi_f = cfg.grow_range if bigger else cfg.shrink_range
    return float(np.clip(0.5 * (lo + hi) / max(r, 1e-6), lo_f, hi_f))


def shape_region(region: np.ndarray, intent, config: ShapingConfig | None = None,
                 image: np.ndarray | None = None) -> np.ndarray:
    """The region an edit needs, from the predicted referent footprint ``region`` and the instruction's
    :class:`~regionedit.world.intent.EditIntent` (``None`` leaves the region as it is); ``image`` (the edited
    image, (H, W, 3) uint8) sharpens a size edit's radius estimate (:func:`size_factor`)."""
    cfg = config or ShapingConfig()
    if cfg.mode not in ("scaled", "disc"):
        raise ValueError(f"unknown shaping mode {cfg.mode!r}: use 'scaled' or 'disc'")
    if cfg.local_disc not in ("radius", "footprint"):
        raise ValueError(f"unknown local_disc {cfg.local_disc!r}: use 'radius' or 'footprint'")
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
        shape = intent.target.shape if intent.target is not None else None
        factor = size_factor(region, bool(intent.bigger), cfg, image, shape)
        if intent.bigger:
            out = scale_about_centroid(region, factor, center) & ~core
        else:
            out = region & ~scale_about_centroid(core, factor, center)
        return out if out.any() else region
    if intent.op == "local":
        shape = intent.target.shape if intent.target is not None else None
        if cfg.local_disc == "radius" and image is not None and shape in AREA_PER_R2:
            # the new object shares the old one's centre and size: a disc of the old object's radius (and the
            # old footprint, so none of it stays)
            ys, xs = np.nonzero(region)
            r_px = object_radius(region, image, shape, cfg) * min(region.shape)
            h, w = region.shape
            disc = ((np.arange(h)[:, None] - ys.mean()) ** 2 + (np.arange(w)[None, :] - xs.mean()) ** 2
                    <= (r_px + margin) ** 2)
            return region | disc
        return _disc(region, 1.0, margin)
    return region

