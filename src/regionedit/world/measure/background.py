"""Background model of a shapes-world image (step 1 of :mod:`regionedit.world.measure`): one colour per
row, a robust straight line in ``y`` re-estimated row by row (:func:`estimate_background`)."""

from __future__ import annotations

import numpy as np

from regionedit.world.measure.palette import _check_image

BG_INLIER_DIST = 35.0  # pixels this close (L2) to the fitted background line are background


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
