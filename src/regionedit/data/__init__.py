"""Datasets on disk: export the shapes world in published layouts and load any of them back.

- the shapes world (:func:`regionedit.world.export.export_dataset`) writes MagicBrush-style parquet, Emu-Edit-style parquet or WebDataset
  text-image pairs (see :mod:`regionedit.world.export` for the exact layouts).
- :func:`load_dataset` reads those exports and the real MagicBrush / Emu Edit releases from local
  files into plain record dicts with numpy arrays (see :mod:`regionedit.data.loaders`).
"""

from .formats import FORMATS
from .loaders import RECORD_KEYS, EditDataset, decode_image, decode_mask, detect_format, load_dataset

__all__ = [
    "FORMATS",
    "RECORD_KEYS",
    "EditDataset",
    "decode_image",
    "decode_mask",
    "detect_format",
    "load_dataset",
]
