"""``regionedit describe``: the structured edit an instruction asks for, without editing anything.

    regionedit describe "let the cat wear a hat" --json
    {"operation": "attribute", "target": "the cat", "content": "a hat", "target_description": "a cat wearing a hat"}

The default describer is the offline grammar (:class:`~regionedit.describe.TemplateDescriber`); ``--describer
FOLDER_OR_ID`` asks a chat LM / VLM through :class:`~regionedit.describe.LMDescriber` (an ``--image`` is shown to
a VLM). Exit code 0 when the instruction was understood, 1 when not (the output then has "error"), 2 for bad
arguments or a describer / image that cannot be loaded (one line on stderr).
"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "describe",
        help="print the structured edit (operation, target, content) an instruction asks for",
        description=(
            "Read INSTRUCTION into one of the nine edit operations (add, remove, replace, recolor, resize, move, "
            "attribute, background, global) with its target and content, and the description of the edited image. "
            "Nothing is edited; no image model is loaded."
        ),
    )
    p.add_argument("instruction", help='the edit, e.g. "replace the cat with a dog"')
    p.add_argument("--image", default=None, help="the source image, shown to a VLM describer (ignored otherwise)")
    p.add_argument("--describer", default=None, metavar="ID_OR_FOLDER",
                   help="a chat LM or VLM (folder saved with save_pretrained, or a hub id in the local cache) to ask "
                        "instead of the offline grammar")
    p.add_argument("--caption", default=None, help="optional caption of the source image")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def run(args) -> int:
    image = None
    if args.describer:
        from regionedit.describe import LMDescriber

        try:
            describer = LMDescriber.from_pretrained(args.describer)
        except ValueError as e:
            return _fail(e)
        if args.image is not None and describer.is_vlm:
            from PIL import Image

            try:
                with Image.open(args.image) as im:
                    image = im.convert("RGB")
            except (OSError, ValueError) as e:
                return _fail(f"could not read the image {args.image!r}: {e}")
    else:
        from regionedit.describe import TemplateDescriber

        describer = TemplateDescriber()
    try:
        desc = describer(args.instruction, args.caption, image=image) if image is not None else \
            describer(args.instruction, args.caption)
    except ValueError as e:  # an empty instruction
        return _fail(e)
    record = {"operation": desc.operation, "target": desc.target, "content": desc.content,
              "target_description": desc.target_description}
    if desc.error:
        record["error"] = desc.error
    if args.json:
        print(json.dumps(record))
    elif desc.error:
        print(f"not understood: {desc.error}")
    else:
        parts = [desc.operation]
        if desc.target:
            parts.append(f"target={desc.target!r}")
        if desc.content:
            parts.append(f"content={desc.content!r}")
        print(" ".join(parts) + f" -> {desc.target_description!r}")
    return 1 if desc.error else 0
