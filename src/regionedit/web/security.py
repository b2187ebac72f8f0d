"""What stands between the network and the Gradio app: :class:`WebGuard`, a small ASGI middleware, and
:func:`check_image_header`, the pixel budget read from an image file's header before any pixel is decoded.

:class:`WebGuard` sits on the FastAPI app the Gradio UI is mounted on (:func:`regionedit.web.server.make_asgi_app`)
and answers, before Gradio sees the request:

* **Host allow-list** (DNS rebinding): the ``Host`` header's name must be ``localhost``, ``127.0.0.1``, ``::1``
  or one of ``allowed_hosts``; anything else is refused with 403.
* **Cross-origin requests**: a request with an ``Origin`` header must come from the page this server serves
  (same scheme, host and port as its ``Host``); ``Origin: null`` (sandboxed frames, ``file://`` pages) and every
  other origin get 403, as do requests a browser marks ``Sec-Fetch-Site: cross-site`` (except navigations).
* **Bounded bodies**: a body over ``max_body_bytes`` (from ``Content-Length``, or counted while it streams) gets
  413; JSON bodies are read (at most ``max_json_bytes``), must be UTF-8, nested at most ``max_json_depth`` deep
  and a JSON object, else 400; bodies other than JSON and multipart/form-data get 415; methods other than GET,
  HEAD and POST get 405.
* **No 500 on a malformed request**: Gradio answers some malformed bodies with an internal error (a multipart
  body without its fields, an unknown component id); such an answer is replaced by a 400 (the traceback stays in
  the server log).

Every answer carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a Content-Security-Policy that
lets the page load and connect to this server only (:data:`CSP`; ``frame-ancestors 'none'``),
``Referrer-Policy: no-referrer`` and
``Cross-Origin-Resource-Policy: same-origin``; ``X-Forwarded-*`` headers are dropped (no proxy is trusted).
"""

from __future__ import annotations

import io
import json
import logging
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

log = logging.getLogger("regionedit.web")

