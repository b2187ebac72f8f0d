"""The web UI's HTTP transport (standard library :class:`http.server.ThreadingHTTPServer`): routing, request
limits, security headers; :func:`make_server` builds a ready server around an editor."""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from regionedit.web.app import WebApp, WebConfig
from regionedit.web.protocol import MB, HTTPError, mib, parse_body

log = logging.getLogger("regionedit.web")

CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
       "connect-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


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
            raise HTTPError(413, f"request is {mib(n)}, over the limit of {mib(limit)} "
                                 f"(images up to {mib(self.app.config.max_upload_bytes)} each); downscale or compress the image")
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
