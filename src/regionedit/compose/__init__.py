"""Crop around an edit region, resize to the model's square and back, and blend the edit in.

Coordinate frame: image pixels, row 0 at the top. Images are ``(H, W, 3)`` ``uint8`` RGB.
Outside the region the composed image is bit-identical to the source; the blend's transition lies
inside the region (see :mod:`.blend` and :mod:`.weights`).

Modules: :mod:`.crop` (boxes, resizing), :mod:`.morphology` (dilate / erode / distances, OpenCV),
:mod:`.weights` (the in-region alpha and its width rule), :mod:`.pyramid` (Laplacian blend),
:mod:`.poisson` (seamless cloning), :mod:`.blend` (:func:`compose`, :func:`paste_back`).
"""

from regionedit.compose.blend import METHODS, compose, paste_back
from regionedit.compose.crop import (
    CropBox,
    binary_region,
    crop_resize,
    crop_resize_mask,
    region_crop,
    uncrop_resize,
)
from regionedit.compose.morphology import dilate, dilate_square, erode
from regionedit.compose.weights import auto_blend_px, blend_mask, feather, region_alpha

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
    "region_alpha",
    "region_crop",
    "uncrop_resize",
]
