"""Region metrics: how well a predicted edit region matches the ground-truth edit mask."""

from __future__ import annotations

import numpy as np

from .base import _reduce


def region_iou(pred_mask, gt_mask, reduce: bool = True):
    """Intersection over union of a predicted edit region and the ground-truth edit mask.

    Definition: ``|pred & gt| / |pred | gt|`` per mask pair; when **both** masks are empty (e.g. an
    absent-referent sample correctly answered with no region) the IoU is defined as 1.0; when only
    one is empty it is 0.0.

    Args:
        pred_mask, gt_mask: ``(H, W)`` or ``(B, H, W)`` bool, same shape (compare at the same
            resolution; world masks are at the image size).
        reduce: mean (float) or per-pair array.

    Returns:
        In ``[0, 1]``: a float, or a ``(B,)`` float64 array with ``reduce=False``.
    """
    p, g = np.asarray(pred_mask), np.asarray(gt_mask)
    if p.dtype != bool or g.dtype != bool:
        raise TypeError(f"masks must be bool, got {p.dtype} and {g.dtype}")
    if p.shape != g.shape or p.ndim not in (2, 3):
        raise ValueError(f"masks must have the same (H, W) or (B, H, W) shape, got {p.shape} and {g.shape}")
    if p.ndim == 2:
        p, g = p[None], g[None]
    inter = (p & g).sum(axis=(1, 2)).astype(np.float64)
    union = (p | g).sum(axis=(1, 2)).astype(np.float64)
    values = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return _reduce(values, reduce)
