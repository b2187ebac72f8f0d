"""SAM 3 (promptable concept segmentation) as a zero-shot localizer: a text prompt -> instance masks + scores from
one model, no separate detector.

    loc = Sam3Localizer.from_pretrained("facebook/sam3")
    prob, presence = loc(image, "cat", size=None)

The protocol is that of :mod:`regionedit.localize.zero_shot` (``image`` ``(H, W, 3)`` uint8 RGB, ``text`` a
non-empty noun phrase, ``size = (h, w)`` default the image's; returns ``(prob (h, w) float32 in [0, 1],
presence float in [0, 1])``).

transformers' :class:`~transformers.Sam3Model` runs on CPU without torchvision for text prompts (torchvision is
only used by its box-prompt geometry encoder, which is not called here), but its ``Sam3ImageProcessor`` imports
torchvision at module level, and the processor's ``post_process_instance_segmentation`` lives in that class.
So the image preprocessing, the tokenisation and the post-processing are done here, following those methods:

* image: resized (bilinear, antialiased, no crop, no padding, aspect ratio not kept) to the image processor's
  ``size`` (read from the folder's ``processor_config.json`` / ``preprocessor_config.json``; default the model's
  ``image_size``, 1008 for ``facebook/sam3``), scaled to [0, 1] and normalised with its mean / std (default 0.5);
* text: the folder's tokenizer, padded to ``max_length`` 32 (the model's text length) as ``Sam3Processor`` does;
* instance scores: ``sigmoid(pred_logits) * sigmoid(presence_logits)`` (the model's per-query score gated by its
  image-level presence head), as ``post_process_instance_segmentation``;
* instance masks: ``sigmoid(pred_masks)``, which cover the whole resized image (so the whole original image),
  bilinearly resized (``align_corners=False``) to ``(H, W)``, as ``post_process_instance_segmentation`` does
  before it binarises (the map here stays soft).

The map is the pixelwise max of the kept instances' mask probabilities at the image's resolution, bilinearly
resized to ``size``; kept: every instance scoring >= ``score_threshold`` (default 0.5, the operating point of
the SAM 3 model card and of the reference implementation), always at least the best one, at most
``max_instances`` (best first). presence: the best instance score.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .pretrained import check_image, check_source, check_text, load_pretrained, resize_prob
from .zero_shot import _Thresholds

#: the text length the SAM 3 processor pads / truncates to (the text encoder's position count)
TEXT_LENGTH = 32


class Sam3Localizer(_Thresholds):
    """SAM 3 (:class:`~transformers.Sam3Model`, e.g. ``facebook/sam3``): see the module docstring for the
    pre- and post-processing. ``calibrated("presence_threshold")`` is ``score_threshold``."""

    kind = "sam3"

    def __init__(self, model, tokenizer, image_size: tuple[int, int], mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                 score_threshold: float = 0.5, max_instances: int = 16, thresholds: dict[str, float] | None = None):
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if max_instances < 1:
            raise ValueError(f"max_instances must be >= 1, got {max_instances}")
        self.model, self.tokenizer = model, tokenizer
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.score_threshold, self.max_instances = float(score_threshold), int(max_instances)
        text_config = getattr(getattr(model, "config", None), "text_config", None)
        self.text_length = int(min(TEXT_LENGTH, getattr(text_config, "max_position_embeddings", TEXT_LENGTH)))
        self.thresholds = {"presence_threshold": self.score_threshold, **(thresholds or {})}

    @classmethod
    def from_pretrained(cls, id_or_folder: str, torch_dtype=None, device="cpu", local_files_only: bool = True,
                        **options) -> Sam3Localizer:
        """Load a SAM 3 id (e.g. ``facebook/sam3``, whose config is a ``sam3_video`` one: its detector is loaded)
        or folder (``config.json`` model_type ``sam3`` or ``sam3_video``, the weights, a tokenizer and the image
        processor settings) in ``torch_dtype`` (None: the checkpoint's own) on ``device``; ``options`` go to the
        constructor (``score_threshold``, ``max_instances``, ``thresholds``)."""
        from transformers import AutoTokenizer, Sam3Model

        from .detectors import _preprocessor_config
        from .pretrained import load_processor

        check_source("sam3", id_or_folder, local_files_only)
        model = load_pretrained(Sam3Model, id_or_folder, "SAM 3 model", torch_dtype, device, local_files_only)
        tokenizer = load_processor(AutoTokenizer, id_or_folder, "SAM 3 model", local_files_only)
        pre = _preprocessor_config(id_or_folder, local_files_only)
        side = model.config.vision_config.backbone_config.image_size
        side = side if isinstance(side, (list, tuple)) else (side, side)
        size = pre.get("size") or {"height": side[0], "width": side[1]}
        if isinstance(size, int):
            size = {"height": size, "width": size}
        return cls(model, tokenizer, (size["height"], size["width"]), pre.get("image_mean", (0.5, 0.5, 0.5)),
                   pre.get("image_std", (0.5, 0.5, 0.5)), **options)

    def inputs(self, image: np.ndarray, text: str) -> dict[str, torch.Tensor]:
        """The model's inputs (``pixel_values`` in its dtype on its device, ``input_ids``, ``attention_mask``)."""
        image, text = check_image(image), check_text(text)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
        x = ((x / 255.0).clamp(0, 1) - self.mean) / self.std
        tok = self.tokenizer([text], padding="max_length", max_length=self.text_length, truncation=True,
                             return_tensors="pt")
        dev = self.model.device
        return {"pixel_values": x.to(dev, self.model.dtype), "input_ids": tok["input_ids"].to(dev),
                "attention_mask": tok["attention_mask"].to(dev)}

    @torch.no_grad()
    def instances(self, image: np.ndarray, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every query's ``(mask probabilities (Q, h', w') float32 over the whole image at the model's mask
        resolution, scores (Q,) float32 in [0, 1])``, unsorted and unthresholded."""
        out = self.model(**self.inputs(image, text))
        return self.post_process(out)

    @staticmethod
    def post_process(out) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigmoid(pred_masks[0]) (Q, h', w'), sigmoid(pred_logits[0]) * sigmoid(presence_logits[0]) (Q,))`` of a
        :class:`~transformers.models.sam3.modeling_sam3.Sam3ImageSegmentationOutput`, float32 on the CPU."""
        scores = out.pred_logits[0].float().sigmoid()
        if getattr(out, "presence_logits", None) is not None:
            scores = scores * out.presence_logits[0].float().sigmoid().reshape(())
        return out.pred_masks[0].float().sigmoid().cpu(), scores.cpu()

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """Indices of the instances kept (see the module docstring), best score first; at least one when there
        are any."""
        if scores.numel() == 0:
            return torch.zeros(0, dtype=torch.long)
        order = torch.argsort(scores, descending=True, stable=True)
        n = max(1, int((scores >= self.score_threshold).sum()))
        return order[: min(n, self.max_instances)]

    def soft_map(self, masks: torch.Tensor, scores: torch.Tensor,
                 image_hw: tuple[int, int]) -> tuple[torch.Tensor, float]:
        """``(map (H, W) float32, presence)``: the pixelwise max of the kept ``masks`` (``(Q, h', w')``
        probabilities over the whole image) bilinearly resized to ``image_hw``, and the best score."""
        keep = self.select(scores)
        if keep.numel() == 0:
            return torch.zeros(tuple(image_hw)), 0.0
        out = None
        for chunk in keep.split(4):  # a few full-resolution masks at a time
            up = F.interpolate(masks[chunk][:, None], size=tuple(image_hw), mode="bilinear", align_corners=False)
            m = up[:, 0].amax(0)
            out = m if out is None else torch.maximum(out, m)
        return out, float(scores[keep[0]].clamp(0, 1))

    def __call__(self, image: np.ndarray, text: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """``(prob (h, w) float32 in [0, 1], presence float in [0, 1])`` of ``text`` on an ``(H, W, 3)`` uint8 image,
        ``size = (h, w)`` (default ``(H, W)``)."""
        image = check_image(image)
        masks, scores = self.instances(image, text)
        prob, presence = self.soft_map(masks, scores, image.shape[:2])
        return resize_prob(prob, size or image.shape[:2]), presence
