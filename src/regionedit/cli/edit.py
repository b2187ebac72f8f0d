"""``regionedit edit``: edit an image from an instruction (or many, with --batch)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from regionedit.cli.main import SEED_LIMIT, non_negative_float, positive_int, seed_int, unit_float
from regionedit.io.loading import DEFAULT_MAX_PIXELS


def _seed_methods() -> tuple[str, ...]:
    from regionedit.pipeline.seed_editor import EDIT_METHODS

    return EDIT_METHODS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "edit",
        help="edit an image from a text instruction (mask-free, or with --mask)",
        description=(
            "Edit IMAGE following INSTRUCTION: regionedit finds the region (or uses --mask), fills it with the "
            "frozen inpainting model and leaves every other pixel bit-identical. Outputs are PNGs carrying the "
            "instruction, seed, method and model as metadata; the input is never overwritten, and no two outputs "
            "may be the same file. An input with an alpha channel keeps it: the output is RGBA with the input's "
            "alpha (the model edits the image composited over white)."
        ),
    )
    p.add_argument("image", nargs="?", help="input image (PNG, JPEG, ...)")
    p.add_argument("instruction", nargs="?", help='the edit, e.g. "remove the red circle"')
    p.add_argument("-i", "--instruction", dest="instructions", action="append", default=None, metavar="INSTRUCTION",
                   help="an edit, repeatable: several run in order, each on the last one's result (multi-turn); "
                        "pixels outside the union of their regions stay the input's, bit for bit")
    p.add_argument("-o", "--output", help="output PNG (must not exist unless --overwrite; never the input)")
    p.add_argument("--mask-out", help="also write the edited region as a PNG (white = edited); not the --output file")
    p.add_argument("--mask", help="use this mask (white = edit) instead of predicting the region")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed of the generator, 0 <= seed < 2**63 (default 0)")
    p.add_argument("--steps", type=positive_int, default=None, help="diffusion steps, >= 1 (default 20)")
    p.add_argument("--guidance", type=non_negative_float, default=None,
                   help="classifier-free guidance scale, a finite number >= 0; <= 1 turns guidance off (default 4)")
    p.add_argument("--method", default="region", choices=["region", "mask", *_seed_methods()],
                   help="region (default): regionedit's editor, the region found from the instruction; mask: the "
                        "region given by --mask; a seed method (AdaptEdit, FireEdit, DescriptiveEdit, Region in Context; "
                        "'-compose' = bit-exact outside its region) with its trained weights in the model folder; "
                        "instructpix2pix: the InstructPix2Pix peer (<model>/unet_ip2p, global)")
    p.add_argument("--blend", default="feather", choices=["feather", "laplacian", "poisson", "hard"],
                   help="seam blend when pasting the edit back (default feather; see benchmarks/compose_seams.py)")
    p.add_argument("--candidates", type=positive_int, default=None,
                   help="generator candidates; the one CLIP reads best as the edit is kept (default 3; 1: fastest)")
    p.add_argument("--priors", default="on", choices=["on", "off"],
                   help="the model folder's plugin priors (the shapes world's rules for the bundled models) on, or off: "
                        "the learned parts alone (default on)")
    p.add_argument("--domain-guard", default="on", choices=["on", "off"],
                   help="refuse images the model folder's domain guard reads as outside its domain, e.g. a photo given "
                        "to the bundled shapes models (default on; folders without a guard are never refused)")
    p.add_argument("--caption", default=None, help="optional description of the input image (source caption)")
    p.add_argument("--model", default=None,
                   help="model folder: bundled name, local folder or Hugging Face id (default shapes-64, the bundled "
                        "shapes-world models, unless --generator is given)")
    g = p.add_argument_group("components (swap any stage for a real model; ids load from the local Hugging Face cache)")
    g.add_argument("--generator", default=None,
                   help="a diffusers inpainting pipeline, id or folder, loaded whole with its own scheduler "
                        "(e.g. stabilityai/stable-diffusion-2-inpainting)")
    g.add_argument("--localizer", default=None,
                   help="where the edit goes: learned (the model folder's region predictor), learned:FOLDER, "
                        "clipseg:ID_OR_FOLDER, owlv2:ID_OR_FOLDER[+sam:ID_OR_FOLDER], "
                        "gdino:ID_OR_FOLDER[+sam:ID_OR_FOLDER] or +sam2:..., sam3:ID_OR_FOLDER (default: learned)")
    g.add_argument("--describer", default=None,
                   help="how the instruction is read: grammar (offline) or a chat LM / VLM id or folder "
                        "(default: the model folder's plugin's, else grammar)")
    g.add_argument("--clip", default=None, help="CLIP id or folder the learned localizer reads (default: the folder's)")
    g.add_argument("--instruction-encoder", default=None,
                   help="T5 encoder id or folder the learned localizer reads (default: the folder's)")
    g.add_argument("--threshold", type=unit_float, default=None,
                   help="region probability above which a pixel is edited, in [0, 1] (default: the localizer's "
                        "calibrated value, else 0.5)")
    g.add_argument("--presence-threshold", type=unit_float, default=None,
                   help="an edit of an existing object whose presence score is below this gets 'no edit', in [0, 1] "
                        "(default: the localizer's calibrated value, else 0.5; 0 turns the check off)")
    g.add_argument("--dtype", default=None, choices=["fp32", "fp16", "bf16"],
                   help="precision of every component (default fp32; fp16 / bf16 halve memory on GPUs)")
    g.add_argument("--device", default=None, help="device of every component: cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse input images with more than this many pixels, width * height (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--batch", help="JSONL file of jobs: {image, instruction, output, [mask_out], [mask], [seed], [caption]} "
                                   "per line; a bad line or a failed job is reported and the others still run")
    p.add_argument("--resume", action="store_true",
                   help="skip jobs finished by an earlier run: their output exists and carries this job's provenance "
                        "(instruction, seed, model); reported as 'skipped'")
    p.add_argument("--json", action="store_true", help="print one JSON object per job")
    p.add_argument("--overwrite", action="store_true", help="allow replacing existing output files (never inputs)")
    p.set_defaults(func=run)


@dataclasses.dataclass
class _Job:
    spec: dict
    line: int | None = None  # line of the batch file (None: the command line)
    error: str | None = None  # refused before running, with the fix

    def where(self) -> str:
        return f"line {self.line}: " if self.line is not None else ""


_JOB_EXAMPLE = '{"image": "in.png", "instruction": "remove the red circle", "output": "out.png", "seed": 0}'


def _check_spec(job: Any) -> str | None:
    """Why a batch line's value cannot be a job (with the fix), or None."""
    if not isinstance(job, dict):
        return f"a job must be a JSON object, got {type(job).__name__}; write one object per line, e.g. {_JOB_EXAMPLE}"
    if "instructions" in job:  # several turns in order: {"instructions": ["...", "..."], ...}
        turns = job["instructions"]
        if not (isinstance(turns, list) and turns and all(isinstance(t, str) and t.strip() for t in turns)):
            return f"'instructions' must be a non-empty list of instructions (strings), got {json.dumps(turns)}"
        if "instruction" in job:
            return "give 'instruction' (one edit) or 'instructions' (several in turn), not both"
        job["instruction"] = "; ".join(t.strip() for t in turns)
    missing = [k for k in ("image", "instruction", "output") if k not in job]
    if missing:
        return f"missing {', '.join(missing)}; each job needs image, instruction and output, e.g. {_JOB_EXAMPLE}"
    for k in ("image", "instruction", "output"):
        if not isinstance(job[k], str) or (k != "instruction" and not job[k]):
            return f"{k!r} must be a non-empty string, got {json.dumps(job[k])}"
    for k in ("mask_out", "mask", "caption"):
        if job.get(k) is not None and not isinstance(job[k], str):
            return f"{k!r} must be a string (or left out), got {json.dumps(job[k])}"
    if "seed" in job:
        s = job["seed"]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT:
            return (f"'seed' must be a whole number 0 <= seed < 2**63, got {json.dumps(s)}; "
                    "leave it out to use --seed")
    return None


