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

Metric families
---------------
* Pixel metrics against a reference image: :func:`l1`, :func:`l2`, :func:`psnr`, :func:`ssim`.
* Feature metrics with an explicit :class:`FeatureExtractor`: :func:`clip_i`, :func:`clip_t`,
  :func:`clip_dir`, :func:`dino_sim`; builders :func:`clip_extractor`, :func:`dino_extractor`;
  :func:`frechet_distance` (the FID formula over any features).
* Ground-truth metrics of the shapes world (exact masks and scene graphs): :func:`region_iou`,
  :func:`leakage`, :func:`preservation`, :func:`edit_success` (:func:`edit_success_sample`),
  :func:`absent_accuracy`.
* Metrics needing weights that are not bundled: :func:`lpips`, :func:`fid` raise
  :class:`MetricUnavailable` naming what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..world import spec
from ..world.rendering import object_coverage
from ..world.scene import Scene
from regionedit.world.measure import background_l1, find_object, measure_objects, scene_match

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
    values = np.asarray(values, dtype=np.float64)
    if not reduce:
        return values
    if nan_skip:
        ok = ~np.isnan(values)
        return float(values[ok].mean()) if ok.any() else float("nan")
    return float(values.mean())


# ------------------------------------------------------------------------------------------------
# pixel metrics


def l1(a, b, reduce: bool = True):
    """MagicBrush "L1": mean absolute difference of ``[0, 1]`` images.

    Definition: per image, ``mean over H, W and the 3 channels of |a - b|`` with pixels in
    ``[0, 1]`` (uint8 / 255); the batch value is the mean of the per-image values.

    Reference: MagicBrush ``evaluation/image_eval.py`` ``eval_distance(metric='l1')``:
    ``nn.L1Loss()`` (mean reduction) on ``transforms.ToTensor()`` images, averaged over image pairs.
    (Their script first resizes the generated image to the ground-truth size; here shapes must
    already match.)

    Args:
        a, b: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        reduce: mean over the batch (float) or per-image values (``(B,)`` array).

    Returns:
        In ``[0, 1]``; 0 for identical images.
    """
    x, y = _pair(a, b)
    return _reduce(np.abs(x - y).mean(axis=(1, 2, 3)), reduce)


def l2(a, b, reduce: bool = True):
    """MagicBrush "L2": mean **squared** difference (MSE, not its root) of ``[0, 1]`` images.

    Definition: per image, ``mean over H, W and the 3 channels of (a - b) ** 2`` with pixels in
    ``[0, 1]``; the batch value is the mean of the per-image values.

    Reference: MagicBrush ``evaluation/image_eval.py`` ``eval_distance(metric='l2')`` uses
    ``nn.MSELoss()`` (mean reduction) on ``ToTensor`` images: the number MagicBrush (and papers
    copying its table) report as "L2" is this MSE. Its square root (RMSE) is *not* what they report.

    Args:
        a, b: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        reduce: mean over the batch (float) or per-image values.

    Returns:
        In ``[0, 1]``; 0 for identical images.
    """
    x, y = _pair(a, b)
    return _reduce(((x - y) ** 2).mean(axis=(1, 2, 3)), reduce)


def psnr(a, b, data_range: float = 1.0, reduce: bool = True):
    """Peak signal-to-noise ratio in dB, per image, then averaged over the batch.

    Definition: ``10 * log10(data_range ** 2 / MSE)`` with ``MSE`` the mean over H, W and the 3
    channels of ``(a - b) ** 2`` on ``[0, 1]`` pixels (uint8 / 255), so ``data_range=1.0`` is the
    standard PSNR (identical to ``20 log10(255) - 10 log10(MSE_255)`` on uint8). Identical images
    give ``inf`` (and a batch containing one averages to ``inf``).

    Reference: ``torchmetrics.functional.peak_signal_noise_ratio(a, b, data_range=1.0,
    dim=(1, 2, 3))`` (per-image PSNR, mean over images). Note torchmetrics' default ``dim=None``
    computes one MSE over the whole batch instead, a different number for batches.

    Args:
        a, b: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        data_range: peak value of the ``[0, 1]`` scale (keep 1.0 for the standard PSNR).
        reduce: mean over the batch (float) or per-image values.
    """
    x, y = _pair(a, b)
    mse = ((x - y) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(data_range**2 / mse)
    return _reduce(values, reduce)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    d = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-0.5 * (d / sigma) ** 2)
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    a,
    b,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: str = "valid",
    reduce: bool = True,
):
    """Structural similarity (Wang et al. 2004), Gaussian window, per RGB channel.

    Definition, on ``[0, 1]`` pixels (uint8 / 255, i.e. data range L = 1): for each channel, local
    statistics under a normalised ``window x window`` Gaussian (``sigma``): means ``mu_a, mu_b``,
    variances ``s_a^2, s_b^2`` (clamped at 0) and covariance ``s_ab`` (population moments: weighted
    ``E[xy] - E[x]E[y]``), then
    ``SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))``
    with ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``; the image's value is the mean of this map over the
    positions and the 3 channels; the batch value is the mean over images. Defaults are the
    standard ones (11, 1.5, 0.01, 0.03) and the data range is fixed to 1 (torchmetrics' default
    ``data_range=None`` instead estimates it from the data, which changes C1, C2 per batch).

    ``padding`` chooses where the map is evaluated, which matters on small images (a 5-pixel border
    is 30% of a 64x64 image):

    * ``"valid"`` (default): only where the window fits inside the image (the map is
      ``(H - window + 1) x (W - window + 1)``), as Wang et al.'s reference ``ssim_index.m``
      (``filter2(..., 'valid')``), scikit-image (``gaussian_weights=True,
      use_sample_covariance=False``) and torchmetrics releases before PR #2721 (2024-09).
      Needs ``H, W >= window``.
    * ``"reflect"``: the images are reflect-padded by ``window // 2`` and the map covers every
      pixel, as ``torchmetrics.functional.structural_similarity_index_measure`` computes since that
      PR (checked against torchmetrics 1.9).

    Args:
        a, b: ``(H, W, 3)`` or ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        window: Gaussian window size (odd). sigma, k1, k2: as above.
        padding: ``"valid"`` or ``"reflect"``.
        reduce: mean over the batch (float) or per-image values.

    Returns:
        In ``[-1, 1]``; 1 for identical images.
    """
    if window % 2 != 1 or window < 1:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if padding not in ("valid", "reflect"):
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    x, y = _pair(a, b)
    h, w = x.shape[1:3]
    pad = window // 2
    if padding == "valid" and (h < window or w < window):
        raise ValueError(f"ssim(padding='valid') needs images of at least {window}x{window}, got {h}x{w}")
    if padding == "reflect" and (h <= pad or w <= pad):
        raise ValueError(f"ssim(padding='reflect') needs images larger than {pad}x{pad}, got {h}x{w}")
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # (B, 3, H, W) float64
    yt = torch.from_numpy(y).permute(0, 3, 1, 2)
    if padding == "reflect":
        xt = F.pad(xt, (pad, pad, pad, pad), mode="reflect")
        yt = F.pad(yt, (pad, pad, pad, pad), mode="reflect")
    kernel = _gaussian_window(window, sigma).expand(3, 1, window, window)
    n = xt.shape[0]
    stats = F.conv2d(torch.cat([xt, yt, xt * xt, yt * yt, xt * yt]), kernel, groups=3).split(n)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats
    var_x = torch.clamp(e_xx - mu_x**2, min=0.0)
    var_y = torch.clamp(e_yy - mu_y**2, min=0.0)
    cov = e_xy - mu_x * mu_y
    c1, c2 = k1**2, k2**2  # data range 1
    smap = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return _reduce(smap.reshape(n, -1).mean(dim=1).numpy(), reduce)


