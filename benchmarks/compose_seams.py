"""Seam quality and speed of the paste-back blend methods on synthetic edits.

Case (per image size N): the source is a smooth colour gradient; the "model output" is the same
gradient with a colour shift of (+10, -20, +30) grey levels everywhere (the drift an inpainting
model and its VAE typically add) and a red disk (the new object) inside the region. The region is
a disk of radius 0.18 N. As in the real pipeline the edit is made at the model's scale: the crop
box comes from ``region_crop``, the edited crop is resized to a 64 x 64 patch (the bundled
models' native size), and ``paste_back`` resizes it back and blends it inside the region with
its automatic ramp width ``feather_px = auto_blend_px``.

The blend stays inside the region: every changed pixel must be a region pixel.

First table, per method side by side: the median wall time of ``paste_back`` (crop resize back +
blend) at each image size, and ``share`` = changed pixels inside the region / all changed pixels
(the guarantee says 1.000; anything else is a bug).

Second table (seam quality), columns:
- ``px``: the ramp width ``auto_blend_px`` (inside the region).
- ``seam``: seam visibility, in grey levels per pixel: along 720 rays crossing the region's
  boundary, the peak of ``|grad(out - source)|`` (Euclidean over the 3 channels, central
  differences) between ``px + 2`` px inside the region (but 2 px off the red object) and 3 px
  outside it, averaged over the rays. The ideal is a shift spread so thinly that the peak is ~0;
  a hard paste shows the whole 37-level shift as a step (about half of it per pixel with central differences, less after the
  patch's resampling blur).
- ``out.mae``: mean |out - source| on the 3-px ring just outside the region (must be 0.000).
- ``core.mae``: mean |out - edit| on the region eroded by ``px`` (where the alpha is 1), ``edit``
  being the patch resized to the box (0.00 for feather / laplacian / hard).
- ``in.mae``: mean |out - edit| over the whole region (how much of the edit survives: the ramp
  costs some of it at the region's rim; Poisson deliberately gives up the colour shift).

A third table times one small edit (a 64 px box) in images from 64 to 4096 px: the cost follows
the box, not the image.

Run: ``python benchmarks/compose_seams.py [--sizes 64 512 2048] [--repeats 3]`` (about a minute).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from regionedit.compose import (
    METHODS,
    auto_blend_px,
    crop_resize,
    dilate,
    erode,
    paste_back,
    region_crop,
    uncrop_resize,
)

SHIFT = np.array([10.0, -20.0, 30.0])
PATCH = 64


def make_case(n: int) -> dict:
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    src = np.stack(
        [40 + 150 * xx / n, 60 + 120 * yy / n, 90 + 60 * (xx + yy) / (2 * n)], axis=2
    )
    src = np.rint(src).astype(np.uint8)
    cy, cx, r = 0.45 * n, 0.55 * n, 0.18 * n
    dist = np.hypot(yy - cy, xx - cx)
    region = (dist <= r).astype(np.float32)
    edited = src.astype(np.float32) + SHIFT
    obj = dist <= 0.5 * r
    edited[obj] = (200.0, 40.0, 40.0)
    edited = np.clip(np.rint(edited), 0, 255).astype(np.uint8)
    return {"src": src, "edited": edited, "region": region, "center": (cy, cx), "radius": r}


def bilinear(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    y = np.clip(y, 0, h - 1.001)
    x = np.clip(x, 0, w - 1.001)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    return (
        img[y0, x0] * (1 - fy) * (1 - fx)
        + img[y0 + 1, x0] * fy * (1 - fx)
        + img[y0, x0 + 1] * (1 - fy) * fx
        + img[y0 + 1, x0 + 1] * fy * fx
    )


def seam_visibility(out, src, center, r_in, r_out) -> float:
    cy, cx = center
    y0, y1 = int(max(cy - r_out - 3, 0)), int(min(cy + r_out + 4, src.shape[0]))
    x0, x1 = int(max(cx - r_out - 3, 0)), int(min(cx + r_out + 4, src.shape[1]))
    diff = out[y0:y1, x0:x1].astype(np.float32) - src[y0:y1, x0:x1].astype(np.float32)
    gy, gx = np.gradient(diff, axis=(0, 1))
    gmag = np.sqrt((gy * gy + gx * gx).sum(axis=2))
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)[:, None]
    rad = np.arange(r_in, r_out, 0.5)[None, :]
    ys = cy - y0 + rad * np.sin(theta)
    xs = cx - x0 + rad * np.cos(theta)
    prof = bilinear(gmag, ys.ravel(), xs.ravel()).reshape(ys.shape)
    return float(prof.max(axis=1).mean())


def run(sizes: list[int], repeats: int) -> None:
    print(
        f"patch {PATCH}x{PATCH}; colour shift {SHIFT.astype(int).tolist()} + red object; "
        "region radius 0.18 N\n"
    )
    rows, ms, share = [], {}, {}
    for n in sizes:
        case = make_case(n)
        src, region = case["src"], case["region"]
        box = region_crop(region)
        patch = crop_resize(case["edited"], box, PATCH)
        px = auto_blend_px(box, patch.shape)
        reg = region >= 0.5
        ring = dilate(reg, 3) & ~reg
        core = erode(reg, px)
        edit_full = src.copy()
        edit_full[box.slices] = uncrop_resize(patch, box)
        r = case["radius"]
        for method in METHODS:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = paste_back(src, patch, box, region, method=method)
                times.append(time.perf_counter() - t0)
            changed = (out != src).any(axis=2)
            ms[method, n] = 1000 * float(np.median(times))
            share[method, n] = float((changed & reg).sum() / max(int(changed.sum()), 1))
            seam = seam_visibility(out, src, case["center"], max(r - px - 2, 0.5 * r + 2), r + 3)  # off the object
            mae = lambda m, ref: float(np.abs(out[m].astype(int) - ref[m]).mean())  # noqa: E731
            rows.append(
                f"| {n:>5} | {box.width:>5} | {px:>3} | {method:<9} | {seam:>6.2f} "
                f"| {mae(ring, src):>7.3f} | {mae(core, edit_full):>8.2f} | {mae(reg, edit_full):>6.2f} |"
            )
    cols = [f"ms@{n}" for n in sizes] + [f"share@{n}" for n in sizes]
    print("paste_back time (median of %d) and share of changed pixels inside the region\n" % repeats)
    print(f"| {'method':<9} | " + " | ".join(f"{c:>10}" for c in cols) + " |")
    print("|" + "|".join(["-" * 11] + ["-" * 12] * len(cols)) + "|")
    for method in METHODS:
        cells = [f"{ms[method, n]:>10.1f}" for n in sizes] + [f"{share[method, n]:>10.3f}" for n in sizes]
        print(f"| {method:<9} | " + " | ".join(cells) + " |")
    header = (
        f"| {'N':>5} | {'box':>5} | {'px':>3} | {'method':<9} | {'seam':>6} | {'out.mae':>7} "
        f"| {'core.mae':>8} | {'in.mae':>6} |"
    )
    print("\nseam quality\n")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    print("\n".join(rows))


def run_fixed_box(sizes: list[int], repeats: int) -> None:
    """paste_back cost for the same small edit (region radius 12 px) in images of growing size."""
    print("\npaste_back time for one small edit (region radius 12 px, 64x64 patch) vs image size")
    print("(the only full-image cost is the copy of the returned image)\n")
    print(f"| {'image':>11} | {'box':>5} | " + " | ".join(f"{m + ' ms':>12}" for m in METHODS) + " |")
    print("|" + "|".join(["-" * 13, "-" * 7] + ["-" * 14] * len(METHODS)) + "|")
    for n in sizes:
        src = np.full((n, n, 3), 128, np.uint8)
        yy, xx = np.mgrid[:32, :32]
        region = np.zeros((n, n), bool)
        region[n // 2 - 16 : n // 2 + 16, n // 2 - 16 : n // 2 + 16] = np.hypot(yy - 16, xx - 16) <= 12
        box = region_crop(region)
        patch = np.full((PATCH, PATCH, 3), 140, np.uint8)
        cells = []
        for method in METHODS:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                paste_back(src, patch, box, region, method=method)
                times.append(time.perf_counter() - t0)
            cells.append(f"{1000 * float(np.median(times)):>12.1f}")
        print(f"| {f'{n}x{n}':>11} | {box.width:>5} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run(args.sizes, args.repeats)
    run_fixed_box([64, 512, 2048, 4096], args.repeats)


if __name__ == "__main__":
    main()
