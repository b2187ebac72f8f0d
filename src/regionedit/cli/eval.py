"""``regionedit eval``: evaluate editing methods under an explicit, reproducible protocol."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    from regionedit.cli.main import positive_int
    from regionedit.world.alt_render import RENDERERS
    from regionedit.evaluation.baselines import METHODS
    from regionedit.evaluation.harness import DEFAULT_SEED, PROTOCOLS
    from regionedit.evaluation.metrics import DEFAULT_DINO

    p = sub.add_parser(
        "eval",
        help="evaluate editing methods (ours and baselines) on the shapes world, MagicBrush or Emu Edit data",
        description=(
            "Run editing methods on a protocol's samples and write results.json (every metric per method and "
            "category, with the exact configuration: protocol, seed, N, steps, resolutions, the CLIP/DINO models "
            "and their preprocessing, skipped methods and unavailable metrics with the reason), results.md, PNG "
            "grids and samples.jsonl. Reruns into the same --out resume: samples already computed are skipped."
        ),
    )
    p.add_argument("--protocol", required=True, choices=PROTOCOLS,
                   help="shapes (held-out world samples, exact ground truth), magicbrush (GT target; single- and "
                        "multi-turn) or emu (input and captions, per task)")
    p.add_argument("--methods", default="region,region-learned,oracle,diffedit,sdedit,instructpix2pix",
                   help=f"comma-separated methods among {','.join(METHODS)} (default: all)")
    p.add_argument("--n", type=int, default=100, help="number of samples (dataset protocols: the first N records)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"world seed of the shapes protocol and base of the per-sample seeds (default {DEFAULT_SEED}, held out)")
    p.add_argument("--out", required=True, help="output folder (created; an existing one is resumed)")
    p.add_argument("--data", help="dataset folder for magicbrush / emu (`regionedit world make --format ...` or the real data)")
    p.add_argument("--split", help="only the parquet files of this split (e.g. dev, test)")
    p.add_argument("--model", default="shapes-64", help="bundled model name or model folder shared by every method")
    p.add_argument("--steps", type=int, default=20, help="denoising steps of every method (default 20)")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance of every method (default 4)")
    p.add_argument("--candidates", type=positive_int, default=3,
                   help="our editor (region, oracle): generator candidates, the one CLIP reads best kept (default 3; 1: one draw)")
    p.add_argument("--sdedit-strength", type=float, default=0.6, help="SDEdit img2img strength (default 0.6)")
    p.add_argument("--image-guidance", type=float, default=1.5,
                   help="image guidance of the methods that condition a denoiser on the source (instructpix2pix, "
                        "region_in_context, fireedit: image_guidance_scale; descriptive: lambda_I); default 1.5, "
                        "diffusers' InstructPix2Pix default")
    p.add_argument("--size", type=int, default=64, help="shapes protocol: image side in pixels (default 64)")
    p.add_argument("--renderer", default="regionedit", choices=RENDERERS,
                   help="shapes protocol: who draws the scenes: ours, or the independent renderer of "
                        "regionedit.world.alt_render (pil: supersampled; pil-aliased: hard edges)")
    p.add_argument("--clip", help="CLIP for the metrics (folder or cached hub id, e.g. openai/clip-vit-base-patch32); "
                                  "default: the model's own CLIP")
    p.add_argument("--dino", default=DEFAULT_DINO,
                   help=f"DINO for the metrics (folder or cached hub id; default {DEFAULT_DINO}; 'none' to skip)")
    p.add_argument("--grid-k", type=int, default=8, help="samples shown in each PNG grid (default 8)")
    p.add_argument("--save-outputs", action="store_true", help="keep every edited image under OUT/outputs")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--write-cards", action="store_true",
                   help="record each trained seed method's measured rows in its weights folder (quality.json and the "
                        "model card's 'Measured quality'); rerun a finished evaluation with it to write them only")
    p.add_argument("--overwrite-bundled", action="store_true",
                   help="with --write-cards: allow writing into the installed package's bundled model folders")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from regionedit.evaluation.harness import EvalConfig, _canonical_command, run_evaluation

    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cfg = EvalConfig(
        protocol=args.protocol, out=args.out, methods=methods, n=args.n, seed=args.seed, data=args.data,
        split=args.split, model=args.model, steps=args.steps, guidance=args.guidance,
        sdedit_strength=args.sdedit_strength, image_guidance=args.image_guidance, candidates=args.candidates, size=args.size, renderer=args.renderer, clip=args.clip,
        dino=None if str(args.dino).lower() == "none" else args.dino, grid_k=args.grid_k,
        save_outputs=args.save_outputs,
    )
    cfg.command = _canonical_command(cfg)
    try:
        results = run_evaluation(cfg, progress=not args.no_progress, log=lambda msg: print(msg, file=sys.stderr))
    except (ValueError, FileNotFoundError) as e:
        print(f"regionedit eval: error: {e}", file=sys.stderr)
        return 2
    if not results["methods"]:
        print(f"regionedit eval: no method could run (skipped: {', '.join(results['skipped_methods'])}); "
              f"see {args.out}/results.md", file=sys.stderr)
        return 1
    if args.write_cards:
        from regionedit.evaluation.cards import write_cards

        try:
            written = write_cards(results, allow_bundled=args.overwrite_bundled)
        except (ValueError, FileNotFoundError) as e:
            print(f"regionedit eval: error: {e}", file=sys.stderr)
            return 2
        print("model cards: " + (", ".join(map(str, written)) or "no evaluated row has trained weights"))
    errors = sum(m.get("n_errors", 0) for s in results["settings"].values() for m in s["methods"].values())
    print(f"wrote {args.out}/results.json and {args.out}/results.md ({results['computed']} new edits"
          + (f", {errors} failed: see samples.jsonl" if errors else "") + ")")
    return 1 if errors else 0
