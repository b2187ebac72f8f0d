"""Where the time of one mask-free edit goes, by image size (the 2048-vs-64 px target of the mask-free
editing issue: a 2048 px edit within 1.3x the time of a 64 px one).

    python benchmarks/edit_sizes.py [--sizes 64,512,2048,4096] [--reps 5] [--steps 20]

One held-out colour edit (seed 20000), the same scene rendered at each size. Per size, medians over
``--reps`` (sizes interleaved, so a machine slowing down hits all of them alike): the whole edit, the
localisation (``Editor.find_region``: CLIP features, predictor, the decision at ``Editor.work_side``: the world
prior's ``WorldPriorConfig.work_side`` unless ``EditorConfig.work_side`` is set) and the rest (generation on
the 64 px crop plus paste-back), and the ratio of the whole edit to 64 px.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from regionedit.pipeline import Editor, EditorConfig
from regionedit.world import render, sample_edit

TARGET_2048 = 1.3  # 2048 px edit / 64 px edit


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,512,2048,4096")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--model", default="shapes-64")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    sizes = [int(s) for s in args.sizes.split(",")]
    if 64 not in sizes:
        sizes = [64] + sizes
    editor = Editor.from_pretrained(args.model, config=EditorConfig(steps=args.steps))
    s = sample_edit(20000, 0, category="color")
    images = {n: render(s.source_scene, n) for n in sizes}
    for n in sizes:  # warm-up (allocator, caches)
        editor(images[n], s.instruction, seed=0)
    whole = {n: [] for n in sizes}
    local = {n: [] for n in sizes}
    for k in range(args.reps):
        for n in sizes:
            editor.clear_cache()  # CLIP features are cached by content: time them every run
            t = time.perf_counter()
            editor.find_region(images[n], s.instruction)
            local[n].append(time.perf_counter() - t)
            editor.clear_cache()
            t = time.perf_counter()
            res = editor(images[n], s.instruction, seed=k)
            whole[n].append(time.perf_counter() - t)
            assert res.status == "edited", res.reason
    print(f"edit: {s.instruction!r}, {args.steps} steps, median of {args.reps}")
    print(f"{'size':>6s} {'whole s':>8s} {'localise s':>11s} {'rest s':>7s} {'vs 64':>6s}")
    base = float(np.median(whole[64]))
    for n in sizes:
        w, loc = float(np.median(whole[n])), float(np.median(local[n]))
        verdict = f"  target <= {TARGET_2048}: {'MET' if w / base <= TARGET_2048 else 'NOT MET'}" if n == 2048 else ""
        print(f"{n:6d} {w:8.3f} {loc:11.3f} {w - loc:7.3f} {w / base:6.2f}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
