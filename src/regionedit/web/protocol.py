"""What the web UI's requests and answers carry, independent of the HTTP transport: request bodies parsed into
fields (:func:`parse_body`, images as :class:`Upload`), upload types sniffed from the first bytes, errors
answered as ``{"error": message}`` (:class:`HTTPError`), and images sent back as PNG data URLs."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from email import policy
from email.parser import BytesParser
from typing import Any

import numpy as np
from PIL import Image

MB = 1024 * 1024
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
"""Accepted upload types (checked from the declared type and from the file's first bytes)."""

OVERLAY_COLOR = np.array([255, 0, 255], np.float32)


class HTTPError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = int(status), message, headers or {}


@dataclasses.dataclass
class Upload:
    """One image field of a request: the file bytes and the type its sender declared (if any)."""

    data: bytes
    declared: str | None
    field: str


# ------------------------------------------------------------------------------------------------
# encoding helpers


def png_bytes(arr: np.ndarray, compress_level: int = 3) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def data_url(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(png).decode("ascii")


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with ``mask`` tinted magenta (the region display)."""
    out = image.copy()
    if mask.any():
        out[mask] = ((1 - alpha) * image[mask].astype(np.float32) + alpha * OVERLAY_COLOR).round().astype(np.uint8)
    return out


def sniff_type(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def mib(n: int) -> str:
    """A byte count for messages: ``"20.0 MB"``."""
    return f"{n / MB:.1f} MB"


# ------------------------------------------------------------------------------------------------
# request bodies


def parse_body(content_type: str, body: bytes) -> dict:
    """A POST body -> request fields (images of multipart bodies as :class:`Upload`)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            req = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise HTTPError(400, "request body is not UTF-8 text; send JSON encoded as UTF-8") from None
        except json.JSONDecodeError as e:
            raise HTTPError(400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                 'send an object like {"image": "data:image/png;base64,...", '
                                 '"instruction": "remove the red circle"}') from None
        if not isinstance(req, dict):
            raise HTTPError(400, f"request body must be a JSON object, got {type(req).__name__}; "
                                 'send an object like {"image": ..., "instruction": ...}')
        return req
    if ctype == "multipart/form-data":
        try:
            head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n"
            msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        except (UnicodeEncodeError, ValueError, TypeError) as e:
            raise HTTPError(400, f"could not parse the multipart body ({e})") from None
        if not msg.is_multipart() or msg.defects:
            raise HTTPError(400, "could not parse the multipart/form-data body (missing or wrong boundary?)")
        req: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            data = part.get_payload(decode=True) or b""
            if part.get_filename() is not None or name in ("image", "mask"):
                declared = part.get_content_type() if part.get("Content-Type") else None
                req[name] = Upload(data, declared, name)
            else:
                try:
                    req[name] = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise HTTPError(400, f"form field {name!r} is not UTF-8 text") from None
        return req
    raise HTTPError(415, f"unsupported request Content-Type {ctype or '(none)'!r}; send application/json or "
                         "multipart/form-data")
