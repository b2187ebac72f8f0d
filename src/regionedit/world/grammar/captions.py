"""World captions: read (:func:`parse_caption`), write (:func:`format_caption`) and edit them
(:func:`apply_intent`, after :func:`resolve` finds the edited object). Step 4 of :mod:`regionedit.world.grammar`.

A world caption (WORLD.md) is ``"a small red circle, a blue star and a green square on a white
background"``: objects left to right, then the background (``"a white to black background"`` for a
gradient).
"""

from __future__ import annotations

import re

from regionedit.world import spec
from regionedit.world.grammar.lexicon import _COLORS, _SHAPES, _SIZES, _SPELLING
from regionedit.world.intent import EditIntent, Referent


def with_article(words: str) -> str:
    """``"orange star"`` -> ``"an orange star"``; ``"red star"`` -> ``"a red star"``."""
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _background_text(background: tuple[str, str | None]) -> str:
    top, bottom = background
    return with_article(f"{top} background" if bottom is None else f"{top} to {bottom} background")


def format_caption(objects: list[Referent], background: tuple[str, str | None]) -> str:
    """World caption: ``"a small red circle, a blue star and a green square on a white background"``
    (objects in the given order, size words where known; just the background when there is none)."""
    parts = [with_article(o.text(size=True)) for o in objects]
    if not parts:
        return _background_text(background)
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{body} on {_background_text(background)}"


_CAPTION_RE = re.compile(r"^(?:(?P<objs>.*?)\s+on\s+)?(?:an?\s+)?(?P<bg>[a-z ]+?)\s+background$")


def parse_caption(caption: str) -> tuple[list[Referent], tuple[str, str | None]]:
    """Read a world caption back: ``(objects in caption order, (top, bottom | None))``.

    Accepts the WORLD.md format with optional size words (and, leniently, objects without a colour:
    ``"a star"``), shape synonyms, "grey", any case and a trailing full stop; failing that, other wordings
    that name a background colour (:func:`_parse_caption_loosely`: "red circle, blue star, white background",
    "a purple diamond on white"). Raises ``ValueError`` for text that names no world background.
    """
    text = re.sub(r"[^a-z, ]+", " ", caption.lower().replace("-", " "))
    text = " ".join(" ".join(_SPELLING.get(w, w) for w in text.replace(",", " , ").split()).split())
    text = text.replace(" , ", ", ").strip(" ,")
    try:
        return _parse_caption_strictly(text, caption)
    except ValueError:
        loose = _parse_caption_loosely(text)
        if loose is None:
            raise
        return loose


def _parse_caption_strictly(text: str, caption: str) -> tuple[list[Referent], tuple[str, str | None]]:
    """WORLD.md's caption format (``text`` normalised by :func:`parse_caption`); ``ValueError`` otherwise."""
    m = _CAPTION_RE.match(text)
    if m is None:
        raise ValueError(f"not a shapes-world caption (expected '... on a <colour> background'): {caption!r}")
    bg_words = m.group("bg").split(" to ")
    bgs = [_COLORS.get(w.strip()) for w in bg_words]
    if not 1 <= len(bgs) <= 2 or any(b is None for b in bgs):
        raise ValueError(f"unknown background {m.group('bg')!r} in caption {caption!r}")
    background = (str(bgs[0]), None if len(bgs) == 1 else str(bgs[1]))
    objects: list[Referent] = []
    objs = m.group("objs")
    if objs:
        for part in re.split(r"\s*,\s*and\s+|\s+and\s+|\s*,\s*", objs):
            part = part.strip()
            if not part:
                continue
            ws = part.split()
            if ws[0] in ("a", "an", "the"):
                ws = ws[1:]
            size = None
            if ws and ws[0] in _SIZES:
                size = _SIZES[ws[0]]
                ws = ws[1:]
            color_words = " ".join(ws[:-1])
            if not ws or ws[-1] not in _SHAPES or (color_words and color_words not in _COLORS):
                raise ValueError(f"cannot read object {part!r} in caption {caption!r}")
            objects.append(Referent(_COLORS.get(color_words), _SHAPES[ws[-1]], size))
    return objects, background


