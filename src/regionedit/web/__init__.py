"""``regionedit serve``: a Gradio web UI over the public Editor API, behind a small ASGI guard.

* :mod:`~regionedit.web.handlers` - what the UI's events run (:class:`WebHandlers`, :class:`WebConfig`), no Gradio;
* :mod:`~regionedit.web.state` - a browser session's state (:class:`Session`, :class:`Turn`), :class:`UIError`;
* :mod:`~regionedit.web.methods` - the Method picker's editors (regionedit or a bundled seed method);
* :mod:`~regionedit.web.app` - the ``gr.Blocks`` page (:func:`build_app`);
* :mod:`~regionedit.web.security` - :class:`WebGuard` (Host allow-list, same-origin only, bounded bodies) and the
  pixel budget read from an upload's header (:func:`check_image_header`);
* :mod:`~regionedit.web.server` - :func:`make_asgi_app` (the page mounted behind the guard) and :func:`make_server`.

>>> from regionedit.pipeline import Editor
>>> from regionedit.web import make_server
>>> server = make_server(Editor.from_pretrained("shapes-64"), port=7860)  # doctest: +SKIP
>>> server.serve_forever()  # doctest: +SKIP  (open server.url in a browser)

Gradio is an optional dependency (``pip install 'regionedit[web]'``): the handlers and the guard import without it;
:func:`build_app`, :func:`make_asgi_app`, :func:`make_server` and :class:`WebServer` need it.
"""

from regionedit.web.handlers import Session, Turn, UIError, WebConfig, WebHandlers
from regionedit.web.security import IMAGE_TYPES, ImageRefused, WebGuard, check_image_header

_GRADIO = {"build_app": "regionedit.web.app", "make_asgi_app": "regionedit.web.server",
           "make_server": "regionedit.web.server", "WebServer": "regionedit.web.server"}

__all__ = ["IMAGE_TYPES", "ImageRefused", "Session", "Turn", "UIError", "WebConfig", "WebGuard", "WebHandlers",
           "WebServer", "build_app", "check_image_header", "make_asgi_app", "make_server"]


def __getattr__(name):
    if name in _GRADIO:
        import importlib

        return getattr(importlib.import_module(_GRADIO[name]), name)
    raise AttributeError(f"module 'regionedit.web' has no attribute {name!r}")
