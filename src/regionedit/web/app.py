"""The web UI's application: the JSON API over one :class:`~regionedit.pipeline.Editor`
(:class:`WebApp`, transport-independent: :mod:`regionedit.web.transport` only moves bytes), its limits
(:class:`WebConfig`) and the static files it serves. Endpoints: see :mod:`regionedit.web.server`."""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import importlib.resources
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from typing import Any

import numpy as np

from regionedit.io import DEFAULT_MAX_PIXELS, ImageInputError, load_image, save_png, validate_instruction
from regionedit.web.protocol import IMAGE_TYPES, MB, HTTPError, Upload, data_url, mib, overlay, png_bytes, sniff_type
from regionedit.web.work_queue import WorkQueue

log = logging.getLogger("regionedit.web")

# url path -> (file in regionedit/web/static, content type): the only files the server ever serves
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}


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


# ------------------------------------------------------------------------------------------------
# the application (transport-independent: the handler in transport.py only moves bytes)


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
            "model": ed.model_id,
            "region_predictor": ed.localizer is not None,
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
        if ed.localizer is None:
            raise HTTPError(409, f"model {ed.model_id!r} has no region predictor, so it cannot find the region "
                                 "by itself: paint the region with the brush and press Generate")
        info, desc = self._describe(instruction)
        t_wait = time.perf_counter()
        with self.queue.slot():
            t0 = time.perf_counter()
            try:
                mask, prob = ed.find_region(img, instruction, desc)
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
        if mask is None and ed.localizer is None:
            raise HTTPError(409, f"model {ed.model_id!r} has no region predictor: paint the region to edit "
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
            raise HTTPError(413, f"{field} is about {mib(len(v) * 3 // 4)}, over the upload limit of {mib(limit)}; "
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
            raise HTTPError(413, f"{up.field} is {mib(len(up.data))}, over the upload limit of {mib(limit)}; "
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
                    "understood": (d.intent is not None or d.operation is not None) and not d.error, "describe_error": d.error}, d
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
    return HTTPError(500, f"model {editor.model_id!r} could not be loaded ({e}); restart the server with "
                          "--model <a complete model folder>")
