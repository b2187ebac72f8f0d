"""Loading images robustly: :func:`load_image` turns a path, an open file, bytes, a ``PIL.Image`` or an array into
an ``(H, W, 3)`` ``uint8`` RGB array (values 0..255, row 0 at the top, after the EXIF orientation tag), and
refuses bad input with an :class:`~regionedit.io.errors.ImageInputError` that says what is wrong and how to fix
it. Pillow's ``MAX_IMAGE_PIXELS`` and ``LOAD_TRUNCATED_IMAGES`` are read, never set."""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from regionedit.io.errors import ImageInputError

DEFAULT_MAX_PIXELS = 4096 * 4096
"""Default limit on width * height for :func:`load_image` (a 4096 x 4096 image)."""

_PIXEL_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "regionedit_max_pixels", default=DEFAULT_MAX_PIXELS
)


class _DefaultLimit:
    """Marker default of ``load_image(max_pixels=...)``: the limit of :func:`max_pixels_limit` if one is
    active, else :data:`DEFAULT_MAX_PIXELS`."""

    def __repr__(self) -> str:
        return "DEFAULT_MAX_PIXELS"


_DEFAULT_LIMIT = _DefaultLimit()


@contextlib.contextmanager
def max_pixels_limit(max_pixels: int | None) -> Iterator[None]:
    """Within this block (this thread / task only: a context variable), calls of :func:`load_image` that
    leave ``max_pixels`` at its default use ``max_pixels`` instead of :data:`DEFAULT_MAX_PIXELS`; this is
    how ``regionedit edit --max-pixels N`` reaches the loads inside the Editor."""
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int)
                                   or max_pixels <= 0):
        raise ImageInputError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    token = _PIXEL_LIMIT.set(max_pixels)
    try:
        yield
    finally:
        _PIXEL_LIMIT.reset(token)


_ALPHA_CHOICES = ("white", "black", "error", "keep")
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_SUPPORTED_HINT = "PNG, JPEG, WebP, BMP, TIFF, GIF"



# ------------------------------------------------------------------------------------------------
# loading


def load_image(
    source: Any,
    max_pixels: int | None = _DEFAULT_LIMIT,  # type: ignore[assignment]
    alpha: str = "white",
) -> np.ndarray:
    """Load an image as an RGB array.

    Args:
        source: one of
            - a path (``str`` or ``os.PathLike``) to an image file Pillow can read
              (PNG, JPEG, WebP, BMP, TIFF, GIF, ...; for multi-frame files the first frame),
            - an open binary file object, or the file's ``bytes``,
            - a ``PIL.Image.Image``,
            - a numpy array of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``
              (channels last; 4 = RGBA), dtype ``uint8`` (0..255), ``uint16`` (0..65535, scaled
              to 0..255) or float (values in [0, 1], scaled by 255 and rounded).
        max_pixels: refuse images with ``width * height`` above this (checked from the file
            header, before any pixel is decoded). ``None`` disables our limit; Pillow's own
            decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) still applies to files.
            Default: :data:`DEFAULT_MAX_PIXELS`, or the limit of an enclosing :func:`max_pixels_limit`.
        alpha: what to do with transparency (RGBA, LA, PA, or a palette/grey/RGB image with a
            transparent colour): ``"white"`` (default) or ``"black"`` composites the image over
            that background; ``"error"`` raises if any pixel is not fully opaque; ``"keep"``
            returns ``(H, W, 4)`` RGBA (straight alpha) for an image with an alpha channel or a
            transparent colour, and ``(H, W, 3)`` RGB for any other.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB array, values 0..255, row 0 at the top, C-contiguous, owned
        (never a view of the input). The EXIF orientation tag, if present, has been applied, so
        ``H, W`` are the displayed height and width. 16-bit data is scaled (``round(v * 255 /
        65535)`` for 16-bit grey; Pillow's top byte for 16-bit colour), never clipped; CMYK, grey,
        1-bit and palette images are converted to RGB.

    Raises:
        ImageInputError: missing / unreadable / non-image / truncated file, image above
            ``max_pixels``, unsupported array shape or dtype, out-of-range float values, or
            transparency with ``alpha="error"``.
    """
    if alpha not in _ALPHA_CHOICES:
        raise ImageInputError(f"alpha must be one of {_ALPHA_CHOICES}, got {alpha!r}")
    if max_pixels is _DEFAULT_LIMIT:
        max_pixels = _PIXEL_LIMIT.get()
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels <= 0):
        raise ImageInputError(f"max_pixels must be a positive int or None, got {max_pixels!r}")

    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels, alpha, what="array")
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "PIL image")
        try:
            source.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _truncated_error("PIL image", exc) from exc
        return _from_pil(source, alpha, what="PIL image")
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(os.fspath(source)), max_pixels, alpha)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_bytes(bytes(source), max_pixels, alpha, what="image bytes")
    if hasattr(source, "read"):
        try:
            data = source.read()
        except Exception as exc:  # noqa: BLE001 - any failure to read is a bad input
            raise ImageInputError(f"could not read from file object {source!r}: {exc}") from exc
        if not isinstance(data, (bytes, bytearray)):
            raise ImageInputError(
                f"file object {source!r} returned {type(data).__name__}, not bytes; "
                "open the file in binary mode ('rb')"
            )
        name = getattr(source, "name", None)
        return _load_bytes(bytes(data), max_pixels, alpha, what=f"file object {name or source!r}")
    raise ImageInputError(
        f"cannot load an image from {type(source).__name__}; pass a file path, an open binary "
        "file, bytes, a PIL.Image, or a numpy array of shape (H, W, 3)"
    )


