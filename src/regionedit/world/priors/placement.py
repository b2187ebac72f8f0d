"""Where an added object goes: "add a small yellow star in the top left".

An ``add`` edit has no referent: nothing in the image is "the yellow star", so there is nothing for the
region predictor to find, and the shipped predictor's map for ``add`` is empty (held-out IoU 0.002, its
model card). The paper's predictor would have to learn placement from the CLIP losses through the
generator, which our miniature inpainting UNet cannot teach yet. Until it can, the editor places the new
object by rule, from the instruction and the pixels:

1. **free space**: the image's colour segments (:func:`regionedit.world.priors.refine.color_segments`) that
   touch the frame and cover at least :attr:`PlacementConfig.min_background` of it are background
   (a solid colour or a smooth gradient is one segment); everything else is occupied;
2. **size**: a disc of the circumscribed radius the size word asks for (WORLD.md: small 0.09-0.12,
   large 0.15-0.20 of the image side; no word: between the two);
3. **where**: among centres inside the named area ("top left", ..., "center"; anywhere when none is
   named) whose disc clears every occupied pixel and the frame by :attr:`PlacementConfig.margin`, the
   one nearest the area's anchor (its centre; the image centre when no area is named).

No scene graph, renderer or ground truth is read: only the image and the parsed instruction. Regions are
``(H, W)`` bool arrays in image pixels (row 0 at the top).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from regionedit.world.priors.refine import color_segments
from regionedit.world import spec


@dataclasses.dataclass
class PlacementConfig:
    radius_small: float = 0.105  # circumscribed radius for "small", fraction of the image's short side
    radius_large: float = 0.175  # ... for "large"
    radius_default: float = 0.13  # ... when the instruction names no size
    margin: float = 0.035  # clearance from occupied pixels and from the frame, fraction of the short side
    region_scale: float = 1.4  # the region is the object's disc scaled by this (the generator draws an object of
    # radius r inside a region of radius ~1.15-1.7 r + 2 px: world_data.inpaint_batch) ...
    region_margin: float = 2.0  # ... and grown by this many pixels (at 64 px, scaled)
    min_background: float = 0.1  # a frame-touching segment at least this share of the image is background
    work_size: int = 64  # placement is computed on the image resized to this long side
    tol: float = 24.0  # colour tolerance of the segments (0-255 levels)


def _anchor(area: str | None) -> tuple[float, float]:
    """Normalised ``(x, y)`` the placement prefers: the area's centre, or the image centre."""
    if area is None or area == "center":
        return 0.5, 0.5
    vert, horiz = area.split()
    return (0.25 if horiz == "left" else 0.75), (0.25 if vert == "top" else 0.75)


def free_space(image: np.ndarray, config: PlacementConfig | None = None) -> np.ndarray:
    """Background pixels of ``image`` ((H, W, 3) uint8): ``(H, W)`` bool, True = free.

    The frame-touching colour segments that cover at least ``config.min_background`` of the image; when
    none does (a busy photo), the largest frame-touching segment.
    """
    cfg = config or PlacementConfig()
    lab = color_segments(image, cfg.tol)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    ids, counts = np.unique(lab, return_counts=True)
    share = dict(zip(ids.tolist(), (counts / lab.size).tolist()))
    bg = [i for i in border.tolist() if share[i] >= cfg.min_background]
    if not bg:
        bg = [max(border.tolist(), key=lambda i: share[i])]
    return np.isin(lab, bg)


def place_region(image: np.ndarray, area: str | None = None, size: str | None = None,
                 config: PlacementConfig | None = None) -> np.ndarray:
    """The region for a new object: ``(H, W)`` bool, a disc in free space; all False when no disc of the
    requested size fits (the editor then answers "no edit"). The disc is the object's scaled by
    ``config.region_scale`` when that fits, else by 1 (the object itself, plus ``region_margin``).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        area: one of ``spec.AREAS`` or None (anywhere).
        size: ``"small"``, ``"large"`` or None.
    """
    cfg = config or PlacementConfig()
    if area is not None and area not in spec.AREAS:
        raise ValueError(f"unknown area {area!r}: expected one of {spec.AREAS} or None")
    out = _place(image, area, size, cfg)
    if not out.any() and cfg.region_scale > 1.0:
        out = _place(image, area, size, dataclasses.replace(cfg, region_scale=1.0))
    return out


def _place(image: np.ndarray, area: str | None, size: str | None, cfg: PlacementConfig) -> np.ndarray:
    """:func:`place_region` for one ``cfg.region_scale``."""
    h, w = image.shape[:2]
    scale = min(1.0, cfg.work_size / max(h, w))
    hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(image).resize((ws, hs), Image.BOX)) if (hs, ws) != (h, w) else image
    occupied = ~free_space(small, cfg)
    side = min(hs, ws)
    r = {"small": cfg.radius_small, "large": cfg.radius_large}.get(size, cfg.radius_default) * side
    need = r * cfg.region_scale + cfg.region_margin * side / 64 + cfg.margin * side  # the region clears the objects
    # candidate centres: every working pixel centre, normalised for the area test
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float64) + 0.5
    cx, cy = xx / ws, yy / hs
    ok = (xx >= need) & (xx <= ws - need) & (yy >= need) & (yy <= hs - need)
    if area is not None:
        ok &= spec.in_area(area, cx, cy)
    if occupied.any() and ok.any():
        oy, ox = np.nonzero(occupied)
        cand = np.nonzero(ok.ravel())[0]
        py, px = yy.ravel()[cand], xx.ravel()[cand]
        d2 = np.full(len(cand), np.inf)
        for i in range(0, len(oy), 512):  # nearest occupied pixel centre, in chunks
            d2 = np.minimum(d2, ((py[:, None] - (oy[i:i + 512] + 0.5)) ** 2 + (px[:, None] - (ox[i:i + 512] + 0.5)) ** 2).min(1))
        keep = np.zeros(hs * ws, bool)
        keep[cand[np.sqrt(d2) >= need]] = True
        ok = keep.reshape(hs, ws)
    if not ok.any():
        return np.zeros((h, w), bool)
    ax, ay = _anchor(area)
    dist = np.where(ok, (cx - ax) ** 2 + (cy - ay) ** 2, np.inf)
    j = int(np.argmin(dist))
    ccy, ccx = (j // ws + 0.5) / scale, (j % ws + 0.5) / scale  # centre in full-size pixels
    rr = r * cfg.region_scale / scale + cfg.region_margin * max(h, w) / 64
    out = np.zeros((h, w), bool)
    y0, y1 = max(0, int(ccy - rr - 1)), min(h, int(ccy + rr + 2))
    x0, x1 = max(0, int(ccx - rr - 1)), min(w, int(ccx + rr + 2))
    fy, fx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    out[y0:y1, x0:x1] = (fy - ccy) ** 2 + (fx - ccx) ** 2 <= rr ** 2
    return out
