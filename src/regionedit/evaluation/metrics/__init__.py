"""Image-editing metrics as pure functions, every choice explicit.

Published editing numbers are often not comparable because the metric hides choices: which CLIP,
which DINO, which resolution and resampling, whether L2 is a mean squared error or its root,
whether SSIM is averaged over the whole image or only where the window fits. Here every metric's
docstring states its exact definition, the input convention and the reference it matches, and
feature-based metrics take their feature extractor as an explicit, named argument.

Image convention (all metrics)
------------------------------
An image is an ``(H, W, 3)`` RGB array, a batch is ``(B, H, W, 3)`` (a list of equally sized
``(H, W, 3)`` arrays is stacked). Two dtypes are accepted:

* ``uint8`` in ``[0, 255]``, converted to ``float64`` ``x / 255`` (exactly what torchvision's
  ``ToTensor`` does, so values are in ``[0, 1]``);
* floating point, taken to be **already** in ``[0, 1]``; values outside ``[0, 1]`` (e.g. floats in
  ``[0, 255]``) or NaN raise ``ValueError`` rather than being silently rescaled.

Paired metrics require equal shapes; nothing is resized implicitly (MagicBrush resizes the
generated image to the ground-truth size with PIL's default filter before L1/L2: do that
explicitly, and report it, if you need their exact protocol). Masks are ``(H, W)`` (or
``(B, H, W)``) bool arrays.

Reduction
---------
Per-image metrics are computed image by image; ``reduce=True`` (the default) returns the plain
``float`` mean over the batch (MagicBrush averages per-image scores the same way),
``reduce=False`` returns the per-image ``numpy`` array of shape ``(B,)``.

Metric families (and the module holding each)
---------------------------------------------
* Pixel metrics against a reference image (:mod:`.pixels`): :func:`l1`, :func:`l2`, :func:`psnr`,
  :func:`ssim` (the last two via scikit-image).
* Feature metrics with an explicit :class:`FeatureExtractor` (:mod:`.features`): :func:`clip_i`,
  :func:`clip_t`, :func:`clip_dir`, :func:`dino_sim`; builders :func:`clip_extractor`,
  :func:`dino_extractor` (:mod:`.extractors`); :func:`frechet_distance` (the FID formula over any
  features).
* Ground-truth metrics (exact masks): :func:`region_iou` (:mod:`.region`), :func:`leakage`,
  :func:`preservation` (:mod:`.pixels`); of the shapes world (measured objects vs scene graphs, in
  :mod:`regionedit.world.edit_success`, re-exported here): :func:`edit_success`
  (:func:`edit_success_sample`), :func:`absent_accuracy`, :func:`add_iou_ceiling`.
* Metrics needing weights that are not bundled (:mod:`.external`): :func:`lpips`, :func:`fid` raise
  :class:`MetricUnavailable` naming what is missing.

The image convention, conversion and reduction shared by all of them are in :mod:`.base`. The
general modules do not import :mod:`regionedit.world`; only this package's re-export of the
shapes-world metrics does.
"""

from __future__ import annotations

from regionedit.world.edit_success import (
    BACKGROUND_TOLERANCE,
    SIZE_CLASS_THRESHOLD,
    absent_accuracy,
    add_iou_ceiling,
    edit_success,
    edit_success_sample,
)

from .base import MetricUnavailable, _raw_batch, to_unit_float
from .external import fid, lpips
from .extractors import (
    DEFAULT_DINO,
    IMAGENET_MEAN,
    IMAGENET_STD,
    FeatureExtractor,
    clip_extractor,
    dino_extractor,
)
from .features import clip_dir, clip_i, clip_t, dino_sim, frechet_distance
from .pixels import l1, l2, leakage, preservation, psnr, ssim
from .region import region_iou

__all__ = [
    "MetricUnavailable",
    "FeatureExtractor",
    "clip_extractor",
    "dino_extractor",
    "DEFAULT_DINO",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "l1",
    "l2",
    "psnr",
    "ssim",
    "clip_i",
    "clip_t",
    "clip_dir",
    "dino_sim",
    "frechet_distance",
    "region_iou",
    "add_iou_ceiling",
    "leakage",
    "preservation",
    "edit_success",
    "edit_success_sample",
    "absent_accuracy",
    "lpips",
    "fid",
    "SIZE_CLASS_THRESHOLD",
    "BACKGROUND_TOLERANCE",
]
# Not in __all__ but importable as before: to_unit_float (the image convention as a function) and
# _raw_batch (validated batch, dtype kept; used by evaluation.harness's cached extractor).
