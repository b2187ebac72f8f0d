"""Zero-shot localizers over pretrained open-vocabulary models: drop-in ``localizer`` callables for the Editor.

    loc = CLIPSegLocalizer.from_pretrained("CIDAS/clipseg-rd64-refined")
    loc = BoxSamLocalizer.from_pretrained("google/owlv2-base-patch16-ensemble", sam="facebook/sam-vit-base")
    prob, presence = loc(image, "the cat", size=None)

Protocol (as :class:`regionedit.localize.learned.LearnedLocalizer`): ``image`` ``(H, W, 3)`` uint8 RGB, any
size (the processors resize); ``text`` a non-empty string (ValueError otherwise); ``size = (h, w)`` the output
size (default the image's ``(H, W)``). Returns ``(prob, presence)``: ``prob`` ``(h, w)`` float32 in [0, 1]
covering the whole image (row 0 at the top), ``presence`` a float in [0, 1], the confidence that the referent is
in the image. Models run in the dtype / on the device given to ``from_pretrained``; outputs are float32 numpy.

:meth:`calibrated` answers the Editor's threshold questions (``threshold``, ``presence_threshold``) from the
``thresholds`` the localizer was built with; the defaults are the models' customary operating points, not
calibrated on regionedit's benchmarks.
"""

from __future__ import annotations

import numpy as np
import torch

from .pretrained import (box_map, check_image, check_source, check_text, load_pretrained, load_processor, model_inputs, nms,
                         resize_prob, source_kind)


class _Thresholds:
    reads = "referent"  # the Editor gives zero-shot localizers the referent's noun phrase ("cat"), not the instruction
    thresholds: dict[str, float]

    def calibrated(self, name: str, learned_only: bool = False) -> float | None:
        """The localizer's operating point ``name`` (``threshold``: region probability; ``presence_threshold``:
        presence score) or None (the Editor's default); ``learned_only`` is ignored (nothing here is learned)."""
        v = self.thresholds.get(name)
        return None if v is None else float(v)


