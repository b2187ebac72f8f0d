"""Localizer specs: the strings the CLI / API name a localizer backend with, and :func:`load_localizer`.

Grammar (kinds are case-insensitive; ``ID_OR_FOLDER`` is a Hugging Face id or a model folder)::

    spec     := "learned" | part | part "+" part
    part     := kind ":" ID_OR_FOLDER | FOLDER          (a bare folder: its kind read from config.json model_type)
    kind     := "clipseg" | "owlv2" (alias "owl") | "grounding-dino" (aliases "gdino", "grounding_dino")
              | "sam" | "sam2" | "sam3"
    a spec   := clipseg part alone | sam3 part alone
              | a detector part (owlv2, grounding-dino) [+ a mask part (sam, sam2)]

Examples: ``clipseg:CIDAS/clipseg-rd64-refined``, ``owlv2:google/owlv2-base-patch16-ensemble``,
``gdino:IDEA-Research/grounding-dino-tiny+sam:facebook/sam-vit-base``, ``sam3:facebook/sam3``, ``runs/owl+runs/sam``
(bare folders; a bare SAM 3 folder is one of config.json model_type ``sam3`` or ``sam3_video``). SAM 3 segments
every instance of the text's concept by itself, so it combines with neither a detector nor a mask model.
``learned`` is the Editor's own learned region predictor: :func:`load_localizer` returns None for it and the
caller keeps the Editor's localizer (a region predictor folder is loaded by the model-folder machinery, not here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .detectors import GroundingDinoDetector, Owlv2Detector, Sam2Segmenter, SamSegmenter
from .pretrained import MODEL_TYPES, SPEC_FORMS, LocalizerSpecError, source_kind, spec_error

DETECTORS = {"owlv2": Owlv2Detector, "grounding-dino": GroundingDinoDetector}
SEGMENTERS = {"sam": SamSegmenter, "sam2": Sam2Segmenter}
KIND_ALIASES = {"clipseg": "clipseg", "owlv2": "owlv2", "owl": "owlv2", "grounding-dino": "grounding-dino",
                "grounding_dino": "grounding-dino", "gdino": "grounding-dino", "sam": "sam", "sam2": "sam2",
                "sam3": "sam3"}

__all__ = ["DETECTORS", "SEGMENTERS", "KIND_ALIASES", "MODEL_TYPES", "SPEC_FORMS", "LocalizerSpec", "LocalizerSpecError",
           "load_localizer", "parse_localizer_spec", "source_kind"]


@dataclass(frozen=True)
class LocalizerSpec:
    """A parsed spec: ``kind`` ``"learned" | "clipseg" | "owlv2" | "grounding-dino" | "sam3"`` and its ``source`` (None
    for learned); ``mask_kind`` ``"sam" | "sam2"`` and ``mask_source`` for a box detector refined by a mask model."""

    kind: str
    source: str | None = None
    mask_kind: str | None = None
    mask_source: str | None = None


def _split_part(part: str) -> tuple[str | None, str]:
    """``(kind or None for a bare folder, source)`` of one ``+``-separated part."""
    head, sep, tail = part.partition(":")
    if sep and head.strip().lower() in KIND_ALIASES:
        if not tail.strip():
            raise spec_error(f"the part {part!r} names no model: add an id or folder after {head.strip()}:")
        return KIND_ALIASES[head.strip().lower()], tail.strip()
    if sep and len(head) > 1 and "/" not in head and "\\" not in head and not Path(part).expanduser().exists():
        raise spec_error(f"unknown localizer kind {head!r} in {part!r}")
    return None, part.strip()


def parse_localizer_spec(spec: str, local_files_only: bool = True) -> LocalizerSpec:
    """Parse a spec (see the module docstring); bare folders are resolved by their ``config.json``. Raises a
    :class:`LocalizerSpecError` (a ValueError) naming the problem and listing the accepted forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise spec_error(f"empty localizer spec {spec!r}")
    s = spec.strip()
    if s.lower() == "learned":
        return LocalizerSpec("learned")
    if s.lower().startswith("learned:"):
        raise spec_error(f"{spec!r}: a learned region predictor is part of the model folder the Editor loads (or "
                          f"load it with regionedit.localize.load_region_predictor and pass it to the Editor); the "
                          f"spec is just 'learned'")
    parts = s.split("+")
    if len(parts) > 2 or any(not p.strip() for p in parts):
        raise spec_error(f"{spec!r}: a spec is one model or a detector + a mask model, joined by one '+'")
    resolved = []
    for part in parts:
        kind, source = _split_part(part)
        if kind is None:
            if not Path(source).expanduser().is_dir():
                raise spec_error(f"{source!r} is neither KIND:ID_OR_FOLDER nor an existing folder (a bare name needs "
                                  f"its kind: e.g. clipseg:{source})")
            kind = source_kind(source, local_files_only)
        resolved.append((kind, source))
    if len(resolved) > 1 and any(k == "sam3" for k, _ in resolved):
        other = next(k for k, _ in resolved if k != "sam3") if any(k != "sam3" for k, _ in resolved) else "sam3"
        raise spec_error(f"{spec!r}: SAM 3 finds and segments the text's instances by itself (no detector, no "
                          f"separate mask model), so it cannot be combined with {other}: give sam3:ID_OR_FOLDER alone")
    masks = [r for r in resolved if r[0] in SEGMENTERS]
    mains = [r for r in resolved if r[0] not in SEGMENTERS]
    if not mains:
        kind, source = masks[0]
        raise spec_error(f"{spec!r} names only a mask model ({kind}), which refines a detector's boxes: add a detector, "
                          f"e.g. owlv2:ID_OR_FOLDER+{kind}:{source}")
    if len(mains) > 1 or len(masks) > 1:
        raise spec_error(f"{spec!r} names two region models or two mask models: give one detector (owlv2, "
                          f"grounding-dino) or clipseg, optionally + one mask model (sam, sam2)")
    (kind, source), = mains
    if masks and kind not in DETECTORS:
        raise spec_error(f"{spec!r}: a mask model ({masks[0][0]}) refines boxes, so it combines with a box detector "
                          f"(owlv2, grounding-dino), not with {kind}")
    mask_kind, mask_source = masks[0] if masks else (None, None)
    return LocalizerSpec(kind, source, mask_kind, mask_source)


