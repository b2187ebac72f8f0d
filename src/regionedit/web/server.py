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

Code: :mod:`.app` (the API, :class:`WebApp`, :class:`WebConfig`), :mod:`.transport` (HTTP handler, server,
:func:`make_server`), :mod:`.protocol` (request bodies, uploads, errors, PNG data URLs) and :mod:`.work_queue`;
this module re-exports their names.
"""

from regionedit.web.app import STATIC, WebApp, WebConfig  # noqa: F401
from regionedit.web.protocol import (IMAGE_TYPES, MB, OVERLAY_COLOR, HTTPError, Upload, data_url, mib,  # noqa: F401
                                     overlay, parse_body, png_bytes, sniff_type)
from regionedit.web.transport import CSP, Handler, WebServer, make_server  # noqa: F401
from regionedit.web.work_queue import WorkQueue  # noqa: F401