# ------------------------------------------------------------------------------------------------
# feature extractors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_DINO = "facebook/dino-vits16"  # the DINO ViT-S/16 MagicBrush uses (torch.hub dino_vits16)

# PIL resample codes (as stored in Hugging Face image processor configs) -> torch modes
_PIL_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A named image (and optionally text) embedder for the feature metrics.

    Build one with :func:`clip_extractor` or :func:`dino_extractor`, or wrap any model::

        ext = FeatureExtractor("my-encoder@224", embed_images=fn, config={...})

    Attributes:
        name: what the numbers were computed with (model and resolution), reported with them.
        embed_images: ``(B, 3, H, W)`` float32 torch tensor in ``[0, 1]`` (RGB, the caller's
            resolution) -> ``(B, D)`` embeddings; it does its own resizing and normalisation.
        embed_texts: ``list[str]`` -> ``(B, D)`` embeddings in the same space, or None (image-only
            extractors such as DINO).
        config: every preprocessing choice (resolution, resampling, crop, normalisation, which
            token or projection), for reports.
        batch_size: images per forward pass.

    Any object with ``name``, ``image_embed(images)`` and ``text_embed(texts)`` (same contracts
    as the methods below) can be passed to the metrics instead.
    """

    name: str
    embed_images: Callable[[torch.Tensor], torch.Tensor]
    embed_texts: Callable[[list[str]], torch.Tensor] | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 32

    def image_embed(self, images) -> torch.Tensor:
        """``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``) -> ``(B, D)`` float32."""
        x = to_unit_float(images, "images")
        t = torch.from_numpy(x).permute(0, 3, 1, 2).to(torch.float32).contiguous()
        outs = []
        with torch.inference_mode():
            for i in range(0, t.shape[0], self.batch_size):
                e = self.embed_images(t[i : i + self.batch_size])
                outs.append(torch.as_tensor(e).detach().to("cpu", torch.float32))
        return torch.cat(outs)

    def text_embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``list[str]`` -> ``(B, D)`` float32. Raises ``ValueError`` for an image-only extractor."""
        if self.embed_texts is None:
            raise ValueError(f"feature extractor {self.name!r} has no text encoder (CLIP-T / CLIP-dir need one)")
        texts = [texts] if isinstance(texts, str) else list(texts)
        outs = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                e = self.embed_texts(texts[i : i + self.batch_size])
                outs.append(torch.as_tensor(e).detach().to("cpu", torch.float32))
        return torch.cat(outs)


def _size_get(size: Any, key: str):
    if size is None:
        return None
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


def _resize_center_crop(
    x: torch.Tensor, resize: int | tuple[int, int] | None, crop: tuple[int, int] | None, mode: str
) -> torch.Tensor:
    """``(B, 3, H, W)`` in ``[0, 1]``: resize (shortest edge to ``resize`` keeping the aspect ratio,
    long side ``int(resize * long / short)`` as torchvision / HF; or exactly to ``(h, w)``), then
    centre-crop to ``crop`` (offsets ``round((H - h) / 2)``, as torchvision). Bilinear/bicubic are
    antialiased (like PIL when downscaling) and clamped to ``[0, 1]``."""
    h, w = x.shape[-2:]
    if resize is not None:
        if isinstance(resize, int):
            if h <= w:
                size = (resize, int(resize * w / h))
            else:
                size = (int(resize * h / w), resize)
        else:
            size = (int(resize[0]), int(resize[1]))
        if size != (h, w):
            if mode == "nearest":
                x = F.interpolate(x, size=size, mode="nearest")
            else:
                x = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True).clamp(0.0, 1.0)
        h, w = size
    if crop is not None and (crop[0], crop[1]) != (h, w):
        ch, cw = crop
        if ch > h or cw > w:
            raise ValueError(f"cannot centre-crop {ch}x{cw} from a {h}x{w} image")
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        x = x[..., top : top + ch, left : left + cw]
    return x


