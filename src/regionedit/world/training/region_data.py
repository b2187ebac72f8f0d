"""The shapes world as the data source of ``regionedit train region`` (:mod:`regionedit.training.region`).

The region trainer learns from text-image pairs only. This module supplies them for the bundled shapes world:
the pairs (scenes rendered on the fly, or the WebDataset shards ``regionedit world make --format pairs``
writes, given by ``--pairs``) and, from each caption's *text alone*, the edit the trainer scores
(:func:`example_from_caption`: the paper uses an LLM; we use the world language rules). The scene graph of a
rendered pair is discarded before training sees the sample. :class:`WorldRegionData` is the
:class:`~regionedit.training.region.RegionDataFactory` the CLI wiring (``regionedit train region``) and the
recipe pass to :func:`regionedit.training.region.run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from regionedit.training.region import RegionBatch, RegionExample
from regionedit.world import language as lang
from regionedit.world import spec
from regionedit.world.grammar import REFERENT_OPS, WorldDescriber, format_caption, parse_caption
from regionedit.world.intent import Referent
from regionedit.world.rendering import render, render_background
from regionedit.world.scene import Background, color_allowed, sample_scene
from regionedit.world.training.world_data import degrade


def example_from_caption(caption: str, rng: np.random.Generator, absent_prob: float = 0.1) -> dict | None:
    """Text-only edit synthesis from a caption (never the image or a scene graph), or None.

    Returns ``{"op", "instruction", "target", "local", "clip_target", "negatives"}``: ``target`` is the target
    description t_e, ``local`` the generator prompt, and ``clip_target`` the description the composite
    is scored against by the CLIP losses: for edits of an existing object (remove / color / local /
    size) the caption *without that object* (the region is the object's footprint: the region that, once
    refilled with background, makes the object disappear), for background and add edits t_e, and for
    absent referents the source caption itself (nothing should change). ``negatives`` are captions a
    wrong region would produce (another object removed; nothing changed), scored against in the
    contrastive form of the CLIP loss.
    """
    objects, (top, bottom) = parse_caption(caption)
    bg = Background(top, bottom)
    present = {(o.color, o.shape) for o in objects}
    ops = ["remove", "color", "local", "size", "background", "add"] if objects else ["add", "background"]
    op = "absent" if rng.random() < absent_prob else ops[rng.integers(len(ops))]
    clip_target, negatives = None, []
    if op in REFERENT_OPS:
        k = int(rng.integers(len(objects)))
        o: Referent = objects[k]
        clip_target = format_caption(objects[:k] + objects[k + 1:], (top, bottom))
        # what a wrong region would produce: the edit applied to another object, or to every object
        negatives = [format_caption(objects[:j] + objects[j + 1:], (top, bottom)) for j in range(len(objects)) if j != k]
        if len(objects) > 1:
            negatives.append(format_caption([], (top, bottom)))
        unique_shape = sum(x.shape == o.shape for x in objects) == 1
        ref = lang.refer(rng, None if unique_shape and rng.random() < 0.3 else o.color, o.shape)
        if op == "remove":
            text = lang.phrase_remove(rng, ref)
        elif op == "color":
            cs = [c for c in spec.OBJECT_COLORS if c != o.color and (c, o.shape) not in present and color_allowed(c, bg)]
            if not cs:
                return None
            text = lang.phrase_color(rng, ref, cs[rng.integers(len(cs))])
        elif op == "local":
            opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if s != o.shape and (c, s) not in present and color_allowed(c, bg)]
            c, s = opts[rng.integers(len(opts))]
            text = lang.phrase_replace(rng, ref, lang.new_object_phrase(rng, c, s, None))
        else:
            text = lang.phrase_size(rng, ref, bigger=o.size != "large" if o.size else bool(rng.random() < 0.5))
    elif op == "add":
        opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if (c, s) not in present and color_allowed(c, bg)]
        c, s = opts[rng.integers(len(opts))]
        area = spec.AREAS[rng.integers(len(spec.AREAS))] if rng.random() < 0.5 else None
        text = lang.phrase_add(rng, lang.new_object_phrase(rng, c, s, None), area)
    elif op == "background":
        names = [n for n in spec.BACKGROUND_COLORS if n != top]
        new = Background(names[rng.integers(len(names))])
        if not all(color_allowed(x.color, new) for x in objects if x.color):
            return None
        text = lang.phrase_background(rng, new)
    else:  # absent referent: any edit of an object the caption does not have
        text = _absent_instruction(rng, objects, present, bg)
    d = WorldDescriber()(text, caption)
    if d.intent is None:
        return None
    if op == "absent":
        removed = [format_caption(objects[:j] + objects[j + 1:], (top, bottom)) for j in range(len(objects))]
        if len(objects) > 1:
            removed.append(format_caption([], (top, bottom)))
        return {"op": op, "instruction": text, "target": caption, "local": "background", "clip_target": caption,
                "negatives": removed}
    if d.error:
        return None
    if op != "add":
        negatives.append(caption)  # an empty region leaves the source as it was
    if op == "background" and objects:  # a region over the objects too paints them over
        negatives.append(format_caption([], d.intent.background))
    return {"op": op, "instruction": text, "target": d.target_description, "local": d.local_prompt,
            "clip_target": clip_target or d.target_description, "background": d.intent.background,
            "negatives": negatives}


def _absent_instruction(rng: np.random.Generator, objects, present: set, bg) -> str:
    """An instruction naming an object the caption lacks, in any referent phrasing. Half the time a near
    miss of a present object (its shape in another colour, or its colour on another shape), the cases a
    region predictor confuses; a bare shape ("the star") only when no object has that shape."""
    shapes_present = {s for _, s in present}
    if objects and rng.random() < 0.5:
        o = objects[int(rng.integers(len(objects)))]
        opts = ([(c, o.shape) for c in spec.OBJECT_COLORS] + [(o.color, s) for s in spec.SHAPES]) if o.color else []
        opts = [(c, s) for c, s in opts if (c, s) not in present]
    else:
        opts = []
    if not opts:
        opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if (c, s) not in present]
    c, s = opts[int(rng.integers(len(opts)))]
    ref = lang.refer(rng, None if s not in shapes_present and rng.random() < 0.3 else c, s)
    kind = rng.integers(4)
    if kind == 0:
        return lang.phrase_remove(rng, ref)
    if kind == 1:
        cs = [x for x in spec.OBJECT_COLORS if x != c and color_allowed(x, bg)]
        return lang.phrase_color(rng, ref, cs[int(rng.integers(len(cs)))])
    if kind == 2:
        s2 = [x for x in spec.SHAPES if x != s][int(rng.integers(len(spec.SHAPES) - 1))]
        cs = [x for x in spec.OBJECT_COLORS if color_allowed(x, bg)]
        return lang.phrase_replace(rng, ref, lang.new_object_phrase(rng, cs[int(rng.integers(len(cs)))], s2, None))
    return lang.phrase_size(rng, ref, bigger=bool(rng.random() < 0.5))


def instruction_from_caption(caption: str, rng: np.random.Generator, absent_prob: float = 0.1):
    """``(instruction, target_description, local_prompt)`` or None: see :func:`example_from_caption`."""
    ex = example_from_caption(caption, rng, absent_prob)
    return None if ex is None else (ex["instruction"], ex["target"], ex["local"])


def background_from_text(background, h: int, w: int) -> torch.Tensor:
    """The background a background edit asks for, drawn from its colour names: (3, H, W) in [-1, 1]."""
    top, bottom = (background, None) if isinstance(background, str) else tuple(background)
    img = render_background(Background(top, bottom), (h, w))
    return torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1


def rendered_pairs(rng: np.random.Generator) -> Iterator[tuple[np.ndarray, str]]:
    """Yields ``(image, caption)`` forever: a scene drawn from ``rng``, rendered ((64, 64, 3) uint8 RGB,
    0..255, row 0 at the top), and a caption of it (sizes named 60% of the time). The scene graph is dropped."""
    while True:
        s = sample_scene(rng)
        yield render(s), lang.caption(s, rng, size_words=0.6)


def to_region_example(ex: dict, source: str, h: int, w: int) -> RegionExample:
    """An :func:`example_from_caption` dict (of the pair captioned ``source``, an ``h`` x ``w`` image) as the
    trainer reads it: edits of an object the caption has are ``referent=True`` and are filled, in the proxy
    fill, with the background estimate; absent referents ``referent=False`` (nothing should change);
    additions are generated; background edits blend in the requested background drawn from its colour names
    (:func:`background_from_text`, (3, h, w) float32 in [-1, 1])."""
    op = ex["op"]
    if op == "background":
        proxy = background_from_text(ex["background"], h, w)
    else:
        proxy = "generate" if op == "add" else "estimate"
    referent = True if op in REFERENT_OPS else False if op == "absent" else None
    return RegionExample(instruction=ex["instruction"], target=ex["target"], local=ex["local"],
                         clip_target=ex["clip_target"], negatives=list(ex["negatives"]), source=source,
                         referent=referent, proxy_fill=proxy, op=op)


class WorldRegionData:
    """The shapes world's :class:`~regionedit.training.region.RegionData`: ``data(n)`` -> a
    :class:`~regionedit.training.region.RegionBatch` of ``n`` pairs and the edits written from their captions.

    ``images``: (n, 3, 64, 64) float32 in [-1, 1] (RGB, row 0 at the top; 64 is the world's native size, or the
    size of the ``--pairs`` images), each passed through :func:`~regionedit.world.training.world_data.degrade`
    with probability ``degrade``. ``examples``: one :class:`~regionedit.training.region.RegionExample` each
    (:func:`example_from_caption`, ``absent_prob`` of them naming an object the caption lacks; captions for
    which no edit could be written are skipped and another pair is drawn).

    Pairs: ``pairs`` (a folder of WebDataset pair shards, streamed by :func:`regionedit.data.open_dataset` in a
    random order per epoch) or, when None, scenes rendered on the fly (:func:`rendered_pairs`). Randomness: pairs
    and edits come from ``numpy.random.default_rng(seed + 11)``, degradations from their own
    ``default_rng(seed + 12)`` (so ``degrade`` does not change the scenes drawn); the same arguments give the same
    batches. Several processes (``rank`` of ``world_size``): rank r > 0 draws from ``default_rng([seed + 11, r])``
    (and ``[seed + 12, r]``), and reads its own share of the ``pairs`` shards. ``state_dict()`` /
    ``load_state_dict()`` (JSON-able) resume the exact stream.
    """

    def __init__(self, *, pairs: Path | None = None, seed: int = 0, absent_prob: float = 0.1, degrade: float = 0.0,
                 rank: int = 0, world_size: int = 1):
        self.absent_prob, self.degrade = absent_prob, degrade
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.rng = np.random.default_rng(seed + 11 if rank == 0 else [seed + 11, rank])
        # its own stream: --degrade does not change the scenes drawn
        self.aug = np.random.default_rng(seed + 12 if rank == 0 else [seed + 12, rank])
        self.pairs = None
        if pairs is not None:
            from regionedit.data import open_dataset

            self.pairs = open_dataset(pairs).stream(rank=rank, world_size=world_size, seed=seed)
            self.stream = ((s.image, s.caption) for s in self.pairs)
        else:
            self.stream = rendered_pairs(self.rng)

    def state_dict(self) -> dict:
        import json

        st = {"rng": json.dumps(self.rng.bit_generator.state), "aug": json.dumps(self.aug.bit_generator.state)}
        if self.pairs is not None:
            st["pairs"] = self.pairs.state_dict()
        return st

    def load_state_dict(self, state: dict) -> None:
        import json

        self.rng.bit_generator.state = json.loads(state["rng"])  # rendered_pairs draws from self.rng
        self.aug.bit_generator.state = json.loads(state["aug"])
        if self.pairs is not None and "pairs" in state:
            from regionedit.data import SampleStream

            p = self.pairs
            self.pairs = SampleStream(p.source, part=p.part, parts=p.parts, seed=p.seed, shuffle_buffer=p.shuffle_buffer,
                                      split=p.split, state=state["pairs"])
            self.stream = ((s.image, s.caption) for s in self.pairs)

    def describe(self) -> dict:
        if self.pairs is not None:
            return {**self.pairs.source.describe(), "source": "shapes world pairs (--pairs)"}
        return {"location": "the shapes world, rendered on the fly", "source": "WorldRegionData", "seed": self.seed}

    def __call__(self, n: int) -> RegionBatch:
        imgs, exs = [], []
        while len(imgs) < n:
            img, cap = next(self.stream)
            ex = example_from_caption(cap, self.rng, self.absent_prob)
            if ex is None:
                continue
            imgs.append(degrade(img, self.aug, self.degrade) if self.degrade > 0 else img)
            exs.append((ex, cap))
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
        h, w = x.shape[-2:]
        return RegionBatch(x, [to_region_example(ex, cap, h, w) for ex, cap in exs])
