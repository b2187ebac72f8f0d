"""Lexicon of the shapes-world instruction language, and the normalising lexer.

Step 1 of the grammar (see :mod:`regionedit.world.grammar`): lower-case, drop punctuation, undo
contractions, map spelling variants ("colour", "grey", "centre"), fold relative clauses ("the circle that
is red" -> "the red circle") and match the lexicon longest-phrase-first into typed tokens (:class:`_Tok`).
The colour, shape and size tables here are also what the caption reader uses.
"""

from __future__ import annotations

import dataclasses
import re

from regionedit.world import spec

_COLORS: dict[str, str] = {c: c for c in list(spec.OBJECT_COLORS) + list(spec.BACKGROUND_COLORS)}
_COLORS.update({"violet": "purple", "skyblue": "sky blue", "lightgreen": "light green"})
# colours a user may type that the world does not have (reported as such, never guessed)
_UNSUPPORTED_COLORS = (
    "pink brown cyan magenta teal turquoise gold golden silver navy lime maroon olive indigo "
    "lavender crimson scarlet tan khaki"
).split() + ["light blue", "dark blue", "dark green", "dark red", "light red", "light gray", "dark gray"]

_SHAPES: dict[str, str] = {
    "circle": "circle", "ball": "circle", "dot": "circle", "disc": "circle", "disk": "circle",
    "square": "square", "box": "square",
    "triangle": "triangle",
    "star": "star",
    "diamond": "diamond", "rhombus": "diamond", "lozenge": "diamond",
}  # fmt: skip
_UNSUPPORTED_SHAPES = "rectangle oval ellipse heart hexagon pentagon octagon cross arrow moon cube sphere".split()
_PLACEHOLDERS = ("one", "thing", "object", "shape", "item", "figure")

_SIZES = {"small": "small", "tiny": "small", "little": "small", "large": "large", "big": "large", "huge": "large"}
_COMPARATIVES = {"bigger": True, "larger": True, "greater": True, "smaller": False, "tinier": False}
_SIZE_VERBS = {
    "enlarge": True, "grow": True, "expand": True, "magnify": True, "increase": True, "double": True,
    "scale up": True, "blow up": True, "upscale": True, "upsize": True,
    "shrink": False, "reduce": False, "decrease": False, "halve": False, "minimize": False,
    "scale down": False, "downsize": False, "downscale": False,
}  # fmt: skip

_CUES: dict[str, tuple[str, ...]] = {
    "remove": (
        "remove", "removed", "delete", "deleted", "erase", "erased", "eliminate", "get rid of", "rid of",
        "take away", "take out", "take off", "do away with", "wipe", "wipe out", "clear", "clear away",
        "gone", "disappear", "vanish", "without", "no longer", "no more", "discard", "go away", "lose",
        "not want", "not need", "not like", "not wanted", "not needed", "needs to go",
        "not have", "not contain", "not include", "not show",
        "need to go", "has to go", "have to go", "must go", "should go", "can go", "out of the picture",
        "out of the image", "got to go", "gotta go", "to go", "drop", "hide", "hidden", "ditch", "scrap",
        "omit", "cut out",
    ),
    "add": (
        "add", "added", "put", "place", "placed", "insert", "inserted", "draw", "drawn", "include",
        "create", "sketch", "there should be", "there must be", "there is", "let there be", "there be",
        "stick", "introduce",
    ),
    "change": ("change", "changed", "turn", "turned", "make", "made", "transform", "transformed",
               "convert", "converted", "modify", "alter", "become", "becomes", "morph"),
    "replace": ("replace", "replaced", "swap", "swapped", "exchange", "switch", "trade"),
    "subst": ("substitute", "use"),
    "color": ("color", "colored", "recolor", "recolored", "paint", "painted", "tint", "dye", "fill"),
    "move": ("move", "moved", "shift", "drag", "relocate", "rotate", "flip", "mirror"),
}  # fmt: skip
_CONNECTORS = ("into", "to", "with", "for", "by", "as", "be", "become", "becomes", "is", "are", "look like")
_OLD_MARKERS = ("instead of", "in place of", "rather than", "in lieu of", "in stead of", "where", "in the place of")
_DETERMINERS = {"a": True, "an": True, "some": True, "another": True, "the": False, "this": False,
                "that": False, "these": False, "those": False, "its": False}  # fmt: skip
_PRONOUNS = ("it", "them")
_BACKGROUND_WORDS = ("background", "backdrop", "bg", "back ground", "backgrounds")
_GRADIENT_WORDS = ("gradient", "fade", "fading", "fades", "blend", "transition", "ramp")