def clip_extractor(models, name: str | None = None, interpolation: str | None = None) -> FeatureExtractor:
    """CLIP image and text embeddings of a ``transformers`` ``CLIPModel`` (CLIP-I, CLIP-T, CLIP-dir).

    Preprocessing follows the checkpoint's own ``CLIPImageProcessor`` (as OpenAI's ``clip.load``
    transform and MagicBrush's ``clip.load("ViT-B/32")`` do): resize the shortest edge to
    ``size.shortest_edge`` with the processor's ``resample`` (bicubic for OpenAI CLIP and the
    bundled shapes-64 CLIP; torch antialiased resampling, which approximates PIL's), centre-crop to
    ``crop_size``, normalise with ``image_mean`` / ``image_std`` (via
    :func:`regionedit.localize.features.clip_pixels`). Image embedding: ``visual_projection`` of the
    pooled CLS token (:func:`regionedit.localize.features.image_features`, = ``get_image_features``);
    text embedding: :func:`regionedit.localize.features.text_embeddings` (``text_projection`` of the
    EOS-pooled output, padded to ``model_max_length``). Embeddings are returned unnormalised;
    the metrics take cosines.

    Args:
        models: a :class:`regionedit.models.loading.Models` (``regionedit.models.load(...)``);
            its ``clip``, ``clip_processor`` and ``clip_tokenizer`` are used.
        name: reported name; default ``"clip:<model>@<crop>px"``.
        interpolation: override the processor's resampling (``"bicubic"``, ``"bilinear"``,
            ``"nearest"``).
    """
    from regionedit.localize.features import clip_pixels, image_features, text_embeddings

    clip, proc, tok = models.clip, models.clip_processor, models.clip_tokenizer
    do_resize = getattr(proc, "do_resize", True)
    do_crop = getattr(proc, "do_center_crop", True)
    shortest = _size_get(proc.size, "shortest_edge")
    if shortest is not None:
        resize: int | tuple[int, int] | None = int(shortest)
    else:
        resize = (int(_size_get(proc.size, "height")), int(_size_get(proc.size, "width")))
    crop_h = _size_get(proc.crop_size, "height")
    crop_w = _size_get(proc.crop_size, "width")
    if crop_h is None or crop_w is None or crop_h != crop_w:
        raise ValueError(f"expected a square CLIP crop_size, got {proc.crop_size}")
    crop = (int(crop_h), int(crop_w))
    if interpolation is None:
        code = int(getattr(proc, "resample", 3))
        if code not in _PIL_RESAMPLE:
            raise ValueError(f"unsupported processor resample code {code}; pass interpolation=")
        interpolation = _PIL_RESAMPLE[code]
    if interpolation not in ("nearest", "bilinear", "bicubic"):
        raise ValueError(f"interpolation must be nearest, bilinear or bicubic, got {interpolation!r}")
    mean, std = tuple(float(v) for v in proc.image_mean), tuple(float(v) for v in proc.image_std)
    param = next(clip.parameters())
    model_name = models.describe().get("clip", models.model_id)
    if name is None:
        name = f"clip:{model_name}@{crop[0]}px"

    def embed_images(x: torch.Tensor) -> torch.Tensor:
        x = _resize_center_crop(x, resize if do_resize else None, crop if do_crop else None, interpolation)
        if tuple(x.shape[-2:]) != crop:
            raise ValueError(f"CLIP input must be {crop}, got {tuple(x.shape[-2:])} (processor without resize/crop?)")
        pixels = clip_pixels(x * 2.0 - 1.0, crop[0], mean, std)  # already at size: normalisation only
        return image_features(clip, pixels.to(param.device, param.dtype))[1]

    def embed_texts(texts: list[str]) -> torch.Tensor:
        return text_embeddings(clip, tok, texts)

    config = {
        "model": model_name,
        "class": type(clip).__name__,
        "resize": (({"shortest_edge": resize} if isinstance(resize, int) else {"height": resize[0], "width": resize[1]})
                   if do_resize else None),
        "center_crop": crop if do_crop else None,
        "interpolation": interpolation,
        "antialias": interpolation != "nearest",
        "mean": mean,
        "std": std,
        "image_embedding": "visual_projection(pooled CLS) = CLIPModel.get_image_features",
        "text_embedding": "text_projection(EOS-pooled) = CLIPModel.get_text_features",
        "text_max_length": int(tok.model_max_length),
    }
    return FeatureExtractor(name, embed_images, embed_texts, config)


