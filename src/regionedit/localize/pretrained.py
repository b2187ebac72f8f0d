"""Shared plumbing of the zero-shot localizer backends: loading a pretrained transformers model / processor from
a hub id or a folder with clear errors, moving inputs to the model's device and dtype, input checks, and the
map helpers (resizing a probability map to the caller's size, rasterising boxes, non-maximum suppression).

Frames: images are ``(H, W, 3)`` uint8 RGB, row 0 at the top; boxes are ``(N, 4)`` float32
``(x0, y0, x1, y1)`` in pixels of that image (x to the right, y down, pixel ``(i, j)`` covering
``[j, j + 1) x [i, i + 1)``); maps are ``(h, w)`` float32 in [0, 1] covering the whole image.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class LocalizerSpecError(ValueError):
    """A localizer spec, folder or model that cannot be used; the message names the problem and the fix.
    Subclass of ``ValueError``."""


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def as_dtype(torch_dtype) -> torch.dtype | None:
    """``torch_dtype`` as a :class:`torch.dtype`: None (the checkpoint's own dtype), a floating torch dtype, or
    one of the names ``float32 / fp32 / bfloat16 / bf16 / float16 / fp16 / half``."""
    if torch_dtype is None or isinstance(torch_dtype, torch.dtype) and torch_dtype.is_floating_point:
        return torch_dtype
    if isinstance(torch_dtype, str) and torch_dtype.lower() in _DTYPES:
        return _DTYPES[torch_dtype.lower()]
    raise LocalizerSpecError(f"unknown torch_dtype {torch_dtype!r}: give None (the checkpoint's own), a floating "
                             f"torch dtype, or one of {', '.join(sorted(_DTYPES))}")


def looks_like_hub_id(source: str) -> bool:
    """True when ``source`` has the form of a Hugging Face id (``name`` or ``org/name``), not of a path."""
    return bool(_HUB_ID.fullmatch(source)) and ".." not in source


def folder_model_type(folder: str | Path) -> str | None:
    """The ``model_type`` of a model folder's ``config.json`` (None when the file is missing or has none)."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _load_hint(source: str, what: str, local_files_only: bool) -> str:
    if Path(source).expanduser().is_dir():
        return (f"the folder {source!r} is not a complete {what} folder (it needs config.json, the weights and the "
                f"processor files that save_pretrained writes)")
    if local_files_only:
        return (f"there is no folder {source!r}, and no Hugging Face model of that id in the local cache "
                f"(local_files_only=True): download it first (`hf download {source}`), pass "
                f"local_files_only=False, or give a folder")
    return f"there is no folder {source!r}, and the Hugging Face hub has no model of that id (or is unreachable)"


def load_pretrained(cls, source: str, what: str, torch_dtype=None, device: str | torch.device = "cpu",
                    local_files_only: bool = True):
    """``cls.from_pretrained(source)`` in ``torch_dtype`` (None: the checkpoint's own) on ``device``, in eval mode
    with gradients off; a :class:`LocalizerSpecError` naming ``what`` and the fix when it cannot be loaded."""
    dtype = as_dtype(torch_dtype)
    kwargs = {"local_files_only": local_files_only}
    if dtype is not None:
        kwargs["dtype"] = dtype
    src = str(Path(source).expanduser()) if Path(source).expanduser().exists() else source
    try:
        model = cls.from_pretrained(src, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise LocalizerSpecError(f"could not load the {what} from {source!r}: {_load_hint(source, what, local_files_only)} "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    return model.to(device).eval().requires_grad_(False)


def load_processor(cls, source: str, what: str, local_files_only: bool = True):
    """``cls.from_pretrained(source)`` for a processor, with the errors of :func:`load_pretrained`."""
    src = str(Path(source).expanduser()) if Path(source).expanduser().exists() else source
    try:
        return cls.from_pretrained(src, local_files_only=local_files_only)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LocalizerSpecError(f"could not load the {what}'s processor from {source!r}: "
                                 f"{_load_hint(source, what, local_files_only)} "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e


def model_inputs(inputs, model, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The ``keys`` of a processor's output as tensors on the model's device, floating ones in the model's dtype
    (token ids and masks keep their integer dtype)."""
    out = {}
    for k in keys:
        v = inputs[k]
        v = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
        out[k] = v.to(model.device, model.dtype) if v.is_floating_point() else v.to(model.device)
    return out


def check_image(image) -> np.ndarray:
    """``image`` as an ``(H, W, 3)`` uint8 RGB array, or a ValueError naming what is wrong with it."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = (f"shape {image.shape} dtype {image.dtype}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f"a localizer reads an (H, W, 3) uint8 RGB numpy image, got {desc}: convert it first "
                         f"(e.g. regionedit.io.load_image, or np.asarray(pil_image.convert('RGB')))")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"the image is {image.shape[0]}x{image.shape[1]} pixels: a localizer needs at least 2x2")
    return image


def check_text(text) -> str:
    """``text`` stripped, or a ValueError when it is not a string or is empty."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a localizer needs a non-empty text naming the region (e.g. 'the cat'), got {text!r}")
    return text.strip()


def resize_prob(prob: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A probability map ``(h', w')`` (any float dtype) covering the whole image, bilinearly resized
    (``align_corners=False``: pixel centres map to pixel centres) to ``size = (h, w)``: ``(h, w)`` float32 in [0, 1]."""
    prob = prob.detach().float().cpu()
    if tuple(prob.shape[-2:]) != tuple(size):
        prob = F.interpolate(prob[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    return prob.clamp_(0, 1).numpy().astype(np.float32)


def box_map(boxes: np.ndarray, image_hw: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The union of box interiors as a ``(h, w)`` float32 map in {0, 1} at ``size``: a pixel is 1 when its centre,
    mapped to the image frame (``image_hw = (H, W)``), lies inside one of the ``(N, 4)`` xyxy boxes (pixels). A box
    thinner than a pixel at ``size`` still marks the row / column holding its centre (a kept box is never lost)."""
    H, W = image_hw
    h, w = size
    ys = (np.arange(h, dtype=np.float64) + 0.5) * (H / h)
    xs = (np.arange(w, dtype=np.float64) + 0.5) * (W / w)

    def span(centres, lo, hi, n, scale):
        inside = (centres >= lo) & (centres <= hi)
        if not inside.any():
            inside[int(np.clip((lo + hi) / 2 * scale, 0, n - 1))] = True
        return inside

    out = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
        out |= span(ys, y0, y1, h, h / H)[:, None] & span(xs, x0, x1, w, w / W)[None, :]
    return out.astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N, M)`` of xyxy boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: the indices of the boxes kept, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    for i in order:
        if not keep or box_iou(boxes[i : i + 1], boxes[keep]).max() <= iou_threshold:
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


# -- sources: which kind of model a folder / id holds ---------------------------------------------------------
#: config.json model_type -> kind
MODEL_TYPES = {"clipseg": "clipseg", "owlv2": "owlv2", "grounding-dino": "grounding-dino", "sam": "sam", "sam2": "sam2",
               "sam3": "sam3", "sam3_video": "sam3"}  # facebook/sam3's config is a sam3_video one (its detector is used)

#: model types of the SAM 3 family that are no localizer backend, and why
UNSUPPORTED_SAM3 = {"sam3_tracker": "a point / box-prompted SAM 3 tracker, not text-prompted",
                    "sam3_tracker_video": "a point / box-prompted SAM 3 video tracker, not text-prompted",
                    "sam3_lite_text": "SAM 3 with a lightweight text encoder, not supported yet"}

SPEC_FORMS = """accepted localizer specs:
  learned                                     the Editor's learned region predictor
  clipseg:ID_OR_FOLDER                        CLIPSeg masks (e.g. clipseg:CIDAS/clipseg-rd64-refined)
  owlv2:ID_OR_FOLDER                          OWLv2 boxes, their interiors as the region
  grounding-dino:ID_OR_FOLDER (or gdino:)     Grounding DINO boxes
  owlv2:ID_OR_FOLDER+sam:ID_OR_FOLDER         boxes refined to masks by SAM (sam2:ID_OR_FOLDER for SAM 2)
  gdino:ID_OR_FOLDER+sam:ID_OR_FOLDER
  sam3:ID_OR_FOLDER                           SAM 3 instance masks from the text, alone (e.g. sam3:facebook/sam3)
  FOLDER or FOLDER+FOLDER                     bare folders, their kind read from config.json model_type"""


def spec_error(message: str) -> LocalizerSpecError:
    """A :class:`LocalizerSpecError` of ``message`` followed by the accepted spec forms."""
    return LocalizerSpecError(f"{message}\n{SPEC_FORMS}")


def source_kind(source: str, local_files_only: bool = True) -> str:
    """The kind of a model folder (or cached hub id) from its ``config.json`` ``model_type``."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        model_type = folder_model_type(folder)
        if model_type is None:
            raise spec_error(f"the folder {source!r} has no config.json with a model_type, so its kind is unknown: "
                              f"is it a model folder (save_pretrained writes config.json)?")
    elif folder.exists():
        raise spec_error(f"{source!r} is a file, not a model folder or Hugging Face id")
    else:
        try:
            from transformers import AutoConfig

            model_type = AutoConfig.from_pretrained(source, local_files_only=local_files_only).model_type
        except Exception as e:  # noqa: BLE001 - any failure: the source cannot be resolved
            what = "no folder, and no cached Hugging Face model of that id" if looks_like_hub_id(source) else "no such folder"
            raise spec_error(f"cannot read the kind of {source!r}: {what} ({type(e).__name__})") from e
    if model_type not in MODEL_TYPES:
        hint = f" ({UNSUPPORTED_SAM3[model_type]}: give a sam3 / sam3_video checkpoint such as facebook/sam3)" if (
            model_type in UNSUPPORTED_SAM3) else ""
        raise spec_error(f"{source!r} holds a {model_type!r} model (config.json model_type), which is no localizer "
                          f"backend{hint}; supported model types: {', '.join(MODEL_TYPES)}")
    return MODEL_TYPES[model_type]


def check_source(kind: str, source: str, local_files_only: bool = True) -> None:
    """A folder source must hold a model of ``kind``; a missing path-like source is an error (an id-like one may
    be a cached hub model, checked when loading)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        found = source_kind(source, local_files_only)
        if found != kind:
            raise spec_error(f"the folder {source!r} holds {found} (its config.json model_type), not {kind}: "
                              f"write it as {found}:{source}")
    elif folder.exists():
        raise spec_error(f"{source!r} is a file, not a model folder or Hugging Face id")
    elif not looks_like_hub_id(source):
        raise spec_error(f"the {kind} folder {source!r} does not exist (check the path)")
