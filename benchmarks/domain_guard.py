"""Calibrate and measure the bundled folder's domain guard (regionedit.core.domain.DomainGuard).

    python benchmarks/domain_guard.py [--model shapes-64] [--n 300] [--write]

The score is the folder VAE's mean absolute reconstruction error at its native side. The threshold is chosen on
*in-domain* calibration images only (world scenes, seeds 30000+, both renderers, five sizes, a third of them
JPEG-saved at quality 85): ``margin`` x their maximum. Photos are never used to choose it; they are the test:
the script then reports, on held-out world scenes (seeds 40000+, both renderers, the same sizes, plus the
bundled editor's own edited outputs) the false-refusal rate, and on every scikit-image sample photo that ships
with the wheel (and synthetic non-world images: noise, a gradient-free texture) the refusal rate.
``--write`` stores the threshold and these figures in the folder's ``regionedit.json`` (``domain_guard``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from regionedit import models as M
from regionedit.core.domain import DomainGuard
from regionedit.core.plugin import FOLDER_FILE
from regionedit.world.alt_render import render_pil
from regionedit.world.rendering import render
from regionedit.world.scene import sample_scene

SIZES = (64, 128, (300, 451), (427, 640), 1024)


def world_images(seed: int, n: int):
    """n world scenes: alternately drawn by the reference renderer and the independent one (PIL), at SIZES in
    turn; every third one through a JPEG round trip."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        scene = sample_scene(rng)
        size = SIZES[i % len(SIZES)]
        img = render(scene, size) if i % 2 == 0 else render_pil(scene, size)
        if i % 3 == 2:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "JPEG", quality=85)
            img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        yield img


def photos():
    """(name, image) of every scikit-image sample image that loads offline, as RGB uint8; plus synthetic
    non-world images."""
    import skimage.data as d

    for name in sorted(n for n in dir(d) if not n.startswith("_")):
        fn = getattr(d, name)
        if not callable(fn) or name in ("download_all", "data_dir", "file_hash", "lbp_frontal_face_cascade_filename",
                                        "cells3d", "brain", "kidney", "lfw_subset", "nickel_solidification",
                                        "vortex", "protein_transport", "human_mitosis", "stereo_motorcycle"):
            continue
        try:
            img = np.asarray(fn())
        except Exception:  # needs the optional `pooch` download
            continue
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        if img.ndim != 3 or img.shape[2] < 3 or min(img.shape[:2]) < 32:
            continue
        img = img[..., :3]
        if img.dtype != np.uint8:
            img = (img.astype(np.float64) / max(float(img.max()), 1e-9) * 255).astype(np.uint8)
        yield name, img
    rng = np.random.default_rng(0)
    yield "synthetic: uniform noise", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    yield "synthetic: smoothed noise", np.asarray(Image.fromarray(
        rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((256, 256), Image.BICUBIC))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shapes-64")
    ap.add_argument("--n", type=int, default=300, help="world images for calibration, and again held out")
    ap.add_argument("--margin", type=float, default=1.5, help="threshold = margin x the calibration maximum")
    ap.add_argument("--edits", type=int, default=30, help="bundled editor outputs among the held-out world images")
    ap.add_argument("--write", action="store_true", help=f"store the guard in the folder's {FOLDER_FILE}")
    args = ap.parse_args(argv)

    models = M.load(args.model)
    from regionedit.generate import InpaintGenerator

    probe = DomainGuard(threshold=1.0, side=InpaintGenerator(models).native_size)  # scores only
    vae = models.vae
    cal = np.array([probe.score(vae, im) for im in world_images(30000, args.n)])
    threshold = round(float(args.margin * cal.max()), 4)
    guard = DomainGuard(threshold=threshold, side=probe.side, domain="flat-colour shapes scenes (the shapes world)")

    held = [probe.score(vae, im) for im in world_images(40000, args.n)]
    if args.edits:
        from regionedit.pipeline import Editor, EditorConfig

        editor = Editor.from_models(models, EditorConfig(steps=8, candidates=1, domain_guard=False))
        rng = np.random.default_rng(41000)
        instructions = ("remove the {c} {s}", "make the {c} {s} bigger", "add a small green star",
                        "change the background to black")
        for k in range(args.edits):
            scene = sample_scene(rng)
            obj = scene.objects[0]
            img = render(scene, SIZES[k % len(SIZES)])
            out = editor(img, instructions[k % 4].format(c=obj.color, s=obj.shape), seed=k).image
            held.append(probe.score(vae, out))
    held = np.array(held)
    ph = [(name, probe.score(vae, im)) for name, im in photos()]
    refused = [name for name, s in ph if s > threshold]
    figures = {
        "rule": f"threshold = {args.margin} x the maximum score of {args.n} in-domain calibration images "
                "(world scenes, seeds 30000+, both renderers, 5 sizes, 1/3 JPEG q85); photos not used to choose it",
        "calibration_max": round(float(cal.max()), 4),
        "heldout_world_n": int(len(held)),
        "heldout_world_max": round(float(held.max()), 4),
        "heldout_world_false_refusal": round(float((held > threshold).mean()), 4),
        "photos_n": len(ph),
        "photos_min": round(min(s for _, s in ph), 4),
        "photos_refused": round(len(refused) / len(ph), 4),
        "command": "python benchmarks/domain_guard.py --write",
    }
    guard.calibration = figures
    print(f"threshold {threshold:.4f} ({args.margin} x calibration max {cal.max():.4f})")
    print(f"held-out world images (incl. {args.edits} edited outputs): n={len(held)} max {held.max():.4f} "
          f"false refusal {figures['heldout_world_false_refusal']:.3f}")
    print(f"photos / non-world: n={len(ph)} refused {len(refused)}/{len(ph)} ({figures['photos_refused']:.3f})")
    for name, s in sorted(ph, key=lambda x: x[1]):
        print(f"  {s:.4f}  {'refused' if s > threshold else 'PASSED '}  {name}")
    if args.write:
        path = Path(models.location) / FOLDER_FILE
        data = json.loads(path.read_text()) if path.exists() else {}
        data["domain_guard"] = guard.to_json()
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
        print(f"wrote the guard to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
