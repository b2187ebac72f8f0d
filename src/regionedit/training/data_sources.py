"""Any dataset on disk (or the hub) as the region trainer's data source: :class:`DatasetRegionData`.

A step takes what each :class:`~regionedit.data.Sample` has (``regionedit.data.open_dataset``):

- **captions only** (text-image pairs, the seed-001 setting): an edit is written from the caption text alone by a
  *caption writer* (``captions=``; the paper uses an LLM). The default, :func:`generic_caption_example`, uses
  plain English rules on the caption's noun phrases (remove / replace / add / an absent object); the command line
  passes the shapes world's rules for captions of that world (``regionedit train region``). The step scores the
  composite with the seed-001 losses exactly as for world captions.
- **edit pairs** (an instruction plus a target image and/or a mask: MagicBrush, InstructPix2Pix, Emu Edit with
  targets, our exports): the instruction is the data's; the target description is the target caption, or the
  instruction when the data has none; the proxy fill blends in the *real target image* (so the composite under
  the true region is the target); and the region is supervised directly (:func:`region_loss`) by the mask, or,
  when only a target is given, by ``max_c |target - source| > mask_threshold`` (0..255, default 32, see
  :func:`regionedit.data.mask_from_difference`).

Images: (H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]. With ``image_size`` every image (and target / mask) is
centre-cropped to a square and resized to ``image_size`` (bicubic; masks nearest); without it, images of different
sizes in one batch are a :class:`~regionedit.data.DataError` naming two of them and the fix (``--image-size``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from regionedit.data import DIFF_THRESHOLD, DataError, Sample, open_dataset
from regionedit.training.region import RegionBatch, RegionExample

# a caption writer: (caption, rng, absent_prob, height, width) -> RegionExample or None (no edit could be written)
CaptionWriter = Callable[[str, np.random.Generator, float, int, int], "RegionExample | None"]

MAX_SKIPS = 1000  # consecutive samples without a usable edit before the source gives up with an error


# ----------------------------------------------------------------------------------------------
# captions -> edits, by generic English rules (the stand-in for the paper's LLM on arbitrary captions)

_DETERMINERS = {"a", "an", "the", "one", "two", "three", "some", "his", "her", "its", "their", "this", "that"}
_BREAKS = {"on", "in", "at", "with", "and", "of", "holding", "wearing", "next", "near", "beside", "under", "over",
           "behind", "while", "that", "which", "to", "from", "by", "for", "against", "into", "onto", "above", "below",
           "is", "are", "was", "sits", "stands", "lies", "has", "have", ",", ".", ";"}
_LINKS = {"with", "and", "holding", "wearing", "beside", "near", "next", "on", "in", "under", "behind", ","}
OBJECTS = ("cat", "dog", "hat", "ball", "car", "tree", "bird", "flower", "cup", "book", "chair", "boat", "clock",
           "lamp", "kite", "vase", "bicycle", "umbrella")


def noun_phrases(caption: str) -> list[tuple[int, int]]:
    """Token spans ``(start, end)`` of the caption's determiner-led noun phrases ("a white suit"), at most 4 words
    after the determiner, ending before a preposition, conjunction, verb in -ing or punctuation."""
    toks = _tokens(caption)
    spans, i = [], 0
    while i < len(toks):
        if toks[i] in _DETERMINERS:
            j = i + 1
            while j < len(toks) and j - i <= 4 and toks[j] not in _BREAKS and toks[j] not in _DETERMINERS \
                    and not toks[j].endswith("ing"):
                j += 1
            if j > i + 1:
                spans.append((i, j))
                i = j
                continue
        i += 1
    return spans


def _tokens(text: str) -> list[str]:
    return re.sub(r"([,.;])", r" \1 ", text.lower()).split()


def _join(toks: list[str]) -> str:
    return re.sub(r" ([,.;])", r"\1", " ".join(toks)).strip(" ,;")


def generic_caption_example(caption: str, rng: np.random.Generator, absent_prob: float = 0.1, h: int = 0,
                            w: int = 0) -> RegionExample | None:
    """An edit written from an arbitrary caption's text alone (never the image), or None when the caption has no
    determiner-led noun phrase. Kinds (uniform among those possible):

    - ``remove`` a non-first noun phrase X ("remove the flag"): target = the caption without X and its link word;
      the composite is scored against it with the row-median background estimate as fill (as for world removals);
    - ``replace`` X by an object from :data:`OBJECTS` ("replace the flag with a dog"): target = the caption with X
      replaced; the frozen generator fills the region;
    - ``add`` an object ("add a cat"): target = caption + " with a cat"; the generator fills;
    - with probability ``absent_prob``, an *absent* referent: "remove the dog" for an object the caption does not
      name; nothing should change (``referent=False``, scored against the caption itself)."""
    toks = _tokens(caption)
    spans = noun_phrases(caption)
    if not spans:
        return None
    named = set(toks)
    source = _join(toks)
    if rng.random() < absent_prob:
        cands = [o for o in OBJECTS if o not in named]
        obj = cands[int(rng.integers(len(cands)))]
        removed = [_without(toks, s) for s in spans[1:]]
        return RegionExample(instruction=f"remove the {obj}", target=source, local="background", clip_target=source,
                             negatives=removed, source=source, referent=False, proxy_fill="estimate", op="absent")
    ops = (["remove"] if len(spans) > 1 else []) + ["replace", "add"]
    op = ops[int(rng.integers(len(ops)))]
    if op == "add":
        cands = [o for o in OBJECTS if o not in named]
        obj = cands[int(rng.integers(len(cands)))]
        art = "an" if obj[0] in "aeiou" else "a"
        target = f"{source} with {art} {obj}"
        return RegionExample(instruction=f"add {art} {obj}", target=target, local=f"{art} {obj}", clip_target=target,
                             negatives=[], source=source, referent=None, proxy_fill="generate", op="add")
    k = 1 + int(rng.integers(len(spans) - 1)) if op == "remove" else int(rng.integers(len(spans)))
    a, b = spans[k]
    name = " ".join(toks[a + 1:b])
    if op == "remove":
        target = _without(toks, spans[k])
        others = [_without(toks, s) for j, s in enumerate(spans) if j not in (0, k)]
        return RegionExample(instruction=f"remove the {name}", target=target, local="background", clip_target=target,
                             negatives=[source] + others, source=source, referent=True, proxy_fill="estimate",
                             op="remove")
    cands = [o for o in OBJECTS if o not in named]
    obj = cands[int(rng.integers(len(cands)))]
    art = "an" if obj[0] in "aeiou" else "a"
    target = _join(toks[:a] + [art, obj] + toks[b:])
    return RegionExample(instruction=f"replace the {name} with {art} {obj}", target=target, local=f"{art} {obj}",
                         clip_target=target, negatives=[source], source=source, referent=True, proxy_fill="generate",
                         op="replace")


def _without(toks: list[str], span: tuple[int, int]) -> str:
    a, b = span
    if a > 0 and toks[a - 1] in _LINKS:
        a -= 1
        if toks[a] == "next" or (a > 0 and toks[a - 1] == "next"):  # "next to"
            a = max(0, a - 1)
    return _join(toks[:a] + toks[b:])


# ----------------------------------------------------------------------------------------------
# samples -> tensors


def _square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def fit_sample(s: Sample, size: int | None, region: np.ndarray | None):
    """``(image, target, region)`` as arrays, centre-cropped and resized to ``size`` when given."""
    if size is None:
        return s.image, s.target, region
    img = np.asarray(_square(Image.fromarray(s.image)).resize((size, size), Image.BICUBIC))
    tgt = None if s.target is None else np.asarray(_square(Image.fromarray(s.target)).resize((size, size), Image.BICUBIC))
    reg = None if region is None else np.asarray(
        _square(Image.fromarray(region.astype(np.uint8) * 255)).resize((size, size), Image.NEAREST)) >= 128
    return img, tgt, reg


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1


def region_loss(region_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Direct region supervision of edit pairs: per-pixel BCE on the logits plus a soft Dice term.

    region_logits, target: (B, 1, H, W), target in {0, 1} (float). Mean over the batch; a scalar."""
    bce = F.binary_cross_entropy_with_logits(region_logits, target)
    p = region_logits.sigmoid()
    inter = (p * target).flatten(1).sum(-1)
    dice = 1 - (2 * inter + 1) / (p.flatten(1).sum(-1) + target.flatten(1).sum(-1) + 1)
    return bce + dice.mean()


