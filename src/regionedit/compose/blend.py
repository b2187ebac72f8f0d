"""Pasting an edit back into the source image, changing no pixel outside the region.

Coordinate frame: image pixels, row 0 at the top, column 0 at the left. Images are ``(H, W, 3)``
``uint8`` RGB (0..255) unless stated; masks are ``(H, W)``.

The guarantee: let ``R = region >= threshold`` (the binary region, the mask reported to the user).
Every pixel outside ``R`` of the result is bit-identical to ``source``, for every method and image
size; :func:`paste_back` also leaves the region's pixels outside the crop box and on the box's
one-pixel frame (on sides inside the image) untouched, so the seam never lies on the box edge. It
holds by construction: every method's weights are 0 outside ``R``, and its output passes through
``np.where(R, blended, source)`` as the last step. The region is never dilated: the transition
happens inside it.

Methods (how the edit is blended inside ``R``):

- ``"hard"``: the edited pixels on ``R``, the source elsewhere (a visible seam if the edit changed
  colours).
- ``"feather"``: ``source + a * (edited - source)`` with ``a`` the in-region alpha of
  :func:`~regionedit.compose.weights.region_alpha`: 1 in the interior, a smoothstep down to a small
  weight > 0 on the region's edge pixels over ``feather_px`` px, the ramp narrowed to the local
  half-thickness in thin parts (a 1-2 px wide line gets alpha 1). Where ``a == 1`` the result is
  exactly ``edited``.
- ``"laplacian"``: multi-band blending (:mod:`.pyramid`): band ``k`` of ``edited - source`` gets
  the same alpha with the ramp width divided by ``2 ** (N - 1 - k)``; colour shifts fade over the
  whole ramp, fine detail keeps a sharp edge. Exactly ``edited`` where the widest alpha is 1.
- ``"poisson"``: seamless cloning (:mod:`.poisson`) with the region as the domain: the edit's
  gradients inside ``R``, the source's values on the pixels just outside it. Removes seams best but
  shifts the edit's colours towards the surroundings; ``edited`` is not reproduced exactly anywhere.

:func:`compose` takes an edited image of the source's size; :func:`paste_back` takes the
inpainting model's square patch and a :class:`~regionedit.compose.crop.CropBox`, and works only
inside the box (cost proportional to the box, not the image).

This module also re-exports the helpers that lived here before the split (``dilate``, ``erode``,
``dilate_square``, ``feather``, ``blend_mask``, ``auto_blend_px``), so ``regionedit.compose.blend``
imports keep working.
"""

from __future__ import annotations

import numpy as np

from regionedit.compose.crop import CropBox, binary_region, uncrop_resize
from regionedit.compose.morphology import _check_px, bbox_slices, dilate, dilate_square, erode
from regionedit.compose.poisson import poisson_blend
from regionedit.compose.pyramid import laplacian_blend
from regionedit.compose.weights import (
    _warn_dilate_px,
    auto_blend_px,
    blend_mask,
    feather,
    ramp,
    region_alpha,
    width_map,
)

__all__ = [
    "METHODS",
    "auto_blend_px",
    "blend_mask",
    "compose",
    "dilate",
    "dilate_square",
    "erode",
    "feather",
    "paste_back",
    "region_alpha",
]

METHODS = ("feather", "laplacian", "poisson", "hard")


def _to_255(edited: np.ndarray, what: str) -> np.ndarray:
    """uint8 stays uint8 (no float copy); float in [0, 1] -> float32 0..255."""
    if edited.dtype == np.uint8:
        return edited
    if np.issubdtype(edited.dtype, np.floating):
        e = edited.astype(np.float32)
        if not np.isfinite(e).all():
            raise ValueError(f"{what} has NaN or infinite values")
        return np.clip(e, 0.0, 1.0) * np.float32(255.0)
    raise ValueError(f"{what} dtype {edited.dtype} not supported; use uint8 or float in [0, 1]")


