"""One sample type for every dataset layout: what an image carries as supervision.

:class:`Sample` is what :func:`regionedit.data.open_dataset` yields, whatever the layout on disk (Hugging Face
``datasets`` folders and hub ids in the MagicBrush / Emu Edit / InstructPix2Pix schemas, ``imagefolder`` +
``metadata.jsonl``, image + caption pairs, WebDataset shards). A sample says what it can supervise through
:attr:`Sample.supervision`:

- ``"caption"``: a description of the image (text-image pairs, the seed-001 setting);
- ``"instruction"``: an edit instruction;
- ``"target"``: the edited image;
- ``"mask"``: the edited region.

Images are ``(H, W, 3)`` uint8 RGB arrays (row 0 at the top), masks ``(H, W)`` bool (True = edited), decoded
only when a sample is built (never a whole dataset in memory).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
from PIL import Image

SUPERVISION: tuple[str, ...] = ("caption", "instruction", "target", "mask")
DIFF_THRESHOLD = 32  # default |target - source| threshold (0..255, max over RGB) of a mask derived from a pair


class DataError(ValueError):
    """A dataset that cannot be read as asked: the message names the file / row and the fix."""


@dataclasses.dataclass
class Sample:
    """One training or evaluation sample.

    Attributes:
        id: a stable identifier, unique within the dataset (``"<img_id>-<turn>"``, the tar key, the row's id
            column, or ``"<file>#<row>"``); used to check sharding and resume order.
        image: (H, W, 3) uint8 RGB, the source image (the image of a text-image pair).
        caption: description of ``image``, or None.
        instruction: edit instruction, or None.
        target: (H, W, 3) uint8 RGB edited image (same size as ``image``), or None.
        target_caption: description of ``target``, or None.
        mask: (H, W) bool edited region (True = edit), or None.
        category: the data's edit category / task name, or None.
        metadata: anything else the row carried (identifying fields, our exports' ground truth).
        origin: where the sample was read ("shard-000.tar: key 000012", "data/train-0.parquet row 7"), for errors.
        local_caption: description of the edited region of ``target`` only (MagicBrush's local description,
            ``local_descriptions.json``: the text of its published CLIP-T), or None (every other layout).
    """

    id: str
    image: np.ndarray
    caption: str | None = None
    instruction: str | None = None
    target: np.ndarray | None = None
    target_caption: str | None = None
    mask: np.ndarray | None = None
    category: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    origin: str = ""
    local_caption: str | None = None

    @property
    def supervision(self) -> frozenset[str]:
        """Which of :data:`SUPERVISION` this sample carries."""
        have = {"caption": bool(self.caption), "instruction": bool(self.instruction),
                "target": self.target is not None, "mask": self.mask is not None}
        return frozenset(k for k, v in have.items() if v)

    @property
    def is_edit(self) -> bool:
        """An edit pair: an instruction plus a target image or a mask."""
        return bool(self.instruction) and (self.target is not None or self.mask is not None)

    def region(self, threshold: int = DIFF_THRESHOLD) -> np.ndarray | None:
        """The edited region: :attr:`mask` when given, else :func:`mask_from_difference` of target and image
        (``threshold`` in 0..255), else None. (H, W) bool."""
        if self.mask is not None:
            return self.mask
        if self.target is not None:
            return mask_from_difference(self.image, self.target, threshold)
        return None

    def to_record(self) -> dict[str, Any]:
        """The plain record dict of :func:`regionedit.data.load_dataset` (keys ``RECORD_KEYS``)."""
        return {"id": self.id, "source": self.image, "target": self.target, "mask": self.mask,
                "instruction": self.instruction, "category": self.category, "source_caption": self.caption,
                "target_caption": self.target_caption, "local_caption": self.local_caption,
                "metadata": self.metadata}

    @classmethod
    def from_record(cls, rec: dict[str, Any], origin: str = "") -> "Sample":
        """A :func:`regionedit.data.load_dataset` record as a sample (checked: sizes agree)."""
        s = cls(id=str(rec["id"]), image=rec["source"], caption=rec.get("source_caption"),
                instruction=rec.get("instruction"), target=rec.get("target"), target_caption=rec.get("target_caption"),
                mask=rec.get("mask"), category=rec.get("category"), metadata=rec.get("metadata") or {}, origin=origin,
                local_caption=rec.get("local_caption"))
        check_sizes(s)
        return s


def mask_from_difference(source: np.ndarray, target: np.ndarray, threshold: int = DIFF_THRESHOLD) -> np.ndarray:
    """The region an edit pair changed: pixels whose largest RGB difference ``max_c |target - source|`` exceeds
    ``threshold`` (0..255; default 32, above JPEG noise of real pairs, below any deliberate edit).

    (H, W, 3) uint8 twice -> (H, W) bool. No morphology: isolated noisy pixels stay (the trainer's loss is
    per pixel, so a few cost little)."""
    if source.shape != target.shape:
        raise DataError(f"source {source.shape} and target {target.shape} differ in size: cannot take their difference")
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16)).max(axis=-1)
    return diff > int(threshold)


# ----------------------------------------------------------------------------------------------
# decoding with the sample's origin in every error


def decode_image_at(data: Any, origin: str, what: str = "image") -> np.ndarray:
    """Encoded bytes, a PIL image, an ``{"bytes", "path"}`` cell or an array -> (H, W, 3) uint8 RGB; an
    unreadable image is a :class:`DataError` naming ``origin`` and the fix."""
    try:
        if isinstance(data, np.ndarray):
            arr = data
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=-1)
            if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
                raise ValueError(f"array of shape {arr.shape}")
            if arr.dtype != np.uint8:
                raise ValueError(f"array of dtype {arr.dtype}, expected uint8")
            return np.ascontiguousarray(arr[..., :3])
        img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except Exception as e:  # PIL.UnidentifiedImageError, truncated files, OSError, ...
        raise DataError(f"{origin}: the {what} is not a readable image ({type(e).__name__}: {e}); re-encode it as "
                        "PNG or JPEG, or drop this sample from the dataset") from None


def decode_mask_at(data: Any, origin: str) -> np.ndarray:
    """A mask image (bytes / PIL / array) -> (H, W) bool, with the rule of :func:`regionedit.data.decode_mask`
    (transparent pixels when the alpha channel has any, else grey >= 128); errors name ``origin``."""
    from .loaders import decode_mask

    try:
        if isinstance(data, np.ndarray):
            if data.dtype == bool:
                return data if data.ndim == 2 else data.any(axis=-1)
            data = Image.fromarray(data)
        return decode_mask(data)
    except Exception as e:
        raise DataError(f"{origin}: the mask is not a readable image ({type(e).__name__}: {e}); store it as a PNG "
                        "(white = edit, black = keep), or drop this sample") from None


def check_sizes(s: Sample) -> None:
    """Source, target and mask of one sample must have the same height and width: a :class:`DataError` naming
    the sample and the fix otherwise."""
    h, w = s.image.shape[:2]
    for name, arr in (("target", s.target), ("mask", s.mask)):
        if arr is not None and arr.shape[:2] != (h, w):
            raise DataError(f"{s.origin or s.id}: the {name} is {arr.shape[1]}x{arr.shape[0]} but the source image is "
                            f"{w}x{h}; resize the {name} to the source's size (masks with nearest neighbour) or drop "
                            "this sample")
