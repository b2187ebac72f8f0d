"""Serving the Gradio UI: :func:`make_asgi_app` mounts a ``gr.Blocks`` on a FastAPI app guarded by
:class:`~regionedit.web.security.WebGuard`; :class:`WebServer` runs it with uvicorn on a bound socket (in this
thread with :meth:`WebServer.serve_forever`, or in a background thread with :meth:`WebServer.start`).

Why not ``Blocks.launch()``: it starts its own uvicorn server on Gradio's FastAPI app with no place for a
middleware that refuses requests (Gradio's CORS middleware only withholds CORS headers), and no connection limit.
``gr.mount_gradio_app`` onto our own FastAPI app puts :class:`WebGuard` in front of every route, and our uvicorn
``Config`` bounds connections (``limit_concurrency``), keep-alive and header sizes.

>>> from regionedit.pipeline import Editor
>>> from regionedit.web import make_server
>>> server = make_server(Editor.from_pretrained("shapes-64"), port=7860)  # doctest: +SKIP
>>> server.serve_forever()  # doctest: +SKIP  (open server.url in a browser)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
import time

import fastapi
import gradio as gr
import uvicorn

from regionedit.web.app import build_app, theme
from regionedit.web.handlers import WebConfig
from regionedit.web.security import WebGuard

log = logging.getLogger("regionedit.web")

__all__ = ["WebServer", "bind", "make_asgi_app", "make_server"]


def make_asgi_app(blocks: gr.Blocks, config: WebConfig | None = None, host: str = "127.0.0.1",
                  port: int = 7860) -> fastapi.FastAPI:
    """The ASGI app to serve: ``blocks`` mounted at ``/`` on a FastAPI app whose outermost middleware is
    :class:`WebGuard` (Host allow-list: localhost names + ``config.allowed_hosts``; same-origin only; bounded
    bodies). Also usable with ``starlette.testclient.TestClient``."""
    if config is None:
        config = blocks.handlers.config if hasattr(blocks, "handlers") else WebConfig()
    app = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    hosts = list(config.allowed_hosts)
    if host not in ("0.0.0.0", "::", ""):
        hosts.append(host)  # the address the server listens on names it too
    app.add_middleware(WebGuard, allowed_hosts=hosts, max_body_bytes=config.max_body_bytes)
    options = dict(server_name=host, server_port=port, max_file_size=config.max_upload_bytes, show_error=False,
                   footer_links=["gradio"], run_history=False, enable_monitoring=False, pwa=False, ssr_mode=False,
                   mcp_server=False, theme=theme())
    accepted = inspect.signature(gr.mount_gradio_app).parameters  # options a 6.x release may lack: skipped
    gr.mount_gradio_app(app, blocks, path="/", **{k: v for k, v in options.items() if k in accepted})
    # Gradio checks that the files named in a request were uploaded to it (not any path on the disk) only once
    # its Blocks has "launched"; a mounted Blocks never launches, so say it has (tests/test_web.py checks that a
    # request naming /etc/passwd is refused).
    blocks.has_launched = True
    return app


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class WebServer:
    """uvicorn serving an ASGI app on a bound socket (see :func:`bind`; :attr:`url` names it)."""

    def __init__(self, app, sock: socket.socket, config: WebConfig | None = None, blocks: gr.Blocks | None = None):
        self.config = config or WebConfig()
        self.blocks = blocks
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.uvicorn = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", lifespan="on", ws="none", proxy_headers=False, server_header=False,
            limit_concurrency=self.config.max_connections, backlog=self.config.max_connections,
            timeout_keep_alive=5, timeout_graceful_shutdown=2, h11_max_incomplete_event_size=64 * 1024))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`shutdown` (or Ctrl-C)."""
        self.uvicorn.run(sockets=[self.socket])

    def start(self, timeout: float = 60.0) -> "WebServer":
        """Serve in a daemon thread; returns once the server accepts requests."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self.uvicorn.serve(sockets=[self.socket])),
                                        name="regionedit-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def shutdown(self) -> None:
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(15)

    def server_close(self) -> None:
        self.socket.close()
        if self.blocks is not None and getattr(self.blocks, "handlers", None) is not None:
            self.blocks.handlers.close()

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def make_server(editor, host: str = "127.0.0.1", port: int = 7860, config: WebConfig | None = None) -> WebServer:
    """A ready (not yet serving) server around ``editor``: the Gradio UI (:func:`build_app`) behind
    :class:`WebGuard`, bound to ``host:port`` (``port=0`` picks a free port; see ``.url``)."""
    config = config or WebConfig()
    sock = bind(host, port, config.max_connections)
    try:
        blocks = build_app(editor, config)
        app = make_asgi_app(blocks, config, host, sock.getsockname()[1])
    except BaseException:
        sock.close()
        raise
    return WebServer(app, sock, config, blocks)
