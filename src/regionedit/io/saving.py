"""Saving images: :func:`save_png` writes a PNG atomically, with text metadata (instruction, seed, model id, the
edit mask), and never overwrites an input or (unless asked) an existing file; :func:`read_png_metadata` reads
the text chunks back."""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from regionedit.io.errors import ImageInputError
from regionedit.io.masks import MASK_KEY, mask_to_text


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
    if folder.exists() and not folder.is_dir():
        raise ImageInputError(f"output folder {str(folder)!r} is a file, not a folder; choose another output path")
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
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except PermissionError as exc:
        raise ImageInputError(
            f"no permission to write {str(dest)!r} (folder {str(folder)!r} is read-only for this user); "
            "choose a writable output folder or fix its permissions (chmod)"
        ) from exc
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


_TMP_RE = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")


def temp_files_for(path: str | os.PathLike) -> list[Path]:
    """The temporary files :func:`save_png` makes for ``path`` (``.NAME.<12 hex>.tmp`` next to it) that
    exist now: left behind only when a writer was killed (kill -9, power loss) mid-write."""
    dest = Path(os.fspath(path))
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for n in names:
        m = _TMP_RE.fullmatch(n)
        if m and m["name"] == dest.name and (folder / n).is_file():
            out.append(folder / n)
    return sorted(out)


def remove_stale_temp_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove :func:`temp_files_for` each of ``paths`` (our own pattern only, nothing else); returns the
    files removed. Call it before a run that writes ``paths``, not while another writes them."""
    removed = []
    for p in paths:
        for tmp in temp_files_for(p):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


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
