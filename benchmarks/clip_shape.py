"""Does a CLIP see shape? Three probes on held-out world data, for any CLIP folder.

    python benchmarks/clip_shape.py [--clip src/regionedit/weights/shapes-64/clip]

Prints: a linear probe's shape accuracy on the image embeddings of single-object scenes (trained on
1000, tested on 300), zero-shot shape accuracy (as in the model card), and the cosine similarity of the
text embeddings of "a red <shape> on a white background" for the five shapes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from regionedit.models.bundled import bundled_dir
from regionedit.world.training import world_data as D
from regionedit.world import spec
from regionedit.world.rendering import render
from regionedit.world.scene import sample_scene


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, default=bundled_dir("shapes-64") / "clip", help="a CLIPModel folder (with its tokenizer)")
    args = p.parse_args(argv)
    from transformers import CLIPModel, CLIPTokenizer

    torch.set_num_threads(2)
    clip = CLIPModel.from_pretrained(args.clip, torch_dtype=torch.float32).eval()
    tok = CLIPTokenizer.from_pretrained(args.clip)
    rng = np.random.default_rng(10_000)

    @torch.no_grad()
    def embed_images(n):
        scenes = [sample_scene(rng, n_objects=1) for _ in range(n)]
        e = clip.get_image_features(pixel_values=D.to_tensor([render(s) for s in scenes]))
        e = torch.nn.functional.normalize(getattr(e, "pooler_output", e), dim=-1)
        return e, torch.tensor([spec.SHAPES.index(s.objects[0].shape) for s in scenes])

    @torch.no_grad()
    def embed_texts(texts):
        ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
        e = clip.get_text_features(input_ids=ids.input_ids, attention_mask=ids.attention_mask)
        return torch.nn.functional.normalize(getattr(e, "pooler_output", e), dim=-1)

    (xtr, ytr), (xte, yte) = embed_images(1000), embed_images(300)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    lin = torch.nn.Linear(xtr.shape[1], len(spec.SHAPES))
    opt = torch.optim.Adam(lin.parameters(), 1e-2)
    g = torch.Generator().manual_seed(0)
    torch.nn.init.normal_(lin.weight, std=0.01, generator=g)
    for _ in range(500):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xtr), ytr).backward()
        opt.step()
    probe = float((lin(xte).argmax(1) == yte).float().mean())
    shapes = list(spec.SHAPES)
    t = embed_texts([f"a red {s} on a white background" for s in shapes])
    classes = embed_texts([f"a {c} {s} on a white background" for c in spec.OBJECT_COLORS for s in shapes])
    zero = (xte * sd + mu) @ classes.T
    zero_shot = float((zero.argmax(1) % len(shapes) == yte).float().mean())
    print(f"clip: {args.clip}")
    print(f"linear probe shape accuracy (image embeddings, 300 held-out singles): {probe:.3f}")
    print(f"zero-shot shape accuracy (white-background prompts, same images):    {zero_shot:.3f}")
    print("text cosine, 'a red <shape> on a white background':")
    print("          " + " ".join(f"{s:>8}" for s in shapes))
    for s, row in zip(shapes, (t @ t.T).tolist()):
        print(f"{s:>9} " + " ".join(f"{v:8.3f}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
