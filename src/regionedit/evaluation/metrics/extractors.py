"""Named feature extractors for the feature metrics: :class:`FeatureExtractor` and its builders
:func:`clip_extractor` (a ``transformers`` CLIP) and :func:`dino_extractor` (a DINO ViT / Dinov2),
each with every preprocessing choice recorded in ``config``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .base import MetricUnavailable, to_unit_float

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
