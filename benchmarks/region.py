"""Region prediction alone (no generation) on held-out world edits: IoU per category, the absent-referent
"no edit" rate and the false "no edit" rate, over a sweep of thresholds.

    python benchmarks/region.py [--n-per-category 40] [--model shapes-64] [--predictor DIR | --checkpoint state.pt]

Fast enough to watch a training run: ``--checkpoint runs/region/region/state.pt`` scores the latest
checkpoint of ``regionedit train region`` without exporting it. Held-out scenes use seeds >= 20000.
The Editor's decision rule is used as is (region = probability >= threshold, "no edit" when the region
covers less than ``min_region_frac`` of the image, then shaping by edit type unless ``--no-shape``).
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
from regionedit.region.shaping import shape_region
from regionedit.world import sample_edit, spec

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64")
    p.add_argument("--predictor", type=Path, default=None, help="a region_predictor folder (default: the model's)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a training state.pt of `regionedit train region`")
    p.add_argument("--n-per-category", type=int, default=40)
    p.add_argument("--seed", type=int, default=20000)
    p.add_argument("--no-shape", dest="shape", action="store_false", help="score the raw thresholded region (no shaping by edit type)")
    p.add_argument("--write-card", action="store_true",
                   help="store the chosen threshold in the predictor folder's config.json and write its README.md card")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    editor = Editor.from_pretrained(args.model, config=EditorConfig())
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
    probs: dict[str, list] = {}
    for ci, cat in enumerate(spec.CATEGORIES):
        for i in range(args.n_per_category):
            s = sample_edit(args.seed + ci, i, category=cat)
            intent = editor.describer(s.instruction).intent
            probs.setdefault(cat, []).append((editor.predict_region(s.source, s.instruction), s.mask, intent))
    table = {}
    for th in THRESHOLDS:
        row = {}
        for cat, items in probs.items():
            regions = [pr >= th for pr, _, _ in items]
            none = [r.mean() < frac for r in regions]
            if args.shape:
                regions = [r if n else shape_region(r, it) for r, n, (_, _, it) in zip(regions, none, items)]
            if cat == "absent":
                row["absent_no_edit"] = float(np.mean(none))
            else:
                row[cat] = float(np.mean([region_iou(r, m) for r, (_, m, _) in zip(regions, items)]))
                row.setdefault("_none", []).extend(none)
        row["false_no_edit"] = float(np.mean(row.pop("_none")))
        row["mean_iou_main"] = float(np.mean([row[c] for c in ("remove", "local", "color", "size") if c in row]))
        table[th] = row
    # the threshold the editor will use: best main IoU + absent accuracy, heavily penalising false "no edit"
    best = max(table, key=lambda th: table[th]["mean_iou_main"] + 0.5 * table[th]["absent_no_edit"]
               - 2 * max(0.0, table[th]["false_no_edit"] - 0.03))
    if args.json:
        print(json.dumps({"chosen_threshold": best, **{str(k): v for k, v in table.items()}}))
    if args.write_card:
        write_card_and_threshold(editor, args, best, table[best])
    if args.json:
        return 0
    cats = [c for c in spec.CATEGORIES if c != "absent"]
    print(f"region prediction on {args.n_per_category} held-out edits per category (seeds {args.seed}+)")
    print("threshold " + " ".join(f"{c:>10}" for c in cats) + "  main IoU  no-edit(absent)  false no-edit")
    for th, row in table.items():
        print(f"{th:9.2f} " + " ".join(f"{row[c]:10.3f}" for c in cats)
              + f"  {row['mean_iou_main']:8.3f}  {row['absent_no_edit']:15.3f}  {row['false_no_edit']:13.3f}")
    print("targets: IoU >= 0.80 on remove/local/color/size, >= 0.60 on add; absent no-edit >= 0.95; false no-edit <= 0.03")
    print(f"chosen threshold: {best}")
    return 0


def write_card_and_threshold(editor, args, threshold: float, row: dict) -> None:
    from regionedit.training.model_cards import write_card

    folder = args.predictor or Path(editor.models.location) / "region_predictor"
    cfg_p = folder / "config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["threshold"] = threshold
    tmp = cfg_p.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    tmp.replace(cfg_p)
    metrics = {f"iou_{c}": row[c] for c in ("remove", "local", "color", "size", "add", "background")}
    metrics.update(absent_no_edit=row["absent_no_edit"], false_no_edit=row["false_no_edit"], threshold=threshold,
                   n_per_category=args.n_per_category)
    cmd = f"python benchmarks/region.py --n-per-category {args.n_per_category} --write-card"
    write_card(folder, "region_predictor", metrics, cmd)
    print(f"wrote {folder / 'README.md'} and threshold {threshold} into {cfg_p}")


if __name__ == "__main__":
    sys.exit(main())
