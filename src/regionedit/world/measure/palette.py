"""The object palette in measurement: naming a colour (:func:`classify_color`) and finding the foreground
of an image by unmixing each pixel against every palette colour (step 2 of :mod:`regionedit.world.measure`).

Colours are RGB floats in ``[0, 255]``; images are ``(H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

import numpy as np

from regionedit.world import spec

PALETTE_NAMES: tuple[str, ...] = tuple(spec.OBJECT_COLORS)
UNKNOWN_COLOR = "unknown"  # MeasuredObject.color of an object whose colour is off the palette
_PALETTE = np.array([spec.OBJECT_COLORS[n] for n in PALETTE_NAMES], dtype=np.float64)  # (K, 3)

FG_ALPHA = 0.5  # minimum blend fraction of a palette colour for a pixel to be foreground
COLOR_TOL = 70.0  # max L2 residual of a pixel off its (background -> palette colour) blend line
FG_DISTANCE = 40.0  # min L2 distance from the background for a pixel no palette colour explains
MIN_CONTRAST = 25.0  # min L2 distance from the background for a foreground pixel (noise floor)
MIN_PALETTE_CONTRAST = 45.0  # a palette colour this close to a row's background is not sought there
MAX_COLOR_DISTANCE = 80.0  # an object colour farther than this from the palette is "unknown"


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
    """``image`` as an array, checked: ``(H, W, 3)`` uint8 RGB (``ValueError`` for another shape,
    ``TypeError`` for another dtype)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    return image


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
