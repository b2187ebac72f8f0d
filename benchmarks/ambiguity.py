"""Ambiguous referents: does the editor refuse "remove the circle" when the image has two circles, and only then?

    python benchmarks/ambiguity.py [--n 100] [--seed 21000] [--renderer regionedit]

Held-out scenes (seeds >= 20000; 3 objects per WORLD.md) are drawn until two objects share a shape (or, for
the colour rows, a colour). Each scene gives an instruction naming the shared word alone ("remove the circle",
"make the circle green"; "remove the red one") -- WORLD.md names an object by shape alone only when the shape
is unique, so the right answer is "no edit", ambiguous -- and one naming a word that is unique in the same
scene, which must not be refused as ambiguous. Only the localisation and the ambiguity check run (no
generation): ``Editor.find_region`` then the world prior's ``ambiguous`` (its ``refuse`` hook), as
``Editor.__call__`` does. Prints the rates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import numpy as np
import torch

from regionedit.world.alt_render import RENDERERS, render_by
from regionedit.pipeline import Editor
from regionedit.world import spec
from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig
from regionedit.world.scene import sample_scene


def _scenes(seed: int, n: int, key: str):
    """``n`` scenes of 3 objects where two share their ``key`` ("shape" or "color"), with the shared word
    and a word of that kind that one object alone has (None when every object shares it)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        sc = sample_scene(rng, n_objects=3)
        counts = Counter(getattr(o, key) for o in sc.objects)
        shared = [w for w, c in counts.items() if c >= 2]
        if shared:
            unique = [w for w, c in counts.items() if c == 1]
            out.append((sc, shared[0], unique[0] if unique else None))
    return out


def _instructions(key: str, word: str, rng: np.random.Generator) -> str:
    if key == "shape":
        return str(rng.choice([f"remove the {word}", f"make the {word} {rng.choice(list(spec.OBJECT_COLORS))}",
                               f"make the {word} bigger"]))
    return str(rng.choice([f"remove the {word} one", f"make the {word} shape bigger", f"delete the {word} object"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64")
    p.add_argument("--n", type=int, default=100, help="scenes per row (shape, colour)")
    p.add_argument("--seed", type=int, default=21000)
    p.add_argument("--renderer", choices=RENDERERS, default="regionedit")
    p.add_argument("--min-score", type=float, default=None,
                   help="WorldPriorConfig.refuse_ambiguous: CLIP score a second object needs (default: the prior's)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    config = WorldPriorConfig() if args.min_score is None else WorldPriorConfig(refuse_ambiguous=args.min_score)
    editor = Editor.from_pretrained(args.model, plugin_options={"config": config})
    if editor.region_predictor is None:
        print("no region predictor in this model: nothing to measure")
        return 1
    prior = editor.prior(WorldPrior)
    if prior is None:
        print(f"{args.model} does not name the shapes plugin: no world prior to refuse ambiguous referents")
        return 1
    rng = np.random.default_rng(args.seed)
    out = {}
    for key, seed in (("shape", args.seed), ("color", args.seed + 1)):
        refused_shared, refused_unique, other_unique, n_unique = 0, 0, Counter(), 0
        for sc, shared, unique in _scenes(seed, args.n, key):
            image = render_by(sc, args.renderer)
            for word, is_shared in ((shared, True), (unique, False)):
                if word is None:
                    continue
                text = _instructions(key, word, rng)
                desc = editor.describer(text)
                footprint, _ = editor.find_region(image, text, desc, shape=False)
                amb = bool(footprint.any()) and bool(prior.ambiguous(image, desc.intent, footprint))
                if is_shared:
                    # an empty footprint is "no edit" too (the editor's answer), though not for this reason
                    refused_shared += amb or not footprint.any()
                else:
                    n_unique += 1
                    refused_unique += amb
                    other_unique[("ambiguous" if amb else "edited" if footprint.any() else "no region")] += 1
        out[key] = {"shared_refused": refused_shared / args.n, "unique_refused_as_ambiguous": refused_unique / max(1, n_unique),
                    "n_shared": args.n, "n_unique": n_unique, "unique_outcomes": dict(other_unique)}
        print(f"{key:6s} shared word -> no edit {refused_shared / args.n:.3f} ({args.n}); unique word -> refused as "
              f"ambiguous {refused_unique / max(1, n_unique):.3f} ({n_unique}; {dict(other_unique)})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
