"""The parts of :class:`regionedit.localize.zero_shot.BoxSamLocalizer`: open-vocabulary box detectors (OWLv2,
Grounding DINO) and box-prompted mask models (SAM, SAM 2).

A detector maps ``(image (H, W, 3) uint8 RGB, text)`` to every candidate box of the model with its score:
``(boxes (N, 4) float32 xyxy in pixels of the image, clipped to it; scores (N,) float32 in [0, 1])``, unsorted
and unthresholded (:class:`BoxSamLocalizer` selects). A segmenter maps ``(image, boxes (N, 4) xyxy pixels)`` to
``(N, H, W)`` float32 mask probabilities in [0, 1] at the image's resolution, one per box.

All of them run the model in the dtype / on the device it was loaded with and return float32 CPU outputs; the
processors resize, so any image size works.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .pretrained import check_image, check_source, check_text, load_pretrained, load_processor, model_inputs


def _xyxy(cxcywh: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = cxcywh.float().unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _clip_boxes(boxes: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    H, W = hw
    scale = torch.tensor([W, H, W, H], dtype=torch.float32)
    return torch.minimum(boxes.clamp(min=0), scale).numpy().astype(np.float32)


class Owlv2Detector:
    """OWLv2 (:class:`~transformers.Owlv2ForObjectDetection` + :class:`~transformers.Owlv2Processor`, e.g.
    ``google/owlv2-base-patch16-ensemble``): one box per image patch, scored by the sigmoid of its logit for the
    text. The processor pads the image bottom / right to a square of side ``max(H, W)`` before resizing, so the
    model's normalised ``(cx, cy, w, h)`` boxes scale by ``max(H, W)`` on both axes; boxes centred in the padding
    are dropped."""

    kind = "owlv2"
    #: OWLv2's scores are low (true objects typically 0.1-0.5); the HF examples threshold at 0.1
    default_box_threshold = 0.1

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    @classmethod
    def from_pretrained(cls, source: str, torch_dtype=None, device="cpu", local_files_only: bool = True):
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        check_source("owlv2", source, local_files_only)
        return cls(load_pretrained(Owlv2ForObjectDetection, source, "OWLv2 detector", torch_dtype, device, local_files_only),
                   load_processor(Owlv2Processor, source, "OWLv2 detector", local_files_only))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (P, 4) float32 xyxy pixels, scores (P,) float32 in [0, 1])``, P <= the model's patch count."""
        image, text = check_image(image), check_text(text)
        inputs = self.processor(text=[[text]], images=[image], return_tensors="pt", truncation=True)
        out = self.model(**model_inputs(inputs, self.model, ("input_ids", "attention_mask", "pixel_values")))
        scores = out.logits[0].float().max(-1).values.sigmoid().cpu()  # (P,)
        H, W = image.shape[:2]
        boxes = _xyxy(out.pred_boxes[0]).cpu() * float(max(H, W))
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centre[:, 0] < W) & (centre[:, 1] < H)  # not a box of the padding
        return _clip_boxes(boxes[inside], (H, W)), scores[inside].numpy().astype(np.float32)


def grounding_dino_text(text: str) -> str:
    """Grounding DINO's query convention: lower case, ending with a period (``"The cat"`` -> ``"the cat."``)."""
    text = check_text(text).lower()
    return text if text.endswith(".") else text + "."


class GroundingDinoDetector:
    """Grounding DINO (:class:`~transformers.GroundingDinoForObjectDetection` + its processor, e.g.
    ``IDEA-Research/grounding-dino-tiny``): one box per query, scored by the max over the text tokens of the
    sigmoid logits (as ``post_process_grounded_object_detection``); the text is put in the model's convention
    (:func:`grounding_dino_text`). The boxes are normalised to the (unpadded) image."""

    kind = "grounding-dino"
    #: the model card's box threshold is 0.35-0.4; 0.3 keeps a little more
    default_box_threshold = 0.3

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    @classmethod
    def from_pretrained(cls, source: str, torch_dtype=None, device="cpu", local_files_only: bool = True):
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        check_source("grounding-dino", source, local_files_only)
        what = "Grounding DINO detector"
        return cls(load_pretrained(GroundingDinoForObjectDetection, source, what, torch_dtype, device, local_files_only),
                   load_processor(AutoProcessor, source, what, local_files_only))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (Q, 4) float32 xyxy pixels, scores (Q,) float32 in [0, 1])``, Q = the model's query count."""
        image = check_image(image)
        inputs = self.processor(images=image, text=grounding_dino_text(text), return_tensors="pt", truncation=True)
        keys = ("pixel_values", "pixel_mask", "input_ids", "token_type_ids", "attention_mask")
        out = self.model(**model_inputs(inputs, self.model, tuple(k for k in keys if k in inputs)))
        scores = out.logits[0].float().sigmoid().max(-1).values  # (Q,); padded text positions are -inf -> 0
        H, W = image.shape[:2]
        boxes = _xyxy(out.pred_boxes[0]) * torch.tensor([W, H, W, H], dtype=torch.float32, device=out.pred_boxes.device)
        return _clip_boxes(boxes.cpu(), (H, W)), scores.cpu().numpy().astype(np.float32)