def dino_extractor(
    model_id_or_path: str = DEFAULT_DINO,
    name: str | None = None,
    crop_size: int = 224,
    resize_size: int | None = None,
    interpolation: str = "bicubic",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    local_files_only: bool = False,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """DINO image embeddings (the CLS token) of a ``transformers`` ``ViTModel`` / ``Dinov2Model``.

    Matches MagicBrush's "DINO" protocol by default: ``torch.hub`` ``dino_vits16`` (here its
    Hugging Face port ``facebook/dino-vits16``) with ``Resize(256, bicubic)``,
    ``CenterCrop(224)``, ImageNet normalisation, embedding = the final-layer-normed CLS token
    (``last_hidden_state[:, 0]``; *not* ``pooler_output``, which for ViT is an extra dense+tanh
    layer that DINO does not have). ``resize_size`` defaults to ``int(crop_size * 256 / 224)``
    (shortest edge). For a ViT run at a crop size other than its ``config.image_size``, position
    embeddings are interpolated (``interpolate_pos_encoding=True``); Dinov2 always interpolates.

    Args:
        model_id_or_path: a local folder (``config.json`` + weights) or a Hugging Face id.
        name: reported name; default ``"dino:<model_id_or_path>@<crop>px"``.
        crop_size, resize_size, interpolation, mean, std: preprocessing (see above).
        local_files_only: do not try the network (only a local folder or the HF cache). Offline,
            set it (or ``HF_HUB_OFFLINE=1``) to fail at once instead of after the hub's retries.
        device: where the model runs.

    Raises:
        MetricUnavailable: the weights cannot be loaded (not downloaded, no network); the message
            names the missing model and how to provide it.
        ValueError: the checkpoint is not a ViT / Dinov2 model.
    """
    from transformers import AutoModel

    loc = str(model_id_or_path)
    hint = (
        "DINO metrics need a ViT/Dinov2 checkpoint: download it where there is network (e.g. "
        f"`huggingface-cli download {DEFAULT_DINO} --local-dir dino-vits16`, the DINO ViT-S/16 "
        "MagicBrush uses) and pass that folder (config.json + model.safetensors) as model_id_or_path."
    )
    if loc.startswith(("/", ".", "~")) and not Path(loc).expanduser().exists():
        raise MetricUnavailable(f"DINO weights folder {loc!r} does not exist. {hint}")
    try:
        model = AutoModel.from_pretrained(loc, local_files_only=local_files_only)
    except (OSError, ValueError) as e:  # missing files, offline hub, invalid id
        raise MetricUnavailable(
            f"DINO weights {loc!r} are not available here ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). {hint}"
        ) from e
    model_type = getattr(model.config, "model_type", "")
    if model_type not in ("vit", "dinov2", "dinov2_with_registers"):
        raise ValueError(f"{model_id_or_path!r} is a {model_type!r} model; dino_extractor needs a ViT or Dinov2 model")
    model = model.to(device).eval().requires_grad_(False)
    if resize_size is None:
        resize_size = int(crop_size * 256 / 224)
    if interpolation not in ("nearest", "bilinear", "bicubic"):
        raise ValueError(f"interpolation must be nearest, bilinear or bicubic, got {interpolation!r}")
    crop = (int(crop_size), int(crop_size))
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    interpolate_pos = model_type == "vit" and int(crop_size) != int(getattr(model.config, "image_size", crop_size))
    param = next(model.parameters())
    if name is None:
        name = f"dino:{model_id_or_path}@{crop_size}px"

    def embed_images(x: torch.Tensor) -> torch.Tensor:
        x = _resize_center_crop(x, int(resize_size), crop, interpolation)
        x = ((x - m) / s).to(param.device, param.dtype)
        kwargs = {"interpolate_pos_encoding": True} if interpolate_pos else {}
        return model(pixel_values=x, **kwargs).last_hidden_state[:, 0]

    config = {
        "model": str(model_id_or_path),
        "class": type(model).__name__,
        "resize": {"shortest_edge": int(resize_size)},
        "center_crop": crop,
        "interpolation": interpolation,
        "antialias": interpolation != "nearest",
        "mean": tuple(float(v) for v in mean),
        "std": tuple(float(v) for v in std),
        "image_embedding": "last_hidden_state[:, 0] (layer-normed CLS token)",
        "interpolate_pos_encoding": interpolate_pos or model_type != "vit",
    }
    return FeatureExtractor(name, embed_images, None, config)


# ------------------------------------------------------------------------------------------------
# feature metrics


def _cosine(u, v) -> np.ndarray:
    """Row-wise cosine of (B, D) embeddings in float64, as ``torch.nn.functional.cosine_similarity``
    (eps 1e-8): a zero vector gives 0."""
    u = torch.as_tensor(u).to(torch.float64)
    v = torch.as_tensor(v).to(torch.float64)
    if u.shape != v.shape:
        raise ValueError(f"embedding shapes differ: {tuple(u.shape)} vs {tuple(v.shape)}")
    return F.cosine_similarity(u, v, dim=-1, eps=1e-8).numpy()


def _captions(captions, n: int, what: str) -> list[str]:
    if isinstance(captions, str):
        return [captions] * n
    captions = list(captions)
    if len(captions) != n:
        raise ValueError(f"{what}: {len(captions)} captions for {n} images")
    return captions


def _batch_len(images, what: str) -> int:
    return _raw_batch(images, what).shape[0]


def clip_i(ext, edited, target, reduce: bool = True):
    """CLIP-I: cosine similarity of the image embeddings of the edited and the target image.

    Definition: ``cos(ext.image_embed(edited)_i, ext.image_embed(target)_i)`` per pair, mean over
    pairs. Reference: MagicBrush ``eval_clip_i`` (``1 - scipy.spatial.distance.cosine`` of
    ``encode_image`` of the pair; CLIP ViT-B/32 there). Which CLIP and which resolution is
    ``ext.name`` / ``ext.config``: report it.

    Args:
        ext: a :class:`FeatureExtractor` (e.g. :func:`clip_extractor`).
        edited, target: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``); equal
            batch sizes (image sizes may differ: the extractor resizes).
        reduce: mean (float) or per-pair ``(B,)`` array.

    Returns:
        In ``[-1, 1]``; 1 when ``edited`` equals ``target``.
    """
    n = _batch_len(edited, "edited")
    if _batch_len(target, "target") != n:
        raise ValueError("edited and target must have the same number of images")
    return _reduce(_cosine(ext.image_embed(edited), ext.image_embed(target)), reduce)


def clip_t(ext, edited, captions, reduce: bool = True):
    """CLIP-T (Emu Edit's CLIPout, MagicBrush's CLIP-T): image-caption cosine similarity.

    Definition: ``cos(ext.image_embed(edited)_i, ext.text_embed(captions)_i)`` per image (the
    caption describing the *desired output*), mean over images. Unscaled cosine in ``[-1, 1]``
    (the "CLIPScore" of Hessel et al. is ``2.5 * max(cos, 0)``, and torchmetrics' ``CLIPScore`` is
    ``100 * max(cos, 0)``: not these numbers). Reference: MagicBrush ``eval_clip_t`` (``1 -
    cosine distance`` of ``encode_image`` and ``encode_text`` of the target caption).

    Args:
        ext: an extractor with a text encoder.
        edited: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``).
        captions: one string (used for every image) or ``B`` strings.
        reduce: mean (float) or per-image array.
    """
    n = _batch_len(edited, "edited")
    caps = _captions(captions, n, "captions")
    return _reduce(_cosine(ext.image_embed(edited), ext.text_embed(caps)), reduce)


def clip_dir(ext, source, edited, src_captions, tgt_captions, reduce: bool = True):
    """CLIP directional similarity (Emu Edit's CLIPdir, InstructPix2Pix's directional similarity).

    Definition: with unit-normalised embeddings ``I(.) = normalize(ext.image_embed(.))`` and
    ``T(.) = normalize(ext.text_embed(.))``, per sample
    ``cos(I(edited) - I(source), T(tgt_caption) - T(src_caption))``, mean over samples. Normalising
    before the difference is what InstructPix2Pix's ``ClipSimilarity`` does. A zero difference
    (unchanged image, or identical captions) gives 0 (``torch`` ``cosine_similarity`` with eps),
    not NaN. Swapping the captions (or the images) flips the sign.

    Args:
        ext: an extractor with a text encoder.
        source, edited: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same batch size.
        src_captions, tgt_captions: one string or ``B`` strings each.
        reduce: mean (float) or per-sample array.
    """
    n = _batch_len(source, "source")
    if _batch_len(edited, "edited") != n:
        raise ValueError("source and edited must have the same number of images")
    src_t = F.normalize(ext.text_embed(_captions(src_captions, n, "src_captions")).double(), dim=-1)
    tgt_t = F.normalize(ext.text_embed(_captions(tgt_captions, n, "tgt_captions")).double(), dim=-1)
    src_i = F.normalize(torch.as_tensor(ext.image_embed(source)).double(), dim=-1)
    edt_i = F.normalize(torch.as_tensor(ext.image_embed(edited)).double(), dim=-1)
    return _reduce(_cosine(edt_i - src_i, tgt_t - src_t), reduce)


def dino_sim(ext, a, b, reduce: bool = True):
    """DINO similarity: cosine of the DINO CLS embeddings of two images.

    Definition: ``cos(ext.image_embed(a)_i, ext.image_embed(b)_i)`` per pair, mean over pairs, with
    ``ext`` a DINO extractor (:func:`dino_extractor`: final-layer-normed CLS token). Reference:
    MagicBrush "DINO" (``eval_clip_i(metric='dino')`` with ``dino_vits16``, Resize 256 bicubic,
    CenterCrop 224, ImageNet normalisation), which compares edited and ground-truth images; Emu
    Edit's DINO compares edited and *source* images. Say which.

    Args:
        ext: a :class:`FeatureExtractor`.
        a, b: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same batch size.
        reduce: mean (float) or per-pair array.
    """
    n = _batch_len(a, "a")
    if _batch_len(b, "b") != n:
        raise ValueError("a and b must have the same number of images")
    return _reduce(_cosine(ext.image_embed(a), ext.image_embed(b)), reduce)


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    Definition: ``|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))`` with ``mu`` the
    feature means and ``S`` the **unbiased** covariances (divisor ``N - 1``, as ``numpy.cov`` in
    pytorch-fid / torch-fidelity and torchmetrics). ``Tr((S_a S_b)^(1/2))`` is computed in float64
    without scipy as ``sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2)))`` (that matrix is symmetric PSD and
    similar to ``S_a S_b``; ``S_a^(1/2)`` by ``eigh``, negative round-off eigenvalues clamped to 0).
    The result is clamped at 0 (it is a squared distance). It is "FID" only with Inception-v3
    pool3 features of 299 px images (:func:`fid`); over other features (CLIP, DINO) report it as
    FD_<features>.

    Args:
        feats_a, feats_b: ``(N_a, D)`` and ``(N_b, D)`` arrays or tensors, ``N >= 2`` each.

    Returns:
        The squared Fréchet distance (float, >= 0).
    """
    a = (feats_a.detach() if torch.is_tensor(feats_a) else torch.as_tensor(np.asarray(feats_a))).to(torch.float64)
    b = (feats_b.detach() if torch.is_tensor(feats_b) else torch.as_tensor(np.asarray(feats_b))).to(torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) feature sets with equal D, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("each feature set needs at least 2 samples for a covariance")
    d = a.shape[1]
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = torch.cov(a.T, correction=1).reshape(d, d)
    cov_b = torch.cov(b.T, correction=1).reshape(d, d)
    w, v = torch.linalg.eigh(cov_a)
    sqrt_a = (v * w.clamp(min=0).sqrt()) @ v.T
    m = sqrt_a @ cov_b @ sqrt_a
    m = 0.5 * (m + m.T)
    tr_sqrt = torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum()
    value = ((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2.0 * tr_sqrt
    return max(0.0, float(value))


# ------------------------------------------------------------------------------------------------
# ground-truth metrics (shapes world)


def add_iou_ceiling(source_scene: Scene, edit: Mapping[str, Any], size: int = 64, k: int = 200, seed: int = 0,
                    return_samples: bool = False):
    """An upper bound on the expected region IoU any method can reach on an ``add`` edit without seeing where
    the ground truth put the new object.

    WORLD.md places an added object uniformly in the free space (of the named area, when one is named), so
    its mask ``M`` is random given the image and the instruction. For any region ``R`` chosen from those,
    ``IoU(R, M) <= |R & M| / max(|R|, m)`` with ``m`` the smallest mask, so ``E[IoU] <= mean of the m
    largest values of q``, where ``q(p) = P(p in M)``. ``q`` and ``m`` are estimated from ``k`` placements
    drawn as the world draws them (:func:`regionedit.world.scene.place`; the size class from the instruction,
    else either; masks as the ground truth's: coverage > 0 dilated by 1 px).

    Args:
        source_scene: the scene before the edit; ``edit``: the sample's edit record (``color``, ``shape``,
            ``size`` or None, ``area`` or None).
    Returns:
        the bound in [0, 1] (NaN when no placement fits); with ``return_samples``, also the ``(k', H, W)``
        bool placement masks.
    """
    from ..world.scene import place, sample_radius

    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(k):
        cls = edit.get("size") or ("small" if rng.random() < 0.5 else "large")
        new = place(rng, source_scene.objects, edit["shape"], edit["color"], sample_radius(rng, cls), edit.get("area"))
        if new is None:
            continue
        cov = torch.from_numpy((object_coverage(new, size) > 0).astype(np.float32))[None, None]
        masks.append((F.max_pool2d(cov, 3, 1, 1)[0, 0] > 0).numpy())
    if not masks:
        return (float("nan"), np.zeros((0, size, size), bool)) if return_samples else float("nan")
    stack = np.stack(masks)
    q = stack.mean(0).ravel()
    m = int(stack.sum((1, 2)).min())
    bound = float(np.sort(q)[::-1][:m].mean())
    return (bound, stack) if return_samples else bound


def region_iou(pred_mask, gt_mask, reduce: bool = True):
    """Intersection over union of a predicted edit region and the ground-truth edit mask.

    Definition: ``|pred & gt| / |pred | gt|`` per mask pair; when **both** masks are empty (e.g. an
    absent-referent sample correctly answered with no region) the IoU is defined as 1.0; when only
    one is empty it is 0.0.

    Args:
        pred_mask, gt_mask: ``(H, W)`` or ``(B, H, W)`` bool, same shape (compare at the same
            resolution; world masks are at the image size).
        reduce: mean (float) or per-pair array.
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


def leakage(edited, source, gt_mask, reduce: bool = True):
    """Leakage: how much the edit changed pixels it should not have touched.

    Definition: per image, the mean of ``|edited - source|`` over the pixels **outside** the
    ground-truth edit mask and the 3 channels, on ``[0, 1]`` pixels (uint8 / 255). NaN for an
    image whose mask covers every pixel; the batch mean skips NaN images (NaN if all are).

    Args:
        edited, source: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        gt_mask: ``(H, W)`` (applied to every image) or ``(B, H, W)`` bool, True where the edit
            may change pixels.
        reduce: mean (float) or per-image array.

    Returns:
        In ``[0, 1]``; 0 when nothing outside the mask changed.
    """
    x, y = _pair(edited, source, ("edited", "source"))
    m = _masks(gt_mask, x.shape[0], x.shape[1:3], "gt_mask")
    diff = np.abs(x - y).mean(axis=3)  # (B, H, W), mean over channels
    outside = ~m
    count = outside.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, (diff * outside).sum(axis=(1, 2)) / count, np.nan)
    return _reduce(values, reduce, nan_skip=True)