def _load_path(path: Path, max_pixels: int | None, alpha: str) -> np.ndarray:
    if not path.exists():
        raise ImageInputError(f"image file not found: {str(path)!r}; check the path and spelling")
    if path.is_dir():
        raise ImageInputError(f"{str(path)!r} is a folder, not an image file; pass a file path")
    what = f"image file {str(path)!r}"
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; read lazily, header first
        size = os.fstat(f.fileno()).st_size
    except PermissionError as exc:
        raise ImageInputError(
            f"no permission to read image file {str(path)!r}; fix its permissions (chmod) or copy it"
        ) from exc
    except OSError as exc:
        raise ImageInputError(f"could not read {what}: {exc}") from exc
    with f:
        if size == 0:
            raise ImageInputError(f"{what} is empty (0 bytes); re-export or re-download it")
        return _load_stream(f, lambda: open(path, "rb"), max_pixels, alpha, what)


def _load_bytes(data: bytes, max_pixels: int | None, alpha: str, what: str) -> np.ndarray:
    if not data:
        raise ImageInputError(f"{what} is empty (0 bytes); re-export or re-download it")
    return _load_stream(io.BytesIO(data), lambda: io.BytesIO(data), max_pixels, alpha, what)


def _load_stream(
    f: Any, reopen: Callable[[], Any], max_pixels: int | None, alpha: str, what: str
) -> np.ndarray:
    """Header -> size check -> integrity checks -> decode -> RGB. ``reopen`` gives a new stream."""
    try:
        im = Image.open(f)  # lazy: reads the header only
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"{what} is too large to decode safely ({exc}); if it is genuine, downscale it first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(
            f"{what} is not an image Pillow can read, or its header is damaged/truncated; "
            f"use a valid {_SUPPORTED_HINT} file"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _truncated_error(what, exc) from exc
    with im:
        _check_pixels(im.size, max_pixels, what)  # before a single pixel is decoded
        if im.format == "PNG":
            _verify_png(reopen, what)
        if im.format == "JPEG" and ImageFile.LOAD_TRUNCATED_IMAGES:
            # Someone set Pillow's global LOAD_TRUNCATED_IMAGES, which makes Pillow fill the
            # missing part with grey instead of failing: check the end-of-image marker ourselves.
            with reopen() as g:
                if not _jpeg_complete(g.read()):
                    raise _truncated_error(
                        what, OSError("no JPEG end-of-image marker after the last scan")
                    )
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise ImageInputError(f"{what} is too large to decode safely ({exc})") from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise _truncated_error(what, exc) from exc
        return _from_pil(im, alpha, what)


def _truncated_error(what: str, exc: BaseException) -> ImageInputError:
    return ImageInputError(
        f"{what} is truncated or corrupt and was not loaded ({exc}); the file was probably cut "
        "short by an interrupted download or copy: re-download or re-export it"
    )


def _verify_png(reopen: Callable[[], Any], what: str) -> None:
    """Check every PNG chunk's length and CRC through IEND (no decompression)."""
    try:
        with reopen() as g, Image.open(g) as im:
            im.verify()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise _truncated_error(what, exc) from exc


def _jpeg_complete(data: bytes) -> bool:
    """True if a JPEG's last scan (SOS marker) is followed by an end-of-image marker."""
    last_sos = data.rfind(b"\xff\xda")
    return last_sos >= 0 and data.find(b"\xff\xd9", last_sos) >= 0


