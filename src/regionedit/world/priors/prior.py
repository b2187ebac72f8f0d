"""``WorldPrior``: the shapes world's hand-written knowledge, behind the core's :class:`~regionedit.core.Prior`.

Everything here is a rule that knows WORLD.md (flat-coloured shapes on a solid or gradient background; every
(colour, shape) pair unique; "add" puts the object in free space of the named area; size classes), not a
learned model. The Editor runs without it (``Editor.from_pretrained(..., priors=False)``), and every benchmark
reports both: ``benchmarks/edit.py --priors on|off``. What each hook does:

- ``split``: "make the star red and the circle blue" -> two edits (the world grammar's :func:`split_edits`);
- ``localizer_text``: the region predictor reads the parsed edit in WORLD.md's wording (its instruction encoder
  saw only the generator's phrasings);
- ``place``: "add" edits get a disc in free space of the named area (:mod:`.placement`);
- ``refine``: snap the map to colour segments (:mod:`.refine`), take the objects a background region surrounds
  out of it, keep one object per referent (the one CLIP reads best), and check with CLIP that the region reads
  as the referent, moving it to the object that does or answering "no edit" (:mod:`.verify`);
- ``shape``: the pixels a replace / resize changes from the referent's footprint (:mod:`.shaping`);
- ``refuse``: a referent that leaves colour or shape unsaid when another object fits it too;
- ``complete``: the new object's colour (replace) or shape (recolour) from CLIP's reading of the referent;
- ``direct_edit``: "make it bigger / smaller" resamples the object found (:mod:`.transform`);
- ``prepare`` / ``finish``: background edits keep the objects bit-identical and re-matte their edge; a new
  object drawn outside its size class is resampled into it; a replacement keeps the old object's size;
- ``score``: CLIP reads each candidate's new object (colour, shape) or background (:mod:`.candidates`).

Only pixels, the instruction's parse and learned models are read: no scene graph, renderer or ground truth.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from regionedit.core import Prior
from regionedit.world import spec
from regionedit.world.grammar import REFERENT_OPS, Referent, local_prompt_for, split_edits, with_article
from regionedit.world.priors.candidates import CandidateScorer
from regionedit.world.priors.placement import place_region
from regionedit.world.priors.refine import connected_regions, enclosed_objects, snap_region, working_block
from regionedit.world.priors.shaping import ShapingConfig, object_radius, shape_region, size_factor
from regionedit.world.priors.transform import (composite, debleed, fill_nearest, fit_object_size, fit_replaced_size,
                                               matte_kept, relay_objects, rescale_object)


@dataclasses.dataclass
class WorldPriorConfig:
    work_side: int = 256  # larger images are decided at this long side (nearest neighbour), the found footprint
    # brought back once: the colour segments it snaps to are taken at this scale anyway
    min_region_frac: float = 0.002  # pieces smaller than this share of the image are no object
    keep_objects: bool = True  # background edits: the objects the region leaves out are laid back over the new
    # background, bit-identical, their anti-aliased edge re-matted over ring_px px (transform.py)
    ring_px: int = 2
    debleed_px: int = 6  # background edits: what the generator drew of a kept object within this many px of it
    # (per 256 px of work_side) is painted over with the new background (transform.debleed); 0: off
    repaint_edge: bool = True  # ... and a predicted region takes in the objects' blended edge pixels (the region
    # stops at their edge; transform.matte_kept), so the old background leaves no rim around them
    keep_islands: bool = True  # background edits: object proposals the region surrounds (colour segments of object
    # size, off the frame; refine.enclosed_objects) are taken out of it, lit by the map or not
    island_tol: float = 12.0  # ... the segments' colour tolerance (0-255)
    flat_islands: bool = True  # ... and the flat-pixel segments (refine.flat_segments) count as proposals
    complete_prompt: bool = True  # fill the new object's colour (replace) or shape (recolour) the instruction
    # leaves unsaid from CLIP's reading of the referent (ReferentVerifier.read)
    shape_regions: bool = True  # turn the referent's footprint into the pixels the edit changes (shaping.py)
    shaping: ShapingConfig = dataclasses.field(default_factory=ShapingConfig)  # its factors
    size_edit: str = "resample"  # "make it bigger/smaller": "resample" the object found at its new size
    # (transform.py; the generator fills the background it leaves) or "generate" it in the region
    snap: bool = True  # snap predicted regions to the image's colour segments, +snap_grow px (refine.py)
    snap_grow: int = 1  # px the snapped region grows by (the anti-aliased edge), at <= 256 px working scale
    fit_replaced_size: bool = True  # replace: the new object is resampled to the old one's radius when the generator
    # drew it more than 8% off (WORLD.md: same centre and size)
    fit_new_size: bool = True  # "add a small/large ...": the object drawn is resampled into the size class's range
    add_placement: str = "rule"  # "add" edits: "rule" places a disc in free space (placement.py), "predictor"
    # thresholds the learned map like every other edit (the shipped map for add is empty)
    verify_referent: bool = True  # referent edits: CLIP checks the found region looks like the referent (verify.py)
    verify_threshold: float | None = None  # "no edit" below this CLIP score (None: the predictor's calibrated one, else 0 = off)
    single_object: bool = True  # referent edits: keep one connected piece of the region, the one CLIP reads best
    relocate: bool = True  # a region CLIP rejects moves to the object proposal CLIP reads best as the referent
    refuse_ambiguous: float = 0.75  # a referent that leaves its colour or shape unsaid gets "no edit" when another
    # object CLIP reads as it (score >= this) is in the image; 0: off
    split_edits: bool = True  # an instruction that asks for several edits runs them in order (grammar.split_edits)
    canonical_instruction: bool = True  # the region predictor reads the parsed edit in WORLD.md's wording

    def __post_init__(self):
        if self.add_placement not in ("rule", "predictor"):
            raise ValueError(f"add_placement must be 'rule' or 'predictor', got {self.add_placement!r}")
        if self.size_edit not in ("resample", "generate"):
            raise ValueError(f"size_edit must be 'resample' or 'generate', got {self.size_edit!r}")


def _frac(region: np.ndarray) -> float:
    return np.count_nonzero(region) / region.size


class WorldPrior(Prior):
    """The shapes world's rules (see the module docstring). ``models``: the CLIP it verifies and scores with;
    ``region_predictor``: its calibrated ``verify_threshold`` is read when the config leaves it None."""

    name = "shapes-world"

    def __init__(self, models, region_predictor=None, config: WorldPriorConfig | None = None):
        self.models = models
        self.region_predictor = region_predictor
        self.config = config or WorldPriorConfig()
        self.work_side = self.config.work_side
        self._verifier = None
        self.scorer = CandidateScorer(models, lambda: self.verifier)

    @property
    def verifier(self):
        """The :class:`~regionedit.world.priors.verify.ReferentVerifier` on this prior's CLIP (built on first use)."""
        if self._verifier is None:
            from regionedit.world.priors.verify import ReferentVerifier

            self._verifier = ReferentVerifier(self.models)
        return self._verifier

    @property
    def verify_threshold(self) -> float:
        """Referent edits whose region CLIP scores below this get "no edit": ``config.verify_threshold``, else the
        predictor's calibrated one, else 0: off (an uncalibrated check could refuse every edit)."""
        if self.config.verify_threshold is not None:
            return float(self.config.verify_threshold)
        v = getattr(self.region_predictor, "verify_threshold", None)
        return 0.0 if v is None else float(v)

    # -- hooks --------------------------------------------------------------------------------------
    def split(self, instruction: str) -> list[str] | None:
        return split_edits(instruction) if self.config.split_edits else None

    def localizer_text(self, instruction: str, desc) -> str:
        if not self.config.canonical_instruction or desc.intent is None:
            return instruction
        return desc.intent.instruction()

    def place(self, image: np.ndarray, desc) -> np.ndarray | None:
        intent = desc.intent
        if intent is None or intent.op != "add" or self.config.add_placement != "rule":
            return None
        return place_region(image, intent.area, intent.new_size)

    def refine(self, region: np.ndarray, prob: np.ndarray, image: np.ndarray, desc, verify_threshold: float | None = None,
               **overrides) -> np.ndarray:
        """Snap, islands, one object per referent, CLIP referent check (see the module docstring)."""
        cfg, intent = self.config, desc.intent
        vth = self.verify_threshold if verify_threshold is None else verify_threshold
        referent_edit = intent is not None and intent.op in REFERENT_OPS
        if cfg.snap and _frac(region) >= cfg.min_region_frac:
            # a background region stops at the objects' edge: grown into them, it eats small objects away
            grow = 0 if intent is not None and intent.op == "background" else cfg.snap_grow
            region = snap_region(region, image, grow=grow)
        if cfg.keep_islands and intent is not None and intent.op == "background" and _frac(region) >= cfg.min_region_frac:
            region = region & ~enclosed_objects(image, region, tol=cfg.island_tol, flat=cfg.flat_islands)
        clip_image = functools.cache(lambda: self.verifier.clip_image(image))  # once, for every CLIP check below
        if cfg.single_object and referent_edit and _frac(region) >= cfg.min_region_frac:
            region = self._one_object(region, prob, image, intent, clip_image)
        if (cfg.verify_referent and vth > 0 and referent_edit and intent.target is not None
                and _frac(region) >= cfg.min_region_frac):
            region = self._check_referent(region, image, intent.target, vth, clip_image)
        return region

    def shape(self, footprint: np.ndarray, desc, image: np.ndarray) -> np.ndarray:
        if self.config.shape_regions and desc.intent is not None:
            return shape_region(footprint, desc.intent, self.config.shaping, image)
        return footprint

    def refuse(self, image: np.ndarray, desc, footprint: np.ndarray) -> str | None:
        if not (self.config.refuse_ambiguous and self.config.verify_referent):
            return None
        others = self.ambiguous(image, desc.intent, footprint)
        if not others:
            return None
        named = desc.referent_text or "the referent"
        return f"{named!r} is ambiguous: the image also has {' and '.join(map(with_article, others))}; name its colour and shape"

    def complete(self, desc, image: np.ndarray, footprint: np.ndarray):
        """``desc`` with the local prompt completed from CLIP's reading of the referent's footprint when the
        instruction leaves the new object's colour (replace) or shape (recolour) unsaid."""
        intent = desc.intent
        if not self.config.complete_prompt or intent is None:
            return desc
        missing = ((intent.op == "local" and intent.new_color is None)
                   or (intent.op == "color" and (intent.target is None or intent.target.shape is None)))
        if not missing or not footprint.any():
            return desc
        colour, shape = self.verifier.read(image, footprint)
        if intent.op == "local":
            intent = dataclasses.replace(intent, new_color=colour)
            prompt = local_prompt_for(intent)
        else:
            prompt = local_prompt_for(intent, Referent(intent.target.color if intent.target else None, shape))
        return dataclasses.replace(desc, intent=intent, local_prompt=prompt)

    def direct_edit(self, image, desc, footprint, region, inpaint):
        """A resize resamples the object found: it keeps its colour and shape; the generator only fills the
        background it leaves ("smaller"). The region gains every changed pixel of the object layer."""
        intent = desc.intent
        if intent is None or intent.op != "size" or self.config.size_edit != "resample":
            return None
        bigger = intent.bigger
        base = image if bigger else inpaint(image, footprint, "background")
        shape = intent.target.shape if intent.target is not None else None
        layer, alpha = rescale_object(image, footprint, size_factor(footprint, bigger, self.config.shaping, image, shape))
        out = composite(base, layer, alpha)
        region = region | ((out != image).any(-1) & ((alpha > 0) | footprint))
        return out, region, desc.local_prompt if bigger else "background"

    def prepare(self, image, region, desc, footprint, user_mask):
        cfg, intent = self.config, desc.intent
        block = working_block(*image.shape[:2], cfg.work_side)  # the localisation decision's pixel size here
        edge = None
        if intent is not None and intent.op == "background" and cfg.keep_objects and cfg.repaint_edge and not user_mask:
            # the objects' anti-aliased edge is a blend with the old background: it joins the region (re-matted
            # in finish), or a rim of the old colour stays around every object. The generator is not shown that
            # edge as a hole: next to an object's own colour it extends the object into the new background
            matted = ~matte_kept(image, ~region, px=cfg.ring_px * block, step=block)
            edge, region = matted & ~region, matted
        gen_region = region if edge is None else region & ~edge
        old_radius = 0.0  # replace: the old object's radius in px, the new one's size
        if footprint is not None and intent is not None and intent.op == "local" and footprint.any():
            old_shape = intent.target.shape if intent.target is not None else None
            old_radius = object_radius(footprint, image, old_shape, cfg.shaping) * min(footprint.shape)
        return region, gen_region, {"edge": edge, "gen_region": gen_region, "block": block, "old_radius": old_radius}

    def finish(self, image, out, region, desc, footprint, state):
        """A generated image's edge, size and kept objects put right: ``(image, region it changed)``."""
        cfg, intent = self.config, desc.intent
        if intent is None:
            return out, region
        edge, block = state["edge"], state["block"]
        if edge is not None and edge.any():
            out = fill_nearest(out, state["gen_region"], edge, radius=(cfg.ring_px + 2) * block)
        if (intent.op == "local" and cfg.fit_replaced_size and footprint is not None
                and cfg.shaping.size_classes is not None and state["old_radius"] > 0):
            out = fit_replaced_size(out, region, state["old_radius"])
        if intent.op == "add" and intent.new_size in spec.SIZE_RANGES and cfg.fit_new_size:
            # the generator sizes what it draws by the region, loosely: the size word is the instruction's
            lo, hi = spec.SIZE_RANGES[intent.new_size]
            side = min(image.shape[:2])
            out, region = fit_object_size(image, out, region, (lo * side, hi * side))
        if intent.op == "background" and cfg.keep_objects:
            # what the region leaves out are the objects: they are laid back over the new background, their
            # anti-aliased edge re-matted against it
            if cfg.debleed_px:
                out = debleed(out, image, ~region, region, px=cfg.debleed_px * block, step=block)
            out = relay_objects(image, out, ~region, ring_px=cfg.ring_px)
        return out, region

    def can_score(self, desc) -> bool:
        return self.scorer.readable(desc.intent)

    def score(self, edited: np.ndarray, region: np.ndarray, desc) -> float | None:
        return self.scorer(edited, region, desc.intent)

    def no_region_reason(self, desc, user_mask: bool) -> str | None:
        intent = desc.intent
        if intent is not None and intent.op == "add" and not user_mask and self.config.add_placement == "rule":
            where = f" in the {intent.area}" if intent.area else ""
            size = f"{intent.new_size} " if intent.new_size else ""
            return f"no free space{where} for a new {size}object: name another area or remove something first"
        return None

    # -- helpers ------------------------------------------------------------------------------------
    def _check_referent(self, region: np.ndarray, image: np.ndarray, target, vth: float, clip_image) -> np.ndarray:
        """``region`` when CLIP reads it as the referent (score >= ``vth``); else, with ``config.relocate``, the
        object proposal CLIP reads as the referent; else an empty region (nothing in the image is the referent)."""
        cfg = self.config
        score = self.verifier.score(image, region, target, clip_image=clip_image())
        if score is None or score >= vth:
            return region
        if cfg.relocate:  # a colour segment in CLIP's frame, snapped to the image's own at other sizes
            snap = cfg.snap_grow if cfg.snap else None
            moved = self.verifier.relocate(image, target, vth, cfg.min_region_frac, snap_grow=snap, clip_image=clip_image())[0]
            if moved is not None:
                return moved
        return np.zeros(region.shape, bool)

    def _one_object(self, region: np.ndarray, prob: np.ndarray, image: np.ndarray, intent, clip_image=None) -> np.ndarray:
        """The connected piece of ``region`` that is the referent, when the map lit several objects: the one CLIP
        reads best as the referent (when ``config.verify_referent``), ties and unscored pieces by probability mass.
        A referent names one object (WORLD.md: every (colour, shape) pair is unique)."""
        cfg = self.config
        pieces = [p for p in connected_regions(region) if _frac(p) >= cfg.min_region_frac]
        if len(pieces) <= 1:
            return pieces[0] if pieces else region
        check = cfg.verify_referent and intent.target is not None

        def key(p):
            sc = self.verifier.score(image, p, intent.target, clip_image=clip_image() if clip_image is not None else None) if check else None
            return (-1.0 if sc is None else sc, float(prob[p].sum()))

        return max(pieces, key=key)

    def ambiguous(self, image: np.ndarray, intent, footprint: np.ndarray) -> list[str]:
        """Other objects the referent's words fit, when they leave its colour or shape unsaid: CLIP's readings
        (``["blue circle"]``) of the object proposals it reads as the referent (score >= ``config.refuse_ambiguous``)
        away from the ``footprint`` ((H, W) bool) the edit found. Two proposals are two objects only when they are
        disjoint (< 10% of either's pixels shared) and read differently (WORLD.md: every colour-shape pair is
        unique), so the fragments of one object are not taken for a second one."""
        t = intent.target if intent is not None and intent.op in REFERENT_OPS else None
        if t is None or (t.color and t.shape) or not (t.color or t.shape) or not footprint.any():
            return []
        v = self.verifier
        found = v.clip_region(footprint)

        def apart(a: np.ndarray, b: np.ndarray) -> bool:
            return np.count_nonzero(a & b) < 0.1 * min(np.count_nonzero(a), np.count_nonzero(b))

        seen: list[tuple[np.ndarray, str]] = []
        for seg, reading in v.readings(image, t, self.config.refuse_ambiguous, self.config.min_region_frac,
                                       clip_image=v.clip_image(image)):
            if all(apart(seg, d) and reading != r for d, r in seen):
                seen.append((seg, reading))
        if len(seen) < 2:
            return []
        return [reading for seg, reading in seen if apart(seg, found)]