def _margin(method: str, width: int) -> int:
    """Context around the region's bounding box a method reads: the 1-px ring of non-region pixels
    (the boundary of the distances / of the Poisson problem), plus the pyramid's reach for
    ``"laplacian"`` (its coarsest band blurs over about ``width`` px)."""
    return width + 2 if method == "laplacian" else 1


def _blend_window(src: np.ndarray, ed: np.ndarray, region: np.ndarray, method: str, width: int) -> np.ndarray:
    """Blend one window.

    Args:
        src: ``(h, w, 3)`` uint8. ed: ``(h, w, 3)`` uint8 or float32 0..255.
        region: ``(h, w)`` bool; pixels beyond the window do not count as outside.
        method: one of :data:`METHODS`. width: ramp width in px, int >= 0.

    Returns:
        ``(h, w, 3)`` uint8, bit-identical to ``src`` outside ``region``.
    """
    ed_u8 = ed if ed.dtype == np.uint8 else np.clip(np.rint(ed), 0, 255).astype(np.uint8)
    if method == "hard" or (width == 0 and method != "poisson"):
        out = ed_u8
    elif method == "feather":  # only the ramp needs arithmetic: the edit where a == 1, the source where 0
        a = ramp(*width_map(region, width))
        full = a >= 1.0
        band = (a > 0.0) & ~full
        out = src.copy()
        np.copyto(out, ed_u8, where=full[:, :, None])
        s = src[band].astype(np.float32)
        e = ed[band].astype(np.float32, copy=False)
        out[band] = np.clip(np.rint(s + a[band][:, None] * (e - s)), 0, 255).astype(np.uint8)
    elif method == "laplacian":
        out = laplacian_blend(src, ed, region, width)
    elif method == "poisson":
        out = poisson_blend(src, ed, region)
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    # The guarantee, by construction: outside the region, the source's own bytes.
    return np.where(region[:, :, None], out, src)


def _check_source(source: np.ndarray) -> np.ndarray:
    s = np.asarray(source)
    if s.ndim != 3 or s.shape[2] != 3 or s.dtype != np.uint8:
        raise ValueError(
            f"source must be (H, W, 3) uint8 RGB, got shape {s.shape} dtype {s.dtype}; "
            "load it with regionedit.io.load_image"
        )
    return s


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def compose(
    source: np.ndarray,
    edited: np.ndarray,
    region: np.ndarray,
    dilate_px: int | None = None,
    feather_px: int = 4,
    method: str = "feather",
    threshold: float = 0.5,
) -> np.ndarray:
    """Blend a full-size edited image into the source inside the region.

    Args:
        source: ``(H, W, 3)`` uint8 RGB input image, image pixels (row 0 at the top).
        edited: ``(H, W, 3)`` uint8 (0..255) or float (values in [0, 1]) edited image, same frame.
        region: ``(H, W)`` region map: bool, float in [0, 1] (soft), or uint8 0..255.
        dilate_px: deprecated and ignored (a ``DeprecationWarning`` if given): the blend no longer
            reaches outside the region.
        feather_px: ramp width inside the region for ``"feather"`` / ``"laplacian"`` (pixels, int
            >= 0; 0 = hard edge); see :func:`~regionedit.compose.weights.region_alpha`.
        method: ``"feather"`` (default), ``"laplacian"``, ``"poisson"`` or ``"hard"`` (module
            docstring).
        threshold: ``region >= threshold`` is the binary region.

    Returns:
        ``(H, W, 3)`` uint8. Every pixel outside ``region >= threshold`` is bit-identical to
        ``source``. For ``"feather"``, ``"laplacian"`` and ``"hard"``, pixels where
        ``blend_mask(region, feather_px=feather_px)[1] == 1`` (all region pixels for ``"hard"``) equal
        ``edited`` (rounded to uint8). Work is limited to the region's bounding box plus a margin, so
        cost follows the region, not the image.
    """
    src = _check_source(source)
    ed_all = np.asarray(edited)
    if ed_all.shape != src.shape:
        raise ValueError(f"edited has shape {ed_all.shape}, source {src.shape}; they must match")
    _check_method(method)
    _warn_dilate_px(dilate_px)
    feather_px = _check_px(feather_px, "feather_px")
    r = binary_region(region, threshold)
    if r.shape != src.shape[:2]:
        raise ValueError(f"region has shape {r.shape}, expected {src.shape[:2]}")
    out = src.copy()
    if not r.any():
        return out
    win = bbox_slices(r, _margin(method, feather_px))
    out[win] = _blend_window(src[win], _to_255(ed_all[win], "edited"), r[win], method, feather_px)
    return out


