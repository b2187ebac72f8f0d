"""What every metric module shares: the image convention (validation and conversion of images,
batches and masks), the batch reduction and the :class:`MetricUnavailable` error.

The convention itself is described in :mod:`regionedit.evaluation.metrics`: an image is an
``(H, W, 3)`` RGB array and a batch ``(B, H, W, 3)``, either ``uint8`` in ``[0, 255]`` (converted
to ``float64`` ``x / 255``) or floating point already in ``[0, 1]``; masks are ``(H, W)`` or
``(B, H, W)`` bool.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here because a model's weights (or its package) are missing.

    The message names what is missing and how to provide it.
    """


# ------------------------------------------------------------------------------------------------
# input conversion


def _stack(images: Any, what: str) -> np.ndarray:
    """An image, a batch or a list of images -> a (B, H, W, 3) array (dtype unchanged)."""
    if isinstance(images, (list, tuple)):
        arrs = [np.asarray(im) for im in images]
        if not arrs:
            raise ValueError(f"{what}: empty list of images")
        shapes = {a.shape for a in arrs}
        if len(shapes) != 1:
            raise ValueError(f"{what}: images of different shapes {sorted(shapes)}; resize them explicitly")
        x = np.stack(arrs)
    else:
        x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{what}: expected (H, W, 3) or (B, H, W, 3) RGB, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: empty batch")
    return x


def _check_dtype(x: np.ndarray, what: str) -> None:
    """Raise unless ``x`` is uint8 (any values) or a finite float array with values in ``[0, 1]``."""
    if x.dtype == np.uint8:
        return
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{what}: expected uint8 in [0, 255] or float in [0, 1], got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: float image contains NaN or inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{what}: float images must be in [0, 1], got values in [{lo:g}, {hi:g}] "
            "(divide [0, 255] floats by 255, or pass uint8)"
        )


def _raw_batch(images: Any, what: str) -> np.ndarray:
    """Validated (B, H, W, 3) batch, dtype kept (uint8 or float in [0, 1])."""
    x = _stack(images, what)
    _check_dtype(x, what)
    return x


def to_unit_float(images: Any, what: str = "images") -> np.ndarray:
    """(B, H, W, 3) float64 in [0, 1]: uint8 / 255, floats validated and kept."""
    x = _raw_batch(images, what)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    return x.astype(np.float64)


def _pair(a: Any, b: Any, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    """Two images / batches -> two (B, H, W, 3) float64 arrays in [0, 1] of the same shape."""
    x, y = to_unit_float(a, names[0]), to_unit_float(b, names[1])
    if x.shape != y.shape:
        raise ValueError(
            f"{names[0]} {x.shape} and {names[1]} {y.shape} differ in shape; resize explicitly "
            "(MagicBrush resizes the generated image to the ground-truth size)"
        )
    return x, y


def _masks(masks: Any, batch: int, hw: tuple[int, int], what: str) -> np.ndarray:
    """(H, W) or (B, H, W) bool -> (B, H, W) bool, broadcast over the batch when 2-D."""
    m = np.asarray(masks)
    if m.dtype != bool:
        raise TypeError(f"{what}: expected a bool mask, got dtype {m.dtype}")
    if m.ndim == 2:
        m = np.broadcast_to(m, (batch, *m.shape))
    if m.ndim != 3 or m.shape[1:] != hw or m.shape[0] != batch:
        raise ValueError(f"{what}: mask shape {m.shape} does not match {batch} image(s) of size {hw}")
    return m


def _reduce(values: np.ndarray, reduce: bool, nan_skip: bool = False):
    """Per-image values ``(B,)`` -> their float64 array (``reduce=False``) or their mean as a
    ``float`` (NaN entries skipped with ``nan_skip``; NaN when nothing is left)."""
    values = np.asarray(values, dtype=np.float64)
    if not reduce:
        return values
    if nan_skip:
        ok = ~np.isnan(values)
        return float(values[ok].mean()) if ok.any() else float("nan")
    return float(values.mean())
