"""Datasets on disk: export the shapes world in published layouts and load any of them back.

- :func:`export_dataset` writes MagicBrush-style parquet, Emu-Edit-style parquet or WebDataset
  text-image pairs (see :mod:`regionedit.data.export` for the exact layouts).
- :func:`load_dataset` reads those exports and the real MagicBrush / Emu Edit releases from local
  files into plain record dicts with numpy arrays (see :mod:`regionedit.data.loaders`).
"""

from .export import EMU_TASKS, FORMATS, export_dataset
from .loaders import RECORD_KEYS, EditDataset, decode_image, decode_mask, detect_format, load_dataset

__all__ = [
    "EMU_TASKS",
    "FORMATS",
    "RECORD_KEYS",
    "EditDataset",
    "decode_image",
    "decode_mask",
    "detect_format",
    "export_dataset",
    "load_dataset",
]
