"""Objects moved between layers: resized in place (size edits) or laid back over a new background.

Used by the editor for size edits with ``EditorConfig.size_edit = "resample"``: the object the region
predictor found keeps its exact colour and shape and only changes size; the generator fills what the
object leaves free ("make it smaller": the background around the smaller copy). For background edits
(``EditorConfig.keep_objects``) :func:`relay_objects` puts the objects back over the generated background.
Frames: image pixels, row 0 at the top; images ``(H, W, 3)`` uint8, footprints ``(H, W)`` bool.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from regionedit.compose.blend import dilate, dilate_square, erode
from regionedit.world.geometry import circumradius


def scaled_window(mask: np.ndarray, factor: float, center: tuple[float, float] | None = None):
    """Where ``mask`` scaled by ``factor`` about ``center`` (default: its centroid) lands, and where each
    output pixel samples it: ``(rows slice, cols slice, sy, sx)``.

    The window is the scaled bounding box of ``mask`` (one pixel of margin), clipped to the image, so work
    follows the object, not the image. ``sy`` / ``sx`` are float64 source coordinates (pixel centres at
    integers, image frame) of the window's rows / columns: output pixel ``p`` samples
    ``center + (p - center) / factor``. ``mask`` must have a True pixel.
    """
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if center is None:
        ys, xs = np.nonzero(mask)
        center = (ys.mean(), xs.mean())
    cy, cx = center
    y0 = max(0, int(np.floor(cy + (rows[0] - 1 - cy) * factor)))
    y1 = min(h, int(np.ceil(cy + (rows[-1] + 1 - cy) * factor)) + 1)
    x0 = max(0, int(np.floor(cx + (cols[0] - 1 - cx) * factor)))
    x1 = min(w, int(np.ceil(cx + (cols[-1] + 1 - cx) * factor)) + 1)
    sy = cy + (np.arange(y0, y1) - cy) / factor
    sx = cx + (np.arange(x0, x1) - cx) / factor
    return slice(y0, y1), slice(x0, x1), sy, sx


def rescale_object(image: np.ndarray, footprint: np.ndarray, factor: float, edge_px: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The object under ``footprint`` scaled by ``factor`` about the footprint's centroid.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        footprint: ``(H, W)`` bool, the object and its anti-aliased edge (e.g. a snapped region).
        factor: linear scale, > 0 (1.5 = half as large again).
        edge_px: pixels of ``footprint``'s border that are edge (mixed with the background) and not
            object colour; they are dropped before scaling and the layer's edge is re-made by bilinear
            sampling of the object's mask.

    Returns:
        ``(layer (H, W, 3) float32 in [0, 255], alpha (H, W) float32 in [0, 1])``: composite as
        ``alpha * layer + (1 - alpha) * background``. Alpha is 0 outside the scaled footprint.
    """
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    h, w = footprint.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"footprint is {footprint.shape} but the image is {image.shape[:2]}: give a footprint of the image's size")
    solid = erode(footprint, edge_px) if edge_px > 0 else footprint
    if not solid.any():
        solid = footprint
    layer = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    if not solid.any():
        return layer, alpha
    # inverse map over the scaled window: output pixel p samples the source at c + (p - c) / factor
    # (bilinear); the colour is premultiplied by the mask so edge samples do not pull in the background
    wy, wx, sy, sx = scaled_window(solid, factor)
    gy = torch.from_numpy(2 * (sy + 0.5) / h - 1).float()
    gx = torch.from_numpy(2 * (sx + 0.5) / w - 1).float()
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1)[None]  # (1, y, x, 2) as (x, y)
    m = torch.from_numpy(solid.astype(np.float32))
    rgbm = torch.cat([torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1) * m, m[None]])[None]
    out = F.grid_sample(rgbm, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    a = out[3]
    rgb = out[:3] / a.clamp_min(1e-6)
    alpha[wy, wx] = a.clamp(0, 1).numpy()
    layer[wy, wx] = rgb.permute(1, 2, 0).clamp(0, 255).numpy()
    return layer, alpha


def composite(background: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * layer + (1 - alpha) * background`` as uint8; pixels with alpha 0 are copied exactly."""
    out = background.copy()
    on = alpha > 0
    a = alpha[on][:, None]
    out[on] = np.round(a * layer[on] + (1 - a) * background[on].astype(np.float32)).clip(0, 255).astype(np.uint8)
    return out


def _nearest(values: np.ndarray, known: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int,
             return_found: bool = False):
    """For the pixels ``(ys, xs)``, the value of the nearest ``known`` pixel within ``radius`` px (their own
    value when there is none): ``(N, C)`` float32, and with ``return_found`` ``(N,)`` bool, whether one was
    found. Cost ~ radius^2 x the pixels still searching (independent of the image size)."""
    h, w = known.shape
    out = values[ys, xs].astype(np.float32)
    found = np.zeros(len(ys), bool)
    left = np.arange(len(ys))  # pixels still searching
    offs = sorted(((dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)),
                  key=lambda o: o[0] ** 2 + o[1] ** 2)
    for dy, dx in offs:
        if not len(left):
            break
        y, x = ys[left] + dy, xs[left] + dx
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        ok[ok] = known[y[ok], x[ok]]
        hit = left[ok]
        out[hit] = values[y[ok], x[ok]]
        found[hit] = True
        left = left[~ok]
    return (out, found) if return_found else out


def _nearest_on_grid(values: np.ndarray, known: np.ndarray, ys: np.ndarray, xs: np.ndarray, step: int,
                     radius: int):
    """:func:`_nearest` for full-size pixels ``(ys, xs)`` looked up on a grid of every ``step``-th pixel
    (``values`` and ``known`` already on that grid, ``radius`` in grid cells); each cell is searched once:
    ``(N, C)`` float32 and ``(N,)`` bool found."""
    h, w = known.shape
    cy, cx = np.minimum(ys // step, h - 1), np.minimum(xs // step, w - 1)
    cells, back = np.unique(cy * w + cx, return_inverse=True)
    vals, found = _nearest(values, known, cells // w, cells % w, radius, return_found=True)
    return vals[back], found[back]


def _alpha(pixel: np.ndarray, obj: np.ndarray, back: np.ndarray):
    """How much of ``obj``'s colour ``pixel`` holds, read as ``alpha * obj + (1 - alpha) * back`` (projection
    on the segment, ``(N, 3)`` float each): ``(alpha (N,), distinct (N,) bool)``, ``distinct`` where the two
    colours are far enough apart (> ~17 levels) for the reading to mean anything."""
    d = obj - back
    dd = (d * d).sum(-1)
    return ((pixel - back) * d).sum(-1) / np.maximum(dd, 1e-6), dd > 300.0


def fill_nearest(image: np.ndarray, known: np.ndarray, fill: np.ndarray, radius: int) -> np.ndarray:
    """``image`` with each ``fill`` pixel set to the colour of the nearest ``known`` pixel within ``radius`` px
    (unchanged where there is none): ``(H, W, C)`` -> a new ``(H, W, C)`` array of the same dtype. A background
    edit extends the generated background under the objects' old edge this way before re-matting it."""
    out = image.copy()
    ys, xs = np.nonzero(fill & ~known)
    if len(ys):
        vals, found = _nearest(image, known, ys, xs, radius, return_found=True)
        out[ys[found], xs[found]] = vals[found].astype(image.dtype)  # copies of known pixels: exact
    return out


def debleed(generated: np.ndarray, source: np.ndarray, objects: np.ndarray, region: np.ndarray, px: int,
            min_alpha: float = 0.25, step: int = 1) -> np.ndarray:
    """A background edit's new background with what the generator drew of the kept objects removed: a
    ``region`` pixel within ``px`` of ``objects`` that reads as ``alpha * object + (1 - alpha) * background``
    with ``alpha >= min_alpha`` gets that background colour (a blob's blended edge goes too). ``object`` is
    the nearest object's colour (in ``source``), ``background`` the nearest new-background colour (in
    ``generated``, farther than ``px`` from the objects and not itself holding ``min_alpha`` of its nearest
    object's colour against the median there: a blob can reach past ``px``). Shown an object beside the
    hole, the generator tends to extend it into the new background (a square grows a blob); the region of a
    background edit holds background only. Colours are looked up on every ``step``-th pixel (the editor passes the decision's
    block). ``(H, W, 3)`` uint8 -> a new ``(H, W, 3)`` uint8."""
    out = generated.copy()
    near = region & dilate_square(objects, px)
    ys, xs = np.nonzero(near)
    if not len(ys):
        return out
    step = max(1, int(step))
    grid = (slice(None, None, step), slice(None, None, step))
    src, gen = source[grid], generated[grid]
    gpx, reach = -(-px // step), -(-(3 * px + 3) // step)
    # the objects' colours 2 px in, past the blended edge; a piece too small for that, 1 px in
    e2, e1 = objects & ~dilate_square(~objects, 2 * step), objects & ~dilate_square(~objects, step)
    core = (e2 | (e1 & ~dilate_square(e2, 3 * step)))[grid]
    obj_g, reg_g = objects[grid], region[grid]
    far = reg_g & ~dilate_square(obj_g, gpx) & dilate_square(obj_g, reach)  # where the background is read
    fy, fx = np.nonzero(far)
    if len(fy):  # ... unless it holds some of its nearest object's colour (a blob reaching past px), read
        # against the ring's median colour
        fo, ffound = _nearest(src, core, fy, fx, reach, return_found=True)
        fg = gen[fy, fx].astype(np.float32)
        alpha, distinct = _alpha(fg, fo, np.median(fg, axis=0))
        like = ffound & distinct & (alpha >= min_alpha)
        far[fy[like], fx[like]] = False
    o, found_o = _nearest_on_grid(src, core, ys, xs, step, reach)
    b, found_b = _nearest_on_grid(gen, far, ys, xs, step, 2 * reach)
    alpha, distinct = _alpha(generated[ys, xs].astype(np.float32), o, b)
    bleed = found_o & found_b & distinct & (alpha >= min_alpha)
    out[ys[bleed], xs[bleed]] = b[bleed].astype(np.uint8)
    return out


def matte_kept(source: np.ndarray, objects: np.ndarray, px: int = 1, max_alpha: float = 0.9, step: int = 1) -> np.ndarray:
    """What a background edit keeps, re-decided pixel by pixel within ``px`` (+1) of its border: a pixel
    stays (or becomes) kept when its colour reads as ``alpha * object + (1 - alpha) * old background`` with
    ``alpha >= max_alpha``; with less of the object in it, it goes to the region.

    The anti-aliased edge carries the old background in it, so a background edit must repaint it
    (re-matted by :func:`relay_objects`) rather than keep it: kept bit-identically it draws a rim of the old
    background around every object. And a region decided at a coarser scale (``EditorConfig.work_side``)
    comes back in blocks that keep specks of the old background or cut notches into an object: ``px`` of
    the block size puts each pixel on its side again. ``object`` is the colour of the nearest kept pixel
    deeper than ``px`` (a 1 px star tip of the object's colour stays: alpha ~ 1), ``old background`` that of
    the nearest region pixel deeper than ``px``; where the two are within ~17 levels (a kept piece of the
    old background) the pixel keeps its side; with no object colour found (the far end of a thin tip), a
    pixel within 12 levels of the old background goes to the region, one 40 or more from it is kept.

    Args:
        source: ``(H, W, 3)`` uint8 RGB, the input image.
        objects: ``(H, W)`` bool, what a background edit keeps (the complement of its region).
        px: how far from the border pixels are re-decided (the renderer's edge is 1 px; the editor passes
            ``ring_px`` = 2, as islands are kept grown by 1 px, times the working scale's block).
        max_alpha: pixels with less of the object's colour than this go to the region.
        step: the two colours are read on every ``step``-th pixel (the editor passes the block size: at
            4096 px a full-resolution search is minutes, on the grid milliseconds).

    Returns:
        ``(H, W)`` bool, the new kept set (differs from ``objects`` only within px + 1 of its border).
    """
    if source.shape[:2] != objects.shape:
        raise ValueError(f"source {source.shape} and objects {objects.shape} must match in size")
    out = objects.copy()
    if objects.all() or not objects.any():
        return out
    # candidates: both sides of the border, px + 1 deep (a square neighbourhood: a diagonal edge is deeper in
    # Euclidean distance); the two colours are read from what lies deeper than px on either side
    near_region, near_kept = dilate_square(~objects, px + 1), dilate_square(objects, px + 1)
    ys, xs = np.nonzero(near_region & near_kept)
    # the colours are looked up on every ``step``-th pixel (the decision's block: cost independent of it)
    step = max(1, int(step))
    grid = (slice(None, None, step), slice(None, None, step))
    reach = -(-(3 * px + 3) // step)
    core_o = (objects & ~dilate_square(~objects, px))[grid]
    core_b = (~objects & ~dilate_square(objects, px))[grid]
    o, found_o = _nearest_on_grid(source[grid], core_o, ys, xs, step, reach)
    b, found_b = _nearest_on_grid(source[grid], core_b, ys, xs, step, reach)
    s = source[ys, xs].astype(np.float32)
    alpha, distinct = _alpha(s, o, b)
    known = found_o & found_b & distinct
    out[ys[known], xs[known]] = alpha[known] >= max_alpha
    # far out on a thin part (a star's tip at 1024 px) no kept pixel lies deeper than px: the old
    # background's own colour goes to the region, anything clearly else stays kept
    lone = ~found_o & found_b
    far = np.abs(s - b).max(-1)
    out[ys[lone & (far < 12)], xs[lone & (far < 12)]] = False
    out[ys[lone & (far >= 40)], xs[lone & (far >= 40)]] = True
    return out


def relay_objects(source: np.ndarray, generated: np.ndarray, objects: np.ndarray, ring_px: int = 2) -> np.ndarray:
    """The objects of ``source`` laid back over a new ``generated`` background, their anti-aliased edge
    re-matted against it (a background edit: the objects stay, only what is around them changes).

    Args:
        source: ``(H, W, 3)`` uint8 RGB, the input image.
        generated: ``(H, W, 3)`` uint8 RGB, the new background (the generator's output, any content under
            the objects).
        objects: ``(H, W)`` bool, the objects' pixels (what a background region leaves out); copied from
            ``source`` bit-identically.
        ring_px: width of the edge around the objects that is re-matted: each pixel there is read as
            ``alpha * O + (1 - alpha) * B`` (``O`` the nearest object colour, ``B`` the nearest old background
            colour, ``alpha`` the projection of the pixel on the segment ``B -> O``) and rebuilt as
            ``alpha * O + (1 - alpha) * generated``.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if not (source.shape == generated.shape and source.shape[:2] == objects.shape):
        raise ValueError(f"source {source.shape}, generated {generated.shape} and objects {objects.shape} must match in size")
    if not objects.any():
        return generated.copy()
    out = generated.copy()
    ring = dilate(objects, ring_px) & ~objects
    ys, xs = np.nonzero(ring)
    if len(ys):
        s = source[ys, xs].astype(np.float32)
        o = _nearest(source, objects, ys, xs, ring_px + 1)  # the object's colour
        b = _nearest(source, ~(objects | ring), ys, xs, ring_px + 1)  # the old background's
        alpha, distinct = _alpha(s, o, b)
        alpha = np.where(distinct, alpha, 0.0).clip(0, 1)[:, None]
        g = generated[ys, xs].astype(np.float32)
        out[ys, xs] = np.round(alpha * o + (1 - alpha) * g).clip(0, 255).astype(np.uint8)
    out[objects] = source[objects]
    return out


def new_object_footprint(source: np.ndarray, generated: np.ndarray, region: np.ndarray,
                         min_diff: float = 40.0) -> np.ndarray:
    """The object a generator drew into ``region`` of a free-space ``source``: ``(H, W)`` bool.

    The pixels of ``region`` whose colour moved by more than ``min_diff`` (L2 over RGB, 0-255 levels) from
    ``source``, the largest 4-connected piece of them, holes filled. Empty when nothing moved that much.
    ``source`` / ``generated`` ``(H, W, 3)`` uint8, ``region`` ``(H, W)`` bool, all in the image frame.
    """
    from regionedit.world.priors.refine import connected_regions, touches_frame

    if not region.any():
        return np.zeros(region.shape, bool)
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # work in the region's box
    diff = np.sqrt(((generated[sl].astype(np.float32) - source[sl].astype(np.float32)) ** 2).sum(-1))
    moved = (diff > min_diff) & region[sl]
    out = np.zeros(region.shape, bool)
    pieces = connected_regions(moved, max_side=max(moved.shape))
    if not pieces:
        return out
    piece = pieces[0]
    for p in connected_regions(~piece, max_side=max(moved.shape)):
        if not touches_frame(p):  # a hole: the rest of the box surrounds it
            piece |= p
    out[sl] = piece
    return out


def fit_object_size(source: np.ndarray, generated: np.ndarray, region: np.ndarray, radius_range: tuple[float, float],
                    min_diff: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A generated new object brought to the size an instruction asks for ("add a *small* star").

    The object the generator drew into ``region`` (:func:`new_object_footprint`) is measured
    (:func:`circumradius`); when its radius lies outside ``radius_range`` (pixels, ``(lo, hi)``) it is resampled
    about its centroid to the nearest end of the range, pulled 10% into it, and laid over ``source``, whose
    pixels it does not cover stay bit-identical (so is the generated background around it, and any speck the
    generator left); only shrinking, or growing that stays inside ``region`` (free space by construction), is
    done. Returns ``(image (H, W, 3) uint8, edited region (H, W) bool)``:
    ``generated`` and ``region`` unchanged when the size is already right or no object is found.
    """
    lo, hi = radius_range
    obj = new_object_footprint(source, generated, region, min_diff)
    r = circumradius(obj)
    if r <= 0 or lo <= r <= hi:
        return generated, region
    target = hi - 0.1 * (hi - lo) if r > hi else lo + 0.1 * (hi - lo)
    factor = target / r
    layer, alpha = rescale_object(generated, dilate(obj, 1), factor)
    if factor > 1 and ((alpha > 0) & ~region).any():
        return generated, region
    out = composite(source, layer, alpha)
    return out, alpha > 0


def fit_replaced_size(generated: np.ndarray, region: np.ndarray, radius_px: float, tol: float = 0.08,
                      min_diff: float = 40.0, halo_px: int = 3) -> np.ndarray:
    """A replacement's new object brought to the old one's size ("replace the square with a star": same centre
    and size, WORLD.md).

    The new object is what the generator drew in ``region`` that stands out (L2 > ``min_diff``) from the
    background it left there, taken as the colour of the nearest pixel just outside the region
    (:func:`new_object_footprint` against that estimate). When its circumradius (:func:`circumradius`) is off
    ``radius_px`` by more than ``tol`` (relative), it is resampled about its centroid to ``radius_px`` and laid
    over the generated background, extended under its old pixels and ``halo_px`` around them (the generator's
    soft edge); only shrinking, or growing that stays inside
    ``region``, is done. ``generated`` (H, W, 3) uint8, ``region`` (H, W) bool -> (H, W, 3) uint8; pixels
    outside ``region`` never change, and ``generated`` comes back as is when no object is found or its size is
    right.
    """
    if not region.any() or radius_px <= 0:
        return generated
    ring = dilate(region, 2) & ~region
    if not ring.any():
        return generated
    span = int(np.ceil(np.hypot(*region.shape)))
    background = fill_nearest(generated, ring, region, radius=span)
    obj = new_object_footprint(background, generated, region, min_diff)
    r = circumradius(obj)
    if r <= 0 or abs(r / radius_px - 1) <= tol:
        return generated
    factor = radius_px / r
    layer, alpha = rescale_object(generated, dilate(obj, 1), factor)
    if ((alpha > 0) & ~region).any():
        return generated
    under = dilate(obj, halo_px) & region  # the generator's soft edge reaches past the object's pixels
    base = fill_nearest(generated, region & ~under, under, radius=span)
    out = composite(base, layer, alpha)
    return np.where(region[..., None], out, generated)
