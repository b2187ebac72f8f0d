"""Robust image input and output.

Everything here works in one convention: an image is a numpy array of shape ``(H, W, 3)``, dtype
``uint8``, RGB, values 0..255, in image pixels with row 0 at the top and column 0 at the left
(the orientation a viewer shows, i.e. after the EXIF orientation tag has been applied).

- :func:`load_image` turns a path, an open file, bytes, a ``PIL.Image`` or an array into that
  form, and refuses bad input with an :class:`ImageInputError` that says what is wrong and how to
  fix it (missing or unreadable file, truncated data, images over a pixel limit, wrong array shape).
- :func:`save_png` writes a PNG atomically, with text metadata (instruction, seed, model id, the
  edit mask), and never overwrites an input or (unless asked) an existing file.
- :func:`validate_instruction` checks an edit instruction.

No function here changes global state (Pillow's ``MAX_IMAGE_PIXELS`` and
``LOAD_TRUNCATED_IMAGES`` are read, never set).

Code: :mod:`.loading`, :mod:`.saving`, :mod:`.masks`, :mod:`.instructions`, :mod:`.errors`; this module
re-exports their public names.
"""

from __future__ import annotations

from regionedit.io.errors import ImageInputError
from regionedit.io.instructions import MAX_INSTRUCTION_CHARS, validate_instruction
from regionedit.io.loading import DEFAULT_MAX_PIXELS, load_image, max_pixels_limit
from regionedit.io.masks import MASK_KEY, mask_from_text, mask_to_text
from regionedit.io.saving import read_png_metadata, remove_stale_temp_files, save_png, temp_files_for

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MASK_KEY",
    "MAX_INSTRUCTION_CHARS",
    "ImageInputError",
    "load_image",
    "mask_from_text",
    "mask_to_text",
    "max_pixels_limit",
    "read_png_metadata",
    "remove_stale_temp_files",
    "save_png",
    "temp_files_for",
    "validate_instruction",
]
