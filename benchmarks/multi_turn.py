"""Multi-turn editing without drift: 10 edits in turn on held-out world scenes, side by side with what a
full-image editor does to the pixels it was not asked to change.

    python benchmarks/multi_turn.py [--scenes 10] [--turns 10] [--size 128] [--steps 8] [--priors on|off]

regionedit (an EditSession): each edit is bit-identical to its input outside its reported mask, so after every turn
the pixels outside the union of the kept masks are compared with the original (expected: 0 changed). Inside the
edited regions, the pixels an earlier turn edited and no later turn touched are compared with that turn's output
(their colour drift; expected 0).

The full-image reference: the same edits, but each turn's whole image goes through the generator's VAE (encode +
decode), as editors that regenerate the whole image (InstructPix2Pix-style, FLUX.1 Kontext, Qwen-Image-Edit) do at
the least; its drift outside the masks after each turn is reported (mean |difference| in 0-255 units and the share
of pixels changed), on the same scenes and edits.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from regionedit.pipeline import Editor, EditorConfig, EditSession
from regionedit.world.rendering import render
from regionedit.world.scene import sample_scene


def instructions_for(scene, rng: np.random.Generator, n: int) -> list[str]:
    """n edits in the world's words, over the scene's objects and the ones the session adds."""
    colors = ["red", "green", "blue", "yellow", "white", "purple", "orange"]
    shapes = ["star", "circle", "square", "triangle"]
    places = ["top left", "top right", "bottom left", "bottom right"]
    objs = [(o.color, o.shape) for o in scene.objects]
    out = []
    for k in range(n):
        kind = k % 4
        if kind == 0 or not objs:
            c, s = colors[rng.integers(len(colors))], shapes[rng.integers(len(shapes))]
            out.append(f"add a small {c} {s} in the {places[k // 4 % 4]}")
            objs.append((c, s))
        elif kind == 1:
            c, s = objs[rng.integers(len(objs))]
            new = colors[rng.integers(len(colors))]
            out.append(f"make the {c} {s} {new}")
            objs = [(new, s) if o == (c, s) else o for o in objs]
        elif kind == 2:
            c, s = objs[rng.integers(len(objs))]
            out.append(f"make the {c} {s} bigger")
        else:
            c, s = objs.pop(int(rng.integers(len(objs))))
            out.append(f"remove the {c} {s}")
    return out


@torch.no_grad()
def vae_round_trip(vae, image: np.ndarray) -> np.ndarray:
    """The whole image through the VAE (encode, decode), back to (H, W, 3) uint8."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(vae.dtype) / 127.5 - 1
    y = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    return ((y[0].permute(1, 2, 0).float().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=26000, help="first held-out scene seed")
    ap.add_argument("--priors", choices=["on", "off"], default="on")
    args = ap.parse_args(argv)

    editor = Editor.from_pretrained("shapes-64", priors=args.priors == "on",
                                    config=EditorConfig(steps=args.steps, candidates=1))
    vae = editor.models.vae
    outside_changed, kept_drift, kept_px, n_edited, n_calls = 0, 0.0, 0, 0, 0
    ref_mad = np.zeros(args.turns)
    ref_share = np.zeros(args.turns)
    for i in range(args.scenes):
        rng = np.random.default_rng(args.seed + i)
        scene = sample_scene(rng, n_objects=2)
        img = render(scene, args.size)
        session = EditSession(editor, img)
        ref = img
        for t, ins in enumerate(instructions_for(scene, rng, args.turns)):
            r = session.edit(ins, seed=i * 100 + t)
            n_calls += 1
            n_edited += r.status == "edited"
            outside = ~session.changed
            outside_changed += int(np.count_nonzero((session.image != img).any(-1) & outside))
            # the full-image reference: the same edit's pixels inside its mask, the VAE's everywhere else
            ref = np.where(r.mask[..., None], r.image, vae_round_trip(vae, ref))
            diff = np.abs(ref.astype(np.int16) - img.astype(np.int16))[outside]
            ref_mad[t] += float(diff.mean()) if diff.size else 0.0
            ref_share[t] += float((diff.max(-1) > 0).mean()) if diff.size else 0.0
        # colour drift of kept edits' pixels that no later kept edit touched
        for k, turn in enumerate(session.turns):
            later = np.zeros(img.shape[:2], bool)
            for r in session.turns[k + 1:]:
                later |= r.mask
            own = turn.mask & ~later
            kept_px += int(own.sum())
            kept_drift += float(np.abs(session.image[own].astype(np.int16) - turn.image[own].astype(np.int16)).sum())
    print(f"{args.scenes} held-out scenes x {args.turns} turns at {args.size} px (bundled shapes-64, priors "
          f"{args.priors}, {args.steps} steps): {n_edited}/{n_calls} edits kept")
    print(f"regionedit: pixels changed outside the union of kept masks, all turns and scenes: {outside_changed}")
    print(f"regionedit: colour drift of kept edits' own pixels after the last turn: "
          f"{kept_drift / max(kept_px, 1) / 3:.4f} mean |diff| (0-255) over {kept_px} px")
    print("full-image reference (whole image through the VAE each turn), outside the same masks:")
    print("  turn   mean|diff|(0-255)   share of pixels changed")
    for t in range(args.turns):
        print(f"  {t + 1:>4}   {ref_mad[t] / args.scenes:>17.2f}   {ref_share[t] / args.scenes:>23.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