def _jobs(args) -> list[_Job]:
    if args.batch:
        try:
            text = Path(args.batch).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SystemExit(f"cannot read --batch {args.batch!r} ({e}); give a UTF-8 JSONL file, one job per line")
        jobs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                spec = json.loads(line)
            except json.JSONDecodeError as e:
                jobs.append(_Job({}, n, f"not valid JSON ({e.msg}, column {e.colno}); write one JSON object per "
                                        f"line, e.g. {_JOB_EXAMPLE}"))
                continue
            jobs.append(_Job(spec if isinstance(spec, dict) else {}, n, _check_spec(spec)))
        return jobs
    if not (args.image and (args.instruction is not None or args.instructions) and args.output):
        raise SystemExit("give IMAGE, INSTRUCTION and -o OUTPUT (or --batch JOBS.jsonl); see `regionedit edit --help`")
    if args.mask_out and _same(args.output, args.mask_out):
        raise SystemExit(f"-o/--output and --mask-out are the same file ({args.output!r}): the mask would overwrite "
                         "the edited image; give --mask-out another name")
    spec = {"image": args.image, "instruction": args.instruction, "output": args.output, "mask_out": args.mask_out,
            "mask": args.mask, "seed": args.seed}
    if args.instructions:
        turns = ([args.instruction] if args.instruction is not None else []) + args.instructions
        spec.update(instruction="; ".join(t.strip() for t in turns), instructions=turns)
    return [_Job(spec)]


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _same(a: str, b: str) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _refuse_collisions(jobs: list[_Job]) -> None:
    """Refuse (set ``error`` of) each job whose output is another output (its own mask-out, or an earlier
    job's output) or another job's input; the first job to claim an output keeps it."""
    inputs: dict[str, _Job] = {}
    for j in jobs:
        if j.error is None:
            for k in ("image", "mask"):
                if j.spec.get(k):
                    inputs.setdefault(_real(j.spec[k]), j)
    claimed: dict[str, _Job] = {}
    for j in jobs:
        if j.error is not None:
            continue
        outs = [j.spec["output"]] + ([j.spec["mask_out"]] if j.spec.get("mask_out") else [])
        if len(outs) == 2 and _same(*outs):
            j.error = (f"'output' and 'mask_out' are the same file ({outs[0]!r}): the mask would overwrite the "
                       "edited image; give mask_out another name")
            continue
        for o in outs:
            r = _real(o)
            other = inputs.get(r)
            if other is not None and other is not j:
                j.error = (f"output {o!r} is the input of the job on line {other.line}; refusing to overwrite another "
                           "job's input: give this job another output")
                break
            if r in claimed:
                j.error = (f"output {o!r} is also written by the job on line {claimed[r].line}; give each job its own "
                           "output file")
                break
        if j.error is None:
            for o in outs:
                claimed[_real(o)] = j


