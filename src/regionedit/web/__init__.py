"""``regionedit serve``: a local web UI (JSON API + one static page) over the public Editor API.

>>> from regionedit.pipeline import Editor
>>> from regionedit.web import make_server
>>> server = make_server(Editor.from_pretrained("shapes-64"), port=7860)
>>> server.serve_forever()  # open server.url in a browser
"""

from .server import IMAGE_TYPES, HTTPError, WebApp, WebConfig, WebServer, WorkQueue, make_server

__all__ = ["IMAGE_TYPES", "HTTPError", "WebApp", "WebConfig", "WebServer", "WorkQueue", "make_server"]