def load_localizer(spec: str, torch_dtype=None, device="cpu", local_files_only: bool = True, **options):
    """The localizer a spec names (:class:`~regionedit.localize.zero_shot.CLIPSegLocalizer`,
    :class:`~regionedit.localize.zero_shot.BoxSamLocalizer` or :class:`~regionedit.localize.sam3.Sam3Localizer`),
    loaded in ``torch_dtype`` (None: the checkpoint's own) on ``device``; ``options`` go to its constructor (e.g.
    ``box_threshold``, ``max_boxes``, ``presence_quantile``, ``score_threshold``, ``max_instances``,
    ``thresholds``). Returns None for ``"learned"`` (the caller keeps the Editor's learned
    localizer). Raises :class:`LocalizerSpecError` (a ValueError) for an unknown kind, a missing folder, a folder
    of the wrong kind or a model that cannot be loaded, naming the accepted forms."""
    from .zero_shot import BoxSamLocalizer, CLIPSegLocalizer

    parsed = parse_localizer_spec(spec, local_files_only)
    if parsed.kind == "learned":
        return None
    if parsed.kind == "clipseg":
        return CLIPSegLocalizer.from_pretrained(parsed.source, torch_dtype, device, local_files_only, **options)
    if parsed.kind == "sam3":
        from .sam3 import Sam3Localizer

        return Sam3Localizer.from_pretrained(parsed.source, torch_dtype, device, local_files_only, **options)
    return BoxSamLocalizer.from_pretrained(parsed.source, parsed.mask_source, detector_kind=parsed.kind,
                                           sam_kind=parsed.mask_kind or "sam", torch_dtype=torch_dtype, device=device,
                                           local_files_only=local_files_only, **options)
