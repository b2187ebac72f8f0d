"""``regionedit demo``: one real edit with the bundled models, written as a before/after PNG."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run a demo edit on a world scene with the bundled models and write a before/after PNG",
        description=(
            "Render a shapes-world scene, edit it from an instruction with the bundled models and write "
            "source | region | result (| text-to-image from the caption) side by side. Mask-free when the bundled "
            "region predictor exists; otherwise the region is given (a user-style mask), until it is trained."
        ),
    )
    p.add_argument("--out", default="demo.png", help="output PNG (default demo.png)")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.add_argument("--scene", type=int, default=5, help="index of the world sample to edit")
    p.add_argument("--category", default="color", help="edit category of the sample (default color)")
    p.add_argument("--model", default="shapes-64", help="model name or folder")
    p.add_argument("--keep", action="store_true", help="refuse to replace --out if it exists (default: replace it)")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from regionedit.compose import dilate
    from regionedit.io import save_png
    from regionedit.pipeline import Editor
    from regionedit.world import sample_edit

    editor = Editor.from_pretrained(args.model)
    s = sample_edit(1000 + args.scene, 0, category=args.category)
    given = None
    if editor.region_predictor is None:
        # no region predictor shipped yet: a given mask, as a user would draw it around the object
        given = dilate(s.mask, 3)
    res = editor(s.source, s.instruction, seed=args.seed, mask=given)
    panels = [("source", s.source)]
    overlay = s.source.copy()
    overlay[res.mask] = (0.5 * overlay[res.mask] + 0.5 * np.array([255, 0, 255])).astype(np.uint8)
    panels.append(("given region" if given is not None else "predicted region", overlay))
    panels.append((f"result ({res.status})", res.image))
    m = editor.models
    if m.unet is not None:
        pipe = m.text_to_image_pipeline()
        t2i = pipe(s.target_caption, num_inference_steps=20, guidance_scale=4.0, height=64, width=64,
                   generator=torch.Generator().manual_seed(args.seed), output_type="np").images[0]
        panels.append(("text-to-image of target caption", (t2i * 255).round().astype(np.uint8)))
    scale, pad, text_h = 4, 8, 14
    w = len(panels) * (64 * scale + pad) + pad
    canvas = Image.new("RGB", (w, 64 * scale + 2 * pad + 2 * text_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(panels):
        x = pad + i * (64 * scale + pad)
        canvas.paste(Image.fromarray(img).resize((64 * scale, 64 * scale), Image.NEAREST), (x, pad + text_h))
        draw.text((x, pad), label, fill=(0, 0, 0))
    draw.text((pad, pad + text_h + 64 * scale + 4), f'"{s.instruction}" -> {res.target_description}', fill=(0, 0, 0))
    save_png(args.out, np.asarray(canvas), res.metadata(), overwrite=not args.keep)
    print(f'instruction: "{s.instruction}"\nstatus: {res.status} {res.reason or ""}\n'
          f"region: {'given mask' if given is not None else 'predicted'} ({int(res.mask.sum())} px)\n"
          f"wrote {args.out} ({res.seconds:.2f} s)")
    return 0


