"""Region prediction alone (no generation) on held-out world edits: IoU per category, the absent-referent
"no edit" rate and the false "no edit" rate, at thresholds chosen on separate calibration scenes.

    python benchmarks/region.py [--n-per-category 40] [--calibration-n 30] [--model shapes-64] [--predictor DIR | --checkpoint state.pt] [--priors on|off]

Fast enough to watch a training run: ``--checkpoint runs/region/region/state.pt`` scores the latest
checkpoint of ``regionedit train region`` without exporting it. Held-out scenes use seeds >= 20000.
The Editor's decision rule is used as is (``Editor.region_from``: "no edit" for a referent edit whose
presence probability is below the presence threshold, region = probability >= threshold, snapped to colour
segments, one connected piece per referent (the one CLIP reads best as it), moved to the object proposal CLIP
reads as the referent when it does not read the region so, "no edit" when no proposal does either
(region/verify.py) or when the region covers less than ``min_region_frac`` of the image, shaping by edit
type), with ``--no-shape`` / ``--no-snap`` / ``--no-verify`` / ``--no-single-object`` to switch those steps off;
``--priors off`` switches every world rule off (the learned predictor alone: threshold and presence gate; with
``--write-card`` its thresholds are stored as the folder's ``learned_thresholds``). The three thresholds are swept on calibration scenes (seeds
15000+), the best within the false "no edit" bar is chosen there and reported on the held-out scenes.
Note the ceiling the ground truth sets: its masks are the pixels that *differ*, so "make it smaller" and
"replace the square with a circle" have ring-like masks, while an editor must regenerate the whole
footprint; a perfect footprint scores well below 1 there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from regionedit.world.alt_render import RENDERERS
from regionedit.evaluation.metrics import add_iou_ceiling
from regionedit.evaluation.region_thresholds import (FALSE_NO_EDIT_BAR, calibrate, localize_all, score_thresholds,
                                                     store_thresholds)
from regionedit.pipeline import Editor
from regionedit.world import spec
from regionedit.world.priors.prior import WorldPriorConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64")
    p.add_argument("--predictor", type=Path, default=None, help="a region_predictor folder (default: the model's)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a training state.pt of `regionedit train region`")
    p.add_argument("--n-per-category", type=int, default=40)
    p.add_argument("--seed", type=int, default=20000, help="held-out scenes the results are reported on")
    p.add_argument("--calibration-seed", type=int, default=15000, help="scenes the thresholds are chosen on (not reported)")
    p.add_argument("--calibration-n", type=int, default=30, help="calibration edits per category")
    p.add_argument("--renderer", choices=RENDERERS, default="regionedit",
                   help="who draws the held-out scenes: this package's renderer, or regionedit.world.alt_render "
                        "(pil: supersampled, pil-aliased: hard edges); calibration scenes always use ours")
    p.add_argument("--priors", choices=("on", "off"), default="on",
                   help="the shapes world's rules (snap, one object, CLIP check, shaping, add placement) on, or off: the learned predictor alone")
    p.add_argument("--no-shape", dest="shape", action="store_false", help="no shaping by edit type")
    p.add_argument("--no-snap", dest="snap", action="store_false", help="no snapping to colour segments")
    p.add_argument("--write-card", action="store_true",
                   help="store the chosen threshold in the predictor folder's config.json and write its README.md card")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--thresholds", type=float, nargs=3, metavar=("REGION", "PRESENCE", "VERIFY"), default=None,
                   help="report these thresholds on the held-out scenes instead of the calibrated choice (not with --write-card)")
    p.add_argument("--all-rows", action="store_true", help="print every threshold combination (default: those within the false no-edit bar)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="no CLIP referent check (region/verify.py)")
    p.add_argument("--no-single-object", dest="single_object", action="store_false",
                   help="keep every connected piece of the region (default: one piece per referent)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    world = WorldPriorConfig(shape_regions=args.shape, snap=args.snap, verify_referent=args.verify,
                             single_object=args.single_object)
    editor = Editor.from_pretrained(args.model, priors=args.priors == "on", plugin_options={"config": world})
    if args.predictor is not None:
        from regionedit.localize import load_region_predictor

        editor.region_predictor = load_region_predictor(args.predictor)
    if args.thresholds is not None and args.write_card:
        p.error("--write-card stores the calibrated thresholds; drop --thresholds")
    if args.checkpoint is not None and args.write_card:
        p.error("--write-card describes an exported predictor folder, not a checkpoint")
    if args.checkpoint is not None:
        from regionedit.localize import RegionPredictor, RegionPredictorConfig
        from regionedit.training.common import load_checkpoint

        st = load_checkpoint(args.checkpoint)  # weights_only: a planted checkpoint runs no code
        sd = {k[len("pred."):]: v for k, v in st["model"].items() if k.startswith("pred.")}
        c = editor.models.clip.config.projection_dim
        saved = st.get("predictor_config")
        cfg = (RegionPredictorConfig.from_dict(saved) if saved else  # checkpoints before predictor_config was saved
               RegionPredictorConfig(image_dim=c, instruction_dim=editor.models.instruction_encoder.config.d_model, clip_dim=c))
        pred = RegionPredictor(cfg)
        pred.load_state_dict(sd)
        editor.region_predictor = pred.eval()
    if editor.region_predictor is None:
        print("no region predictor: train one with `regionedit train region`", file=sys.stderr)
        return 2
    test = localize_all(editor, args.seed, args.n_per_category, args.renderer)
    # the thresholds the editor will use, chosen on the calibration scenes, not the held-out ones they are
    # reported on (evaluation.region_thresholds.choose_thresholds states the rule)
    calib = localize_all(editor, args.calibration_seed, args.calibration_n)
    best, table = calibrate(editor, args.calibration_n, items=calib)
    has_presence = test["remove"][0][2] is not None
    if args.thresholds is not None:  # report these instead of the calibrated choice
        th, pth, vth = args.thresholds
        best = (th, pth if has_presence else None, vth)
        table.setdefault(best, score_thresholds(editor, calib, *best))
    held_out = score_thresholds(editor, test, *best)
    held_out["add_iou_ceiling"] = float(np.nanmean([add_iou_ceiling(smp.source_scene, smp.edit, k=200, seed=i)
                                                    for i, (smp, *_) in enumerate(test.get("add", []))] or [np.nan]))
    if args.json:
        print(json.dumps({"chosen_threshold": best[0], "chosen_presence_threshold": best[1], "chosen_verify_threshold": best[2],
                          "held_out": held_out,
                          "calibration": [{"threshold": k[0], "presence_threshold": k[1], "verify_threshold": k[2], **v} for k, v in table.items()]}))
    if args.write_card:
        write_card_and_threshold(editor, args, best, held_out)
    if args.json:
        return 0
    cats = [c for c in spec.CATEGORIES if c != "absent"]
    head = "threshold presence verify " + " ".join(f"{c:>10}" for c in cats) + "  main IoU  no-edit(absent)  false no-edit"

    def line(k, row):
        th, pth, vth = k
        return (f"{th:9.2f} {'-' if pth is None else f'{pth:.2f}':>8} {vth:6.2f} " + " ".join(f"{row[c]:10.3f}" for c in cats)
                + f"  {row['mean_iou_main']:8.3f}  {row['absent_no_edit']:15.3f}  {row['false_no_edit']:13.3f}")

    print(f"calibration: {args.calibration_n} edits per category (seeds {args.calibration_seed}+)"
          + ("" if args.all_rows else ", combinations within the false no-edit bar"))
    print(head)
    for k, row in table.items():
        if args.all_rows or row["false_no_edit"] <= FALSE_NO_EDIT_BAR or k == best:
            print(line(k, row))
    print(f"\nheld-out: {args.n_per_category} edits per category (seeds {args.seed}+, drawn by {args.renderer}), the "
          + ("given thresholds" if args.thresholds else "chosen thresholds"))
    print(head)
    print(line(best, held_out))
    print(f"add regions placed in free space and in the named area: {held_out['add_placed']:.3f}")
    print(f"add IoU ceiling of any region chosen without seeing the ground truth's random placement: "
          f"{held_out['add_iou_ceiling']:.3f} (evaluation.metrics.add_iou_ceiling)")
    print("targets: IoU >= 0.80 on remove/local/color/size, >= 0.60 on add; absent no-edit >= 0.95; false no-edit <= 0.03")
    print(f"{'given' if args.thresholds else 'chosen'} thresholds: region {best[0]}, presence {best[1]}, CLIP referent check {best[2]}")
    return 0


def write_card_and_threshold(editor, args, thresholds: tuple, row: dict) -> None:
    from regionedit.world.training.model_cards import write_card

    folder = args.predictor or Path(editor.models.location) / "region_predictor"
    threshold, presence_threshold, verify_threshold = thresholds
    if args.priors == "off":  # the learned parts' own thresholds; the card keeps the full system's figures
        cfg_p = store_thresholds(folder, thresholds, learned_only=True)
        print(f"stored learned_thresholds {thresholds[:2]} into {cfg_p} (the model card is left as it is)")
        return
    cfg_p = store_thresholds(folder, thresholds)
    metrics = {f"iou_{c}": row[c] for c in ("remove", "local", "color", "size", "add", "background")}
    metrics.update(add_placed=row["add_placed"], add_iou_ceiling=row["add_iou_ceiling"], absent_no_edit=row["absent_no_edit"], false_no_edit=row["false_no_edit"], threshold=threshold,
                   n_per_category=args.n_per_category)
    if presence_threshold is not None:
        metrics["presence_threshold"] = presence_threshold
    metrics["verify_threshold"] = verify_threshold
    metrics.update(calibration_seed=args.calibration_seed, calibration_n=args.calibration_n)
    cmd = f"python benchmarks/region.py --n-per-category {args.n_per_category} --calibration-n {args.calibration_n} --write-card"
    write_card(folder, "region_predictor", metrics, cmd)
    print(f"wrote {folder / 'README.md'} and thresholds {thresholds} into {cfg_p}")


if __name__ == "__main__":
    sys.exit(main())
