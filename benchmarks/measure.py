"""Speed of the palette/shape measurement (``regionedit.world.measure.measure_objects``).

    python benchmarks/measure.py [--reps 20]

Prints the median seconds per image at 64, 256 and 1024 px (3-object held-out scenes) against the
target of 0.05 s at 64 px (the evaluation harness measures thousands of generated images).
Timing lives here, not in the unit tests: a loaded CI machine would fail a timed test for no bug.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from regionedit.world.measure import measure_objects
from regionedit.world import render, sample_scene

TARGET_64 = 0.05  # seconds per 64 px image


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args(argv)
    scene = sample_scene(np.random.default_rng(3), n_objects=3)
    for size in (64, 256, 1024):
        img = render(scene, size)
        measure_objects(img)  # warm-up
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            measure_objects(img)
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        verdict = f"  target < {TARGET_64} s: {'MET' if med < TARGET_64 else 'NOT MET'}" if size == 64 else ""
        print(f"{size:5d} px  median {med:.4f} s over {args.reps}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