def preservation(edited, source, gt_mask, reduce: bool = True):
    """Preservation: share of pixels outside the ground-truth edit mask left bit-identical.

    Definition: per image, ``#{outside pixels with all 3 channels equal in edited and source} /
    #{outside pixels}`` (exact equality of the given values: uint8 for images, so "bit-identical").
    NaN for an image whose mask covers every pixel; the batch mean skips NaN images.

    Args:
        edited, source: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same
            shape and dtype.
        gt_mask: ``(H, W)`` or ``(B, H, W)`` bool.
        reduce: mean (float) or per-image array.

    Returns:
        In ``[0, 1]``; 1 when every outside pixel is unchanged.
    """
    x, y = _raw_batch(edited, "edited"), _raw_batch(source, "source")
    if x.shape != y.shape or x.dtype != y.dtype:
        raise ValueError(f"edited {x.shape} {x.dtype} and source {y.shape} {y.dtype} must match in shape and dtype")
    m = _masks(gt_mask, x.shape[0], x.shape[1:3], "gt_mask")
    same = np.all(x == y, axis=3)
    outside = ~m
    count = outside.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, (same & outside).sum(axis=(1, 2)) / count, np.nan)
    return _reduce(values, reduce, nan_skip=True)


# Size classes: small r in [0.09, 0.12], large r in [0.15, 0.20] (WORLD.md); measured radii are
# within about 1% of the truth on rendered scenes, so the midpoint of the gap separates them.
SIZE_CLASS_THRESHOLD = 0.5 * (spec.SIZE_RANGES["small"][1] + spec.SIZE_RANGES["large"][0])
# A background edit matches when mean |edited - rendered target background| (in [0, 1]) outside
# the objects is below this. The smallest change between two world backgrounds is >= 0.075.
BACKGROUND_TOLERANCE = 0.05