def _alternation(words) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_C_ALT = _alternation(_COLORS)
_LOOSE_BACKGROUND = [  # where another writer may put the background: "white background", "background: beige
    # to gray", "on white" (at the end), each with an optional gradient end
    re.compile(rf"\b(?:from )?(?P<top>{_C_ALT})(?: to (?P<bottom>{_C_ALT}))?(?: gradient| colored| color)? background\b"),
    re.compile(rf"\bbackground(?: is| of| in| that is| color)?(?: an?)?(?: gradient)?(?: (?:that )?(?:fading|fades|going"
               rf"|goes|running|runs|blending|blends))?(?: from)? (?P<top>{_C_ALT})(?: to (?P<bottom>{_C_ALT}))?\b"),
    re.compile(rf"\b(?:from )?(?P<top>{_C_ALT}) to (?P<bottom>{_C_ALT}) gradient\b"),
    re.compile(rf"\bon (?:an? )?(?P<top>{_C_ALT})(?: to (?P<bottom>{_C_ALT}))?$"),
]
_LOOSE_OBJECT = re.compile(rf"\b(?:(?P<size>{_alternation(_SIZES)}) )?(?:(?P<color>{_C_ALT}) )?(?P<shape>{_alternation(_SHAPES)})\b")


def _parse_caption_loosely(text: str) -> tuple[list[Referent], tuple[str, str | None]] | None:
    """A caption in other words than WORLD.md's ("red circle, blue star, white background", "a purple
    diamond on white", "a gradient background from beige to black with a red ball"): the background from
    the first pattern of :data:`_LOOSE_BACKGROUND` that matches, the objects from every
    "[size] [colour] shape" in order outside it. None when no background is named."""
    for pat in _LOOSE_BACKGROUND:
        m = pat.search(text)
        if m is None:
            continue
        top, bottom = _COLORS[m.group("top")], m.group("bottom") and _COLORS[m.group("bottom")]
        if top not in spec.BACKGROUND_COLORS or (bottom is not None and bottom not in spec.BACKGROUND_COLORS):
            continue
        rest = text[: m.start()] + " " + text[m.end():]
        objects = [Referent(o.group("color") and _COLORS[o.group("color")], _SHAPES[o.group("shape")],
                            o.group("size") and _SIZES[o.group("size")]) for o in _LOOSE_OBJECT.finditer(rest)]
        return objects, (str(top), None if bottom is None else str(bottom))
    return None


def _insert_index(area: str | None, n: int) -> int:
    """Where a new object goes in the left-to-right caption list. The parser never sees the image,
    so this is a heuristic: left areas first, centre in the middle, right areas and unknown last."""
    if area in ("top left", "bottom left"):
        return 0
    if area == "center":
        return (n + 1) // 2
    return n


def resolve(target: Referent, objects: list[Referent]) -> tuple[int | None, str | None]:
    """Index of the one caption object ``target`` names, or ``(None, error)``."""
    hits = [i for i, o in enumerate(objects) if target.matches(o)]
    if len(hits) == 1:
        return hits[0], None
    name = target.text(size=True) if (target.color or target.shape or target.size) else "it"
    if not hits:
        return None, (
            f"the source caption has no {name}: nothing to edit (the instruction names an object that "
            "is not in the image)"
        )
    return None, (
        f"{name!r} is ambiguous: the source caption has {len(hits)} matching objects; name its colour and shape"
    )


def apply_intent(
    intent: EditIntent, objects: list[Referent], background: tuple[str, str | None]
) -> tuple[list[Referent], tuple[str, str | None], str | None]:
    """Apply an intent to a parsed caption: ``(objects, background, error)``; on error the scene is
    returned unchanged (the right answer for an absent referent is no edit)."""
    if intent.op == "background":
        assert intent.background is not None
        return list(objects), intent.background, None
    if intent.op == "add":
        new = Referent(intent.new_color, intent.new_shape, intent.new_size)
        out = list(objects)
        out.insert(_insert_index(intent.area, len(out)), new)
        return out, background, None
    assert intent.target is not None
    idx, err = resolve(intent.target, objects)
    if idx is None:
        return list(objects), background, err
    old = objects[idx]
    out = list(objects)
    if intent.op == "remove":
        del out[idx]
    elif intent.op == "local":
        out[idx] = Referent(intent.new_color or old.color, intent.new_shape, intent.new_size or old.size)
    elif intent.op == "color":
        out[idx] = Referent(intent.new_color, old.shape, old.size)
    elif intent.op == "size":
        out[idx] = Referent(old.color, old.shape, "large" if intent.bigger else "small")
    return out, background, None
