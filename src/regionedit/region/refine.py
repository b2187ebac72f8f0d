"""Edge-aware refinement of a predicted region: snap it to colour-homogeneous segments of the image.

The region predictor works on CLIP's patch grid (4 px here, 14 px for ViT-L/14) and its soft maps stop a
little inside object edges. :func:`snap_region` over-segments the image into connected pieces of similar
colour (a superpixel step: 4-neighbours join when their colour differs by less than ``tol``) and lets the
predicted region vote: a segment joins the region when at least ``vote`` of its pixels are already in it,
and region pixels in segments that mostly lie outside are dropped. It reads pixels only; *which* object is
edited still comes from the learned predictor (the vote needs the region to cover most of a segment).
"""

from __future__ import annotations

import numpy as np


def color_segments(image: np.ndarray, tol: float = 24.0) -> np.ndarray:
    """Connected components of similar colour: ``(H, W)`` int64 labels (arbitrary ids).

    ``image`` is ``(H, W, 3)`` uint8; two 4-neighbours are joined when the max over channels of their
    absolute difference is below ``tol`` (0-255 levels).
    """
    h, w = image.shape[:2]
    x = image.astype(np.int16)
    idx = np.arange(h * w).reshape(h, w)
    ea = [idx[:, :-1][np.abs(x[:, 1:] - x[:, :-1]).max(-1) < tol], idx[:-1, :][np.abs(x[1:] - x[:-1]).max(-1) < tol]]
    eb = [ea[0] + 1, ea[1] + w]
    a, b = np.concatenate(ea), np.concatenate(eb)
    lab = np.arange(h * w)
    while True:  # min-label propagation with pointer jumping
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, lab):
            break
        lab = new
    return lab.reshape(h, w)


def object_segments(image: np.ndarray, min_frac: float = 0.002, max_frac: float = 0.4, tol: float = 24.0) -> list[np.ndarray]:
    """Class-agnostic object proposals: the colour segments (:func:`color_segments`) covering between
    ``min_frac`` and ``max_frac`` of the image, each grown by 1 px (its anti-aliased edge), largest first.

    ``image`` (H, W, 3) uint8 -> list of (H, W) bool. Which proposal (if any) is the referent is decided by a
    learned model (:meth:`regionedit.region.verify.ReferentVerifier.relocate`), not here.
    """
    h, w = image.shape[:2]
    _, inv, counts = np.unique(color_segments(image, tol), return_inverse=True, return_counts=True)
    inv = inv.reshape(h, w)
    keep = np.nonzero((counts >= min_frac * h * w) & (counts <= max_frac * h * w))[0]
    keep = keep[np.argsort(-counts[keep], kind="stable")]
    return [grow_region(inv == k, 1) for k in keep]


def grow_region(region: np.ndarray, px: int) -> np.ndarray:
    """Binary dilation by a (2 px + 1)-square: ``(H, W)`` bool -> ``(H, W)`` bool."""
    if px <= 0:
        return region
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(region.astype(np.float32))[None, None]
    return (F.max_pool2d(t, 2 * px + 1, 1, px)[0, 0] > 0).numpy()


def snap_region(region: np.ndarray, image: np.ndarray, tol: float = 24.0, vote: float = 0.5, grow: int = 1,
                max_side: int = 256) -> np.ndarray:
    """Snap a binary region to the image's colour segments: ``(H, W)`` bool -> ``(H, W)`` bool.

    Segments with at least ``vote`` of their pixels inside the region are added whole; region pixels in
    other segments are dropped; the result then grows by ``grow`` px to take in the anti-aliased edge
    (pixels of mixed colour that form segments of their own). Large images are segmented at ``max_side``
    px on the long side (nearest-neighbour; ``grow`` counts pixels at that scale) and the result is scaled
    back. An empty region, or a vote that would leave nothing, returns the input unchanged.
    """
    if region.shape != image.shape[:2]:
        raise ValueError(f"region is {region.shape} but the image is {image.shape[:2]}: give a region of the image's size")
    if not region.any():
        return region
    out = _snap(region, image, tol, vote, grow, max_side)
    return region if out is None else out


def _snap(region, image, tol, vote, grow, max_side):
    """:func:`snap_region`, or None when no segment wins the vote."""
    h, w = region.shape
    s = max(h, w) / max_side
    if s > 1:
        ys = (np.arange(int(round(h / s))) * s).astype(int).clip(0, h - 1)
        xs = (np.arange(int(round(w / s))) * s).astype(int).clip(0, w - 1)
        small = _snap(region[np.ix_(ys, xs)], image[np.ix_(ys, xs)], tol, vote, grow, max_side)
        if small is None:
            return None
        yi = np.minimum((np.arange(h) / s).astype(int), len(ys) - 1)
        xi = np.minimum((np.arange(w) / s).astype(int), len(xs) - 1)
        return small[np.ix_(yi, xi)]
    lab = color_segments(image, tol)
    _, inv = np.unique(lab, return_inverse=True)
    inv = inv.reshape(h, w)
    inside = np.bincount(inv.ravel(), weights=region.ravel().astype(np.float64))
    total = np.bincount(inv.ravel())
    out = (inside / total >= vote)[inv]
    return grow_region(out, grow) if out.any() else None
