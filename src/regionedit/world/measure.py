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
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from regionedit.world import spec
from regionedit.world.rendering import object_sdf, render_background
from regionedit.world.scene import Background, Scene, WorldObject

# ------------------------------------------------------------------------------------------------
# constants

PALETTE_NAMES: tuple[str, ...] = tuple(spec.OBJECT_COLORS)
UNKNOWN_COLOR = "unknown"  # MeasuredObject.color of an object whose colour is off the palette
_PALETTE = np.array([spec.OBJECT_COLORS[n] for n in PALETTE_NAMES], dtype=np.float64)  # (K, 3)


def _star_area() -> float:
    """Area of the unit star (5 points, outer radius 1, inner radius ``STAR_INNER_RATIO``)."""
    # 10 triangles between consecutive outer/inner vertices, 36 degrees apart.
    return 10 * 0.5 * 1.0 * spec.STAR_INNER_RATIO * math.sin(math.radians(36.0))


# Area of each shape divided by r^2 (r = circumscribed radius).
SHAPE_AREA: dict[str, float] = {
    "circle": math.pi,
    "square": 2.0,
    "triangle": 3.0 * math.sqrt(3.0) / 4.0,
    "star": _star_area(),
    "diamond": 2.0,
}

FG_ALPHA = 0.5  # minimum blend fraction of a palette colour for a pixel to be foreground
COLOR_TOL = 70.0  # max L2 residual of a pixel off its (background -> palette colour) blend line
FG_DISTANCE = 40.0  # min L2 distance from the background for a pixel no palette colour explains
MIN_CONTRAST = 25.0  # min L2 distance from the background for a foreground pixel (noise floor)
MIN_PALETTE_CONTRAST = 45.0  # a palette colour this close to a row's background is not sought there
MAX_COLOR_DISTANCE = 80.0  # an object colour farther than this from the palette is "unknown"
BG_INLIER_DIST = 35.0  # pixels this close (L2) to the fitted background line are background
# Splitting a component that holds two objects of different colours (joined by blur):
SPLIT_FRACTION = 0.2  # each colour must hold this share of the component (and >= min area),
SPLIT_COVER = 0.8  # the large single-colour pieces must cover this share of it,
SPLIT_MAX_SCORE = 0.9  # and only a component fitting no shape this well is considered.
TEMPLATE_RADIUS_PX = 8.0  # large objects are block-averaged to about this radius before fitting
RADIUS_SCALES = (0.94, 0.97, 1.0, 1.03, 1.06)  # radius refinement around the area-implied radius
CENTRE_OFFSETS = (-0.5, 0.5)  # centre refinement, in (block-averaged) pixels
BLUR_LEVELS = 3  # templates are also compared blurred by a 3x3 box 1..BLUR_LEVELS-1 times


# ------------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class MeasuredObject:
    """One object measured in an image.

    Attributes:
        color: palette name (a key of ``spec.OBJECT_COLORS``) nearest to the object's interior
            colour, or ``UNKNOWN_COLOR`` when that is more than ``max_color_distance`` away.
        shape: one of ``spec.SHAPES`` (the best-fitting template).
        cx, cy: centre, normalised ``[0, 1]`` (x right, y down).
        r: circumscribed-radius estimate of the best shape, normalised (by ``sqrt(H * W)``).
        area_px: number of pixels in ``mask``.
        mask: ``(H, W)`` bool, the object's pixels (coverage >= 0.5).
        shape_scores: shape -> soft IoU ``[0, 1]`` of that shape's best-fitting template.
        color_distance: L2 RGB distance (0-441) of ``rgb`` to the nearest palette colour.
        rgb: measured interior colour (per-channel median), floats in ``[0, 255]``.
    """

    color: str
    shape: str
    cx: float
    cy: float
    r: float
    area_px: int
    mask: np.ndarray
    shape_scores: dict[str, float]
    color_distance: float
    rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def shape_score(self) -> float:
        """IoU of the chosen shape's template."""
        return self.shape_scores[self.shape]

    def summary(self) -> dict:
        """JSON-serialisable description (everything but the mask)."""
        return {
            "color": self.color,
            "shape": self.shape,
            "cx": round(self.cx, 4),
            "cy": round(self.cy, 4),
            "r": round(self.r, 4),
            "area_px": self.area_px,
            "shape_score": round(self.shape_score, 4),
            "color_distance": round(self.color_distance, 2),
        }


