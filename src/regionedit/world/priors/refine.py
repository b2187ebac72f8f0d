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

from regionedit.compose import dilate_square
from regionedit.localize.scale import _take, _working_scale, downscale_nearest, upscale_nearest, working_block  # noqa: F401  (working size: shared with the Editor)
from regionedit.world.geometry import label_components
from regionedit.world.geometry import label_joined as _label  # components of joined 4-neighbours (scipy.ndimage)


def color_segments(image: np.ndarray, tol: float = 24.0) -> np.ndarray:
    """Connected components of similar colour: ``(H, W)`` int64 labels (arbitrary ids).

    ``image`` is ``(H, W, 3)`` uint8; two 4-neighbours are joined when the max over channels of their
    absolute difference is below ``tol`` (0-255 levels).
    """
    return _label(*_joins(image, tol))


def _joins(image: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Which 4-neighbours of ``image`` (H, W, 3) uint8 differ by less than ``tol`` (max over channels):
    ``(join_x (H, W-1), join_y (H-1, W))`` bool, as :func:`_label` takes them."""
    x = image.astype(np.int16)
    return np.abs(x[:, 1:] - x[:, :-1]).max(-1) < tol, np.abs(x[1:] - x[:-1]).max(-1) < tol


def object_segments(image: np.ndarray, min_frac: float = 0.002, max_frac: float = 0.4, tol: float = 24.0,
                    flat: bool = False) -> list[np.ndarray]:
    """Class-agnostic object proposals: the colour segments (:func:`color_segments`) covering between
    ``min_frac`` and ``max_frac`` of the image, each grown by 1 px (its anti-aliased edge), largest first.
    With ``flat``, the segments of :func:`flat_segments` follow, those half of which no colour segment
    already proposes: objects whose anti-aliased edge chains them to their surroundings (a white star on
    beige), which are no colour segment of object size.

    ``image`` (H, W, 3) uint8 -> list of (H, W) bool. Which proposal (if any) is the referent is decided by a
    learned model (:meth:`regionedit.world.priors.verify.ReferentVerifier.relocate`), not here.
    """
    h, w = image.shape[:2]
    _, inv, counts = np.unique(color_segments(image, tol), return_inverse=True, return_counts=True)
    inv = inv.reshape(h, w)
    keep = np.nonzero((counts >= min_frac * h * w) & (counts <= max_frac * h * w))[0]
    keep = keep[np.argsort(-counts[keep], kind="stable")]
    out = [grow_region(inv == k, 1) for k in keep]
    if flat:
        for seg in flat_segments(image, min_frac, max_frac, tol):
            if all(np.count_nonzero(seg & o) < 0.5 * np.count_nonzero(seg) for o in out):
                out.append(seg)
    return out


def flat_segments(image: np.ndarray, min_frac: float = 0.002, max_frac: float = 0.4, tol: float = 12.0,
                  reach: int = 3) -> list[np.ndarray]:
    """Object proposals that survive a chaining edge: ``(H, W, 3)`` uint8 -> list of ``(H, W)`` bool, largest first.

    Between two close colours an anti-aliased edge can change by less than ``tol`` per pixel (along a
    star's tips it fades over several pixels), so :func:`color_segments` joins the object to what surrounds
    it. Here only *flat* pixels join (every 4-neighbour within ``tol``): the edge band separates the pieces.
    Each flat piece covering ``min_frac``..``max_frac`` of the image then takes in the edge pixels within
    ``reach`` px (through the band) whose colour is nearer its own median than the median of the flat
    pixels around it (max over channels), which brings back the tips, and grows by 1 px like
    :func:`object_segments`.
    """
    h, w = image.shape[:2]
    jx, jy = _joins(image, tol)
    flat = np.ones((h, w), bool)
    flat[:, 1:] &= jx
    flat[:, :-1] &= jx
    flat[1:] &= jy
    flat[:-1] &= jy
    lab = _label(jx & flat[:, 1:] & flat[:, :-1], jy & flat[1:] & flat[:-1])
    _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.reshape(h, w)
    xf = image.astype(np.float32)
    out = []
    for k in np.argsort(-counts, kind="stable"):
        if counts[k] < min_frac * h * w:
            break
        piece = inv == k
        if counts[k] > max_frac * h * w or not flat[piece].all():  # too large, or a lone edge pixel's label
            continue
        around = grow_region(piece, reach + 2) & ~piece & flat
        if not around.any():
            continue
        own, other = np.median(xf[piece], 0), np.median(xf[around], 0)
        nearer = ~flat & (np.abs(xf - own).max(-1) < np.abs(xf - other).max(-1))
        seg = piece
        for _ in range(reach):
            seg = seg | (grow_region(seg, 1) & nearer)
        out.append(grow_region(seg, 1))
    return out


def touches_frame(mask: np.ndarray) -> bool:
    """Whether an ``(H, W)`` bool mask has a pixel on the array's border."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def enclosed_objects(image: np.ndarray, region: np.ndarray, min_frac: float = 0.002, max_frac: float = 0.4,
                     tol: float = 24.0, min_contrast: float = 30.0, flat: bool = False) -> np.ndarray:
    """The object proposals (:func:`object_segments`, each grown by its 1 px edge) that ``region`` surrounds:
    at least half inside it, not touching the image's frame, and of another colour than the ring around them
    (median, max over channels >= ``min_contrast`` levels). ``image`` (H, W, 3) uint8, ``region`` (H, W)
    bool -> (H, W) bool, their union (what a background edit must leave: islands in the background).
    ``flat``: the proposals include :func:`flat_segments` (objects chained to the background by their edge).
    """
    out = np.zeros(region.shape, bool)
    for seg in object_segments(image, min_frac, max_frac, tol, flat=flat):
        if touches_frame(seg):
            continue
        if np.count_nonzero(seg & region) < 0.5 * np.count_nonzero(seg):
            continue
        ring = grow_region(seg, 2) & ~seg
        core = seg & ~grow_region(~seg, 1)  # without the edge it was grown by
        if not core.any() or not ring.any():
            continue
        # a piece of background cut off by its neighbours has the colour around it; an object does not
        if np.abs(np.median(image[core], 0) - np.median(image[ring], 0)).max() >= min_contrast:
            out |= seg
    return out


def connected_regions(region: np.ndarray, max_side: int = 256) -> list[np.ndarray]:
    """The 4-connected pieces of a binary region, largest first: ``(H, W)`` bool -> list of ``(H, W)`` bool.

    Large regions are split at ``max_side`` px on the long side (nearest neighbour) and each piece is the
    full-resolution region within its scaled-back footprint (pieces that vanish at that scale are dropped).
    """
    h, w = region.shape
    scale = _working_scale(h, w, max_side)
    small = region if scale is None else _take(region, scale[0])
    if not small.any():
        return []
    lab, _ = label_components(small, connectivity=4)  # numbered in raster order, as _label's ids sort
    ids, counts = np.unique(lab[small], return_counts=True)
    pieces = [lab == i for i in ids[np.argsort(-counts, kind="stable")]]
    if scale is not None:
        taken = np.zeros_like(region)
        full = []
        for p in pieces:  # grown by a pixel at the small scale so that edge pixels lost to rounding come back
            q = _take(grow_region(p, 1), scale[1]) & region & ~taken
            taken |= q
            full.append(q)
        pieces = full
    return [p for p in pieces if p.any()]


def grow_region(region: np.ndarray, px: int) -> np.ndarray:
    """Binary dilation by a (2 px + 1)-square: ``(H, W)`` bool -> ``(H, W)`` bool."""
    if px <= 0:
        return region
    return dilate_square(region.astype(bool), px)


def snap_region(region: np.ndarray, image: np.ndarray, tol: float = 24.0, vote: float = 0.5, grow: int = 1,
                max_side: int = 256, min_keep: float = 0.25, min_piece: float = 0.005) -> np.ndarray:
    """Snap a binary region to the image's colour segments: ``(H, W)`` bool -> ``(H, W)`` bool.

    Segments with at least ``vote`` of their pixels inside the region are added whole; region pixels in
    other segments are dropped; the result then grows by ``grow`` px to take in the anti-aliased edge
    (pixels of mixed colour that form segments of their own). Large images are segmented at ``max_side``
    px on the long side (nearest-neighbour; ``grow`` counts pixels at that scale) and the result is scaled
    back. An empty region, or a vote that nothing wins, returns the input unchanged; a connected piece of
    the region of which the vote keeps less than ``min_keep`` (its object leaked into the background through
    an anti-aliased edge, e.g. along a star's tips, so its segment lost the vote) is kept as predicted
    when it covers at least ``min_piece`` of the image (the smallest shapes-world object covers ~1%;
    smaller pieces are the predictor's stray pixels, which the vote drops).
    """
    if region.shape != image.shape[:2]:
        raise ValueError(f"region is {region.shape} but the image is {image.shape[:2]}: give a region of the image's size")
    if not region.any():
        return region
    out = _snap(region, image, tol, vote, grow, max_side)
    if out is None:
        return region
    for piece in connected_regions(region, max_side):  # per object: a leaked one keeps its prediction
        n = np.count_nonzero(piece)
        if n >= min_piece * piece.size and np.count_nonzero(out & piece) < min_keep * n:
            out |= piece
    return out


def _snap(region, image, tol, vote, grow, max_side):
    """:func:`snap_region`, or None when no segment wins the vote."""
    h, w = region.shape
    scale = _working_scale(h, w, max_side)
    if scale is not None:
        down, up = scale
        small = _snap(_take(region, down), _take(image, down), tol, vote, grow, max_side)
        return None if small is None else _take(small, up)
    lab = color_segments(image, tol)
    _, inv = np.unique(lab, return_inverse=True)
    inv = inv.reshape(h, w)
    inside = np.bincount(inv.ravel(), weights=region.ravel().astype(np.float64))
    total = np.bincount(inv.ravel())
    out = (inside / total >= vote)[inv]
    return grow_region(out, grow) if out.any() else None
