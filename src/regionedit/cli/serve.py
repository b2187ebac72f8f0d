"""``regionedit serve``: the Gradio web UI (upload or pick an example, type an instruction, see the region, correct
it with the brush, edit, chain and undo edits, download the PNG with its provenance). Needs ``pip install
'regionedit[web]'`` (Gradio); docs/web.md describes the flags and the security measures."""

from __future__ import annotations

import sys

from regionedit.cli.main import positive_int
from regionedit.io.loading import DEFAULT_MAX_PIXELS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web UI on a local port (upload, instruct, see the region, correct it, edit, chain edits)",
        description=(
            "Serve the regionedit web UI (Gradio): upload an image (or pick an example scene), type an instruction, "
            "see the predicted region over the image, correct it with the brush, edit, undo and chain edits. Results "
            "download as PNGs carrying the same provenance metadata as `regionedit edit`. One model instance serves "
            "every request through Gradio's queue (--concurrency at once, --max-queue waiting). Binds to 127.0.0.1 "
            "and answers only requests addressed to localhost names (add others with --allowed-hosts) coming from "
            "its own page: the UI has no authentication, so only pass --host 0.0.0.0 on a trusted network."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--model", default=None,
                   help="model folder: bundled name, local folder or Hugging Face id (default shapes-64, the bundled "
                        "shapes-world models, unless --generator is given)")
    g = p.add_argument_group("components (as in `regionedit edit`)")
    g.add_argument("--generator", default=None, help="a diffusers inpainting pipeline, id or folder")
    g.add_argument("--localizer", default=None,
                   help="learned, learned:FOLDER, clipseg:ID_OR_FOLDER, owlv2:ID[+sam:ID], gdino:ID[+sam:ID], sam3:ID")
    g.add_argument("--extra-localizer", action="append", default=[], metavar="SPEC",
                   help="another localizer the page offers in its Localizer menu (repeatable; same forms as "
                        "--localizer, loaded on first use), e.g. clipseg:CIDAS/clipseg-rd64-refined")
    g.add_argument("--describer", default=None, help="grammar, or a chat LM / VLM id or folder")
    g.add_argument("--clip", default=None, help="CLIP id or folder the learned localizer reads (default: the folder's)")
    g.add_argument("--instruction-encoder", default=None,
                   help="T5 encoder id or folder the learned localizer reads (default: the folder's)")
    g.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"], help="precision of every component")
    g.add_argument("--device", default=None, help="device of every component: cpu, cuda, cuda:1, mps (default cpu)")
    s = p.add_argument_group("limits and security")
    s.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse uploads with more than this many pixels, width * height, read from the file header "
                        f"before decoding (default {DEFAULT_MAX_PIXELS:,})")
    s.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted file, in MB (default 20)")
    s.add_argument("--concurrency", type=positive_int, default=1,
                   help="requests using the model at once (Gradio's default_concurrency_limit; default 1)")
    s.add_argument("--max-queue", type=positive_int, default=8,
                   help="requests that may wait in Gradio's queue; more are refused 'queue full' (default 8)")
    s.add_argument("--max-connections", type=positive_int, default=128,
                   help="open HTTP connections; more get HTTP 503 (default 128; each browser tab holds one or two)")
    s.add_argument("--allowed-hosts", nargs="+", default=[], metavar="HOST",
                   help="Host names accepted besides localhost, 127.0.0.1 and ::1 (and the --host address): the "
                        "names this machine is reached by when serving on a network")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-check", action="store_true",
                   help="start without the warm-up edit that loads every model component and checks it works")
    p.set_defaults(func=run)


def _config(args):
    from regionedit.web import WebConfig

    if not 0 <= args.port <= 65535:
        raise SystemExit(f"--port must be 0..65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise SystemExit(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    return WebConfig(max_pixels=args.max_pixels, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                     concurrency=args.concurrency, max_queue=args.max_queue, max_connections=args.max_connections,
                     allowed_hosts=tuple(args.allowed_hosts), localizers=tuple(args.extra_localizer))


def load_editor(args):
    from regionedit.pipeline import Editor

    try:
        return Editor.from_pretrained(args.model, generator=args.generator, localizer=args.localizer,
                                      describer=args.describer, clip=args.clip,
                                      instruction_encoder=args.instruction_encoder, torch_dtype=args.dtype,
                                      device=args.device)
    except (OSError, ValueError) as e:
        raise SystemExit(f"could not load model {args.model or args.generator or 'shapes-64'!r}: {e}") from e


def make_app_server(args, editor=None):
    """The configured, not yet serving, :class:`regionedit.web.WebServer` for parsed ``args``."""
    try:
        from regionedit.web import make_server
    except ImportError as e:
        raise SystemExit(f"the web UI needs Gradio ({e}): pip install 'regionedit[web]'") from e
    config = _config(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    editor = editor if editor is not None else load_editor(args)
    try:
        return make_server(editor, args.host, args.port, config)
    except OSError as e:
        raise SystemExit(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); "
                         "is another server running there? pick another --port") from e


def check_editor(editor) -> str | None:
    """One tiny edit through the public API (a given mask, 1 step) on a world scene, and a region search when the
    editor has a localizer: loads every model component up front, so a missing one is reported now and the first
    real request is fast. Returns an error message, or None when the editor works."""
    import numpy as np

    from regionedit.world import sample_edit

    s = sample_edit(0, 0)
    mask = np.zeros(s.source.shape[:2], bool)
    mask[16:48, 16:48] = True
    try:
        editor(s.source, "remove the red circle", mask=mask, steps=1)
        if editor.localizer is not None:
            editor.find_region(s.source, "remove the red circle")
    except Exception as e:  # noqa: BLE001 - any failure means the server cannot edit
        return f"{type(e).__name__}: {e}"
    return None


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _config(args)  # flag errors before the model loads
    editor = load_editor(args)
    if not args.no_check:
        err = check_editor(editor)
        if err:
            print(f"error: model {editor.model_id!r} cannot edit images: {err}\n"
                  "give a complete model folder with --model (e.g. one written by `regionedit train`), "
                  "or pass --no-check to start anyway", file=sys.stderr)
            return 1
    server = make_app_server(args, editor)
    print(f"regionedit web UI for model {editor.model_id!r} on {server.url}  (Ctrl-C to stop)", flush=True)
    if editor.localizer is None:
        print("note: this model has no localizer: paint the region with the brush before pressing Edit",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        server.server_close()
    return 0
