"""``regionedit serve``: the web UI (upload or pick an image, type an instruction, see the region, edit)."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web UI on a local port (upload, instruct, see the region, correct it, edit, chain edits)",
        description=(
            "Serve the regionedit web UI: upload an image (or pick a sample scene), type an instruction, see the "
            "predicted region over the image, correct it with a brush, generate, undo and chain edits. Results "
            "download as PNGs carrying the same provenance metadata as `regionedit edit`. One model instance "
            "serves every request; requests are queued (HTTP 503 when the queue is full). Binds to 127.0.0.1 by "
            "default: the page has no authentication, so only pass --host 0.0.0.0 on a trusted network."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--model", default="shapes-64", help="bundled model name, local folder or Hugging Face id")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted image file, in MB (default 20)")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096,
                   help="largest accepted image, width * height (default 4096*4096)")
    p.add_argument("--max-queue", type=int, default=8,
                   help="requests that may wait for the model at once; more get HTTP 503 (default 8)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-check", action="store_true",
                   help="start without the warm-up edit that loads every model component and checks it works")
    p.set_defaults(func=run)


def make_app_server(args):
    """The configured, not yet serving, :class:`regionedit.web.WebServer` for parsed ``args``."""
    from regionedit.pipeline import Editor
    from regionedit.web import WebConfig, make_server

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not 0 <= args.port <= 65535:
        raise SystemExit(f"--port must be 0..65535, got {args.port}")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.max_queue < 1:
        raise SystemExit("--max-upload-mb and --max-pixels must be positive and --max-queue at least 1")
    config = WebConfig(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                       max_queue=args.max_queue)
    try:
        editor = Editor.from_pretrained(args.model)
    except (OSError, ValueError) as e:
        raise SystemExit(f"could not load model {args.model!r}: {e}") from e
    try:
        return make_server(editor, args.host, args.port, config)
    except OSError as e:
        raise SystemExit(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); "
                         "is another server running there? pick another --port") from e


def check_editor(editor) -> str | None:
    """One tiny edit through the public API (a given mask, 1 step) on a world scene: loads every model
    component up front, so a missing one is reported now and the first real request is fast.
    Returns an error message, or None when the editor works."""
    import numpy as np

    from regionedit.world import sample_edit

    s = sample_edit(0, 0)
    mask = np.zeros(s.source.shape[:2], bool)
    mask[16:48, 16:48] = True
    try:
        editor(s.source, "remove the red circle", mask=mask, steps=1)
        if editor.region_predictor is not None:
            editor.predict_region(s.source, "remove the red circle")
    except Exception as e:  # noqa: BLE001 - any failure means the server cannot edit
        return f"{type(e).__name__}: {e}"
    return None


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_app_server(args)
    app = server.app
    if not args.no_check:
        err = check_editor(app.editor)
        if err:
            server.server_close()
            print(f"error: model {args.model!r} cannot edit images: {err}\n"
                  "give a complete model folder with --model (e.g. one written by `regionedit train`), "
                  "or pass --no-check to start anyway", file=sys.stderr)
            return 1
    print(f"regionedit web UI for model {app.editor.model_id!r} on {server.url}  (Ctrl-C to stop)", flush=True)
    if app.editor.region_predictor is None:
        print("note: this model has no region predictor: paint the region with the brush before generating",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        server.server_close()
    return 0
