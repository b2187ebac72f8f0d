"""Choosing the region predictor's three decision thresholds on calibration scenes, and storing them.

The editor turns the predictor's outputs into a region with three thresholds (``Editor.region_from``): the
region threshold on the per-pixel probability, the presence threshold under which a referent edit gets "no
edit", and the CLIP referent check's (region/verify.py). They are chosen here on world edits that are not
the held-out ones results are reported on (calibration seeds 15000+, held-out 20000+), and stored in the
predictor folder's config.json, which :func:`regionedit.localize.load_region_predictor` reads back.

    from regionedit.evaluation.region_thresholds import calibrate, store_thresholds
    best, table = calibrate(editor, n=60)
    store_thresholds(folder, best)

``benchmarks/region.py`` reports the choice on held-out scenes; ``regionedit train recipe`` calibrates its
export with this as its last step. Scoring reads the world's ground truth (masks, scenes): this is evaluation,
never inference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from regionedit.world.alt_render import drawn_by
from regionedit.evaluation.metrics import region_iou
from regionedit.world import sample_edit, spec

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)  # region threshold on the per-pixel probability
PRESENCE_THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # 0: no presence gate
VERIFY_THRESHOLDS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)  # 0: no CLIP referent check
# an Editor without priors: no CLIP check, so a finer grid of the two learned thresholds costs little; its presence
# gate alone must refuse absent referents, and its empty regions (false "no edit") fall at lower region thresholds
LEARNED_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
LEARNED_PRESENCE_THRESHOLDS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5)
FALSE_NO_EDIT_BAR = 0.03  # at most this share of real edits may get "no edit"
CALIBRATION_SEED = 15000  # calibration scenes: seeds 15000 + category index


def localize_all(editor, seed: int, n: int, renderer: str = "regionedit") -> dict[str, list]:
    """Per world category, ``n`` edits (``sample_edit(seed + category index, i)``, drawn by ``renderer``) with
    the predictor's outputs: ``{category: [(sample, prob, presence, description), ...]}``; ``prob`` is the
    editor's (H, W) float region probability in [0, 1] in image pixels, ``presence`` a float or None."""
    items: dict[str, list] = {}
    for ci, cat in enumerate(spec.CATEGORIES):
        for i in range(n):
            s = drawn_by(sample_edit(seed + ci, i, category=cat), renderer)
            desc = editor.describer(s.instruction)
            prob, presence = editor.localize(s.source, editor.region_instruction(s.instruction, desc))
            items.setdefault(cat, []).append((s, prob, presence, desc))
    return items


def score_thresholds(editor, items: dict[str, list], th: float, pth: float | None, vth: float) -> dict:
    """The editor's decision rule (``Editor.region_from``) at the given thresholds over ``localize_all``'s
    items: IoU with the ground-truth mask per category, ``add_placed``, ``absent_no_edit`` (absent referents
    refused), ``false_no_edit`` (real edits refused) and ``mean_iou_main`` (remove, local, color, size)."""
    frac = editor.config.min_region_frac
    row, none_all = {}, []
    for cat, its in items.items():
        regions = [editor.region_from(pr, pp, smp.source, it, threshold=th, presence_threshold=pth, verify_threshold=vth)
                   for smp, pr, pp, it in its]
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
    return row


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


def threshold_grid(editor, has_presence: bool) -> list[tuple]:
    """Every (region, presence, verify) combination tried: presence None without a presence head, verify 0
    when the editor's CLIP referent check is off; the finer learned grid for an editor without priors."""
    from regionedit.world.priors.prior import WorldPrior

    if not editor.priors:
        return [(th, pth, 0.0) for th in LEARNED_THRESHOLDS
                for pth in (LEARNED_PRESENCE_THRESHOLDS if has_presence else (None,))]
    world = editor.prior(WorldPrior)
    verify = world is not None and world.config.verify_referent
    return [(th, pth, vth) for th in THRESHOLDS for pth in (PRESENCE_THRESHOLDS if has_presence else (None,))
            for vth in (VERIFY_THRESHOLDS if verify else (0.0,))]


def choose_thresholds(table: dict[tuple, dict]) -> tuple:
    """The best combination of ``{(th, pth, vth): score_thresholds row}``: the highest main IoU + 0.5 x absent
    refusal among those that keep false "no edit" within its bar; when none does, the fewest false "no edit",
    ties broken on the same score (not on IoU alone: that takes the weakest referent check and gives up absent
    referents)."""
    def score(k):
        return table[k]["mean_iou_main"] + 0.5 * table[k]["absent_no_edit"]

    within = [k for k in table if table[k]["false_no_edit"] <= FALSE_NO_EDIT_BAR]
    if within:
        return max(within, key=score)
    return min(table, key=lambda k: (table[k]["false_no_edit"], -score(k)))


def calibrate(editor, n: int, seed: int = CALIBRATION_SEED, items: dict[str, list] | None = None) -> tuple[tuple, dict]:
    """Choose the editor's region predictor's thresholds on ``n`` calibration edits per category (seeds
    ``seed``+). Returns ``((threshold, presence_threshold or None, verify_threshold), {combination: row})``."""
    if editor.region_predictor is None:
        raise ValueError("the editor has no region predictor to calibrate: train one with `regionedit train region`")
    if n < 1:
        raise ValueError(f"calibration needs at least one edit per category, got n={n}")
    items = items if items is not None else localize_all(editor, seed, n)
    has_presence = items["remove"][0][2] is not None
    table = {k: score_thresholds(editor, items, *k) for k in threshold_grid(editor, has_presence)}
    return choose_thresholds(table), table


def store_thresholds(folder: str | Path, thresholds: tuple, learned_only: bool = False) -> Path:
    """Write ``(threshold, presence_threshold or None, verify_threshold)`` into a region predictor folder's
    config.json (atomically; its other keys kept). ``learned_only``: thresholds chosen for an Editor without
    priors, stored under ``learned_thresholds`` (the verify threshold, a prior's, is not stored). Returns the
    config's path."""
    cfg_p = Path(folder) / "config.json"
    if not cfg_p.is_file():
        raise FileNotFoundError(f"{cfg_p} does not exist: give a region predictor folder (one written by "
                                "`regionedit train region`, e.g. <model>/region_predictor)")
    cfg = json.loads(cfg_p.read_text())
    threshold, presence_threshold, verify_threshold = thresholds
    if learned_only:
        cfg["learned_thresholds"] = {"threshold": float(threshold)} | (
            {} if presence_threshold is None else {"presence_threshold": float(presence_threshold)})
        return _write_json(cfg_p, cfg)
    cfg["threshold"] = float(threshold)
    if presence_threshold is not None:
        cfg["presence_threshold"] = float(presence_threshold)
    cfg["verify_threshold"] = float(verify_threshold)
    return _write_json(cfg_p, cfg)


def _write_json(path: Path, data: dict) -> Path:
    """``data`` written to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