def _size_class(r: float) -> str:
    return "small" if r < SIZE_CLASS_THRESHOLD else "large"


def _outside_objects(scene: Scene, hw: tuple[int, int]) -> np.ndarray:
    """Pixels no object of the scene covers at all, minus a 1-px ring (soft generated edges)."""
    inside = np.zeros(hw, dtype=bool)
    for obj in scene.objects:
        inside |= object_coverage(obj, hw) > 0
    grown = inside.copy()
    h, w = hw
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] |= inside[
                max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
            ]
    return ~grown


def _edit_check(
    edited,
    target_scene: Scene,
    category: str,
    source_scene: Scene | None,
    source,
    status: str | None,
    area: str | None,
    size: str | None,
) -> tuple[bool, str]:
    if category not in spec.CATEGORIES:
        raise ValueError(f"unknown category {category!r}; one of {spec.CATEGORIES}")
    img = np.asarray(edited)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"edited must be one (H, W, 3) uint8 image, got {img.shape} {img.dtype}")

    if category == "absent":
        if status is not None:
            return status == "no_edit", f"status {status!r}"
        if source is None:
            raise ValueError("absent: pass status= (the editor's) or source= (to check the image is unchanged)")
        same = np.array_equal(img, np.asarray(source))
        return same, "image unchanged" if same else "image changed"

    if status == "no_edit":
        return False, "no edit made"
    objects = measure_objects(img)

    if category == "remove":
        if source_scene is None:
            raise ValueError("remove: pass source_scene= (to know which object was removed)")
        kept = {(o.color, o.shape) for o in target_scene.objects}
        removed = [o for o in source_scene.objects if (o.color, o.shape) not in kept]
        for o in removed:
            if find_object(img, o.color, o.shape, objects=objects).found:
                return False, f"{o.color} {o.shape} still present"
        m = scene_match(img, target_scene, objects=objects)
        if not m["objects_correct"]:
            return False, "a kept object is missing or wrong"
        if m["extra_objects"]:
            return False, f"{m['extra_objects']} extra object(s)"
        return True, "removed, others intact"

    if category == "add":
        if source_scene is None:
            raise ValueError("add: pass source_scene= (to know which object is new)")
        old = {(o.color, o.shape) for o in source_scene.objects}
        new = [o for o in target_scene.objects if (o.color, o.shape) not in old]
        if len(new) != 1:
            raise ValueError(f"add: expected one new object in target_scene, found {len(new)}")
        m = scene_match(img, source_scene, objects=objects)
        if not m["objects_correct"]:
            return False, "an original object is missing or wrong"
        paired = {e["measured"] for e in m["objects"]}
        extras = [o for i, o in enumerate(objects) if i not in paired]
        if len(extras) != 1:
            return False, f"{len(extras)} new objects (expected 1)"
        got, want = extras[0], new[0]
        if (got.color, got.shape) != (want.color, want.shape):
            return False, f"added a {got.color} {got.shape}, not a {want.color} {want.shape}"
        if area is not None and not spec.in_area(area, got.cx, got.cy):
            return False, f"added outside the {area}"
        if size is not None and _size_class(got.r) != size:
            return False, f"added object is {_size_class(got.r)}, not {size}"
        return True, "added"

    m = scene_match(img, target_scene, objects=objects)
    if not m["objects_correct"]:
        return False, "an object is missing or has the wrong colour/shape"
    if m["extra_objects"]:
        return False, f"{m['extra_objects']} extra object(s)"
    if category == "size":
        for e, gt in zip(m["objects"], target_scene.objects):
            got = _size_class(objects[e["measured"]].r)
            if got != gt.size:
                return False, f"{gt.color} {gt.shape} is {got}, not {gt.size}"
        return True, "sizes correct"
    if category == "background":
        outside = _outside_objects(target_scene, img.shape[:2])
        err = background_l1(img, target_scene.background, outside)
        if not (err < BACKGROUND_TOLERANCE):
            return False, f"background differs (mean abs {err:.3f} >= {BACKGROUND_TOLERANCE})"
        return True, "objects intact, background matches"
    return True, "all objects correct"  # local, color