class SamSegmenter:
    """SAM (:class:`~transformers.SamModel` + :class:`~transformers.SamProcessor`, e.g. ``facebook/sam-vit-base``)
    prompted with boxes: one mask per box (``multimask_output=False``). The processor resizes the longest side to
    its size and pads bottom / right; ``post_process_masks`` undoes both, so the mask logits land in the image's
    frame; probability = sigmoid(logit)."""

    kind = "sam"

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    @classmethod
    def from_pretrained(cls, source: str, torch_dtype=None, device="cpu", local_files_only: bool = True):
        from transformers import SamModel, SamProcessor

        check_source("sam", source, local_files_only)
        return cls(load_pretrained(SamModel, source, "SAM mask model", torch_dtype, device, local_files_only),
                   load_processor(SamProcessor, source, "SAM mask model", local_files_only))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """``(N, H, W)`` float32 mask probabilities in [0, 1] for the ``(N, 4)`` xyxy pixel boxes."""
        image = check_image(image)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        inputs = self.processor(images=image, input_boxes=[boxes.tolist()], return_tensors="pt")
        out = self.model(**model_inputs(inputs, self.model, ("pixel_values", "input_boxes")), multimask_output=False)
        logits = self.processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False)[0]
        return logits[:, 0].sigmoid()  # (N, H, W)


class Sam2Segmenter:
    """SAM 2 (:class:`~transformers.Sam2Model`, e.g. ``facebook/sam2.1-hiera-tiny``) prompted with boxes, one
    mask per box. The preprocessing of transformers' ``Sam2ImageProcessor`` is done here (that class needs
    torchvision): the image is resized (bilinear, antialiased, no padding) to the processor's ``size`` (read from
    the folder's ``preprocessor_config.json`` / ``processor_config.json``; default the prompt encoder's image
    size), scaled to [0, 1] and normalised with its mean / std; the boxes are scaled by the same factors. The
    low-resolution masks cover the whole resized image, so they are bilinearly resized back to ``(H, W)``."""

    kind = "sam2"

    def __init__(self, model, size: tuple[int, int], mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        self.model, self.size = model, (int(size[0]), int(size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def from_pretrained(cls, source: str, torch_dtype=None, device="cpu", local_files_only: bool = True):
        from transformers import Sam2Model

        check_source("sam2", source, local_files_only)
        model = load_pretrained(Sam2Model, source, "SAM 2 mask model", torch_dtype, device, local_files_only)
        pre = _preprocessor_config(source, local_files_only)
        side = model.config.prompt_encoder_config.image_size
        size = pre.get("size") or {"height": side, "width": side}
        if isinstance(size, int):
            size = {"height": size, "width": size}
        return cls(model, (size["height"], size["width"]), pre.get("image_mean", (0.485, 0.456, 0.406)),
                   pre.get("image_std", (0.229, 0.224, 0.225)))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """``(N, H, W)`` float32 mask probabilities in [0, 1] for the ``(N, 4)`` xyxy pixel boxes."""
        image = check_image(image)
        H, W = image.shape[:2]
        h, w = self.size
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        x = ((x / 255.0).clamp(0, 1) - self.mean) / self.std
        b = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4)) * torch.tensor([w / W, h / H, w / W, h / H])
        dev, dt = self.model.device, self.model.dtype
        out = self.model(pixel_values=x.to(dev, dt), input_boxes=b[None].to(dev, dt), multimask_output=False)
        logits = out.pred_masks[0, :, 0].float().cpu()  # (N, h', w') over the whole resized image
        return F.interpolate(logits[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0].sigmoid()


def _preprocessor_config(source: str, local_files_only: bool) -> dict:
    """The image-processor settings of a SAM 2 folder or cached id (``{}`` when it has none)."""
    folder = Path(source).expanduser()
    names = ("preprocessor_config.json", "processor_config.json")
    for name in names:
        path = folder / name if folder.is_dir() else None
        if path is None:
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(source, name, local_files_only=local_files_only))
            except Exception:  # noqa: BLE001 - the file is optional
                continue
        if path.is_file():
            data = json.loads(path.read_text())
            return data.get("image_processor", data)
    return {}
