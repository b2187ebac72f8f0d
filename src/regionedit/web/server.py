"""The regionedit web UI: a JSON API and one static page over the public :class:`~regionedit.pipeline.Editor` API.

Standard library only (:class:`http.server.ThreadingHTTPServer`). One :class:`Editor` serves every request;
calls into it go through a FIFO :class:`WorkQueue` (one at a time, a bounded line: 503 when it is full), so
concurrent requests wait instead of crashing. The editor caches per-image features
(:meth:`Editor.embed_image`), so a second instruction on the same image is fast.

Endpoints (all JSON answers; errors are ``{"error": "..."}`` with a 4xx/5xx status):

- ``GET /`` the page; ``GET /static/app.js``, ``GET /static/app.css`` its script and style (a fixed
  whitelist of files read from the package at start-up: no request path ever reaches the file system).
- ``GET /api/info`` model id, whether a region predictor is loaded, defaults and limits.
- ``GET /api/samples`` a few shapes-world scenes as PNG data URLs, with an instruction for each.
- ``POST /api/image`` ``{image}`` -> the image as the server decodes it (PNG data URL, width, height):
  EXIF orientation applied, transparency flattened; the page edits this canonical copy.
- ``POST /api/region`` ``{image, instruction}`` -> predicted region (mask, overlay, probability),
  target description; nothing is generated.
- ``POST /api/edit`` ``{image, instruction, seed, steps, guidance, mask}`` -> result PNG (data URL with
  the provenance metadata and the mask in its text chunks), mask, overlay, status, reason, target
  description, local prompt, seconds.

POST bodies are ``application/json`` (images as ``data:image/png;base64,...`` URLs or bare base64) or
``multipart/form-data`` (image / mask as file parts, the rest as text fields).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import importlib.resources
import io
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
import traceback
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from regionedit.io import DEFAULT_MAX_PIXELS, ImageInputError, load_image, save_png, validate_instruction

log = logging.getLogger("regionedit.web")

MB = 1024 * 1024
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
"""Accepted upload types (checked from the declared type and from the file's first bytes)."""

# url path -> (file in regionedit/web/static, content type): the only files the server ever serves
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
       "connect-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
OVERLAY_COLOR = np.array([255, 0, 255], np.float32)


@dataclasses.dataclass
class WebConfig:
    max_upload_bytes: int = 20 * MB  # per image file (source or mask), after base64 decoding
    max_pixels: int = DEFAULT_MAX_PIXELS  # width * height, checked by load_image from the header
    max_queue: int = 8  # requests waiting for or using the editor; one more gets 503
    max_steps: int = 100
    max_guidance: float = 30.0
    samples: int = 6  # world scenes offered by /api/samples
    socket_timeout: float = 60.0  # seconds a client may stall while sending a request

    @property
    def max_request_bytes(self) -> int:
        """Limit on a POST body: two images (source + mask) as base64, plus room for the fields."""
        return 2 * math.ceil(self.max_upload_bytes * 4 / 3) + MB


class HTTPError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = int(status), message, headers or {}


class WorkQueue:
    """A single worker in FIFO order: ``with queue.slot(): ...`` runs one at a time, in arrival order.

    At most ``max_pending`` requests may wait for or hold the slot; one more raises ``HTTPError(503)``
    at once instead of piling up threads.
    """

    def __init__(self, max_pending: int):
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending = max_pending
        self._cond = threading.Condition()
        self._next = 0  # next ticket to hand out
        self._serving = 0  # ticket that holds the slot

    @property
    def pending(self) -> int:
        """Requests in line, including the one being served."""
        with self._cond:
            return self._next - self._serving

    @contextlib.contextmanager
    def slot(self):
        with self._cond:
            n = self._next - self._serving
            if n >= self.max_pending:
                raise HTTPError(503, f"the server is busy: {n} requests are already queued for the editor "
                                     f"(limit {self.max_pending}); try again in a few seconds",
                                {"Retry-After": "5"})
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


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


def _mib(n: int) -> str:
    return f"{n / MB:.1f} MB"


# ------------------------------------------------------------------------------------------------
# the application (transport-independent: the handler below only moves bytes)


@dataclasses.dataclass
class Upload:
    """One image field of a request: the file bytes and the type its sender declared (if any)."""

    data: bytes
    declared: str | None
    field: str


class WebApp:
    """The API over one :class:`Editor`. Methods take the parsed request fields and return JSON-able dicts."""

    def __init__(self, editor, config: WebConfig | None = None):
        self.editor = editor
        self.config = config or WebConfig()
        self.queue = WorkQueue(self.config.max_queue)
        self._tmp = tempfile.TemporaryDirectory(prefix="regionedit-web-")  # result PNGs are written only here
        self._static = {path: (importlib.resources.files("regionedit.web").joinpath("static", name).read_bytes(), ctype)
                        for path, (name, ctype) in STATIC.items()}
        self._samples: list[dict] | None = None
        self._samples_lock = threading.Lock()

    def close(self) -> None:
        self._tmp.cleanup()

    # -- static ------------------------------------------------------------------------------------
    def static(self, path: str) -> tuple[bytes, str] | None:
        return self._static.get(path)

    # -- GET ---------------------------------------------------------------------------------------
    def info(self) -> dict:
        ed, c = self.editor, self.config
        return {
            "model": ed.models.model_id,
            "region_predictor": ed.region_predictor is not None,
            "defaults": {"seed": 0, "steps": ed.config.steps, "guidance": ed.config.guidance},
            "limits": {"max_upload_bytes": c.max_upload_bytes, "max_pixels": c.max_pixels, "max_queue": c.max_queue,
                       "max_steps": c.max_steps, "max_guidance": c.max_guidance, "types": sorted(IMAGE_TYPES)},
            "queue": self.queue.pending,
        }

    def samples(self) -> dict:
        with self._samples_lock:
            if self._samples is None:
                from regionedit.world import sample_edit

                cats = ("color", "remove", "local", "size", "add", "background")
                out = []
                for i in range(self.config.samples):
                    s = sample_edit(1000 + i, 0, category=cats[i % len(cats)])
                    out.append({"id": i, "instruction": s.instruction, "caption": s.source_caption,
                                "width": int(s.source.shape[1]), "height": int(s.source.shape[0]),
                                "image": data_url(png_bytes(s.source))})
                self._samples = out
        return {"samples": self._samples}

    # -- POST --------------------------------------------------------------------------------------
    def normalize(self, req: dict) -> dict:
        img = self.decode_image(self._upload(req, "image", required=True))
        return {"image": data_url(png_bytes(img)), "width": int(img.shape[1]), "height": int(img.shape[0])}

    def region(self, req: dict) -> dict:
        instruction = self._instruction(req)
        img = self.decode_image(self._upload(req, "image", required=True))
        ed = self.editor
        if ed.region_predictor is None:
            raise HTTPError(409, f"model {ed.models.model_id!r} has no region predictor, so it cannot find the region "
                                 "by itself: paint the region with the brush and press Generate")
        info, desc = self._describe(instruction)
        t_wait = time.perf_counter()
        with self.queue.slot():
            t0 = time.perf_counter()
            try:
                mask, prob = ed.find_region(img, instruction, desc.intent if desc is not None else None)
            except OSError as e:
                raise _model_error(ed, e) from e
            seconds = time.perf_counter() - t0
        found = bool(mask.mean() >= ed.config.min_region_frac)
        out = {
            "instruction": instruction,
            "found": found,
            "message": None if found else (ed.no_region_reason(desc) if desc is not None else "no region found")
                                          + " (paint the region yourself to edit anyway)",
            "region_pixels": int(mask.sum()),
            "coverage": round(float(mask.mean()), 6),
            "mask": data_url(png_bytes(mask.astype(np.uint8) * 255)),
            "overlay": data_url(png_bytes(overlay(img, mask))),
            "probability": data_url(png_bytes((prob * 255).round().clip(0, 255).astype(np.uint8))),
            "seconds": round(seconds, 4),
            "queue_seconds": round(t0 - t_wait, 4),
        }
        out.update(info)
        return out

    def edit(self, req: dict) -> dict:
        c = self.config
        instruction = self._instruction(req)
        seed = self._int(req, "seed", 0, 0, 2**63 - 1)
        steps = self._int(req, "steps", None, 1, c.max_steps)
        guidance = self._float(req, "guidance", None, 0.0, c.max_guidance)
        img = self.decode_image(self._upload(req, "image", required=True))
        mask_up = self._upload(req, "mask", required=False)
        mask = self.decode_mask(mask_up, img.shape[:2]) if mask_up is not None else None
        ed = self.editor
        if mask is None and ed.region_predictor is None:
            raise HTTPError(409, f"model {ed.models.model_id!r} has no region predictor: paint the region to edit "
                                 "with the brush (the mask is sent with the request) and press Generate again")
        t_wait = time.perf_counter()
        with self.queue.slot():
            t0 = time.perf_counter()
            try:
                res = ed(img, instruction, seed=seed, mask=mask, steps=steps, guidance=guidance)
            except OSError as e:  # a model component missing or unreadable
                raise _model_error(ed, e) from e
            except RuntimeError as e:
                raise HTTPError(409, str(e)) from e
            except ValueError as e:  # ImageInputError included
                raise HTTPError(400, str(e)) from e
            seconds = time.perf_counter() - t0
        meta = res.metadata()
        result_png = self._png_with_metadata(res.image, meta, res.mask)
        out = {
            "status": res.status,
            "reason": res.reason,
            "instruction": res.instruction,
            "target_description": res.target_description,
            "local_prompt": res.local_prompt,
            "method": res.method,
            "model": res.model_id,
            "seed": seed,
            "candidate": res.candidate,  # which generator draw was kept (its seed: seed + candidate * CANDIDATE_STRIDE)
            "candidate_scores": [round(x, 4) for x in res.candidate_scores],
            "steps": steps if steps is not None else ed.config.steps,
            "guidance": guidance if guidance is not None else ed.config.guidance,
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
            "region_pixels": int(res.mask.sum()),
            "image": data_url(result_png),
            "mask": data_url(png_bytes(res.mask.astype(np.uint8) * 255)),
            "overlay": data_url(png_bytes(overlay(img, res.mask))),
            "probability": (data_url(png_bytes((res.region_probability * 255).round().clip(0, 255).astype(np.uint8)))
                            if res.region_probability is not None else None),
            "metadata": meta,
            "seconds": round(seconds, 4),
            "queue_seconds": round(t0 - t_wait, 4),
        }
        return out

    # -- request fields ----------------------------------------------------------------------------
    def _instruction(self, req: dict) -> str:
        text = req.get("instruction")
        if text is None:
            raise HTTPError(400, "instruction is missing; describe the edit, e.g. 'remove the red circle'")
        try:
            return validate_instruction(text)
        except ImageInputError as e:
            raise HTTPError(400, str(e)) from e

    @staticmethod
    def _int(req: dict, key: str, default, lo: int, hi: int):
        v = req.get(key)
        if v is None or v == "":
            return default
        try:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ValueError
            n = int(v)
        except (TypeError, ValueError):
            raise HTTPError(400, f"{key} must be a whole number from {lo} to {hi}, got {v!r}") from None
        if not lo <= n <= hi:
            raise HTTPError(400, f"{key} must be from {lo} to {hi}, got {n}")
        return n

    @staticmethod
    def _float(req: dict, key: str, default, lo: float, hi: float):
        v = req.get(key)
        if v is None or v == "":
            return default
        try:
            if isinstance(v, bool):
                raise ValueError
            x = float(v)
        except (TypeError, ValueError):
            raise HTTPError(400, f"{key} must be a number from {lo:g} to {hi:g}, got {v!r}") from None
        if not (math.isfinite(x) and lo <= x <= hi):
            raise HTTPError(400, f"{key} must be from {lo:g} to {hi:g}, got {v!r}")
        return x

    def _upload(self, req: dict, field: str, required: bool) -> Upload | None:
        v = req.get(field)
        if v is None or v == "" or isinstance(v, Upload) and not v.data:
            if required:
                raise HTTPError(400, f"{field} is missing; send a PNG, JPEG or WebP image "
                                     f"(JSON: a data:image/png;base64,... URL; multipart: a file field {field!r})")
            return None
        if isinstance(v, Upload):
            return v
        if not isinstance(v, str):
            raise HTTPError(400, f"{field} must be a data URL string like data:image/png;base64,..., "
                                 f"got {type(v).__name__}")
        declared = None
        if v.startswith("data:"):
            head, sep, v = v.partition(",")
            if not sep or not head.endswith(";base64"):
                raise HTTPError(400, f"{field} must be a base64 data URL (data:image/png;base64,...)")
            declared = head[5:-7].strip().lower() or None
        limit = self.config.max_upload_bytes
        if len(v) * 3 // 4 > limit + 2:
            raise HTTPError(413, f"{field} is about {_mib(len(v) * 3 // 4)}, over the upload limit of {_mib(limit)}; "
                                 "downscale or compress it")
        try:
            data = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPError(400, f"{field} is not valid base64; send the file as a data URL "
                                 "(data:image/png;base64,...)") from None
        return Upload(data, declared, field)

    def _check_upload(self, up: Upload) -> None:
        limit = self.config.max_upload_bytes
        if len(up.data) > limit:
            raise HTTPError(413, f"{up.field} is {_mib(len(up.data))}, over the upload limit of {_mib(limit)}; "
                                 "downscale or compress it")
        kinds = ", ".join(IMAGE_TYPES.values())
        declared = (up.declared or "").split(";")[0].strip().lower()
        if declared and declared not in IMAGE_TYPES and declared != "application/octet-stream":
            raise HTTPError(415, f"{up.field} has type {declared!r}; only {kinds} images are accepted: "
                                 "convert it to PNG")
        if sniff_type(up.data) is None:
            raise HTTPError(415, f"{up.field} is not a {kinds} file (its first bytes match none of them); "
                                 "convert it to PNG")

    def decode_image(self, up: Upload) -> np.ndarray:
        self._check_upload(up)
        try:
            return load_image(up.data, max_pixels=self.config.max_pixels)
        except ImageInputError as e:
            msg = str(e).replace("image bytes", up.field)
            raise HTTPError(413 if "max_pixels" in msg else 400, msg) from e

    def decode_mask(self, up: Upload, hw: tuple[int, int]) -> np.ndarray:
        """A user mask: white (or any bright, opaque paint) = edit; transparent = keep."""
        self._check_upload(up)
        try:
            m = load_image(up.data, max_pixels=self.config.max_pixels, alpha="black")
        except ImageInputError as e:
            raise HTTPError(413 if "max_pixels" in str(e) else 400, str(e).replace("image bytes", "mask")) from e
        if m.shape[:2] != hw:
            raise HTTPError(400, f"mask is {m.shape[1]}x{m.shape[0]} but the image is {hw[1]}x{hw[0]}; "
                                 "send a mask of the image's size")
        return m.mean(-1) > 127

    def _describe(self, instruction: str) -> tuple[dict, Any]:
        """Target description and local prompt for the region preview (the editor's describer), and the
        :class:`~regionedit.describe.Description` itself (None when the describer failed)."""
        try:
            d = self.editor.describer(instruction, None)
            return {"target_description": d.target_description, "local_prompt": d.local_prompt,
                    "understood": d.intent is not None and not d.error, "describe_error": d.error}, d
        except Exception as e:  # noqa: BLE001 - the preview works without a description
            log.warning("describer failed: %s", e)
            return {"target_description": "", "local_prompt": "", "understood": False, "describe_error": str(e)}, None

    def _png_with_metadata(self, image: np.ndarray, meta: dict[str, str], mask: np.ndarray) -> bytes:
        """The result PNG as ``regionedit edit`` writes it (save_png: metadata + mask), via our temp folder."""
        path = os.path.join(self._tmp.name, f"{secrets.token_hex(8)}.png")
        try:
            save_png(path, image, meta, mask=mask, compress_level=3)
            with open(path, "rb") as f:
                return f.read()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _model_error(editor, e: OSError) -> HTTPError:
    log.error("model failed to load: %s", e)
    return HTTPError(500, f"model {editor.models.model_id!r} could not be loaded ({e}); restart the server with "
                          "--model <a complete model folder>")


# ------------------------------------------------------------------------------------------------
# HTTP transport


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


class Handler(BaseHTTPRequestHandler):
    server_version = "regionedit-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    app: WebApp  # set on the subclass made by make_server

    GET_ROUTES = {"/api/info": "info", "/api/samples": "samples"}
    POST_ROUTES = {"/api/image": "normalize", "/api/region": "region", "/api/edit": "edit"}

    def setup(self):
        self.timeout = self.app.config.socket_timeout
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    # -- responses ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Frame-Options", "DENY")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json; charset=utf-8", headers)

    def _error(self, e: HTTPError) -> None:
        self._json(e.status, {"error": e.message, "status": e.status}, e.headers)

    def _route(self) -> str:
        """The request path without query or fragment, as sent (never normalised, never a file path)."""
        return self.path.split("?", 1)[0].split("#", 1)[0]

    # -- methods -----------------------------------------------------------------------------------
    def do_GET(self):
        try:
            path = self._route()
            static = self.app.static(path)
            if static is not None:
                return self._send(200, static[0], static[1])
            name = self.GET_ROUTES.get(path)
            if name is None:
                if path in self.POST_ROUTES:
                    raise HTTPError(405, f"{path} takes POST", {"Allow": "POST"})
                raise HTTPError(404, f"no such page: {path[:200]!r}")
            self._json(200, getattr(self.app, name)())
        except HTTPError as e:
            self._error(e)
        except Exception:  # noqa: BLE001
            self._internal()

    do_HEAD = do_GET

    def do_POST(self):
        try:
            path = self._route()
            name = self.POST_ROUTES.get(path)
            if name is None:
                self._discard_body()
                if path in self.GET_ROUTES or self.app.static(path):
                    raise HTTPError(405, f"{path} takes GET", {"Allow": "GET"})
                raise HTTPError(404, f"no such endpoint: {path[:200]!r}")
            self._check_origin()
            body = self._read_body()
            req = parse_body(self.headers.get("Content-Type", ""), body)
            self._json(200, getattr(self.app, name)(req))
        except HTTPError as e:
            self._error(e)
        except Exception:  # noqa: BLE001
            self._internal()

    def _method_not_allowed(self):
        self._discard_body()
        self._error(HTTPError(405, f"method {self.command} is not supported; use GET or POST", {"Allow": "GET, POST"}))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _internal(self):
        log.error("internal error on %s %s\n%s", self.command, self.path[:200], traceback.format_exc())
        self.close_connection = True
        with contextlib.suppress(Exception):
            self._json(500, {"error": "internal server error (see the server log)", "status": 500})

    def _check_origin(self):
        """Refuse cross-site POSTs (a page elsewhere posting forms to this local server)."""
        origin = self.headers.get("Origin")
        if origin and origin != "null":
            host = self.headers.get("Host", "")
            if urlsplit(origin).netloc.lower() != host.lower():
                self._discard_body()
                raise HTTPError(403, f"cross-origin request from {origin[:100]!r} refused; use the page this server serves")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HTTPError(411, "chunked request bodies are not supported; send a Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True
            raise HTTPError(411, "Content-Length header required")
        try:
            n = int(raw)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise HTTPError(400, f"bad Content-Length {raw[:40]!r}") from None
        limit = self.app.config.max_request_bytes
        if n > limit:
            self.close_connection = True
            self._drain(n)
            raise HTTPError(413, f"request is {_mib(n)}, over the limit of {_mib(limit)} "
                                 f"(images up to {_mib(self.app.config.max_upload_bytes)} each); downscale or compress the image")
        body = self.rfile.read(n)
        if len(body) != n:
            self.close_connection = True
            raise HTTPError(400, f"request body ended after {len(body)} of {n} bytes")
        return body

    def _discard_body(self) -> None:
        """Drop the body of a refused request and close the connection afterwards."""
        self.close_connection = True
        with contextlib.suppress(ValueError, TypeError):
            self._drain(int(self.headers.get("Content-Length", 0)))

    def _drain(self, n: int, cap: int = 256 * MB) -> None:
        """Read and drop a refused body (up to ``cap``) so the client sees the 413 and not a reset."""
        left = min(n, cap)
        with contextlib.suppress(OSError):
            while left > 0:
                chunk = self.rfile.read(min(left, MB))
                if not chunk:
                    break
                left -= len(chunk)


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    app: WebApp

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def server_close(self):
        super().server_close()
        self.app.close()


def make_server(editor, host: str = "127.0.0.1", port: int = 7860, config: WebConfig | None = None) -> WebServer:
    """A ready (not yet serving) server around ``editor``; ``port=0`` picks a free port (see ``.url``).

    Run it with ``server.serve_forever()``; stop with ``server.shutdown()`` then ``server.server_close()``.
    """
    app = WebApp(editor, config)
    handler = type("BoundHandler", (Handler,), {"app": app})
    try:
        server = WebServer((host, port), handler)
    except BaseException:
        app.close()
        raise
    server.app = app
    return server