_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_HORIZONTAL = ("left", "right")

_SPELLING = {
    "colour": "color", "colours": "colors", "coloured": "colored", "colouring": "coloring",
    "recolour": "recolor", "recoloured": "recolored", "grey": "gray", "greyish": "gray", "centre": "center",
    "central": "center", "centered": "center", "centred": "center", "topleft": "top left",
    "topright": "top right", "bottomleft": "bottom left", "bottomright": "bottom right",
    "circles": "circle", "balls": "ball", "dots": "dot", "squares": "square", "boxes": "box",
    "triangles": "triangle", "stars": "star", "diamonds": "diamond", "ones": "one", "colors": "color",
    "coloring": "color", "backgrounds": "background",
    # gerunds: "clean up the picture by removing the triangle"
    "removing": "remove", "deleting": "delete", "erasing": "erase", "adding": "add", "placing": "place",
    "inserting": "insert", "changing": "change", "turning": "turn", "making": "make",
    "replacing": "replace", "swapping": "swap", "painting": "paint", "recoloring": "recolor",
    "recolouring": "recolor", "enlarging": "enlarge", "shrinking": "shrink", "converting": "convert",
    "transforming": "transform",
}  # fmt: skip


@dataclasses.dataclass
class _Tok:
    kind: str  # COLOR UCOLOR SHAPE USHAPE PH PRON SIZE COMP SIZEVERB AREA BG GRAD CUE CONN OLD FROM DET ...
    value: object
    text: str
    i: int = 0  # index in the token list


def _build_lexicon() -> dict[tuple[str, ...], tuple[str, object]]:
    lex: dict[tuple[str, ...], tuple[str, object]] = {}

    def put(phrase: str, kind: str, value: object) -> None:
        lex.setdefault(tuple(phrase.split()), (kind, value))

    for phrase in _OLD_MARKERS:
        put(phrase, "OLD", None)
    # areas: "top left", "upper left hand corner", "left top", "top left side"
    for vw, v in _VERTICAL.items():
        for h in _HORIZONTAL:
            for form in (f"{vw} {h}", f"{h} {vw}", f"{vw} {h} hand", f"{vw} {h} corner", f"{vw} {h} hand corner",
                         f"{h} {vw} corner", f"{vw} {h} side", f"{vw} {h} part", f"{vw} {h} quadrant"):
                put(form, "AREA", f"{v} {h}")
    for form in ("center", "middle", "very center", "very middle", "dead center"):
        put(form, "AREA", "center")
    for cls, words in _CUES.items():
        for w in words:
            put(w, "CUE", cls)
    for w, c in _COLORS.items():
        put(w, "COLOR", c)
    for w in _UNSUPPORTED_COLORS:
        put(w, "UCOLOR", w)
    for w, s in _SHAPES.items():
        put(w, "SHAPE", s)
    for w in _UNSUPPORTED_SHAPES:
        put(w, "USHAPE", w)
    for w in _PLACEHOLDERS:
        put(w, "PH", None)
    for w in _PRONOUNS:
        put(w, "PRON", None)
    for w, s in _SIZES.items():
        put(w, "SIZE", s)
    for w, b in _COMPARATIVES.items():
        put(w, "COMP", b)
    for w, b in _SIZE_VERBS.items():
        put(w, "SIZEVERB", b)
    for w in _BACKGROUND_WORDS:
        put(w, "BG", None)
    for w in _GRADIENT_WORDS:
        put(w, "GRAD", None)
    for w in _CONNECTORS:
        put(w, "CONN", w)
    for w, indef in _DETERMINERS.items():
        put(w, "DET", indef)
    put("from", "FROM", None)
    put("take", "TAKE", None)
    put("get", "TAKE", None)
    put("away", "AWAY", None)
    put("bit", "BIT", None)
    put("and", "AND", None)
    put("not", "NOT", None)
    put("don't", "NOT", None)
    put("never", "NOT", None)
    return lex


_LEXICON = _build_lexicon()
_MAX_PHRASE = max(len(k) for k in _LEXICON)

_CONTRACTIONS = [
    (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"n't\b", " not"), (r"'d\b", " would"),
    (r"'ll\b", " will"), (r"'re\b", " are"), (r"'m\b", " am"), (r"\blet's\b", "let us"),
    (r"\b(it|that|there|what)'s\b", r"\1 is"), (r"'s\b", ""),
]  # fmt: skip