def paste_back(
    source: np.ndarray,
    patch: np.ndarray,
    box: CropBox,
    region: np.ndarray,
    method: str = "feather",
    dilate_px: int | None = None,
    feather_px: int | None = None,
    threshold: float = 0.5,
    resample: str = "lanczos",
) -> np.ndarray:
    """Put a model-scale edited patch back into the full source image, inside the region.

    The patch is resized to the box (:func:`~regionedit.compose.crop.uncrop_resize`) and blended
    into ``source[box]`` as :func:`compose` does, on the region's pixels inside the box minus the
    box's 1-px frame on sides inside the image (so the seam never lies on the box edge; a box from
    :func:`~regionedit.compose.crop.region_crop` has context around the region and never cuts it).
    Only the box is processed: the cost is proportional to the box, not to the image.

    Args:
        source: ``(H, W, 3)`` uint8 RGB input image, image pixels (row 0 at the top).
        patch: ``(h, w, 3)`` uint8 (0..255) or float (values in [0, 1]) model output for
            ``box`` (any size, typically the model's square, e.g. 64 x 64 or 512 x 512).
        box: where the patch came from (e.g. :func:`~regionedit.compose.crop.region_crop`).
        region: ``(H, W)`` region map of the full image (bool, float in [0, 1], or uint8).
        method: as in :func:`compose`.
        dilate_px: deprecated and ignored (a ``DeprecationWarning`` if given).
        feather_px: ramp width inside the region, in image pixels; ``None`` = :func:`auto_blend_px`
            (about two model pixels).
        threshold: ``region >= threshold`` is the binary region.
        resample: filter for resizing the patch to the box.

    Returns:
        ``(H, W, 3)`` uint8. Bit-identical to ``source`` outside ``region >= threshold``, outside the
        box and on the box's frame on sides inside the image.
    """
    src = _check_source(source)
    h, w = src.shape[:2]
    box.check_fits(h, w)
    _check_method(method)
    _warn_dilate_px(dilate_px)
    p = np.asarray(patch)
    if not (p.ndim == 3 and p.shape[2] == 3):
        raise ValueError(f"patch must be (h, w, 3), got shape {p.shape}")
    width = auto_blend_px(box, p.shape) if feather_px is None else _check_px(feather_px, "feather_px")
    r_full = np.asarray(region)
    if r_full.shape[:2] != (h, w):
        raise ValueError(f"region has shape {r_full.shape}, expected {(h, w)} (the full image)")
    r = binary_region(r_full[box.slices], threshold)
    # box sides inside the image are a boundary: their frame pixels are outside (alpha 0, and the
    # distances see them as the region's edge)
    if box.y0 > 0:
        r[0, :] = False
    if box.y1 < h:
        r[-1, :] = False
    if box.x0 > 0:
        r[:, 0] = False
    if box.x1 < w:
        r[:, -1] = False
    out = src.copy()
    if not r.any():
        return out
    up = uncrop_resize(p, box, resample=resample)
    ed = up if up.dtype == np.uint8 else up * np.float32(255.0)  # uint8 stays uint8: no float copy
    sy, sx = bbox_slices(r, _margin(method, width))  # within the box
    win = (slice(box.y0 + sy.start, box.y0 + sy.stop), slice(box.x0 + sx.start, box.x0 + sx.stop))
    out[win] = _blend_window(src[win], ed[sy, sx], r[sy, sx], method, width)
    return out
