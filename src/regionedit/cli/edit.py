"""``regionedit edit``: edit an image from an instruction (or many, with --batch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from regionedit.cli.main import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "edit",
        help="edit an image from a text instruction (mask-free, or with --mask)",
        description=(
            "Edit IMAGE following INSTRUCTION: regionedit finds the region (or uses --mask), fills it with the "
            "frozen inpainting model and leaves every other pixel bit-identical. Outputs are PNGs carrying the "
            "instruction, seed, method and model as metadata; the input is never overwritten."
        ),
    )
    p.add_argument("image", nargs="?", help="input image (PNG, JPEG, ...)")
    p.add_argument("instruction", nargs="?", help='the edit, e.g. "remove the red circle"')
    p.add_argument("-o", "--output", help="output PNG (must not exist unless --overwrite; never the input)")
    p.add_argument("--mask-out", help="also write the edited region as a PNG (white = edited)")
    p.add_argument("--mask", help="use this mask (white = edit) instead of predicting the region")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generator (default 0)")
    p.add_argument("--steps", type=int, default=None, help="diffusion steps (default 20)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default 4)")
    p.add_argument("--method", default="region", choices=["region", "mask"], help="how the region is found (default: region)")
    p.add_argument("--blend", default="feather", choices=["feather", "laplacian", "poisson", "hard"],
                   help="seam blend when pasting the edit back (default feather; see benchmarks/compose_seams.py)")
    p.add_argument("--candidates", type=positive_int, default=None,
                   help="generator candidates; the one CLIP reads best as the edit is kept (default 3; 1: fastest)")
    p.add_argument("--priors", default="on", choices=["on", "off"],
                   help="the model folder's plugin priors (the shapes world's rules for the bundled models) on, or off: "
                        "the learned parts alone (default on)")
    p.add_argument("--caption", default=None, help="optional description of the input image (source caption)")
    p.add_argument("--model", default="shapes-64", help="bundled model name, local folder or Hugging Face id")
    p.add_argument("--batch", help="JSONL file of jobs: {image, instruction, output, [mask_out], [mask], [seed]} per line")
    p.add_argument("--json", action="store_true", help="print one JSON object per job")
    p.add_argument("--overwrite", action="store_true", help="allow replacing existing output files (never inputs)")
    p.set_defaults(func=run)


def _jobs(args) -> list[dict]:
    if args.batch:
        jobs = []
        for n, line in enumerate(Path(args.batch).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                job = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{args.batch}:{n}: not valid JSON ({e.msg}); write one JSON object per line")
            missing = [k for k in ("image", "instruction", "output") if k not in job]
            if missing:
                raise SystemExit(f"{args.batch}:{n}: missing {', '.join(missing)}; each job needs image, instruction and output")
            jobs.append(job)
        return jobs
    if not (args.image and args.instruction is not None and args.output):
        raise SystemExit("give IMAGE, INSTRUCTION and -o OUTPUT (or --batch JOBS.jsonl); see `regionedit edit --help`")
    return [{"image": args.image, "instruction": args.instruction, "output": args.output,
             "mask_out": args.mask_out, "mask": args.mask, "seed": args.seed}]


def run(args) -> int:
    from tqdm import tqdm

    from regionedit.io import ImageInputError, save_png
    from regionedit.pipeline import Editor

    jobs = _jobs(args)
    from regionedit.pipeline import EditorConfig

    editor = Editor.from_pretrained(args.model, priors=args.priors == "on", config=EditorConfig(
        blend=args.blend, **({} if args.candidates is None else {"candidates": args.candidates})))  # models load once for all jobs
    failures = 0
    for job in tqdm(jobs, desc="editing", disable=len(jobs) < 2 or args.json, file=sys.stderr):
        record = {"image": job["image"], "output": job["output"], "mask": job.get("mask_out")}
        try:
            if args.method == "mask" and not job.get("mask"):
                raise ValueError("--method mask needs --mask MASK.png (or a 'mask' key per batch job)")
            res = editor(job["image"], job["instruction"], seed=int(job.get("seed", args.seed)), mask=job.get("mask"),
                         source_caption=job.get("caption", args.caption), steps=args.steps, guidance=args.guidance)
            protect = [job["image"]] + ([job["mask"]] if job.get("mask") else [])
            save_png(job["output"], res.image, res.metadata(), overwrite=args.overwrite, protect=protect, mask=res.mask)
            if job.get("mask_out"):
                save_png(job["mask_out"], (res.mask * 255).astype("uint8"), res.metadata(), overwrite=args.overwrite, protect=protect)
            record.update(res.to_json())
        except (ImageInputError, ValueError, FileExistsError, FileNotFoundError, RuntimeError) as e:
            failures += 1
            record.update({"status": "error", "reason": str(e)})
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["status"] == "error":
            print(f"error: {job['image']}: {record['reason']}", file=sys.stderr)
        elif record["status"] == "no_edit":
            print(f"no edit: {record['reason']} (wrote the unchanged image to {job['output']})")
        else:
            print(f"edited {job['image']} -> {job['output']} ({record['seconds']:.2f} s)")
    return 1 if failures else 0