@dataclasses.dataclass
class MatchResult:
    """Answer of :func:`find_object`.

    Attributes:
        found: whether an object of the colour and shape exists (inside the region, if given).
        best: the matching object (highest shape score), or when nothing matches the closest miss
            (right colour, else right shape), else None.
        reason: a short human-readable explanation.
    """

    found: bool
    best: MeasuredObject | None
    reason: str


# ------------------------------------------------------------------------------------------------
# colours and background


def classify_color(rgb) -> tuple[str, float]:
    """Nearest object palette colour.

    Args:
        rgb: three numbers in ``[0, 255]`` (any sequence or array of shape ``(3,)``).

    Returns:
        ``(name, distance)``: a key of ``spec.OBJECT_COLORS`` and the L2 RGB distance to it.
    """
    v = np.asarray(rgb, dtype=np.float64).reshape(3)
    d = np.sqrt(((_PALETTE - v) ** 2).sum(axis=1))
    k = int(np.argmin(d))
    return PALETTE_NAMES[k], float(d[k])


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    return image


def _robust_line(t: np.ndarray, v: np.ndarray, iters: int = 5) -> np.ndarray:
    """Fit ``v ~ a + b * t`` (``v``: ``(N, 3)``) robustly; returns the fitted values ``(N, 3)``.

    Start: Theil-Sen (median of pairwise slopes, on at most 64 evenly spaced samples), then Tukey
    biweight iteratively reweighted least squares on the joint (3-channel) residual.
    """
    n = len(t)
    if n < 3:
        return np.broadcast_to(np.median(v, axis=0), v.shape).copy()
    sub = np.unique(np.linspace(0, n - 1, min(n, 64)).round().astype(int))
    i, j = np.triu_indices(len(sub), k=1)
    ti, tj = t[sub][i], t[sub][j]
    slope = np.median((v[sub][j] - v[sub][i]) / (tj - ti)[:, None], axis=0)
    icpt = np.median(v - slope * t[:, None], axis=0)
    fit = icpt + slope * t[:, None]
    x = np.stack([np.ones(n), t], axis=1)
    for _ in range(iters):
        res = np.sqrt(((v - fit) ** 2).sum(axis=1))
        scale = max(1.4826 * float(np.median(res)), 2.0)
        c = 4.685 * scale
        w = np.where(res < c, (1.0 - (res / c) ** 2) ** 2, 0.0)
        if w.sum() < 2 or np.count_nonzero(w) < 2:
            break
        sw = np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(x * sw, v * sw, rcond=None)
        fit = x @ coef
    return fit


def estimate_background(image: np.ndarray) -> np.ndarray:
    """Per-row background colour of a world-like image (solid or vertical gradient background).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, 3)`` float64 RGB in ``[0, 255]``: the background colour of each row.
    """
    img = _check_image(image).astype(np.float64)
    h, w, _ = img.shape
    t = (np.arange(h) + 0.5) / h
    # 1) robust line through the row medians (rows mostly covered by objects are outliers)
    line = _robust_line(t, np.median(img, axis=1))
    # 2) per row: median of the pixels near the line, where there are enough of them
    near = np.sqrt(((img - line[:, None, :]) ** 2).sum(axis=2)) < BG_INLIER_DIST  # (H, W)
    count = near.sum(axis=1)
    # row-wise median of the near pixels: far ones are sorted to the end as +inf
    ranked = np.sort(np.where(near[..., None], img, np.inf), axis=1)  # (H, W, 3)
    lo = np.maximum(count - 1, 0) // 2
    hi = count // 2
    rows = 0.5 * (ranked[np.arange(h), lo] + ranked[np.arange(h), hi])  # inf where count == 0
    enough = count >= max(3, int(0.1 * w))
    return np.where(enough[:, None], rows, line)