def edit_success(
    edited,
    target_scene: Scene,
    category: str,
    *,
    source_scene: Scene | None = None,
    source=None,
    status: str | None = None,
    area: str | None = None,
    size: str | None = None,
    return_reason: bool = False,
):
    """Whether an edited shapes-world image carries out the edit (exact ground truth, measured).

    Objects are measured with :func:`regionedit.world.measure.measure_objects` (palette
    colour, template-fitted shape, centre, radius) and paired with the ground truth by
    :func:`~regionedit.world.measure.scene_match`. Per category:

    * ``remove`` (needs ``source_scene``): the removed object (colour + shape) is found nowhere,
      every other object is present with the right colour and shape, and there is **no extra**
      object (``scene_match(target)["all_correct"]``: replacing the object by something else is not
      a removal).
    * ``add`` (needs ``source_scene``): every original object present and correct in place, exactly
      one extra object, of the new colour and shape; in the named ``area`` when given and of the
      named ``size`` class when given. The new object's position is *not* compared with the target
      scene's (any free position is a correct answer to "add a star").
    * ``local``, ``color``: ``scene_match(edited, target_scene)["all_correct"]``: every target
      object present at its place with the right colour and shape, no extra objects.
    * ``size``: as local/color, and every object's measured radius is in its target size class
      (small below / large above :data:`SIZE_CLASS_THRESHOLD`).
    * ``background``: objects as local/color, and ``mean |edited - rendered target background|``
      (``[0, 1]``, 3 channels) over the pixels no target object covers (minus a 1-px ring) below
      :data:`BACKGROUND_TOLERANCE` (0.05).
    * ``absent``: the right answer is no edit: with ``status`` given, success iff
      ``status == "no_edit"``; otherwise iff ``edited`` is identical to ``source``.

    For every other category a ``status == "no_edit"`` is a failure.

    Args:
        edited: ``(H, W, 3)`` uint8, one image (any size; coordinates are normalised).
        target_scene: the ground-truth target scene graph.
        category: one of ``spec.CATEGORIES``.
        source_scene, source: the source scene graph / image (see above).
        status: the editor's status (``"edited"`` / ``"no_edit"``), optional.
        area, size: for ``add``, the area / size class the instruction named (None if none).
        return_reason: also return a short explanation.

    Returns:
        ``bool``, or ``(bool, reason)`` with ``return_reason=True``.
    """
    ok, reason = _edit_check(edited, target_scene, category, source_scene, source, status, area, size)
    return (ok, reason) if return_reason else ok