def _check_pixels(size: tuple[int, int], max_pixels: int | None, what: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageInputError(f"{what} has no pixels (size {w} x {h})")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageInputError(
            f"{what} is {w} x {h} = {w * h:,} pixels, above the limit max_pixels={max_pixels:,}; "
            f"downscale it, or raise the limit if you have the memory for it: max_pixels={w * h} in "
            f"Python, --max-pixels {w * h} for `regionedit edit` / `regionedit serve`"
        )


def _from_pil(im: Image.Image, alpha: str, what: str) -> np.ndarray:
    """Convert a loaded PIL image to (H, W, 3) uint8 RGB (orientation, depth, alpha handled)."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as exc:  # noqa: BLE001 - a damaged EXIF block should not block the image
        warnings.warn(f"{what}: ignoring unreadable EXIF orientation ({exc})", stacklevel=3)
    mode = im.mode
    try:
        if mode in _SIXTEEN_BIT_MODES or mode == "I":
            return _grey_to_rgb(_scale16(np.asarray(im), what, mode))
        if mode == "F":
            arr = np.asarray(im, dtype=np.float64)
            if not np.isfinite(arr).all():
                raise ImageInputError(f"{what} (float mode 'F') has NaN or infinite values")
            if arr.min() >= 0.0 and arr.max() <= 1.0:
                arr = arr * 255.0
            elif arr.min() < 0.0 or arr.max() > 255.0:
                raise ImageInputError(
                    f"{what} (float mode 'F') has values in [{arr.min():g}, {arr.max():g}], neither "
                    "[0, 1] nor [0, 255]; rescale it and save it as an 8-bit image"
                )
            return _grey_to_rgb(np.rint(arr).astype(np.uint8))
        has_alpha = mode in _ALPHA_MODES or "transparency" in im.info
        if has_alpha:
            rgba = np.asarray(im.convert("RGBA"))
            return _apply_alpha(rgba, alpha, what)
        return np.array(im.convert("RGB"), dtype=np.uint8, order="C", copy=True)
    except ImageInputError:
        raise
    except (ValueError, OSError) as exc:
        raise ImageInputError(
            f"{what} has image mode {mode!r}, which cannot be converted to RGB ({exc}); "
            "convert it to an 8-bit RGB PNG first"
        ) from exc


def _scale16(arr: np.ndarray, what: str, mode: str) -> np.ndarray:
    """16-bit (or 32-bit int holding 16-bit) grey values -> uint8, rounding v * 255 / 65535."""
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() > 65535:
        raise ImageInputError(
            f"{what} (mode {mode!r}) has values in [{arr.min()}, {arr.max()}], outside 16-bit "
            "0..65535; convert it to an 8-bit or 16-bit image"
        )
    return ((arr * 255 + 32767) // 65535).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _apply_alpha(rgba: np.ndarray, alpha: str, what: str) -> np.ndarray:
    """(H, W, 4) uint8 RGBA -> (H, W, 3) uint8 RGB, composited over white/black or refused."""
    if alpha == "keep":
        return np.array(rgba, dtype=np.uint8, order="C", copy=True)
    a = rgba[:, :, 3:4].astype(np.uint16)
    rgb = rgba[:, :, :3]
    if (a == 255).all():
        return np.array(rgb, dtype=np.uint8, order="C", copy=True)
    if alpha == "error":
        n = int((a < 255).sum())
        raise ImageInputError(
            f"{what} has transparency ({n:,} pixels not fully opaque) and alpha='error'; pass "
            "alpha='white' or alpha='black' to composite it on that background, or flatten it"
        )
    bg = 255 if alpha == "white" else 0
    out = (rgb.astype(np.uint16) * a + bg * (255 - a) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def _from_array(arr: np.ndarray, max_pixels: int | None, alpha: str, what: str) -> np.ndarray:
    shape = arr.shape
    if arr.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        raise ImageInputError(
            f"{what} has shape {shape}, which looks channels-first (C, H, W); images must be "
            "channels-last (H, W, 3): use arr.transpose(1, 2, 0)"
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and shape[2] in (1, 3, 4))):
        raise ImageInputError(
            f"{what} has shape {shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) "
            "(channels last: grey, grey, RGB, RGBA)"
        )
    h, w = shape[:2]
    _check_pixels((w, h), max_pixels, what)
    if arr.dtype == np.uint8:
        a8 = arr
    elif arr.dtype == np.uint16:
        a8 = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageInputError(f"{what} has NaN or infinite values; fix them before editing")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            hint = " (it looks like 0..255: divide by 255)" if hi <= 255.0 and lo >= 0.0 else ""
            raise ImageInputError(
                f"{what} is float with values in [{lo:g}, {hi:g}]; float images must be in "
                f"[0, 1]{hint}, or pass a uint8 array"
            )
        a8 = np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ImageInputError(
            f"{what} has dtype {arr.dtype}; use uint8 (0..255), uint16 (0..65535) or float in "
            "[0, 1], e.g. arr.astype(np.uint8) if its values are 0..255"
        )
    if a8.ndim == 2:
        return _grey_to_rgb(a8)
    if a8.shape[2] == 1:
        return _grey_to_rgb(a8[:, :, 0])
    if a8.shape[2] == 4:
        return _apply_alpha(a8, alpha, what)
    return np.array(a8, dtype=np.uint8, order="C", copy=True)
