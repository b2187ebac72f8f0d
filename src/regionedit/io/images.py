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
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import struct
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MASK_KEY",
    "MAX_INSTRUCTION_CHARS",
    "ImageInputError",
    "load_image",
    "mask_from_text",
    "mask_to_text",
    "read_png_metadata",
    "save_png",
    "validate_instruction",
]

DEFAULT_MAX_PIXELS = 4096 * 4096
"""Default limit on width * height for :func:`load_image` (a 4096 x 4096 image)."""

MAX_INSTRUCTION_CHARS = 500
"""Default limit on the length of an edit instruction, in characters, after stripping."""

MASK_KEY = "regionedit:mask"
"""PNG text key under which :func:`save_png` stores the edit mask (base64 of an 8-bit PNG)."""

_ALPHA_CHOICES = ("white", "black", "error")
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_SUPPORTED_HINT = "PNG, JPEG, WebP, BMP, TIFF, GIF"


class ImageInputError(ValueError):
    """Bad user input to an edit: an image that cannot be used, or an unusable instruction.

    The message names the problem and the fix. Subclass of ``ValueError``, so
    ``except ValueError`` also catches it.
    """


# ------------------------------------------------------------------------------------------------
# loading


def load_image(
    source: Any,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
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
        alpha: what to do with transparency (RGBA, LA, PA, or a palette/grey/RGB image with a
            transparent colour): ``"white"`` (default) or ``"black"`` composites the image over
            that background; ``"error"`` raises if any pixel is not fully opaque.

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
            f"downscale it, or pass a larger max_pixels (e.g. max_pixels={w * h}) if you have the "
            "memory for it"
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


# ------------------------------------------------------------------------------------------------
# saving


def save_png(
    path: str | os.PathLike,
    image: Any,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
    protect: Iterable[str | os.PathLike] | str | os.PathLike = (),
    *,
    mask: np.ndarray | None = None,
    compress_level: int = 6,
) -> Path:
    """Write ``image`` as a PNG file atomically, with text metadata.

    The PNG is encoded in memory, written to a temporary file in the destination folder, flushed
    to disk and moved into place (``os.replace``; without ``overwrite``, a no-clobber hard link),
    so readers never see a partial file and a failure leaves no temporary file behind.

    Args:
        path: destination; must end in ``.png`` and its folder must exist.
        image: ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA or ``(H, W)`` grey array, dtype ``uint8``
            (0..255) or float (values in [0, 1]); or a ``PIL.Image.Image``.
        metadata: text chunks to embed, ``{key: value}`` with ``str`` keys (1-79 Latin-1
            printable characters, PNG's keyword rule) and ``str`` values (any Unicode; non-Latin-1
            values go into iTXt, long ones are compressed). Typical keys: ``instruction``,
            ``seed``, ``method``, ``model_id``.
        overwrite: if False (default), refuse to replace an existing file.
        protect: paths that must never be written, typically the input images; compared after
            resolving symlinks (and by inode when both exist). A single path is accepted too.
        mask: optional edit mask, ``(H, W)`` bool or float in [0, 1] (image pixels, row 0 at the
            top); stored under :data:`MASK_KEY` via :func:`mask_to_text`.
        compress_level: zlib level 0-9.

    Returns:
        The destination path.

    Raises:
        ImageInputError: bad image or metadata; destination is protected or exists (without
            ``overwrite``); folder missing; not a ``.png`` name.
    """
    dest = Path(os.fspath(path))
    if dest.suffix.lower() != ".png":
        raise ImageInputError(f"save_png writes PNG files: give {str(dest)!r} a .png extension")
    _check_protected(dest, protect)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise ImageInputError(
            f"output folder {str(folder)!r} does not exist; create it first (mkdir -p)"
        )
    if dest.is_dir():
        raise ImageInputError(f"{str(dest)!r} is a folder; choose a file name")
    if dest.exists() and not overwrite:
        raise ImageInputError(
            f"{str(dest)!r} already exists; choose another name or pass overwrite=True"
        )

    pil = _image_for_save(image)
    info = PngImagePlugin.PngInfo()
    items = dict(metadata or {})
    if mask is not None:
        if MASK_KEY in items:
            raise ImageInputError(f"pass the mask either as mask= or as metadata[{MASK_KEY!r}]")
        if np.asarray(mask).shape[:2] != (pil.height, pil.width):
            raise ImageInputError(
                f"mask shape {np.asarray(mask).shape} does not match the image "
                f"({pil.height}, {pil.width})"
            )
        items[MASK_KEY] = mask_to_text(mask)
    for key, value in items.items():
        _check_text_item(key, value)
        info.add_text(key, value, zip=len(value) > 1024)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    _atomic_write(dest, buf.getvalue(), overwrite)
    return dest


def _check_protected(dest: Path, protect: Any) -> None:
    if isinstance(protect, (str, os.PathLike)):
        protect = [protect]
    real = os.path.realpath(dest)
    for p in protect:
        if not isinstance(p, (str, os.PathLike)):
            raise ImageInputError(
                f"protect must list file paths (the input images), got a {type(p).__name__}"
            )
        p = Path(os.fspath(p))
        same = os.path.realpath(p) == real
        if not same and p.exists() and dest.exists():
            try:
                same = os.path.samefile(p, dest)
            except OSError:
                same = False
        if same:
            raise ImageInputError(
                f"refusing to write {str(dest)!r}: it is an input image ({str(p)!r} is protected); "
                "choose a different output path"
            )


def _image_for_save(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, np.ndarray):
        raise ImageInputError(
            f"cannot save {type(image).__name__} as PNG; pass a numpy array (H, W, 3) or a PIL.Image"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ImageInputError(
            f"image to save has shape {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageInputError(f"image to save has no pixels (shape {image.shape})")
    if image.dtype == np.uint8:
        arr = image
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ImageInputError(
                "float image to save must be finite with values in [0, 1]; "
                "or pass a uint8 array (0..255)"
            )
        arr = np.rint(image.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ImageInputError(
            f"image to save has dtype {image.dtype}; use uint8 (0..255) or float in [0, 1]"
        )
    return Image.fromarray(np.ascontiguousarray(arr))  # mode L, RGB or RGBA from the shape


def _check_text_item(key: Any, value: Any) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= 79:
        raise ImageInputError(f"PNG metadata key {key!r} must be a str of 1-79 characters")
    try:
        key.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ImageInputError(
            f"PNG metadata key {key!r} must be Latin-1 (PNG keyword rule); use ASCII keys"
        ) from exc
    if any(ord(c) < 32 or 126 < ord(c) < 161 for c in key) or key != key.strip() or "  " in key:
        raise ImageInputError(
            f"PNG metadata key {key!r} has control characters or leading/trailing/double spaces"
        )
    if not isinstance(value, str):
        raise ImageInputError(
            f"PNG metadata value for {key!r} is {type(value).__name__}; values must be str "
            "(use str(value) or json.dumps(value))"
        )
    if len(value.encode("utf-8")) > PngImagePlugin.MAX_TEXT_CHUNK:
        raise ImageInputError(
            f"PNG metadata value for {key!r} is over {PngImagePlugin.MAX_TEXT_CHUNK:,} bytes, more "
            "than Pillow reads back by default; store it in a separate file"
        )


def _atomic_write(dest: Path, data: bytes, overwrite: bool) -> None:
    folder = dest.parent if str(dest.parent) else Path(".")
    tmp = folder / f".{dest.name}.{secrets.token_hex(6)}.tmp"
    # os.open with 0o666 lets the process umask set the final permissions, as for a plain open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # atomic no-clobber: fails if dest appeared meanwhile
            except FileExistsError as exc:
                raise ImageInputError(
                    f"{str(dest)!r} already exists; choose another name or pass overwrite=True"
                ) from exc
            except OSError:  # file system without hard links: check, then replace
                if dest.exists():
                    raise ImageInputError(
                        f"{str(dest)!r} already exists; choose another name or pass overwrite=True"
                    ) from None
                os.replace(tmp, dest)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_png_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Return the text chunks (tEXt, zTXt, iTXt) of a PNG file as ``{key: value}``.

    Raises:
        ImageInputError: the file is missing, not a PNG, or damaged.
    """
    p = Path(os.fspath(path))
    if not p.is_file():
        raise ImageInputError(f"PNG file not found: {str(p)!r}; check the path")
    try:
        with Image.open(p) as im:
            if im.format != "PNG":
                raise ImageInputError(f"{str(p)!r} is {im.format}, not PNG; metadata is read from PNGs")
            im.load()  # text chunks after the image data are read on load
            text = dict(getattr(im, "text", {}) or {})
    except ImageInputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(f"could not read PNG metadata from {str(p)!r}: {exc}") from exc
    return {str(k): str(v) for k, v in text.items()}


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


# ------------------------------------------------------------------------------------------------
# instructions


def validate_instruction(text: Any, max_chars: int = MAX_INSTRUCTION_CHARS) -> str:
    """Check an edit instruction and return it stripped of surrounding whitespace.

    Raises:
        ImageInputError: not a ``str`` (e.g. ``bytes`` or ``None``), empty or only whitespace,
            contains NUL / control characters other than tab and newline, or longer than
            ``max_chars`` characters after stripping.
    """
    if isinstance(text, (bytes, bytearray)):
        raise ImageInputError("instruction is bytes; decode it first, e.g. text.decode('utf-8')")
    if not isinstance(text, str):
        raise ImageInputError(
            f"instruction must be a str like 'make the sky blue', got {type(text).__name__}"
        )
    s = text.strip()
    if not s:
        raise ImageInputError(
            "instruction is empty; describe the edit, e.g. 'remove the red circle'"
        )
    bad = sorted({repr(c) for c in s if ord(c) < 32 and c not in "\t\n\r"})
    if bad:
        raise ImageInputError(f"instruction contains control characters {', '.join(bad)}; remove them")
    if len(s) > max_chars:
        raise ImageInputError(
            f"instruction is {len(s)} characters, over the limit of {max_chars}; shorten it to one "
            "concise edit (e.g. 'turn the square blue')"
        )
    return s