class CLIPSegLocalizer(_Thresholds):
    """CLIPSeg (:class:`~transformers.CLIPSegForImageSegmentation` + :class:`~transformers.CLIPSegProcessor`):
    the decoder's logit map for the text -> sigmoid -> bilinearly resized to ``size``. The processor resizes
    the whole image (no crop, aspect ratio not kept) to its square input, so the map covers the whole image.

    presence: the ``presence_quantile`` quantile of the probability map at the model's resolution (default 1.0:
    its maximum; e.g. 0.99 ignores a few hot pixels)."""

    def __init__(self, model, processor, presence_quantile: float = 1.0, thresholds: dict[str, float] | None = None):
        ip = processor.image_processor
        if getattr(ip, "do_center_crop", False):
            raise ValueError("the CLIPSeg processor center-crops, so its map would not cover the whole image: save "
                             "it with do_center_crop=False (the real CLIPSeg processors only resize)")
        if not 0.0 <= presence_quantile <= 1.0:
            raise ValueError(f"presence_quantile must be in [0, 1], got {presence_quantile}")
        self.model, self.processor, self.presence_quantile = model, processor, float(presence_quantile)
        self.thresholds = dict(thresholds or {})

    @classmethod
    def from_pretrained(cls, id_or_folder: str, torch_dtype=None, device="cpu", local_files_only: bool = True,
                        **options) -> CLIPSegLocalizer:
        """Load a CLIPSeg id (e.g. ``CIDAS/clipseg-rd64-refined``) or folder in ``torch_dtype`` (None: the
        checkpoint's own) on ``device``; ``options`` go to the constructor."""
        from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

        check_source("clipseg", id_or_folder, local_files_only)
        model = load_pretrained(CLIPSegForImageSegmentation, id_or_folder, "CLIPSeg model", torch_dtype, device,
                                local_files_only)
        return cls(model, load_processor(CLIPSegProcessor, id_or_folder, "CLIPSeg model", local_files_only), **options)

    @torch.no_grad()
    def logits(self, image: np.ndarray, text: str) -> torch.Tensor:
        """The decoder's ``(S, S)`` float32 logit map of ``text`` (S: the processor's input side), over the
        whole image."""
        image, text = check_image(image), check_text(text)
        inputs = self.processor(text=[text], images=[image], return_tensors="pt", padding=True, truncation=True)
        out = self.model(**model_inputs(inputs, self.model, ("input_ids", "attention_mask", "pixel_values")))
        return out.logits.reshape(-1, *out.logits.shape[-2:])[0].float().cpu()

    def __call__(self, image: np.ndarray, text: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """``(prob (h, w) float32 in [0, 1], presence float in [0, 1])`` of ``text`` on an ``(H, W, 3)`` uint8 image,
        ``size = (h, w)`` (default ``(H, W)``)."""
        prob = self.logits(image, text).sigmoid()
        presence = float(torch.quantile(prob.flatten(), self.presence_quantile))
        return resize_prob(prob, size or image.shape[:2]), presence


class BoxSamLocalizer(_Thresholds):
    """A box detector (:class:`~regionedit.localize.detectors.Owlv2Detector` or
    :class:`~regionedit.localize.detectors.GroundingDinoDetector`) and an optional box-prompted mask model
    (:class:`~regionedit.localize.detectors.SamSegmenter` / ``Sam2Segmenter``).

    Boxes: every candidate scoring >= ``box_threshold`` (default: the detector's customary one), the best box
    always kept, then greedy NMS at ``nms_iou`` and at most ``max_boxes``, best first. Map: with a mask model, the
    pixelwise max of the kept boxes' mask probabilities at the image's resolution, bilinearly resized to ``size``;
    without one, the union of the kept boxes' interiors (1 inside, 0 outside) rasterised at ``size``.
    presence: the best box's score. ``calibrated("presence_threshold")`` is ``box_threshold`` (the detector's
    own gate; OWLv2's scores are far below the Editor's default 0.5)."""

    def __init__(self, detector, segmenter=None, box_threshold: float | None = None, nms_iou: float = 0.5,
                 max_boxes: int = 8, thresholds: dict[str, float] | None = None):
        if max_boxes < 1:
            raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
        self.detector, self.segmenter = detector, segmenter
        default = getattr(detector, "default_box_threshold", 0.3)
        self.box_threshold = float(default if box_threshold is None else box_threshold)
        self.nms_iou, self.max_boxes = float(nms_iou), int(max_boxes)
        self.thresholds = {"presence_threshold": self.box_threshold, **(thresholds or {})}

    @classmethod
    def from_pretrained(cls, detector: str, sam: str | None = None, detector_kind: str | None = None,
                        sam_kind: str = "sam", torch_dtype=None, device="cpu", local_files_only: bool = True,
                        **options) -> BoxSamLocalizer:
        """Load a detector id / folder (``detector_kind`` ``"owlv2"`` or ``"grounding-dino"``; None: read from its
        config's ``model_type``) and, when ``sam`` is given, a mask model (``sam_kind`` ``"sam"`` or ``"sam2"``),
        both in ``torch_dtype`` on ``device``; ``options`` go to the constructor."""
        from .backends import DETECTORS, KIND_ALIASES, SEGMENTERS

        kind = KIND_ALIASES.get(str(detector_kind).lower(), detector_kind) if detector_kind else source_kind(
            detector, local_files_only)
        sam_kind = KIND_ALIASES.get(str(sam_kind).lower(), sam_kind)
        if kind not in DETECTORS:
            raise ValueError(f"{detector!r} is a {kind!r} model, not a box detector: give one of {', '.join(DETECTORS)}")
        if sam is not None and sam_kind not in SEGMENTERS:
            raise ValueError(f"unknown mask model kind {sam_kind!r}: give one of {', '.join(SEGMENTERS)}")
        det = DETECTORS[kind].from_pretrained(detector, torch_dtype, device, local_files_only)
        seg = None if sam is None else SEGMENTERS[sam_kind].from_pretrained(sam, torch_dtype, device, local_files_only)
        return cls(det, seg, **options)

    def select(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Indices of the boxes kept (see the class), best score first; at least one when there are candidates."""
        if len(scores) == 0:
            return np.zeros(0, np.int64)
        idx = np.flatnonzero(scores >= self.box_threshold)
        if idx.size == 0:
            idx = np.asarray([int(np.argmax(scores))])
        return idx[nms(boxes[idx], scores[idx], self.nms_iou)][: self.max_boxes]

    def boxes(self, image: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The kept ``(boxes (K, 4) float32 xyxy pixels, scores (K,) float32)`` of ``text``, best first."""
        boxes, scores = self.detector(check_image(image), check_text(text))
        keep = self.select(boxes, scores)
        return boxes[keep], scores[keep]

    def __call__(self, image: np.ndarray, text: str, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """``(prob (h, w) float32 in [0, 1], presence float in [0, 1])`` of ``text`` on an ``(H, W, 3)`` uint8 image,
        ``size = (h, w)`` (default ``(H, W)``)."""
        image = check_image(image)
        size = tuple(size or image.shape[:2])
        boxes, scores = self.boxes(image, text)
        if len(scores) == 0:  # a detector without candidates
            return np.zeros(size, np.float32), 0.0
        presence = float(np.clip(scores[0], 0.0, 1.0))
        if self.segmenter is None:
            return box_map(boxes, image.shape[:2], size), presence
        masks = self.segmenter(image, boxes)  # (K, H, W)
        return resize_prob(masks.max(0).values, size), presence
