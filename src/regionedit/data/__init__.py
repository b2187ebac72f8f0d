"""Datasets on disk: one data layer for training and evaluation.

- :func:`open_dataset` opens any supported layout (Hugging Face ``datasets`` folders and hub ids in the MagicBrush /
  Emu Edit / InstructPix2Pix schemas, ``imagefolder`` + ``metadata.jsonl``, image + caption pairs, WebDataset tar
  shards) as an iterable of :class:`Sample` (what supervision each carries: caption, instruction, target image,
  mask), with deterministic streams for training (shuffled, split by rank and worker, resumable; see
  :mod:`regionedit.data.streaming`).
- the shapes world (:func:`regionedit.world.export.export_dataset`) writes MagicBrush-style parquet, Emu-Edit-style
  parquet or WebDataset text-image pairs (see :mod:`regionedit.world.export` for the exact layouts).
- :func:`load_dataset` reads those exports and the real MagicBrush / Emu Edit releases from local files into plain
  record dicts with numpy arrays, with random access, for evaluation (see :mod:`regionedit.data.loaders`).
"""

from .dataset import SampleDataset, open_dataset
from .formats import FORMATS
from .loaders import RECORD_KEYS, EditDataset, decode_image, decode_mask, detect_format, load_dataset
from .samples import DIFF_THRESHOLD, SUPERVISION, DataError, Sample, mask_from_difference
from .schemas import SCHEMAS
from .streaming import SampleStream

__all__ = [
    "DIFF_THRESHOLD",
    "FORMATS",
    "RECORD_KEYS",
    "SCHEMAS",
    "SUPERVISION",
    "DataError",
    "EditDataset",
    "Sample",
    "SampleDataset",
    "SampleStream",
    "decode_image",
    "decode_mask",
    "detect_format",
    "load_dataset",
    "mask_from_difference",
    "open_dataset",
]
