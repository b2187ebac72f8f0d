"""Quality of the bundled shapes-64 models against the bars of the models issue.

    python benchmarks/world_models.py [--only clip,vae,unet,unet_inpaint,unet_ip2p,dit] [--n 100] [--write-cards]
    python benchmarks/world_models.py --model runs/repro/export --compare shapes-64   # a retrained folder vs the shipped cards

Prints one row per figure (value, bar, met; with --compare, also the value on that folder's model card).
With --write-cards, rewrites each component's model card (README.md in its folder) with these numbers and
this command. ``dit`` is the diffusion transformer's StableDiffusion3Pipeline folder (``<model>/dit``): its card is
the pipeline folder's README.md, its training record ``dit/transformer/training_state.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from regionedit import models
from regionedit.world import model_quality as Q
from regionedit.world.training.model_cards import BARS, card_metrics, passes, training_state, write_card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64")
    p.add_argument("--only", default="clip,vae,instruction_encoder,unet,unet_inpaint")
    p.add_argument("--n", type=int, default=100, help="cases for generation checks (100+ recommended)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--write-cards", action="store_true")
    p.add_argument("--compare", default=None, help="a model (bundled name or folder) whose cards' values to print beside")
    args = p.parse_args(argv)
    if args.compare and args.write_cards:
        p.error("--compare reads cards, --write-cards writes them: one at a time")
    ref = models.load(args.compare).location if args.compare else None
    torch.set_num_threads(2)
    m = models.load(args.model)
    command = "python benchmarks/world_models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {}
    for comp in args.only.split(","):
        t = time.time()
        if comp == "clip":
            r = Q.eval_clip(m)
        elif comp == "instruction_encoder":
            r = Q.eval_instruction_encoder(m)
        elif comp == "vae":
            r = Q.eval_vae(m)
        elif comp == "unet":
            r = Q.eval_t2i(m, n=args.n, steps=args.steps)
        elif comp == "unet_inpaint":
            r = Q.eval_inpaint(m, n=args.n, steps=args.steps, zoom=True)
            full = Q.eval_inpaint(m, n=args.n, steps=args.steps, zoom=False)
            r.update({"full_frame_object_right": full["object_right"], "full_frame_background_l1": full["background_l1"]})
            bg = Q.eval_inpaint_background(m, n=args.n, steps=args.steps)
            r.update({k: bg[k] for k in ("background_repaint_l1", "background_repaint_right")})
        elif comp == "unet_ip2p":
            r = Q.eval_ip2p(m, n=args.n, steps=args.steps)
        elif comp == "dit":
            if not (Path(m.location) / "dit" / "model_index.json").is_file():
                raise SystemExit(f"{m.location} has no dit/ pipeline folder: train it with "
                                 "regionedit train world-models --only dit --batch 32 --export <model folder>")
            r = Q.eval_dit(Path(m.location) / "dit", n=args.n, steps=args.steps)
        else:
            raise SystemExit(f"unknown component {comp!r}")
        r["eval_seconds"] = round(time.time() - t, 1)
        results[comp] = r
        st = training_state(m.location, comp)
        print(f"\n== {comp} (steps {st.get('steps', '?')}, {st.get('cpu_minutes', '?')} CPU min)")
        bars = {k: (op, b) for k, op, b, _ in BARS.get(comp, [])}
        shipped = card_metrics(f"{ref}/{comp}") if ref else {}
        for k, v in r.items():
            beside = f"   card {shipped[k]:.4g}" if k in shipped else ""
            if k in bars:
                op, b = bars[k]
                print(f"  {k:32s} {v:10.4f}   bar {op} {b:<6} {'MET' if passes(v, op, b) else 'NOT MET'}{beside}")
            else:
                print(f"  {k:32s} {v}{beside}")
        if args.write_cards:
            write_card(Path(m.location) / comp, comp, r, command)
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