MB = 1024 * 1024
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Host names always allowed: this machine."""

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
"""Accepted uploads (checked from the file's first bytes)."""

CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
"""The page may load and connect to this server only (Gradio needs inline scripts and styles)."""

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_DROPPED_HEADERS = {b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-for", b"x-forwarded-port",
                    b"x-forwarded-prefix", b"forwarded"}
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class ImageRefused(ValueError):
    """An upload refused before decoding (type, size or pixel count), with the reason and the fix."""


def sniff_type(head: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from a file's first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    return None


def check_image_header(data: bytes | str | Path, max_pixels: int, max_bytes: int | None = None,
                       what: str = "the image") -> tuple[int, int]:
    """``(width, height)`` of an uploaded image read from its header only (Pillow's ``Image.open`` is lazy),
    refused with :class:`ImageRefused` when it is not PNG / JPEG / WebP, over ``max_bytes`` or over
    ``max_pixels``. No pixel is decoded here."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise ImageRefused(f"{what} could not be read ({e.strerror or e}); upload it again") from None
    else:
        size, head = len(data), bytes(data[:64])
    if size == 0:
        raise ImageRefused(f"{what} is empty (0 bytes); upload a PNG, JPEG or WebP image")
    if max_bytes is not None and size > max_bytes:
        raise ImageRefused(f"{what} is {size / MB:.1f} MB, over the upload limit of {max_bytes / MB:.1f} MB; "
                           "downscale or compress it (or restart the server with a larger --max-upload-mb)")
    if sniff_type(head) is None:
        raise ImageRefused(f"{what} is not a PNG, JPEG or WebP file (its first bytes match none of them); "
                           "only PNG, JPEG and WebP images are accepted: convert it to PNG")
    try:
        src = data if isinstance(data, (str, Path)) else io.BytesIO(bytes(data))
        with Image.open(src) as im:  # reads the header only
            w, h = im.size
    except Image.DecompressionBombError:
        wh = _png_size(head)
        w, h = wh if wh else (0, 0)
        if not wh:
            raise ImageRefused(f"{what} is larger than Pillow's decompression-bomb limit and was not decoded; "
                               f"the limit here is {max_pixels:,} pixels (--max-pixels): downscale it") from None
    except Exception as e:  # noqa: BLE001 - any header Pillow cannot read is a bad upload
        raise ImageRefused(f"{what} is not a readable image, or its header is damaged ({type(e).__name__}); "
                           "re-export it as PNG") from None
    if w <= 0 or h <= 0:
        raise ImageRefused(f"{what} has no pixels ({w} x {h})")
    if w * h > max_pixels:
        raise ImageRefused(f"{what} is {w} x {h} = {w * h:,} pixels, over this server's limit of {max_pixels:,} "
                           "pixels; it was refused before decoding: downscale it (or restart the server with a "
                           "larger --max-pixels)")
    return w, h


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (brackets inside strings do not count). Linear time,
    no recursion: safe on any input."""
    if body.count(b"[") + body.count(b"{") <= 1:
        return body.count(b"[") + body.count(b"{")
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _host_name(netloc: str) -> str:
    """``"[::1]:7860"`` -> ``"::1"``; ``"LocalHost:80"`` -> ``"localhost"``."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _origin_netloc(scheme: str, netloc: str) -> str:
    """``host:port`` with the scheme's default port made explicit."""
    netloc = netloc.strip().lower()
    host_part = netloc.rsplit("]", 1)[-1] if netloc.startswith("[") else netloc
    if ":" not in host_part:
        netloc = f"{netloc}:{443 if scheme == 'https' else 80}"
    return netloc


class WebGuard:
    """The ASGI middleware described in the module docstring. ``app.add_middleware(WebGuard, ...)`` on the
    FastAPI app the Gradio UI is mounted on (outermost after Starlette's own error handler)."""

    def __init__(self, app, allowed_hosts: Iterable[str] = (), max_body_bytes: int = 32 * MB,
                 max_json_bytes: int = 1 * MB, max_json_depth: int = 32):
        self.app = app
        self.allowed_hosts = {h.strip().lower().strip("[]") for h in (*LOCAL_HOSTS, *allowed_hosts) if h.strip()}
        self.max_body_bytes = int(max_body_bytes)
        self.max_json_bytes = int(max_json_bytes)
        self.max_json_depth = int(max_json_depth)

    # -- answers -------------------------------------------------------------------------------------
    @staticmethod
    async def _answer(send, status: int, message: str, extra: list | None = None) -> None:
        body = json.dumps({"detail": message, "status": status}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), *SECURITY_HEADERS, *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, scope, send, status: int, message: str, extra: list | None = None) -> None:
        log.warning("refused %s %s: %d %s", scope.get("method", "WS"), scope.get("path", "")[:200], status, message)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._answer(send, status, message, extra)

    # -- checks --------------------------------------------------------------------------------------
    def check_headers(self, scope) -> tuple[int, str] | None:
        """``(status, message)`` for a request refused on its headers alone, else None."""
        headers = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.lower(), v.decode("latin-1"))
        host = headers.get(b"host")
        if not host:
            return 400, "the Host header is missing"
        if _host_name(host) not in self.allowed_hosts:
            return 403, (f"host {host[:100]!r} is not allowed (DNS rebinding protection); open the page as "
                         "http://127.0.0.1:PORT/ or http://localhost:PORT/, or restart the server with "
                         f"--allowed-hosts {_host_name(host)[:100]}")
        origin = headers.get(b"origin")
        if origin is not None:
            if origin.strip().lower() == "null":
                return 403, "cross-origin request refused (Origin: null); use the page this server serves"
            parts = urlsplit(origin.strip())
            scheme = scope.get("scheme", "http").replace("ws", "http")
            if (parts.scheme not in ("http", "https") or parts.scheme != scheme
                    or _origin_netloc(parts.scheme, parts.netloc) != _origin_netloc(scheme, host)):
                return 403, f"cross-origin request from {origin[:100]!r} refused; use the page this server serves"
        site = headers.get(b"sec-fetch-site", "").lower()
        if site == "cross-site" and headers.get(b"sec-fetch-mode", "").lower() != "navigate":
            return 403, "cross-site request refused; use the page this server serves"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _DROPPED_HEADERS]
        refused = self.check_headers(scope)
        if refused:
            return await self._refuse(scope, send, *refused)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            return await self._refuse(scope, send, 405, f"method {method[:20]} is not supported; use GET or POST",
                                      [(b"allow", b"GET, HEAD, POST")])
        headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
                if n < 0:
                    raise ValueError
            except ValueError:
                return await self._refuse(scope, send, 400, f"bad Content-Length {length[:40]!r}")
            if n > self.max_body_bytes:
                return await self._refuse(scope, send, 413, f"request body is {n / MB:.1f} MB, over the limit of "
                                                            f"{self.max_body_bytes / MB:.1f} MB")
        ctype = headers.get(b"content-type", "").split(";")[0].strip().lower()
        if method == "POST" and ctype == "application/json":
            body, err = await self._read_json(receive)
            if err:
                return await self._refuse(scope, send, *err)
            receive = _replay(body, receive)
        elif method == "POST" and ctype == "multipart/form-data":
            if "boundary=" not in headers.get(b"content-type", ""):
                return await self._refuse(scope, send, 400, "multipart/form-data body without a boundary")
        elif method == "POST" and (ctype or length not in (None, "0")):
            return await self._refuse(scope, send, 415, f"unsupported request Content-Type {ctype or '(none)'!r}; "
                                                        "send application/json or multipart/form-data")
        await self._forward(scope, receive, send)

    async def _read_json(self, receive) -> tuple[bytes, tuple[int, str] | None]:
        chunks, total = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return b"", (400, "the client disconnected while sending the body")
            chunk = msg.get("body", b"")
            total += len(chunk)
            if total > self.max_json_bytes:
                return b"", (413, f"JSON body over the limit of {self.max_json_bytes / MB:.1f} MB")
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body, (400, "request body is not UTF-8 text; send JSON encoded as UTF-8")
        depth = json_depth(body)
        if depth > self.max_json_depth:
            return body, (400, f"JSON nested {depth} deep, over the limit of {self.max_json_depth}")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:
            return body, (400, f"request body is not valid JSON ({str(e)[:100]})")
        if not isinstance(value, dict):
            return body, (400, f"request body must be a JSON object, got {type(value).__name__}")
        return body, None

    async def _forward(self, scope, receive, send) -> None:
        """Run the app with bounded body reads, security headers on every answer, and a 400 instead of a 500."""
        state = {"started": False, "replaced": False, "seen": 0}
        limit = self.max_body_bytes

        async def counted_receive():
            msg = await receive()
            if msg["type"] == "http.request":
                state["seen"] += len(msg.get("body", b""))
                if state["seen"] > limit:
                    raise _BodyTooLarge()
            return msg

        async def guarded_send(msg):
            if msg["type"] == "http.response.start":
                if msg["status"] >= 500 and msg["status"] != 503:
                    state["replaced"] = True
                    state["started"] = True
                    log.warning("the app answered %s %s with %d: answering 400 instead", scope["method"],
                                scope["path"][:200], msg["status"])
                    await self._answer(send, 400, "the request could not be processed (malformed or not "
                                                  "meant for this server)")
                    return
                state["started"] = True
                msg = dict(msg)
                msg["headers"] = [*msg.get("headers", []), *SECURITY_HEADERS]
            elif state["replaced"]:
                return
            await send(msg)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not state["started"]:
                await self._refuse(scope, send, 413, f"request body over the limit of {limit / MB:.1f} MB")
        except Exception:  # noqa: BLE001 - a request must never crash the server
            log.exception("error on %s %s", scope["method"], scope["path"][:200])
            if not state["started"]:
                await self._answer(send, 400, "the request could not be processed (malformed or not meant "
                                              "for this server)")


class _BodyTooLarge(Exception):
    pass


def _replay(body: bytes, receive):
    """A ``receive`` that gives ``body`` once, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
