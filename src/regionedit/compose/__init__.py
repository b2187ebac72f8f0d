"""Crop around an edit region, resize to the model's square and back, and blend the edit in.

Coordinate frame: image pixels, row 0 at the top. Images are ``(H, W, 3)`` ``uint8`` RGB.
Outside the dilated region the composed image is bit-identical to the source (see :mod:`.blend`).
"""

from regionedit.compose.blend import (
    METHODS,
    auto_blend_px,
    blend_mask,
    compose,
    dilate,
    dilate_square,
    erode,
    feather,
    paste_back,
)
from regionedit.compose.crop import (
    CropBox,
    binary_region,
    crop_resize,
    crop_resize_mask,
    region_crop,
    uncrop_resize,
)

__all__ = [
    "METHODS",
    "CropBox",
    "auto_blend_px",
    "binary_region",
    "blend_mask",
    "compose",
    "crop_resize",
    "crop_resize_mask",
    "dilate",
    "dilate_square",
    "erode",
    "feather",
    "paste_back",
    "region_crop",
    "uncrop_resize",
]
