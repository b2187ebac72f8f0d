"""Edit masks as text, for PNG metadata: :func:`mask_to_text` / :func:`mask_from_text` (base64 of an 8-bit
greyscale PNG), stored by :func:`~regionedit.io.saving.save_png` under :data:`MASK_KEY`."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from regionedit.io.errors import ImageInputError

MASK_KEY = "regionedit:mask"
"""PNG text key under which :func:`save_png` stores the edit mask (base64 of an 8-bit PNG)."""


def mask_to_text(mask: np.ndarray) -> str:
    """Encode a mask as base64 text of an 8-bit greyscale PNG (for PNG metadata).

    Args:
        mask: ``(H, W)`` bool, or float with values in [0, 1] (stored as ``round(255 * v)``),
            or uint8 0..255; image pixels, row 0 at the top.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0:
        raise ImageInputError(f"mask must have shape (H, W), got {m.shape}")
    if m.dtype == np.bool_:
        m8 = m.astype(np.uint8) * 255
    elif m.dtype == np.uint8:
        m8 = m
    elif np.issubdtype(m.dtype, np.floating):
        if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise ImageInputError("float mask must be finite with values in [0, 1]")
        m8 = np.rint(m.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ImageInputError(f"mask dtype {m.dtype} not supported; use bool, uint8 or float")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(m8)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def mask_from_text(text: str) -> np.ndarray:
    """Decode :func:`mask_to_text` output: ``(H, W)`` float32 in [0, 1] (steps of 1/255)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
        with Image.open(io.BytesIO(data)) as im:
            m8 = np.asarray(im.convert("L"))
    except Exception as exc:  # noqa: BLE001
        raise ImageInputError(f"mask text is not a base64 PNG ({exc})") from exc
    return m8.astype(np.float32) / 255.0