def edit_success_sample(sample, edited, status: str | None = None, return_reason: bool = False):
    """:func:`edit_success` for a :class:`regionedit.world.EditSample` (its scenes, source image,
    category and, for ``add``, the instruction's area and size word)."""
    edit = sample.edit or {}
    area = edit.get("area") if sample.category == "add" else None
    size = edit.get("size") if sample.category == "add" else None
    return edit_success(
        edited,
        sample.target_scene,
        sample.category,
        source_scene=sample.source_scene,
        source=sample.source,
        status=status,
        area=area,
        size=size,
        return_reason=return_reason,
    )


def absent_accuracy(statuses: Sequence[str], is_absent: Sequence[bool]) -> dict:
    """How well an editor refuses absent-referent instructions, and how rarely it refuses others.

    Definition: ``no_edit_rate_on_absent`` = share of absent-referent samples with status
    ``"no_edit"`` (higher is better); ``false_no_edit_rate`` = share of the other samples with status
    ``"no_edit"`` (lower is better). A rate over zero samples is NaN. Counts are included.

    Args:
        statuses: the editor's status per sample (``"edited"`` / ``"no_edit"``).
        is_absent: per sample, whether its category is ``"absent"``.

    Returns:
        ``{"no_edit_rate_on_absent", "false_no_edit_rate", "n_absent", "n_present"}``.
    """
    st = list(statuses)
    ab = [bool(v) for v in is_absent]
    if len(st) != len(ab):
        raise ValueError(f"{len(st)} statuses for {len(ab)} samples")
    no_edit = np.array([s == "no_edit" for s in st], dtype=bool)
    ab_arr = np.array(ab, dtype=bool)
    n_abs, n_pre = int(ab_arr.sum()), int((~ab_arr).sum())
    return {
        "no_edit_rate_on_absent": float(no_edit[ab_arr].mean()) if n_abs else float("nan"),
        "false_no_edit_rate": float(no_edit[~ab_arr].mean()) if n_pre else float("nan"),
        "n_absent": n_abs,
        "n_present": n_pre,
    }


# ------------------------------------------------------------------------------------------------
# metrics needing external weights

_LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


@functools.lru_cache(maxsize=3)
def _lpips_metric(net: str):
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean", normalize=True).eval()
    except Exception as e:  # missing package, failed download, missing file
        raise MetricUnavailable(
            f"LPIPS ({net}) is unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "It needs torchmetrics with torchvision (`pip install torchmetrics torchvision`), the "
            f"ImageNet-pretrained torchvision {net} backbone weights ({_LPIPS_BACKBONE_FILES[net]} in "
            "$TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints; torchvision "
            "downloads it when there is network) and the LPIPS linear-layer weights (shipped with "
            "torchmetrics)."
        ) from e


def lpips(a, b, net: str = "alex", reduce: bool = True):
    """LPIPS (Zhang et al. 2018) via ``torchmetrics``' ``LearnedPerceptualImagePatchSimilarity``.

    Definition: torchmetrics' LPIPS (v0.1 linear layers) with the ``net`` backbone on images given
    in ``[0, 1]`` (``normalize=True``: scaled to ``[-1, 1]`` inside), at the images' own resolution;
    per pair, mean over pairs. Lower is more similar.

    Args:
        a, b: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        net: ``"alex"`` (the LPIPS paper's default), ``"vgg"`` or ``"squeeze"``.
        reduce: mean (float) or per-pair array.

    Raises:
        MetricUnavailable: torchvision or the backbone weights are missing (the message says which
            file and where to put it).
    """
    if net not in _LPIPS_BACKBONE_FILES:
        raise ValueError(f"net must be one of {tuple(_LPIPS_BACKBONE_FILES)}, got {net!r}")
    x, y = _pair(a, b)
    metric = _lpips_metric(net)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    yt = torch.from_numpy(y).permute(0, 3, 1, 2).float()
    values = []
    with torch.inference_mode():
        for i in range(xt.shape[0]):
            metric.reset()
            values.append(float(metric(xt[i : i + 1], yt[i : i + 1])))
    return _reduce(np.array(values), reduce)


def fid(real, fake, feature: int = 2048, weights_path: str | None = None) -> float:
    """FID (Heusel et al. 2017) via ``torchmetrics``' ``FrechetInceptionDistance``.

    Definition: :func:`frechet_distance` between the Inception-v3 (the TF-FID "2015-12-05"
    weights, torch-fidelity's port) ``feature``-dimensional features of the two image sets; the
    uint8 images are resized to 299x299 inside (torch-fidelity's bilinear). Needs many images
    (thousands for ``feature=2048``) to mean anything; report the counts.

    Args:
        real, fake: ``(B, H, W, 3)`` uint8 batches (float in ``[0, 1]`` is converted to uint8 by
            rounding ``x * 255``).
        feature: 64, 192, 768 or 2048 (pool3, the standard).
        weights_path: a local copy of the Inception weights file, if not in the torch hub cache.

    Raises:
        MetricUnavailable: torch-fidelity or the Inception weights are missing.
    """

    def as_uint8(images, what):
        x = _raw_batch(images, what)
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)

    r, f = as_uint8(real, "real"), as_uint8(fake, "fake")
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        kwargs = {"feature_extractor_weights_path": weights_path} if weights_path is not None else {}
        metric = FrechetInceptionDistance(feature=feature, normalize=False, **kwargs)
    except Exception as e:  # missing package, failed download, missing file
        raise MetricUnavailable(
            f"FID is unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "It needs torch-fidelity (`pip install torch-fidelity`) and its Inception-v3 FID weights "
            "weights-inception-2015-12-05-6726825d.pth (downloaded from the torch-fidelity GitHub "
            "releases into $TORCH_HOME/hub/checkpoints when there is network, or pass "
            "weights_path=<local file>). Without them, frechet_distance() over another named "
            "extractor's features (e.g. FD_DINO) is available but is not FID."
        ) from e
    with torch.inference_mode():
        metric.update(r, real=True)
        metric.update(f, real=False)
        return float(metric.compute())
