"""The shapes-world language: captions, referring expressions and instruction phrasing.

Generation side only (the parser that understands this language lives in
``regionedit.describe``). Every function draws its choices from an explicit
``numpy.random.Generator``; the same generator state gives the same text.
"""

from __future__ import annotations

import numpy as np

from .scene import Background, Scene, WorldObject

SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "dot"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "star": ("star",),
    "diamond": ("diamond",),
}

VERBS = {
    "remove": ("remove", "delete", "erase", "take away", "get rid of"),
    "add": ("add", "put", "place", "insert", "draw"),
    "change": ("change", "turn", "make", "transform", "convert"),
}

AREA_PHRASES: dict[str, tuple[str, ...]] = {
    "top left": ("in the top left", "in the top left corner", "at the top left", "to the top left"),
    "top right": ("in the top right", "in the top right corner", "at the top right", "to the top right"),
    "bottom left": ("in the bottom left", "in the bottom left corner", "at the bottom left"),
    "bottom right": ("in the bottom right", "in the bottom right corner", "at the bottom right"),
    "center": ("in the center", "in the centre", "in the middle", "at the center"),
}

_PREFIXES = ("", "", "", "please ", "could you ", "can you ", "would you ", "kindly ", "could you please ")
_SUFFIXES = ("", "", ".", "!", " please", " please.")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def color_word(name: str, rng: np.random.Generator | None = None) -> str:
    """Colour name as text ("gray" may be spelled "grey")."""
    if name == "gray" and rng is not None and rng.random() < 0.3:
        return "grey"
    return name


def with_article(words: str) -> str:
    """``"orange star"`` -> ``"an orange star"``; ``"red star"`` -> ``"a red star"``."""
    return ("an " if words[:1] in "aeiou" else "a ") + words


def object_phrase(obj: WorldObject, with_size: bool = True) -> str:
    """``"a small red circle"``: the canonical caption phrase for one object."""
    size = f"{obj.size} " if with_size else ""
    return with_article(f"{size}{obj.color} {obj.shape}")


def background_phrase(bg: Background) -> str:
    if bg.bottom is None:
        return with_article(f"{bg.top} background")
    return with_article(f"{bg.top} to {bg.bottom} background")


def caption(scene: Scene, rng: np.random.Generator | None = None, size_words: float = 1.0) -> str:
    """Scene caption, objects left to right, e.g.
    ``"a small red circle, a large blue star and a green square on a white background"``.

    Args:
        rng: source of the optional choices (size words); required when ``0 < size_words < 1``.
        size_words: probability of keeping each object's size word (1 = always, 0 = never).
    """
    objs = sorted(scene.objects, key=lambda o: (o.cx, o.cy))
    parts = []
    for o in objs:
        keep = size_words >= 1.0 or (size_words > 0 and rng is not None and rng.random() < size_words)
        parts.append(object_phrase(o, with_size=keep))
    if not parts:  # e.g. after removing the only object
        return background_phrase(scene.background)
    if len(parts) == 1:
        body = parts[0]
    else:
        body = ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{body} on {background_phrase(scene.background)}"


def refer(
    rng: np.random.Generator, color: str | None, shape: str, size: str | None = None
) -> str:
    """A referring expression: ``"the red ball"``, ``"red circle"``, ``"the small red circle"``,
    or ``"the star"`` when ``color`` is None (the caller guarantees the shape is unique)."""
    words = []
    if rng.random() < 0.85:
        words.append("the")
    if size is not None and color is not None and rng.random() < 0.15:
        words.append(size)
    if color is not None:
        words.append(color_word(color, rng))
    words.append(_pick(rng, SHAPE_SYNONYMS[shape]))
    return " ".join(words)


def new_object_phrase(rng: np.random.Generator, color: str | None, shape: str, size: str | None) -> str:
    """``"a red star"`` / ``"a small red star"`` / ``"a star"`` for added or replacement objects."""
    words = []
    if size is not None:
        words.append(size)
    if color is not None:
        words.append(color_word(color, rng))
    words.append(_pick(rng, SHAPE_SYNONYMS[shape]))
    return with_article(" ".join(words))


def polite(rng: np.random.Generator, core: str) -> str:
    """Wrap an instruction core with optional politeness, punctuation and capitalisation."""
    prefix = _pick(rng, _PREFIXES)
    suffix = _pick(rng, _SUFFIXES)
    if prefix.startswith(("could", "can", "would")) and rng.random() < 0.6:
        suffix = "?"
    text = prefix + core + suffix
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text


def phrase_remove(rng: np.random.Generator, ref: str) -> str:
    verb = _pick(rng, VERBS["remove"])
    forms = [f"{verb} {ref}", f"{verb} {ref}", f"{verb} {ref} from the image", f"{verb} {ref} from the picture"]
    if verb == "take away":
        forms.append(f"take {ref} away")
    return polite(rng, _pick(rng, forms))


def phrase_add(rng: np.random.Generator, new: str, area: str | None) -> str:
    verb = _pick(rng, VERBS["add"])
    where = "" if area is None else " " + _pick(rng, AREA_PHRASES[area])
    forms = [f"{verb} {new}{where}"]
    if area is None:
        forms += [f"{verb} {new} to the image", f"{verb} {new} somewhere"]
    else:
        forms += [f"{where.strip()}, {verb} {new}"]
    return polite(rng, _pick(rng, forms))


def phrase_replace(rng: np.random.Generator, ref: str, new: str) -> str:
    forms = [
        f"change {ref} into {new}",
        f"change {ref} to {new}",
        f"turn {ref} into {new}",
        f"transform {ref} into {new}",
        f"convert {ref} into {new}",
        f"make {ref} {new}",
        f"replace {ref} with {new}",
        f"swap {ref} for {new}",
        f"swap {ref} with {new}",
    ]
    return polite(rng, _pick(rng, forms))


def phrase_color(rng: np.random.Generator, ref: str, color: str) -> str:
    c = color_word(color, rng)
    colour = _pick(rng, ("color", "colour"))
    forms = [
        f"make {ref} {c}",
        f"turn {ref} {c}",
        f"change {ref} to {c}",
        f"change the {colour} of {ref} to {c}",
        f"{colour} {ref} {c}",
        f"convert {ref} to {c}",
        f"make {ref} {c} instead",
    ]
    return polite(rng, _pick(rng, forms))


def phrase_size(rng: np.random.Generator, ref: str, bigger: bool) -> str:
    word = _pick(rng, ("bigger", "larger") if bigger else ("smaller", "tinier"))
    forms = [f"make {ref} {word}", f"make {ref} a bit {word}", f"make {ref} a little {word}"]
    return polite(rng, _pick(rng, forms))


def phrase_background(rng: np.random.Generator, bg: Background) -> str:
    colour = _pick(rng, ("color", "colour"))
    if bg.bottom is None:
        c = color_word(bg.top, rng)
        forms = [
            f"change the background to {c}",
            f"make the background {c}",
            f"turn the background {c}",
            f"change the background {colour} to {c}",
            f"make the background {c} instead",
        ]
    else:
        a, b = color_word(bg.top, rng), color_word(bg.bottom, rng)
        forms = [
            f"make the background {with_article(f'{a} to {b} gradient')}",
            f"change the background to {with_article(f'{a} to {b} gradient')}",
            f"turn the background into a gradient from {a} to {b}",
            f"change the background into {with_article(f'{a} to {b} gradient')}",
        ]
    return polite(rng, _pick(rng, forms))