def _provenance_matches(path: str, job: dict, seed: int, model_id: str) -> bool:
    """Whether ``path`` is a PNG written by this job in an earlier run (its instruction, seed and model)."""
    from regionedit.io import ImageInputError, read_png_metadata

    if not os.path.isfile(path):
        return False
    try:
        meta = read_png_metadata(path)
    except ImageInputError:
        return False
    return (meta.get("regionedit:instruction") == job["instruction"].strip()
            and meta.get("regionedit:seed") == str(seed) and meta.get("regionedit:model") == str(model_id))


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from regionedit.io import ImageInputError, load_image, max_pixels_limit, remove_stale_temp_files, save_png
    from regionedit.pipeline import Editor, EditorConfig, EditSession

    jobs = _jobs(args)
    _refuse_collisions(jobs)
    stale = remove_stale_temp_files(
        p for j in jobs if j.error is None for p in (j.spec["output"], j.spec.get("mask_out")) if p)
    if stale:
        print(f"removed {len(stale)} stale temporary file(s) left by an interrupted run: "
              f"{', '.join(str(s) for s in stale)}", file=sys.stderr)

    try:  # models load once for all jobs
        if args.method in _seed_methods():
            from regionedit.pipeline.seed_editor import SeedMethodEditor

            editor = SeedMethodEditor(args.method, args.model, steps=args.steps, guidance=args.guidance)
        else:
            editor = Editor.from_pretrained(
                args.model, priors=args.priors == "on", generator=args.generator, localizer=args.localizer,
                describer=args.describer, clip=args.clip, instruction_encoder=args.instruction_encoder,
                torch_dtype=args.dtype, device=args.device, config=EditorConfig(
                    blend=args.blend, domain_guard=args.domain_guard == "on", threshold=args.threshold,
                    presence_threshold=args.presence_threshold,
                    **({} if args.candidates is None else {"candidates": args.candidates})))
    except (OSError, ValueError) as e:  # a truncated / corrupt weights file, a folder that is no model
        why = str(e).rstrip(". ")
        what = args.model or args.generator or "shapes-64"
        weights = isinstance(e, OSError) or any(w in why.lower() for w in ("safetensors", "deserializ", "header"))
        hint = (". A weights file may be truncated or corrupt: restore the folder (reinstall regionedit for the "
                "bundled models) or retrain it") if weights else ""
        raise SystemExit(f"regionedit edit: error: cannot load the models ({what!r}): {why}{hint}") from None
    model_id = editor.model_id
    failures = 0
    for j in tqdm(jobs, desc="editing", disable=len(jobs) < 2 or args.json, file=sys.stderr):
        job = j.spec
        record: dict[str, Any] = ({"line": j.line} if j.line is not None else {}) | {
            "image": job.get("image"), "output": job.get("output"), "mask": job.get("mask_out")}
        try:
            if j.error is not None:
                raise ValueError(j.error)
            if args.method == "mask" and not job.get("mask"):
                raise ValueError("--method mask needs --mask MASK.png (or a 'mask' key per batch job)")
            if args.method in _seed_methods() and (job.get("mask") or len(job.get("instructions") or []) > 1):
                raise ValueError(f"--method {args.method} finds its own region and edits one instruction: give no "
                                 "--mask and one instruction (or use --method region / mask)")
            seed = int(job.get("seed", args.seed))
            outs = [job["output"]] + ([job["mask_out"]] if job.get("mask_out") else [])
            ours = [args.resume and _provenance_matches(o, job, seed, model_id) for o in outs]
            if args.resume and ours[0] and all(ours):
                record.update({"status": "skipped", "reason": "finished by an earlier run: the output exists and "
                                                              "carries this job's instruction, seed and model (--resume)"})
            else:
                with max_pixels_limit(args.max_pixels):
                    src = load_image(job["image"], alpha="keep")
                    alpha = src[..., 3] if src.shape[2] == 4 else None
                    rgb = load_image(src) if alpha is not None else src  # composited over white, as the Editor would
                    kw = dict(source_caption=job.get("caption", args.caption), steps=args.steps, guidance=args.guidance)
                    if len(job.get("instructions") or []) > 1:  # several turns, each on the last one's result
                        if job.get("mask"):
                            raise ValueError("a given mask goes with one instruction; give the turns without --mask")
                        session = EditSession(editor, rgb)
                        for k, turn in enumerate(job["instructions"]):
                            session.edit(turn, seed=seed + k, **kw)
                        res = session.result()
                    else:
                        res = editor(rgb, job["instruction"], seed=seed, mask=job.get("mask"), **kw)
                image = res.image
                if alpha is not None:  # keep the input's alpha; outside the edit, the input's RGBA bit for bit
                    image = np.where(res.mask[..., None], np.dstack([res.image, alpha]), src)
                protect = [job["image"]] + ([job["mask"]] if job.get("mask") else [])
                # the mask first, the image last: an output with this job's provenance means the job finished
                if job.get("mask_out"):
                    save_png(job["mask_out"], (res.mask * 255).astype("uint8"), res.metadata(),
                             overwrite=args.overwrite or ours[1], protect=protect)
                save_png(job["output"], image, res.metadata(), overwrite=args.overwrite or ours[0], protect=protect,
                         mask=res.mask)
                record.update(res.to_json())
                if alpha is not None:
                    record["alpha"] = "kept: the output has the input's alpha channel"
        except (ImageInputError, ValueError, OSError, RuntimeError) as e:
            failures += 1
            reason = str(e)
            if "already exists" in reason:
                reason += " (regionedit edit: --overwrite replaces it, --resume skips jobs finished by an earlier run)"
            record.update({"status": "error", "reason": reason})
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["status"] == "error":
            print(f"error: {j.where()}{job.get('image', args.batch)}: {record['reason']}", file=sys.stderr)
        elif record["status"] == "skipped":
            print(f"skipped {job['image']}: {job['output']} is already done")
        elif record["status"] == "no_edit":
            print(f"no edit: {record['reason']} (wrote the unchanged image to {job['output']})")
        else:
            print(f"edited {job['image']} -> {job['output']} ({record['seconds']:.2f} s)")
    return 1 if failures else 0
