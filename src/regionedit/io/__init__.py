"""Image input/output: robust loading, atomic PNG saving with metadata, instruction checks.

Images are ``(H, W, 3)`` ``uint8`` RGB numpy arrays, row 0 at the top (see :mod:`.images`).
"""

from regionedit.io.images import (
    DEFAULT_MAX_PIXELS,
    MASK_KEY,
    MAX_INSTRUCTION_CHARS,
    ImageInputError,
    load_image,
    mask_from_text,
    mask_to_text,
    max_pixels_limit,
    read_png_metadata,
    remove_stale_temp_files,
    save_png,
    temp_files_for,
    validate_instruction,
)

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
