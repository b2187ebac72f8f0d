"""``regionedit world``: make datasets from the shapes world and look at samples.

``regionedit world make`` exports ``sample_edit(seed, i)`` for ``i < n`` in a published layout
(:func:`regionedit.world.export_dataset`); ``regionedit world show`` draws a PNG contact sheet.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np

from regionedit.world.export import DEFAULT_CHUNK_SIZE, FORMATS, export_dataset
from regionedit.world import spec
from regionedit.world.edits import EditSample, sample_edit

_FORMAT_HELP = (
    "magicbrush: HF parquet folder with MagicBrush's columns (img_id, turn_index, source_img, "
    "mask_img, instruction, target_img) plus a metadata JSON column; "
    "emu: HF parquet folder with Emu Edit's test-set columns (idx, image, instruction, task, hash, "
    "input_caption, output_caption) plus target_img, mask and metadata; "
    "pairs: WebDataset tar shards of source images and their captions (key.png, key.txt, key.json) "
    "for text-to-image training"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``world`` (with ``make`` and ``show``) on the top-level subparsers."""
    parser = subparsers.add_parser(
        "world",
        help="make datasets from the procedural shapes world, or look at samples",
        description=(
            "The shapes world (WORLD.md, spec v1): procedural scenes of 1-3 coloured shapes with "
            "exact ground truth for every edit (target image, mask, captions, scene graphs). "
            "Sample i of seed S is always the same, so a dataset is fully defined by "
            "(format, n, seed, size)."
        ),
    )
    sub = parser.add_subparsers(dest="world_command", metavar="<subcommand>")
    parser.set_defaults(func=lambda args: _print_help(parser))
    _add_make(sub)
    _add_show(sub)
    return parser


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _add_make(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make",
        help="export n samples as a MagicBrush, Emu Edit or text-image-pairs dataset",
        description=(
            "Export samples 0..n-1 of a seed as a dataset folder. The folder is written next to "
            "--out under a hidden .partial name and renamed when complete, so --out never holds a "
            "half-written dataset; re-running an interrupted command resumes from the last finished "
            "chunk. A dataset_info.json records the format, n, seed, size, generator version and "
            "this command. Load the result with regionedit.data.load_dataset(DIR)."
        ),
        epilog=f"formats: {_FORMAT_HELP}",
    )
    p.add_argument("--n", type=int, required=True, help="number of samples to export (>= 1)")
    p.add_argument(
        "--seed", type=int, default=0, help="dataset seed; the same seed gives byte-identical data (default 0)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder to create")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        required=True,
        help="dataset layout (see 'formats' below)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=spec.NATIVE_SIZE,
        help=f"image side in pixels (default {spec.NATIVE_SIZE}, the native size models train at); "
        "scenes are resolution independent, masks are native-size ground truth resized",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"samples per parquet file / tar shard; bounds memory (default {DEFAULT_CHUNK_SIZE})",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace DIR if it exists and is not empty (the old folder is removed only once the new "
        "one is complete)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=_run_make)


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="draw a PNG grid of samples: source | target | mask, with the instruction",
        description=(
            "Draw samples 0..n-1 of a seed as a PNG contact sheet. Each cell shows the source "
            "image, the ground-truth target and the edit mask (white = edited pixels), with the "
            "category and the instruction printed underneath."
        ),
    )
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--n", type=int, default=16, help="number of samples to draw (default 16)")
    p.add_argument(
        "--out", type=Path, default=Path("grid.png"), metavar="PNG", help="PNG file to write (default grid.png)"
    )
    p.add_argument(
        "--size", type=int, default=128, help="side of each image in pixels (default 128; native is 64)"
    )
    p.add_argument("--cols", type=int, default=2, help="samples per row of the grid (default 2)")
    p.add_argument(
        "--category",
        choices=spec.CATEGORIES,
        default=None,
        help="draw only edits of this category (default: the dataset's mix)",
    )
    p.set_defaults(func=_run_show)


def _error(command: str, message: object) -> int:
    print(f"regionedit world {command}: error: {message}", file=sys.stderr)
    return 2


def _run_make(args: argparse.Namespace) -> int:
    argv = ["regionedit", "world", "make", "--n", str(args.n), "--seed", str(args.seed), "--out",
            str(args.out), "--format", args.fmt, "--size", str(args.size)]
    if args.chunk_size != DEFAULT_CHUNK_SIZE:
        argv += ["--chunk-size", str(args.chunk_size)]
    try:
        out = export_dataset(
            args.out,
            args.n,
            args.seed,
            args.fmt,
            size=args.size,
            progress=not args.no_progress,
            overwrite=args.overwrite,
            chunk_size=args.chunk_size,
            command=shlex.join(argv),
        )
    except (ValueError, FileExistsError) as e:
        return _error("make", e)
    print(f"wrote {args.n} {args.fmt} samples (seed {args.seed}, {args.size}px) to {out}")
    return 0


def _run_show(args: argparse.Namespace) -> int:
    if args.n < 1 or args.size < 8 or args.cols < 1:
        return _error("show", "--n and --cols must be >= 1 and --size >= 8")
    samples = [sample_edit(args.seed, i, args.size, category=args.category) for i in range(args.n)]
    grid = contact_sheet(samples, cols=args.cols)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.n} samples (seed {args.seed}) to {args.out}")
    return 0


def contact_sheet(samples: list[EditSample], cols: int = 2, pad: int = 6):
    """A PIL RGB image: one cell per sample (source | target | mask, caption lines underneath)."""
    from PIL import Image, ImageDraw, ImageFont

    size = samples[0].source.shape[0]
    font = ImageFont.load_default()
    line_h = 14
    chars = max(16, (3 * size + 2 * pad) // 7)
    texts = [textwrap.wrap(f"[{s.category}] {s.instruction}", chars)[:3] for s in samples]
    cell_w = 3 * size + 4 * pad
    cell_h = size + 2 * pad + 3 * line_h + pad
    rows = -(-len(samples) // cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (s, lines) in enumerate(zip(samples, texts)):
        x0, y0 = (k % cols) * cell_w + pad, (k // cols) * cell_h + pad
        mask = np.repeat(s.mask[..., None].astype(np.uint8) * 255, 3, axis=-1)
        for j, img in enumerate((s.source, s.target, mask)):
            sheet.paste(Image.fromarray(img), (x0 + j * (size + pad), y0))
        for j, line in enumerate(lines):
            draw.text((x0, y0 + size + pad + j * line_h), line, fill=(0, 0, 0), font=font)
    return sheet