def _normalise(text: str, postnominal: bool = False) -> list[str]:
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pat, rep in _CONTRACTIONS:
        t = re.sub(pat, rep, t)
    t = re.sub(r"[^a-z0-9' ]+", " ", t)  # hyphens, commas, "?!." ... become spaces
    t = t.replace("'", " ")
    words: list[str] = []
    for w in t.split():
        words.extend(_SPELLING.get(w, w).split())
    words = _fold_relative(words, postnominal)
    t = " ".join(words)
    t = re.sub(r"\bdrop (a|an|another|one|some)\b", r"add \1", t)  # "drop a star in ..." adds, "drop the star" removes
    t = re.sub(r"\bless (?:big|large|huge)\b", "smaller", t)  # before "big" reads as a size
    t = re.sub(r"\bless (?:small|tiny|little)\b", "bigger", t)
    # a complaint asks for the opposite: "the circle is too big" -> smaller, "not big enough" -> bigger
    t = re.sub(r"\b(?:too (?:big|large|huge)|not (?:small|tiny|little) enough)\b", "smaller", t)
    t = re.sub(r"\b(?:too (?:small|tiny|little)|not (?:big|large|huge) enough)\b", "bigger", t)
    t = re.sub(r"\b(?:everything|all) (?:except|but|apart from|other than|besides|behind|around) (?:for )?(?:the )?"
               r"(?:shapes?|objects?|things?|figures?)\b", "the background", t)  # what is not an object
    t = re.sub(r"\b(?:the )?(?:area|space|region|part|parts) (?:around|behind|outside|between) (?:of )?(?:the )?"
               r"(?:shapes?|objects?|things?|figures?)\b|\b(?:the )?empty (?:space|area)\b", "the background", t)
    # a question about possibility is a request: "would it be possible to remove ..." ("it" is no object)
    t = re.sub(r"\b(?:(?:would|will|could|would not) it be|is it) (?:possible|ok|okay|alright|feasible)(?: for you)? to\b", "", t)
    t = re.sub(r"\bit would be (?:nice|great|good|cool|better) if (?:you )?(?:could |would )?", "", t)
    t = re.sub(r"\b(?:the )?shape of\b", "", t)  # "change the shape of the circle to a star"
    t = re.sub(rf"\b({'|'.join(_SHAPES)}) shape\b", r"\1", t)  # "change the circle shape to a star"
    t = re.sub(r"\b(scale|blow) ((?:the |that |this )?(?:\w+ ){0,2}?\w+) (up|down)(?=(?: a bit| a little)?(?: please)?$)", r"\1 \3 \2", t)  # "scale the square up"
    return t.split()


def _fold_relative(words: list[str], postnominal: bool = False) -> list[str]:
    """A relative clause's colour and size move before the noun: "the circle that is red" -> "the red circle",
    "make the triangle which is small and green red" -> "make the small green triangle red". With
    ``postnominal`` also "the circle colored red" and "the ball in red" (which can instead say the new colour:
    "paint the star in red"; :func:`parse_intent` tries the fold first and reads the words as written when the
    folded instruction does not parse)."""
    out = list(words)
    i = 0
    while i + 2 < len(out):
        start = None
        if out[i] in _SHAPES and out[i + 1] in ("that", "which", "who") and i + 3 < len(out) and out[i + 2] in ("is", "are"):
            start = i + 3
        elif postnominal and out[i] in _SHAPES and out[i + 1] in ("colored", "in"):
            start = i + 2
        if start is not None:
            j, mods = start, []
            while j < len(out):
                two = " ".join(out[j:j + 2])
                kinds = ["color" if m in _COLORS else "size" for m in mods]
                if two in _COLORS and "color" not in kinds:
                    mods.append(two)
                    j += 2
                elif (out[j] in _COLORS and "color" not in kinds) or (out[j] in _SIZES and "size" not in kinds):
                    mods.append(out[j])  # one colour and one size: a colour after that is the new one
                    j += 1
                elif out[j] == "and" and mods:
                    j += 1
                else:
                    break
            if mods:
                mods = " ".join(mods).split()
                out[i:j] = mods + [out[i]]
                i += len(mods)
        i += 1
    return out


def _lex(words: list[str]) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            key = tuple(words[i : i + n])
            if key in _LEXICON:
                kind, value = _LEXICON[key]
                toks.append(_Tok(kind, value, " ".join(key)))
                i += n
                break
        else:
            toks.append(_Tok("WORD", words[i], words[i]))
            i += 1
    for j, t in enumerate(toks):
        t.i = j
    return toks