def example_from_edit(s: Sample, region: np.ndarray | None, target: np.ndarray | None) -> RegionExample:
    """An edit pair as the trainer reads it (see the module docstring): the data's instruction, the target caption
    (or the instruction) as target description, the target image as proxy fill, the region as ``mask``."""
    tdesc = s.target_caption or s.instruction
    src = s.caption or ""
    negatives = [s.caption] if s.caption and s.target_caption and s.caption != s.target_caption else []
    fill = to_tensor(target) if target is not None else "generate"
    mask = torch.from_numpy(region.astype(np.float32))[None] if region is not None else None
    return RegionExample(instruction=s.instruction, target=tdesc, local=tdesc, clip_target=tdesc, negatives=negatives,
                         source=src, referent=None, proxy_fill=fill, op="edit", mask=mask)


# ----------------------------------------------------------------------------------------------
# the data source


class DatasetRegionData:
    """``data(n) -> RegionBatch`` from a dataset (:func:`regionedit.data.open_dataset`), this rank's share of it.

    Args:
        data: path or hub id; ``split``, ``schema``, ``columns``: as :func:`~regionedit.data.open_dataset`.
        seed: the sample order (per epoch) and the edits written from captions; the same seed gives the same
            batches. ``rank`` / ``world_size``: this process's share (disjoint within an epoch).
        captions: the caption writer (default :func:`generic_caption_example`).
        absent_prob: share of caption edits naming an object the caption lacks.
        image_size: centre-crop + resize every image to this side (None: keep; mixed sizes are then an error).
        mask_threshold: |target - source| threshold of a region derived from a pair without a mask.
        shuffle_buffer: rows in the shuffle buffer (:mod:`regionedit.data.streaming`).

    ``state_dict()`` / ``load_state_dict()`` (JSON-able) resume the exact stream; ``last_ids`` are the ids of the
    samples in the last batch, ``counts`` how many samples of each kind were used (``caption`` / ``edit``) or
    skipped."""

    def __init__(self, *, data: str | Path, pairs=None, seed: int = 0, absent_prob: float = 0.1, degrade: float = 0.0,
                 rank: int = 0, world_size: int = 1, split: str | None = None, schema: str | None = None,
                 columns: dict[str, str] | None = None, captions: CaptionWriter | None = None,
                 image_size: int | None = None, mask_threshold: int = DIFF_THRESHOLD, shuffle_buffer: int = 500):
        if degrade:
            raise SystemExit("--degrade is implemented by the shapes world's data source only; leave it at 0 with --data")
        self.dataset = open_dataset(data, split, schema=schema, columns=columns)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.absent_prob, self.image_size, self.mask_threshold = absent_prob, image_size, int(mask_threshold)
        self.captions = captions or generic_caption_example
        self.stream = self.dataset.stream(rank=rank, world_size=world_size, seed=seed, shuffle_buffer=shuffle_buffer)
        self.rng = np.random.default_rng([seed + 11, rank])
        self.last_ids: list[str] = []
        self.counts = {"caption": 0, "edit": 0, "skipped": 0}

    def describe(self) -> dict:
        d = dict(self.dataset.describe())
        d.update(split=self.stream.split, world_size=self.world_size, image_size=self.image_size,
                 mask_threshold=self.mask_threshold)
        return d

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict(), "rng": json.dumps(self.rng.bit_generator.state),
                "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.stream = self.dataset.stream(rank=self.rank, world_size=self.world_size, seed=self.seed,
                                          shuffle_buffer=self.stream.shuffle_buffer, state=state["stream"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.counts = dict(state.get("counts", self.counts))

    def example(self, s: Sample):
        """``(image, example)`` for one sample, or None (a caption no edit could be written from)."""
        if s.instruction:
            region = s.region(self.mask_threshold)
            img, tgt, reg = fit_sample(s, self.image_size, region)
            return img, example_from_edit(s, reg, tgt)
        if not s.caption:
            raise DataError(f"{s.origin or s.id}: the sample has neither a caption nor an instruction: nothing to train "
                            "on. Map the text column (--columns caption=COLUMN or instruction=COLUMN) or drop the sample")
        img, _, _ = fit_sample(s, self.image_size, None)
        ex = self.captions(s.caption, self.rng, self.absent_prob, img.shape[0], img.shape[1])
        return None if ex is None else (img, ex)

    def __call__(self, n: int) -> RegionBatch:
        items, ids, origins, skips = [], [], [], 0
        while len(items) < n:
            s = next(self.stream)
            got = self.example(s)
            if got is None:
                skips += 1
                self.counts["skipped"] += 1
                if skips >= MAX_SKIPS:
                    raise DataError(f"{self.dataset.location}: {skips} captions in a row gave no edit (last: {s.caption!r}); "
                                    "the caption writer needs noun phrases such as 'a dog on a sofa'")
                continue
            items.append(got)
            ids.append(s.id)
            origins.append(s.origin or s.id)
            self.counts["edit" if got[1].op == "edit" else "caption"] += 1
        sizes = [img.shape[:2] for img, _ in items]
        if len(set(sizes)) > 1:
            j = next(i for i, sz in enumerate(sizes) if sz != sizes[0])
            raise DataError(f"images of different sizes in one batch: {origins[0]} is {sizes[0][1]}x{sizes[0][0]}, "
                            f"{origins[j]} is {sizes[j][1]}x{sizes[j][0]}; pass --image-size N (centre crop + resize "
                            "every image to N x N), or resize the dataset to one size")
        self.last_ids = ids
        x = torch.stack([to_tensor(img) for img, _ in items])
        return RegionBatch(x, [ex for _, ex in items])


def dataset_factory(data, **fixed) -> Callable[..., DatasetRegionData]:
    """A :class:`~regionedit.training.region.RegionDataFactory` for ``data`` (the trainer adds seed, rank...)."""

    def make(**kw):
        return DatasetRegionData(data=data, **fixed, **kw)

    make.accepts_rank = True
    make.captions = fixed.get("captions")
    return make
