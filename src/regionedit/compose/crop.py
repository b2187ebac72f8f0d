"""Crop boxes around an edit region, and resizing between image pixels and the model's square.

Coordinate frame everywhere: input-image pixels, ``x`` = column (0 at the left), ``y`` = row
(0 at the top). Boxes are end-exclusive: ``image[box.y0:box.y1, box.x0:box.x1]``.

The inpainting model works on a square of its native size (64 px for the bundled models, 512 for
Stable Diffusion): :func:`region_crop` picks a box around the region with some context,
:func:`crop_resize` / :func:`crop_resize_mask` bring the box to the model's square, and
:func:`uncrop_resize` brings the model's output back to the box's pixel size for
:func:`regionedit.compose.blend.paste_back`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "CropBox",
    "binary_region",
    "crop_resize",
    "crop_resize_mask",
    "region_crop",
    "uncrop_resize",
]

_RESAMPLE = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class CropBox:
    """An axis-aligned box in input-image pixels, end-exclusive.

    ``x0 <= x < x1`` (columns, 0 at the left) and ``y0 <= y < y1`` (rows, 0 at the top);
    the pixels are ``image[y0:y1, x0:x1]``.
    """

    x0: int  # first column
    y0: int  # first row
    x1: int  # one past the last column
    y1: int  # one past the last row

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"CropBox.{name} must be an int, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.x0 < 0 or self.y0 < 0 or self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"empty or negative CropBox {self}: need 0 <= x0 < x1 and 0 <= y0 < y1")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices: ``image[box.slices]`` is the box's pixels."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def fits(self, height: int, width: int) -> bool:
        """True if the box lies inside an image of ``height`` x ``width`` pixels."""
        return self.x1 <= width and self.y1 <= height

    def check_fits(self, height: int, width: int) -> None:
        if not self.fits(height, width):
            raise ValueError(f"{self} does not fit in an image of {height} x {width} (H x W) pixels")


def binary_region(region: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The region's binary support.

    Args:
        region: ``(H, W)`` region map in image pixels: bool, float in [0, 1] (a soft map), or
            uint8 0..255 (scaled by 1/255).
        threshold: pixels with value ``>= threshold`` (on the [0, 1] scale) are in the region.

    Returns:
        ``(H, W)`` bool.
    """
    r = np.asarray(region)
    if r.ndim == 3 and r.shape[2] == 1:
        r = r[:, :, 0]
    if r.ndim != 2:
        raise ValueError(f"region must have shape (H, W), got {r.shape}")
    if r.dtype == np.bool_:
        return r.copy()
    if r.dtype == np.uint8:
        return r >= threshold * 255.0
    if np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.integer):
        return r >= threshold
    raise ValueError(f"region dtype {r.dtype} not supported; use bool, uint8 or float in [0, 1]")


def region_crop(
    region: np.ndarray,
    context: float = 0.5,
    min_size: int = 64,
    square: bool = True,
    threshold: float = 0.5,
) -> CropBox:
    """A box around the region's bounding box, grown by ``context`` on each side.

    The side is ``ceil(s * (1 + 2 * context))`` where ``s`` is the bounding box's longer side
    (``square=True``; each axis on its own otherwise), at least ``min_size``. The box is centred
    on the bounding box and shifted (not shrunk) to lie inside the image; along an axis where the
    image is shorter than the box, the box covers that whole axis (so near-square or small images
    may give a non-square box; :func:`crop_resize` then stretches it to the square).

    Args:
        region: ``(H, W)`` region map in image pixels (see :func:`binary_region`).
        context: margin on each side as a fraction of the bounding box size (>= 0).
        min_size: minimum side in pixels (e.g. the model's native size, to avoid upsampling
            tiny regions a lot).
        square: square box (default) or independent width and height.
        threshold: binarisation threshold for soft maps.

    Returns:
        A :class:`CropBox` inside the image that contains every region pixel.

    Raises:
        ValueError: the region is empty (no pixel ``>= threshold``), or bad arguments.
    """
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    r = np.asarray(region)
    mask = r if (r.ndim == 2 and r.dtype == np.bool_) else binary_region(r, threshold)  # read only: no copy
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError(
            f"region is empty (no pixel >= threshold {threshold}); nothing to crop around"
        )
    ry0, ry1 = int(rows[0]), int(rows[-1]) + 1
    rx0, rx1 = int(cols[0]), int(cols[-1]) + 1
    bw, bh = rx1 - rx0, ry1 - ry0
    if square:
        side = max(min_size, math.ceil(max(bw, bh) * (1.0 + 2.0 * context)))
        sw = sh = side
    else:
        sw = max(min_size, math.ceil(bw * (1.0 + 2.0 * context)))
        sh = max(min_size, math.ceil(bh * (1.0 + 2.0 * context)))
    x0, x1 = _place(rx0, rx1, sw, w)
    y0, y1 = _place(ry0, ry1, sh, h)
    return CropBox(x0, y0, x1, y1)