def _unmix(diff: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Blend fractions ``alpha = <diff, d> / |d|^2`` of pixels along per-row directions.

    ``diff``: ``(H, W, 3)`` pixel minus background; ``direction``: ``(H, 3)`` or ``(H, K, 3)``
    (colour minus background). Returns ``(H, W)`` or ``(H, W, K)`` (unclipped).
    """
    if direction.ndim == 2:
        dd = np.maximum((direction**2).sum(axis=1), 1e-6)  # (H,)
        return np.einsum("hwc,hc->hw", diff, direction) / dd[:, None]
    dd = np.maximum((direction**2).sum(axis=2), 1e-6)  # (H, K)
    return np.einsum("hwc,hkc->hwk", diff, direction) / dd[:, None, :]


def _palette_labels(diff: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground mask and per-pixel palette index by unmixing against every palette colour.

    A pixel explained by a palette colour (within ``COLOR_TOL`` of its blend line) is foreground
    when it is at least half that colour (and ``MIN_CONTRAST`` from the background); a pixel no
    palette colour explains is foreground when it is ``FG_DISTANCE`` from the background (an
    off-palette object, reported as "unknown").

    Returns ``fg`` ``(H, W)`` bool and ``label`` ``(H, W)`` int: the palette index of foreground
    pixels explained by the palette, -1 elsewhere.
    """
    d = _PALETTE[None, :, :] - bg[:, None, :]  # (H, K, 3)
    dd = (d**2).sum(axis=2)  # (H, K)
    proj = np.einsum("hwc,hkc->hwk", diff, d)
    alpha = np.clip(proj / np.maximum(dd, 1e-6)[:, None, :], 0.0, 1.0)  # (H, W, K)
    # squared residual off the blend line: |diff - alpha d|^2
    pp = (diff**2).sum(axis=2)  # (H, W)
    res2 = pp[..., None] - 2.0 * alpha * proj + alpha**2 * dd[:, None, :]
    res2 = np.where(dd[:, None, :] >= MIN_PALETTE_CONTRAST**2, res2, np.inf)
    best = np.argmin(res2, axis=2)
    best_res2 = np.take_along_axis(res2, best[..., None], axis=2)[..., 0]
    best_alpha = np.take_along_axis(alpha, best[..., None], axis=2)[..., 0]
    explained = best_res2 <= COLOR_TOL**2
    palette_fg = explained & (best_alpha >= FG_ALPHA) & (pp >= MIN_CONTRAST**2)
    fg = palette_fg | (~explained & (pp >= FG_DISTANCE**2))
    return fg, np.where(palette_fg, best, -1)


# ------------------------------------------------------------------------------------------------
# connected components


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Connected components of a bool mask (vectorised union-find with pointer jumping).

    Args:
        mask: ``(H, W)`` bool.
        connectivity: 4 (edge neighbours) or 8 (edge and corner neighbours; the default, which
            keeps a star's tip attached when it meets the body only at a pixel corner).

    Returns:
        ``(labels, n)``: ``(H, W)`` int32 with 0 off the mask and ``1..n`` for the components,
        numbered in raster order of their first pixel.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return labels, 0
    # edges (flat index u -> u + step) between neighbours that are both on the mask; each pair
    # test runs on the sub-grid of valid u, whose flat indices are mapped back to the full grid
    pairs = [((slice(None), slice(0, w - 1)), (slice(None), slice(1, w)), 1)]  # right
    pairs.append(((slice(0, h - 1), slice(None)), (slice(1, h), slice(None)), w))  # down
    if connectivity == 8:
        pairs.append(((slice(0, h - 1), slice(0, w - 1)), (slice(1, h), slice(1, w)), w + 1))
        pairs.append(((slice(0, h - 1), slice(1, w)), (slice(1, h), slice(0, w - 1)), w - 1))
    us, vs = [], []
    for a, b, step in pairs:
        both = mask[a] & mask[b]
        r, c = np.nonzero(both)
        u = (r + (a[0].start or 0)) * w + c + (a[1].start or 0)
        us.append(u)
        vs.append(u + step)
    u, v = np.concatenate(us), np.concatenate(vs)
    parent = np.arange(h * w)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        pu, pv = pu[differ], pv[differ]
        # hook the larger root under the smaller (roots only: parents are fully compressed)
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:  # pointer jumping until every node points at its root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
    roots = parent[idx]
    _, inv = np.unique(roots, return_inverse=True)  # roots are first pixels -> raster order
    labels.flat[idx] = inv.astype(np.int32) + 1
    return labels, int(inv.max()) + 1


def _erode4(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbours are all in ``mask`` (outside the image counts as off)."""
    m = np.pad(mask, 1)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def _dilate8(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation."""
    m = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= m[dy : dy + h, dx : dx + w]
    return out


# ------------------------------------------------------------------------------------------------
# shape fitting


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    """Mean over non-overlapping ``s x s`` blocks (dimensions must be multiples of ``s``)."""
    if s == 1:
        return a
    h, w = a.shape
    return a.reshape(h // s, s, w // s, s).mean(axis=(1, 3))


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur over the last two axes (zero padding), as two 1-D passes."""
    rows = a.copy()
    rows[..., 1:, :] += a[..., :-1, :]
    rows[..., :-1, :] += a[..., 1:, :]
    out = rows.copy()
    out[..., 1:] += rows[..., :-1]
    out[..., :-1] += rows[..., 1:]
    return out / 9.0


def _candidates(s: int) -> np.ndarray:
    """Template candidates ``(N, 3)``: (radius scale, dx, dy) with offsets in image pixels."""
    rows = [(f, 0.0, 0.0) for f in RADIUS_SCALES]
    rows += [(1.0, o * s, 0.0) for o in CENTRE_OFFSETS]
    rows += [(1.0, 0.0, o * s) for o in CENTRE_OFFSETS]
    return np.array(rows)


def _fit_shapes(
    soft: np.ndarray, offset: tuple[int, int], hw: tuple[int, int]
) -> tuple[dict[str, float], dict[str, tuple]]:
    """Fit every shape's template to a soft mask.

    For each shape, templates are placed at the soft centroid with the radius implied by the soft
    area, varied over ``RADIUS_SCALES`` and ``CENTRE_OFFSETS`` (all candidates of a shape in one
    call of the world's signed-distance function); each is also compared blurred by a 3x3 box
    (``BLUR_LEVELS - 1`` times; blurred or soft-edged images).

    Args:
        soft: ``(h, w)`` float coverage in ``[0, 1]`` of one object inside a box of the image (zero
            elsewhere); the box must hold all of the object's coverage.
        offset: ``(row, column)`` of the box's top-left pixel in the image.
        hw: image size ``(H, W)``.

    Returns:
        ``(scores, params)``: shape -> best soft IoU, and shape -> its ``(cx, cy, r)`` normalised.
    """
    h, w = hw
    oy, ox = offset
    area = float(soft.sum())
    ys, xs = np.nonzero(soft > 0)
    cy_px = oy + float((soft[ys, xs] * (ys + 0.5)).sum() / area)
    cx_px = ox + float((soft[ys, xs] * (xs + 0.5)).sum() / area)
    ys, xs = ys + oy, xs + ox
    # crop holding the object and the largest template tried (radius sqrt(area / k_min) at the
    # top scale and offset), in blocks of s x s pixels (s > 1 for large objects)
    r_max_px = math.sqrt(area / min(SHAPE_AREA.values()))
    s = max(1, int(r_max_px / TEMPLATE_RADIUS_PX))
    reach = r_max_px * max(RADIUS_SCALES) + (max(map(abs, CENTRE_OFFSETS)) + BLUR_LEVELS) * s
    y0 = max(0, min(ys.min(), int(math.floor(cy_px - reach))))
    x0 = max(0, min(xs.min(), int(math.floor(cx_px - reach))))
    y1 = min(h, max(ys.max() + 1, int(math.ceil(cy_px + reach))))
    x1 = min(w, max(xs.max() + 1, int(math.ceil(cx_px + reach))))
    y1 = y0 + int(math.ceil((y1 - y0) / s)) * s  # round up to whole blocks (may pass the edge)
    x1 = x0 + int(math.ceil((x1 - x0) / s)) * s
    crop = np.zeros((y1 - y0, x1 - x0))
    inside = np.zeros_like(crop)
    inside[: min(y1, h) - y0, : min(x1, w) - x0] = 1.0
    crop[ys - y0, xs - x0] = soft[ys - oy, xs - ox]
    target, inside = _block_mean(crop, s), _block_mean(inside, s)  # (hb, wb)
    hb, wb = target.shape

    # coarse pixel centres in image pixels, and the renderer's pixel size in normalised units
    gx = x0 + (np.arange(wb) + 0.5) * s
    gy = y0 + (np.arange(hb) + 0.5) * s
    pixel = 0.5 * (s / w + s / h)
    norm = math.sqrt(h * w)  # radius normalisation
    cand = _candidates(s)  # (N, 3)
    f = cand[:, 0, None, None]
    # every candidate (centre c + o, radius f r) through the one shape at (c, r):
    # sdf_{c+o, f r}(p) = f * sdf_{c, r}(c + (p - c - o) / f)
    px = (cx_px + (gx[None, None, :] - cx_px - cand[:, 1, None, None]) / f) / w  # (N, 1, wb)
    py = (cy_px + (gy[None, :, None] - cy_px - cand[:, 2, None, None]) / f) / h  # (N, hb, 1)
    px, py = np.broadcast_arrays(px, py)

    scores: dict[str, float] = {}
    params: dict[str, tuple] = {}
    for shape, k in SHAPE_AREA.items():
        r0 = math.sqrt(area / k)
        obj = WorldObject(shape, "red", cx_px / w, cy_px / h, r0 / norm)
        d = f * object_sdf(obj, px, py)  # (N, hb, wb), normalised units
        cov = np.clip(0.5 - d / pixel, 0.0, 1.0) * inside
        best_iou, best_i = -1.0, 0
        for level in range(BLUR_LEVELS):  # sharp, then soft-edge hypotheses: blurred 1, 2... times
            if level:
                cov = _box3(cov) * inside
            inter = np.minimum(cov, target).sum(axis=(1, 2))
            iou = inter / np.maximum(cov, target).sum(axis=(1, 2))
            i = int(np.argmax(iou))
            if iou[i] > best_iou:
                best_iou, best_i = float(iou[i]), i
        fi, dx, dy = cand[best_i]
        scores[shape] = best_iou
        params[shape] = (float(cx_px + dx) / w, float(cy_px + dy) / h, float(fi * r0) / norm)
    return scores, params


# ------------------------------------------------------------------------------------------------
# measurement


def _color_parts(m: np.ndarray, label: np.ndarray, min_area: int) -> list[np.ndarray]:
    """Candidate split of a component into single-colour parts (two objects joined, e.g. by blur).

    Returns the parts, or ``[]`` when the component is not a clean union of large single-colour
    pieces: at least two colours must each hold ``SPLIT_FRACTION`` of it (and ``min_area``), and
    the large pieces must cover ``SPLIT_COVER`` of it. An object whose colour lies between two
    palette colours votes for both in a salt-and-pepper pattern and is not split.
    """
    size = int(m.sum())
    lab = label[m]
    votes = np.bincount(lab[lab >= 0], minlength=len(PALETTE_NAMES))  # -1 = no palette colour
    strong = np.flatnonzero(votes >= max(min_area, SPLIT_FRACTION * size))
    if len(strong) < 2:
        return []
    parts: list[np.ndarray] = []
    for k in strong:
        sub, n_sub = label_components(m & (label == k))
        sub_sizes = np.bincount(sub.ravel(), minlength=n_sub + 1)
        parts.extend(sub == j for j in range(1, n_sub + 1) if sub_sizes[j] >= min_area)
    if len(parts) < 2 or sum(int(p.sum()) for p in parts) < SPLIT_COVER * size:
        return []
    return parts


def _describe(
    m: np.ndarray,
    img: np.ndarray,
    diff: np.ndarray,
    bg: np.ndarray,
    taken: np.ndarray,
    max_color_distance: float,
) -> MeasuredObject:
    """Colour, shape, centre and radius of one object mask (arguments as in ``measure_objects``)."""
    h, w = m.shape
    # work in the mask's bounding box grown by 1 px (room for the soft ring)
    rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    y0, y1 = max(0, rows[0] - 1), min(h, rows[-1] + 2)
    x0, x1 = max(0, cols[0] - 1), min(w, cols[-1] + 2)
    mb = m[y0:y1, x0:x1]
    # colour: median of the interior (the edge is blended with the background)
    core = _erode4(mb)
    if core.sum() < 3:
        core = mb
    rgb = np.median(img[y0:y1, x0:x1][core], axis=0)
    color, cdist = classify_color(rgb)
    if cdist > max_color_distance:
        color = UNKNOWN_COLOR
    # soft coverage by the measured colour, on the mask plus a 1-px ring of unclaimed pixels
    support = mb | (_dilate8(mb) & ~taken[y0:y1, x0:x1])
    alpha = np.clip(_unmix(diff[y0:y1, x0:x1], rgb[None, :] - bg[y0:y1]), 0.0, 1.0)
    soft = np.where(support, alpha, 0.0)
    soft[mb] = np.maximum(soft[mb], FG_ALPHA)  # mask pixels are at least half covered
    scores, params = _fit_shapes(soft, (y0, x0), (h, w))
    shape = max(scores, key=scores.get)
    cx, cy, r = params[shape]
    return MeasuredObject(
        color=color,
        shape=shape,
        cx=cx,
        cy=cy,
        r=r,
        area_px=int(m.sum()),
        mask=m,
        shape_scores=scores,
        color_distance=cdist,
        rgb=(float(rgb[0]), float(rgb[1]), float(rgb[2])),
    )


def measure_objects(
    image: np.ndarray, min_area_frac: float = 0.004, max_color_distance: float = MAX_COLOR_DISTANCE
) -> list[MeasuredObject]:
    """Find and describe the palette objects of a shapes-world image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, any size (64 to 512 typical), solid or vertical-gradient
            background.
        min_area_frac: components smaller than this fraction of ``H * W`` are ignored (speckles).
            The default 0.004 is ~16 px at 64x64; the smallest world object (r = 0.09) covers ~0.01.
        max_color_distance: objects whose interior colour is farther than this (L2 RGB) from every
            palette colour get the colour ``UNKNOWN_COLOR`` (they still count, e.g. as extras).

    Returns:
        The measured objects sorted left to right (by ``cx``); see :class:`MeasuredObject`.
    """
    image = _check_image(image)
    h, w, _ = image.shape
    img = image.astype(np.float64)
    bg = estimate_background(image)  # (H, 3)
    diff = img - bg[:, None, :]
    fg, label = _palette_labels(diff, bg)
    min_area = max(1, int(math.ceil(min_area_frac * h * w)))
    comps, n = label_components(fg)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)
    masks = [comps == c for c in range(1, n + 1) if sizes[c] >= min_area]
    taken = np.isin(comps, np.flatnonzero(sizes >= min_area)) & (comps > 0)

    objects: list[MeasuredObject] = []
    for m in masks:
        obj = _describe(m, img, diff, bg, taken, max_color_distance)
        # two objects joined into one component (e.g. by blur)? split by colour when that is
        # clean and the parts fit their shapes better than the whole does
        parts = _color_parts(m, label, min_area) if obj.shape_score < SPLIT_MAX_SCORE else []
        if parts:
            subs = [_describe(p, img, diff, bg, taken, max_color_distance) for p in parts]
            fit = sum(o.shape_score * o.area_px for o in subs) / sum(o.area_px for o in subs)
            if fit > obj.shape_score:
                objects.extend(subs)
                continue
        objects.append(obj)
    objects.sort(key=lambda o: o.cx)
    return objects


# ------------------------------------------------------------------------------------------------
# queries


def find_object(
    image: np.ndarray,
    color: str,
    shape: str,
    region: np.ndarray | None = None,
    objects: list[MeasuredObject] | None = None,
) -> MatchResult:
    """Whether an object of a colour and shape is in an image (optionally inside a region).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        color: a key of ``spec.OBJECT_COLORS``.
        shape: one of ``spec.SHAPES``.
        region: optional ``(H, W)`` bool; the object's centroid pixel must lie in it.
        objects: measurements of ``image`` already made by :func:`measure_objects` (saves time).

    Returns:
        :class:`MatchResult`.
    """
    if color not in spec.OBJECT_COLORS:
        raise ValueError(f"unknown colour {color!r}")
    if shape not in spec.SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    image = _check_image(image)
    h, w, _ = image.shape
    if objects is None:
        objects = measure_objects(image)
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != (h, w):
            raise ValueError(f"region shape {region.shape} != image shape {(h, w)}")

    def in_region(o: MeasuredObject) -> bool:
        if region is None:
            return True
        y = min(h - 1, max(0, int(o.cy * h)))
        x = min(w - 1, max(0, int(o.cx * w)))
        return bool(region[y, x])

    name = f"{color} {shape}"
    exact = [o for o in objects if o.color == color and o.shape == shape]
    hits = [o for o in exact if in_region(o)]
    if hits:
        return MatchResult(True, max(hits, key=lambda o: o.shape_score), f"{name} found")
    if exact:
        return MatchResult(False, exact[0], f"{name} found only outside the region")
    same_color = [o for o in objects if o.color == color and in_region(o)]
    if same_color:
        o = max(same_color, key=lambda o: o.shape_scores[shape])
        return MatchResult(False, o, f"a {color} object was found but it is a {o.shape}")
    same_shape = [o for o in objects if o.shape == shape and in_region(o)]
    if same_shape:
        o = same_shape[0]
        return MatchResult(False, o, f"a {shape} was found but it is {o.color}")
    where = " in the region" if region is not None else ""
    return MatchResult(False, None, f"no {color} object and no {shape}{where}")


def scene_match(
    image: np.ndarray, scene: Scene, objects: list[MeasuredObject] | None = None
) -> dict:
    """Compare an image with a ground-truth scene, object by object.

    Each ground-truth object is paired with at most one measured object whose centre lies within
    ``max(r, 0.08)`` (normalised) of its centre: first every full (colour and shape) match, then,
    for the objects left, the candidate with the right colour, else the right shape, else the
    nearest. A measured object is paired at most once.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        scene: the ground truth.
        objects: measurements of ``image`` already made by :func:`measure_objects` (saves time).

    Returns:
        A dict with
        ``objects``: one dict per scene object (scene order) with ``color``, ``shape``, ``correct``
        (colour and shape both right), ``color_correct``, ``shape_correct`` (bools) and ``measured``
        (index into ``measured`` or None);
        ``objects_correct``: every scene object correct;
        ``all_correct``: ``objects_correct`` and no extra objects;
        ``color_correct_rate``, ``shape_correct_rate``, ``correct_rate``: fractions over scene
        objects (1.0 for a scene without objects);
        ``extra_objects``: the number of measured objects paired with no scene object;
        ``measured``: the measured objects (:class:`MeasuredObject`, left to right).
    """
    if objects is None:
        objects = measure_objects(image)
    pairing: dict[int, int] = {}  # scene object index -> measured object index

    def pair(full_only: bool) -> None:
        for g, gt in enumerate(scene.objects):
            if g in pairing:
                continue
            cands = []
            for i, o in enumerate(objects):
                dist = math.hypot(o.cx - gt.cx, o.cy - gt.cy)
                if i in pairing.values() or dist > max(gt.r, 0.08):
                    continue
                color_ok, shape_ok = o.color == gt.color, o.shape == gt.shape
                if full_only and not (color_ok and shape_ok):
                    continue
                cands.append((not color_ok, not shape_ok, dist, i))
            if cands:
                pairing[g] = min(cands)[3]

    pair(full_only=True)
    pair(full_only=False)

    per_object = []
    for g, gt in enumerate(scene.objects):
        o = objects[pairing[g]] if g in pairing else None
        color_ok = o is not None and o.color == gt.color
        shape_ok = o is not None and o.shape == gt.shape
        per_object.append(
            {
                "color": gt.color,
                "shape": gt.shape,
                "correct": color_ok and shape_ok,
                "color_correct": color_ok,
                "shape_correct": shape_ok,
                "measured": pairing.get(g),
            }
        )

    n = len(per_object)

    def rate(key: str) -> float:
        return sum(e[key] for e in per_object) / n if n else 1.0

    objects_correct = all(e["correct"] for e in per_object)
    extra = len(objects) - len(pairing)
    return {
        "objects": per_object,
        "objects_correct": objects_correct,
        "all_correct": objects_correct and extra == 0,
        "color_correct_rate": rate("color_correct"),
        "shape_correct_rate": rate("shape_correct"),
        "correct_rate": rate("correct"),
        "extra_objects": extra,
        "measured": objects,
    }


def background_l1(image: np.ndarray, background: Background, mask: np.ndarray) -> float:
    """Mean absolute difference between an image and a rendered background, inside a mask.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        background: the expected background (rendered at the image's size).
        mask: ``(H, W)`` bool, the pixels to compare (e.g. where a removed object was).

    Returns:
        ``mean |image - background| / 255`` over the masked pixels and the 3 channels, in
        ``[0, 1]``; NaN for an empty mask.
    """
    image = _check_image(image)
    h, w, _ = image.shape
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (h, w):
        raise ValueError(f"mask shape {mask.shape} != image shape {(h, w)}")
    if not mask.any():
        return float("nan")
    ref = np.rint(render_background(background, (h, w)))
    return float(np.abs(image[mask].astype(np.float64) - ref[mask]).mean() / 255.0)
