"""What the web UI's events run, without Gradio: :class:`WebHandlers` (plain Python on numpy images and a
:class:`Session`, callable without a browser or a server) and :class:`WebConfig` (the limits). The Gradio page
around them: :func:`regionedit.web.app.build_app`.

Every image a client sends is checked from its header (type, bytes, pixels:
:func:`~regionedit.web.security.check_image_header`) inside the queue, before a pixel is decoded; Gradio's own
decoding is switched off for the events that take images (``preprocess=False``), so no upload is decoded anywhere
else. Network-level protection (Host allow-list,
cross-origin refusal, bounded bodies): :mod:`regionedit.web.security`; serving: :mod:`regionedit.web.server`.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import logging
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from regionedit.io import DEFAULT_MAX_PIXELS, ImageInputError, load_image, save_png, validate_instruction
from regionedit.web.methods import REGIONEDIT, MethodLoadError, SeedMethods
from regionedit.web.security import MB, ImageRefused, check_image_header
from regionedit.web.state import (  # Session, Turn, UIError stay importable from here (web/__init__, app)
    Session, Turn, UIError, _float, _int, _resize_mask, overlay, region_layer)

log = logging.getLogger("regionedit.web")

EXAMPLE_CATEGORIES = ("color", "remove", "local", "size", "add", "background")


OWN_LOCALIZER = "model's own"
REGION_FROM = ("auto", "found", "painted")  # where an edit's region comes from (the page's method choice)


@dataclasses.dataclass
class WebConfig:
    max_pixels: int = DEFAULT_MAX_PIXELS  # width * height of an upload, read from its header before decoding
    max_upload_bytes: int = 20 * MB  # per uploaded file (Gradio's max_file_size and our own check)
    concurrency: int = 1  # events using the model at once (Gradio's default_concurrency_limit)
    max_queue: int = 8  # events waiting in Gradio's queue (max_size); one more is refused "queue full"
    max_connections: int = 128  # open HTTP connections (uvicorn's limit_concurrency); more get 503
    max_sessions: int = 64  # browser sessions whose state (images, history) is kept in memory
    max_history: int = 16  # undo steps kept per session
    max_history_mb: int = 256  # images kept for undo per session (the oldest steps are dropped first)
    max_steps: int = 100
    max_guidance: float = 30.0
    examples: int = 6  # shapes-world scenes offered as examples
    allowed_hosts: tuple[str, ...] = ()  # Host names allowed besides localhost, 127.0.0.1 and ::1
    localizers: tuple[str, ...] = ()  # more localizer specs the page offers beside the model's own (loaded on first use)

    @property
    def max_body_bytes(self) -> int:
        """Limit on any request body: one file plus room for the form fields."""
        return self.max_upload_bytes + MB


# ------------------------------------------------------------------------------------------------
# the handlers


class WebHandlers:
    """What the UI's events run, over one editor. ``on_*`` methods take the session and the raw event values
    and return ``{output name: value}`` (the names :func:`build_app` maps to components); they raise
    :class:`UIError` for a refusal. The model is only called from :meth:`on_find_region` and :meth:`on_edit`."""

    def __init__(self, editor, config: WebConfig | None = None, upload_roots: list[str | Path] | None = None):
        self.editor = editor
        self.config = config or WebConfig()
        self._tmp = tempfile.mkdtemp(prefix="regionedit-web-")  # result PNGs are written only here
        self._pngs: collections.deque[str] = collections.deque()
        self._png_lock = threading.Lock()
        self.upload_roots = [Path(r).resolve() for r in (upload_roots or [])]
        self.paint_component = None  # the gr.ImageEditor, for its blob storage (set by build_app)
        self._examples = None
        self._examples_lock = threading.Lock()
        # the localizer backends the page offers: the editor's own, then config.localizers (loaded on first use);
        # an event swaps its choice in under a lock, so concurrent events never see another's backend
        self.localizer_names = ([OWN_LOCALIZER] if editor.localizer is not None else []) + list(self.config.localizers)
        self._localizers: dict[str, Any] = {OWN_LOCALIZER: editor.localizer}
        self._swap_lock = threading.RLock()
        # the Method menu: "regionedit" (the editor) and the seed methods whose files are in the model folder
        # (built on first use, under the same lock)
        self.methods = SeedMethods.for_editor(editor)

    def _localizer(self, name):
        """The localizer backend called ``name`` (None or "": the editor's own), loaded on first use."""
        if not name or name == OWN_LOCALIZER:
            return self.editor.localizer
        if name not in self.config.localizers:
            raise UIError(f"unknown localizer {name!r}; choose one of {self.localizer_names}")
        if name not in self._localizers:
            from regionedit.pipeline.components import resolve_localizer

            ed = self.editor
            try:
                self._localizers[name] = resolve_localizer(name, ed.models, ed.region_predictor, None, None)[0]
            except (OSError, ValueError) as e:
                raise UIError(f"localizer {name!r} could not be loaded: {e}") from None
        return self._localizers[name]

    @contextlib.contextmanager
    def _using(self, localizer_name):
        """Run the editor with the chosen localizer backend (restored afterwards)."""
        with self._swap_lock:
            ed = self.editor
            own = ed.localizer
            ed.localizer = self._localizer(localizer_name)
            try:
                yield ed
            finally:
                ed.localizer = own

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- decoding uploads (header first) -----------------------------------------------------------
    def _file_path(self, value) -> str:
        """The server-side path of an uploaded file (a Gradio FileData dict or a path), which must lie in
        Gradio's upload folder: a client names files by path, so any other path is refused."""
        path = value.get("path") if isinstance(value, dict) else value
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise UIError("the upload is missing its file; upload the image again")
        real = Path(path).resolve()
        if not any(real.is_relative_to(root) for root in self.upload_roots):
            log.warning("refused a file outside the upload folder: %r", str(path)[:200])
            raise UIError("that file was not uploaded to this server; upload the image again")
        return str(real)

    def decode_upload(self, value, what: str = "the image", alpha: str = "white") -> np.ndarray:
        """An uploaded image (FileData dict, path in the upload folder, bytes, or an array from Python) as an
        ``(H, W, 3)`` uint8 array (``(H, W, 4)`` with ``alpha="keep"`` on transparent images); the header is
        checked against the limits before anything is decoded."""
        c = self.config
        if isinstance(value, np.ndarray):
            if value.ndim >= 2 and value.shape[0] * value.shape[1] > c.max_pixels:
                raise UIError(f"{what} is {value.shape[1]} x {value.shape[0]} pixels, over this server's limit of "
                              f"{c.max_pixels:,} pixels")
            data = value
        else:
            data = value if isinstance(value, (bytes, bytearray)) else self._file_path(value)
            try:
                check_image_header(data, c.max_pixels, c.max_upload_bytes, what)
            except ImageRefused as e:
                raise UIError(str(e)) from None
        try:
            return load_image(bytes(data) if isinstance(data, bytearray) else data, max_pixels=c.max_pixels,
                              alpha=alpha)
        except ImageInputError as e:
            raise UIError(str(e).replace("image bytes", what)) from None

    def paint_mask(self, paint, hw: tuple[int, int]) -> np.ndarray | None:
        """The region painted on the ImageEditor (any paint on its layers), at the image's size; None when nothing
        is painted. ``paint``: the editor's raw value (``{"background", "layers", "composite", "id"}`` with
        FileData or, from Python, arrays), a bool mask, or None."""
        if paint is None:
            return None
        if isinstance(paint, np.ndarray):
            layers = [paint]
        elif isinstance(paint, dict):
            layers = list(paint.get("layers") or [])
            pid = paint.get("id")
            storage = getattr(self.paint_component, "blob_storage", None)
            if pid is not None and storage is not None:
                blobs = storage.pop(pid, None)
                if blobs is not None:
                    layers = [b for b in blobs.layers if b]
        else:
            raise UIError("the painted region could not be read; clear it and paint again")
        mask = None
        for layer in layers[:8]:
            if layer is None:
                continue
            if isinstance(layer, np.ndarray) and layer.dtype == bool:
                m = layer
            else:
                arr = self.decode_upload(layer, "the painted region", alpha="keep")
                m = arr[..., 3] > 0 if arr.shape[-1] == 4 else arr.max(-1) > 0
            if m.shape != hw:
                if abs(m.shape[0] / m.shape[1] - hw[0] / hw[1]) > 0.02:
                    raise UIError(f"the painted region is {m.shape[1]}x{m.shape[0]} but the image is {hw[1]}x{hw[0]}; "
                                  "clear the paint and paint again")
                m = _resize_mask(m, hw)
            mask = m if mask is None else (mask | m)
        return mask if mask is not None and mask.any() else None

    # -- examples ------------------------------------------------------------------------------------
    def examples(self) -> list[tuple[np.ndarray, str]]:
        """``(image, instruction)`` of the shapes-world examples (rendered once)."""
        with self._examples_lock:
            if self._examples is None:
                from regionedit.world import sample_edit

                self._examples = []
                for i in range(self.config.examples):
                    s = sample_edit(1000 + i, 0, category=EXAMPLE_CATEGORIES[i % len(EXAMPLE_CATEGORIES)])
                    self._examples.append((s.source, s.instruction))
        return self._examples

    # -- views ---------------------------------------------------------------------------------------
    def _editor_value(self, session: Session, region: np.ndarray | None = None) -> dict | None:
        if session.source is None:
            return None
        layers = [region_layer(region)] if region is not None and region.any() else []
        return {"background": session.source, "layers": layers, "composite": None}

    def _history(self, session: Session) -> str:
        return "\n".join(session.history)

    def _result_outputs(self, session: Session) -> dict[str, Any]:
        t = session.result
        if t is None:
            return {"result": None, "result_region": None, "download": None}
        return {"result": t.image, "result_region": overlay(t.source, t.mask), "download": t.png}

    def _source_outputs(self, session: Session, status: str) -> dict[str, Any]:
        out = {"session": session, "source": session.source, "paint": self._editor_value(session),
               "region": None, "status": status, "history": self._history(session)}
        out.update(self._result_outputs(session))
        return out

    # -- events --------------------------------------------------------------------------------------
    def on_upload(self, session: Session, upload) -> dict[str, Any]:
        """A new source image: checked from its header, decoded, and the session starts over."""
        session = copy.copy(session)
        if upload is None:
            return {"session": session, "status": "upload a PNG, JPEG or WebP image"}
        img = self.decode_upload(upload, "the image")
        name = upload.get("orig_name") if isinstance(upload, dict) else None
        session = Session(source=img, name=str(name or "upload")[:100])
        return self._source_outputs(session, f"loaded {session.name}: {img.shape[1]}x{img.shape[0]}; type an "
                                             "instruction and press Edit (or Find region first)")

    def on_clear_source(self, session: Session) -> dict[str, Any]:
        """The source image was removed in the page: the session starts over, empty."""
        return self._source_outputs(Session(), "upload an image (or pick an example)")

    def on_example(self, session: Session, index: int) -> dict[str, Any]:
        ex = self.examples()
        i = _int(index, "example", 0, 0, len(ex) - 1)
        img, instruction = ex[i]
        session = Session(source=img.copy(), name=f"example {i + 1}")
        out = self._source_outputs(session, f"loaded example {i + 1}: {img.shape[1]}x{img.shape[0]}; press Edit")
        out["instruction"] = instruction
        return out

    def _need_source(self, session: Session) -> np.ndarray:
        if session is None or session.source is None:
            raise UIError("upload an image first (or pick an example)")
        return session.source

    def _instruction(self, text) -> str:
        if text is None or (isinstance(text, str) and not text.strip()):
            raise UIError("type an instruction first, e.g. 'remove the red circle'")
        try:
            return validate_instruction(text)
        except ImageInputError as e:
            raise UIError(str(e)) from None

    def on_find_region(self, session: Session, instruction, progress=None, localizer=None) -> dict[str, Any]:
        with self._using(localizer):
            return self._find_region(session, instruction, progress)

    def _find_region(self, session: Session, instruction, progress=None) -> dict[str, Any]:
        """The region the editor would edit for ``instruction``: shown as an overlay and loaded on the brush
        layer, where it can be corrected before Edit."""
        img = self._need_source(session)
        instruction = self._instruction(instruction)
        ed = self.editor
        if ed.localizer is None:
            raise UIError(f"model {ed.model_id!r} has no localizer, so it cannot find the region by itself: paint "
                          "the region with the brush and press Edit (or restart with --localizer)")
        if progress is not None:
            progress(0.1, desc="finding the region")
        try:
            region, _prob = ed.find_region(img, instruction)
        except (RuntimeError, ValueError) as e:
            raise UIError(str(e)) from None
        except OSError as e:
            raise UIError(f"model {ed.model_id!r} could not be loaded ({e}); restart the server with a complete "
                          "--model") from None
        session = copy.copy(session)
        session.region = region
        frac = float(region.mean())
        if frac < ed.config.min_region_frac:
            why = "no region found"
            try:
                why = ed.no_region_reason(ed.describer(instruction))
            except Exception:  # noqa: BLE001 - the message is a courtesy
                pass
            status = f"{why} (paint the region yourself to edit anyway)"
        else:
            status = (f"region: {int(region.sum())} px ({100 * frac:.1f}% of the image), shown on the brush layer: "
                      "correct it with the brush / eraser, then press Edit (Clear paint for a mask-free edit)")
        return {"session": session, "region": overlay(img, region), "paint": self._editor_value(session, region),
                "status": status}

    def on_edit(self, session: Session, instruction, paint=None, seed=0, steps=None, guidance=None,
                progress=None, localizer=None, region_from: str = "auto", method: str = REGIONEDIT) -> dict[str, Any]:
        """Edit the current source. ``region_from``: "auto" (the painted region when there is paint, else found
        mask-free), "found" (mask-free from the instruction, the paint ignored) or "painted" (the painted region,
        required);
        ``localizer``: the backend that finds it (one of :attr:`localizer_names`). ``method``: "regionedit" (the
        editor) or a seed method of ``self.methods.choices`` (:meth:`_seed_edit`). The turn goes into the history
        (undo restores the state before it)."""
        if region_from not in REGION_FROM:
            raise UIError(f"unknown region choice {region_from!r}; choose one of {list(REGION_FROM)}")
        if method not in (None, "", REGIONEDIT):
            return self._seed_edit(session, instruction, paint, seed, steps, guidance, progress, method, localizer)
        if region_from == "found":
            paint = None
        with self._using(localizer):
            return self._edit(session, instruction, paint, seed, steps, guidance, progress, region_from)

    def _edit(self, session: Session, instruction, paint, seed, steps, guidance, progress,
              region_from: str) -> dict[str, Any]:
        c, ed = self.config, self.editor
        img = self._need_source(session)
        instruction = self._instruction(instruction)
        seed = _int(seed, "seed", 0, 0, 2**63 - 1)
        steps = _int(steps, "steps", ed.config.steps, 1, c.max_steps)
        guidance = _float(guidance, "guidance", ed.config.guidance, 0.0, c.max_guidance)
        mask = self.paint_mask(paint, img.shape[:2])
        if mask is None and region_from == "painted":
            raise UIError("'Region: painted' needs a painted region: paint it on the region editor, or choose "
                          "'found' to have it found from the instruction")
        if mask is None and ed.localizer is None:
            raise UIError(f"model {ed.model_id!r} has no localizer: paint the region to edit with the brush, then "
                          "press Edit again")
        if progress is not None:
            progress(0.05, desc="editing: finding the region" if mask is None else "editing the painted region")
        def step_cb(gen, i, t, kwargs):  # a bar that moves with the denoising steps (the generator's callback)
            progress(0.1 + 0.8 * (i + 1) / steps, desc=f"denoising step {i + 1} of {steps}")
            return kwargs

        try:
            res = ed(img, instruction, seed=seed, mask=mask, steps=steps, guidance=guidance,
                     callback_on_step_end=step_cb if progress is not None else None)
        except OSError as e:
            raise UIError(f"model {ed.model_id!r} could not be loaded ({e}); restart the server with a complete "
                          "--model") from None
        except (RuntimeError, ValueError) as e:  # ImageInputError included
            raise UIError(str(e)) from None
        return self._record(session, img, res, seed, steps, guidance, progress)

    def _seed_edit(self, session: Session, instruction, paint, seed, steps, guidance, progress, method: str,
                   localizer) -> dict[str, Any]:
        """Edit with seed method ``method`` (it finds its own region: the paint, the Region choice and the
        Localizer are not used, and the status says so when they were set). A method that cannot be loaded leaves
        the session as it was and says why in the status."""
        if method not in self.methods.choices:
            raise UIError(f"unknown method {method!r}; choose one of {self.methods.choices}")
        c = self.config
        img = self._need_source(session)
        instruction = self._instruction(instruction)
        seed = _int(seed, "seed", 0, 0, 2**63 - 1)
        steps = _int(steps, "steps", self.editor.config.steps, 1, c.max_steps)
        guidance = _float(guidance, "guidance", self.editor.config.guidance, 0.0, c.max_guidance)
        notes = []
        if self.paint_mask(paint, img.shape[:2]) is not None:
            notes.append(f"the painted region is not used: {method} finds its own region (choose Method "
                         f"'{REGIONEDIT}' to edit the painted region)")
        if localizer and localizer != OWN_LOCALIZER:
            notes.append(f"the Localizer choice is not used by {method}")
        if progress is not None:
            progress(0.05, desc=f"editing with {method}")
        with self._swap_lock:  # one model call at a time, as for the localizers
            try:
                res = self.methods.run(method, img, instruction, seed, steps, guidance)
            except MethodLoadError as e:
                return {"status": f"no edit: method {method!r} could not be loaded: {e}"}
            except ValueError as e:
                raise UIError(str(e)) from None
        return self._record(session, img, res, seed, steps, guidance, progress, notes)

    def _record(self, session: Session, img: np.ndarray, res, seed: int, steps: int, guidance: float, progress,
                notes: list[str] | None = None) -> dict[str, Any]:
        """An :class:`~regionedit.core.result.EditResult` on ``img`` as the session's new turn (PNG written when
        edited, undo point pushed) and the outputs showing it; ``notes`` go on the status's second line."""
        c = self.config
        if progress is not None:
            progress(0.95, desc="writing the PNG")
        meta = res.metadata()
        turn = Turn(res.instruction, res.status, res.reason, res.method, seed, steps, guidance, img, res.image,
                    res.mask, res.target_description, meta)
        if res.status == "edited":
            turn.png = self._write_png(res.image, meta, res.mask, len(session.history) + 1)
        session = copy.copy(session)
        session.push(c.max_history, c.max_history_mb * MB)
        session.result = turn
        session.history = [*session.history, turn.line(len(session.history) + 1)]
        if res.status == "edited":
            status = (f"edited ({res.method}): {int(res.mask.sum())} px changed"
                      + (f"; target: {res.target_description}" if res.target_description else "")
                      + (f"; note: {res.reason}" if res.reason else "")
                      + f" [{res.seconds:.1f} s]")
        else:
            status = f"no edit: {res.reason or 'nothing to edit'}"
        if notes:
            status += "\nnote: " + "; ".join(notes)
        out = {"session": session, "status": status, "history": self._history(session)}
        out.update(self._result_outputs(session))
        return out

    def on_use_result(self, session: Session) -> dict[str, Any]:
        """The last result becomes the new source (the next edit builds on it)."""
        if session is None or session.result is None or session.result.status != "edited":
            raise UIError("there is no edited result to use yet; press Edit first")
        session = copy.copy(session)
        session.push(self.config.max_history, self.config.max_history_mb * MB)
        session.source, session.result, session.region = session.result.image, None, None
        return self._source_outputs(session, "the result is the new source; type the next instruction")

    def on_undo(self, session: Session) -> dict[str, Any]:
        """Back to the state before the last edit or "use result"."""
        if session is None or not session.undo_stack:
            raise UIError("nothing to undo")
        session = copy.copy(session)
        session.undo_stack = list(session.undo_stack)
        session.source, session.result, n = session.undo_stack.pop()
        session.history = session.history[:n]
        session.region = None
        return self._source_outputs(session, f"undone; {len(session.undo_stack)} more step(s) to undo")

    def on_clear_paint(self, session: Session) -> dict[str, Any]:
        session = copy.copy(session)
        session.region = None
        return {"session": session, "paint": self._editor_value(session), "region": None}

    # -- files ---------------------------------------------------------------------------------------
    def _write_png(self, image: np.ndarray, meta: dict[str, str], mask: np.ndarray, n: int) -> str:
        """The result PNG as ``regionedit edit`` writes it (save_png: metadata + mask), in our temp folder; the
        oldest are deleted (Gradio keeps its own copy for the download)."""
        path = os.path.join(self._tmp, secrets.token_hex(6), f"regionedit-edit-{n}.png")
        os.makedirs(os.path.dirname(path))
        save_png(path, image, meta, mask=mask, compress_level=3)
        with self._png_lock:
            self._pngs.append(path)
            while len(self._pngs) > 4 * self.config.max_sessions:
                shutil.rmtree(os.path.dirname(self._pngs.popleft()), ignore_errors=True)
        return path