def _place(lo: int, hi: int, size: int, limit: int) -> tuple[int, int]:
    """Interval of ``size`` centred on [lo, hi), shifted into [0, limit); all of it if too big."""
    if size >= limit:
        return 0, limit
    start = int(math.floor((lo + hi) / 2.0 - size / 2.0))
    start = min(max(start, 0), limit - size)
    # the interval contains [lo, hi) because size >= hi - lo and it is centred, then shifted
    # only as far as the image border
    return start, start + size


def _resample(name: str) -> Image.Resampling:
    try:
        return _RESAMPLE[name]
    except KeyError:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {name!r}") from None


def _check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"{what} must be (H, W, 3) uint8 RGB, got shape {image.shape} dtype {image.dtype}"
        )
    return image


def crop_resize(
    image: np.ndarray, box: CropBox, size: int, resample: str = "lanczos"
) -> np.ndarray:
    """Crop ``box`` from ``image`` and resize it to ``size`` x ``size``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, image pixels.
        box: inside the image.
        size: output side in pixels (the model's native size).
        resample: ``"lanczos"`` (default), ``"bicubic"``, ``"bilinear"``, ``"box"`` or
            ``"nearest"`` (Pillow filters; Pillow antialiases when downscaling).

    Returns:
        ``(size, size, 3)`` uint8 RGB; a copy of the crop when it already has that size.
    """
    image = _check_image(image)
    box.check_fits(*image.shape[:2])
    crop = image[box.slices]
    if crop.shape[:2] == (size, size):
        return crop.copy()
    out = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (size, size), _resample(resample), reducing_gap=3.0
    )
    return np.asarray(out).copy()


def crop_resize_mask(mask: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop ``box`` from a mask and resize it to ``size`` x ``size``.

    Area averaging when shrinking, bilinear interpolation when enlarging.

    Args:
        mask: ``(H, W)`` bool, uint8 (0..255) or float in [0, 1], image pixels.

    Returns:
        ``(size, size)`` float32 in [0, 1].
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got {m.shape}")
    box.check_fits(*m.shape)
    crop = _mask_float(m[box.slices])
    if crop.shape == (size, size):
        return crop.copy()
    shrinking = size < max(box.width, box.height)
    filt = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(crop).resize((size, size), filt), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def _mask_float(m: np.ndarray) -> np.ndarray:
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    if np.issubdtype(m.dtype, np.floating):
        return np.ascontiguousarray(np.clip(m, 0.0, 1.0), dtype=np.float32)
    raise ValueError(f"mask dtype {m.dtype} not supported; use bool, uint8 or float in [0, 1]")


def uncrop_resize(patch: np.ndarray, box: CropBox, resample: str = "lanczos") -> np.ndarray:
    """Resize a model-scale patch back to the box's pixel size.

    Args:
        patch: ``(h, w, 3)`` or ``(h, w)``, either uint8 (0..255) or float (values in [0, 1]).
        box: the box the patch was cropped from.
        resample: Pillow filter name, as in :func:`crop_resize`.

    Returns:
        ``(box.height, box.width[, 3])`` with the patch's dtype: uint8, or float32 clipped to
        [0, 1] (the filter's overshoot removed). A copy when no resizing is needed.
    """
    p = np.asarray(patch)
    if not (p.ndim == 2 or (p.ndim == 3 and p.shape[2] == 3)):
        raise ValueError(f"patch must be (h, w, 3) or (h, w), got shape {p.shape}")
    target = (box.height, box.width)
    filt = _resample(resample)
    if p.dtype == np.uint8:
        if p.shape[:2] == target:
            return p.copy()
        return np.asarray(
            Image.fromarray(np.ascontiguousarray(p)).resize((box.width, box.height), filt)
        ).copy()
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"patch dtype {p.dtype} not supported; use uint8 or float in [0, 1]")
    pf = p.astype(np.float32)
    if p.shape[:2] == target:
        return np.clip(pf, 0.0, 1.0)
    chans = [pf] if pf.ndim == 2 else [pf[:, :, c] for c in range(pf.shape[2])]
    out = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(c)).resize((box.width, box.height), filt),
            dtype=np.float32,
        )
        for c in chans
    ]
    res = out[0] if pf.ndim == 2 else np.stack(out, axis=2)
    return np.clip(res, 0.0, 1.0)
