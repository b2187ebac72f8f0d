"""Region prediction alone (no generation) on held-out world edits: IoU per category, the absent-referent
"no edit" rate and the false "no edit" rate, over a sweep of thresholds.

    python benchmarks/region.py [--n-per-category 40] [--model shapes-64] [--predictor DIR | --checkpoint state.pt]

Fast enough to watch a training run: ``--checkpoint runs/region/region/state.pt`` scores the latest
checkpoint of ``regionedit train region`` without exporting it. Held-out scenes use seeds >= 20000.
The Editor's decision rule is used as is (``Editor.region_from``: "no edit" for a referent edit whose
presence probability is below the presence threshold, region = probability >= threshold, snapped to colour
segments, "no edit" when it covers less than ``min_region_frac`` of the image, shaping by edit type), with
``--no-shape`` / ``--no-snap`` to switch those steps off. Both thresholds are swept.
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

from regionedit.evaluation.metrics import region_iou
from regionedit.pipeline import Editor, EditorConfig
from regionedit.world import sample_edit, spec

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
PRESENCE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64")
    p.add_argument("--predictor", type=Path, default=None, help="a region_predictor folder (default: the model's)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a training state.pt of `regionedit train region`")
    p.add_argument("--n-per-category", type=int, default=40)
    p.add_argument("--seed", type=int, default=20000)
    p.add_argument("--no-shape", dest="shape", action="store_false", help="no shaping by edit type")
    p.add_argument("--no-snap", dest="snap", action="store_false", help="no snapping to colour segments")
    p.add_argument("--write-card", action="store_true",
                   help="store the chosen threshold in the predictor folder's config.json and write its README.md card")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    editor = Editor.from_pretrained(args.model, config=EditorConfig(shape_regions=args.shape, snap=args.snap))
    if args.predictor is not None:
        from regionedit.region import load_region_predictor

        editor.region_predictor = load_region_predictor(args.predictor)
    if args.checkpoint is not None and args.write_card:
        p.error("--write-card describes an exported predictor folder, not a checkpoint")
    if args.checkpoint is not None:
        from regionedit.region import RegionPredictor, RegionPredictorConfig

        st = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
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
    frac = editor.config.min_region_frac
    items: dict[str, list] = {}
    for ci, cat in enumerate(spec.CATEGORIES):
        for i in range(args.n_per_category):
            s = sample_edit(args.seed + ci, i, category=cat)
            intent = editor.describer(s.instruction).intent
            prob, presence = editor.localize(s.source, s.instruction)
            items.setdefault(cat, []).append((s, prob, presence, intent))
    has_presence = items["remove"][0][2] is not None
    table = {}
    for th in THRESHOLDS:
        for pth in PRESENCE_THRESHOLDS if has_presence else (None,):
            row, none_all = {}, []
            for cat, its in items.items():
                regions = [editor.region_from(pr, pp, smp.source, it, threshold=th, presence_threshold=pth) for smp, pr, pp, it in its]
                none = [r.mean() < frac for r in regions]
                if cat == "absent":
                    row["absent_no_edit"] = float(np.mean(none))
                else:
                    row[cat] = float(np.mean([region_iou(r, smp.mask) for r, (smp, *_) in zip(regions, its)]))
                    none_all.extend(none)
                if cat == "add":
                    row["add_placed"] = float(np.mean([add_placed(r, smp) for r, (smp, *_) in zip(regions, its)]))
            row["false_no_edit"] = float(np.mean(none_all))
            row["mean_iou_main"] = float(np.mean([row[c] for c in ("remove", "local", "color", "size") if c in row]))
            table[(th, pth)] = row
    # the thresholds the editor will use: best main IoU + absent accuracy among those that keep false "no edit"
    # within its bar (0.03); when none does, the fewest false "no edit"
    within = [k for k in table if table[k]["false_no_edit"] <= 0.03]
    best = (max(within, key=lambda k: table[k]["mean_iou_main"] + 0.5 * table[k]["absent_no_edit"]) if within
            else min(table, key=lambda k: (table[k]["false_no_edit"], -table[k]["mean_iou_main"])))
    if args.json:
        print(json.dumps({"chosen_threshold": best[0], "chosen_presence_threshold": best[1],
                          "table": [{"threshold": k[0], "presence_threshold": k[1], **v} for k, v in table.items()]}))
    if args.write_card:
        write_card_and_threshold(editor, args, best, table[best])
    if args.json:
        return 0
    cats = [c for c in spec.CATEGORIES if c != "absent"]
    print(f"region prediction on {args.n_per_category} held-out edits per category (seeds {args.seed}+)")
    print("threshold presence " + " ".join(f"{c:>10}" for c in cats) + "  main IoU  no-edit(absent)  false no-edit")
    for (th, pth), row in table.items():
        print(f"{th:9.2f} {'-' if pth is None else f'{pth:.2f}':>8} " + " ".join(f"{row[c]:10.3f}" for c in cats)
              + f"  {row['mean_iou_main']:8.3f}  {row['absent_no_edit']:15.3f}  {row['false_no_edit']:13.3f}")
    print(f"add regions placed in free space and in the named area (chosen thresholds): {table[best]['add_placed']:.3f}")
    print("targets: IoU >= 0.80 on remove/local/color/size, >= 0.60 on add; absent no-edit >= 0.95; false no-edit <= 0.03")
    print(f"chosen thresholds: region {best[0]}, presence {best[1]}")
    return 0


def add_placed(region: np.ndarray, sample) -> bool:
    """An add region is usable when it is non-empty, clear of every source object (ground truth, read
    here for scoring only) and centred in the area the instruction names, if any. The GT mask puts the new
    object at a random free spot, so IoU with it measures luck, not placement."""
    from regionedit.world.rendering import object_coverage

    if not region.any():
        return False
    h, w = region.shape
    if any((region & (object_coverage(o, (h, w)) > 0.5)).any() for o in sample.source_scene.objects):
        return False
    area = (sample.edit or {}).get("area")
    ys, xs = np.nonzero(region)
    return area is None or spec.in_area(area, (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h)


def write_card_and_threshold(editor, args, thresholds: tuple, row: dict) -> None:
    from regionedit.training.model_cards import write_card

    folder = args.predictor or Path(editor.models.location) / "region_predictor"
    cfg_p = folder / "config.json"
    cfg = json.loads(cfg_p.read_text())
    threshold, presence_threshold = thresholds
    cfg["threshold"] = threshold
    if presence_threshold is not None:
        cfg["presence_threshold"] = presence_threshold
    tmp = cfg_p.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(cfg_p)
    metrics = {f"iou_{c}": row[c] for c in ("remove", "local", "color", "size", "add", "background")}
    metrics.update(add_placed=row["add_placed"], absent_no_edit=row["absent_no_edit"], false_no_edit=row["false_no_edit"], threshold=threshold,
                   n_per_category=args.n_per_category)
    if presence_threshold is not None:
        metrics["presence_threshold"] = presence_threshold
    cmd = f"python benchmarks/region.py --n-per-category {args.n_per_category} --write-card"
    write_card(folder, "region_predictor", metrics, cmd)
    print(f"wrote {folder / 'README.md'} and thresholds {thresholds} into {cfg_p}")


if __name__ == "__main__":
    sys.exit(main())
