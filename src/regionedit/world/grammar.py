"""Offline rule-based Describe stage for the shapes-world language (WORLD.md, "Instructions").

:class:`WorldDescriber` turns ``(instruction, source caption)`` into a :class:`Description` without an
LLM and without looking at the image. It is a tolerant slot parser, not a list of templates:

1. **Normalise and lex.** Lower-case, drop punctuation, undo contractions, map spelling variants
   ("colour", "grey", "centre") and match a lexicon longest-phrase-first into typed tokens: colours
   ("sky blue" is one token), shapes with synonyms ("ball"/"dot" -> circle, "box" -> square, and
   placeholders "one"/"thing"), size words, comparatives, areas ("upper left", "top-left corner",
   "middle"), verbs grouped by meaning (remove / add / change / replace / colour / size), connecting
   words ("into", "to", "with", "for", "as", "be"), old-value markers ("instead of", "in place of",
   "rather than", "from") and "background"/"gradient".
2. **Group noun phrases**: ``[a|the] [size] [colour] (shape|one)``; colours and sizes outside a noun
   phrase are "bare" (the new colour of "make the triangle green").
3. **Decide the edit** from cues and slot positions (first match wins): background words without an
   object -> background edit; a removal cue ("remove", "gone", "without"...) -> remove; an old-value
   marker with an object ("use a ball instead of the star") -> replace; two objects around a connector
   ("turn X into Y", "swap X for Y"; "substitute Y for X" is reversed) -> replace, or a colour / size
   change when only that differs; an addition cue -> add; a comparative or size verb -> size; one
   object and a bare colour -> colour; a lone indefinite object ("there should be a red star") -> add.
4. **Rewrite the source caption** (when given) into the target caption, and build the local prompt
   for the inpainting generator and the referring text for the region predictor.

Unsupported requests (moving objects, colours or shapes outside the world, several edits at once...)
return a :class:`Description` whose ``error`` says why; only an empty instruction raises.
"""

from __future__ import annotations

import dataclasses
import re

from regionedit.world import spec

from regionedit.describe.base import Description, check_instruction
from regionedit.world.intent import OPS, REFERENT_OPS, EditIntent, Referent, general_fields  # noqa: F401  (re-exported)

__all__ = [
    "WorldDescriber",
    "parse_intent",
    "parse_caption",
    "format_caption",
    "apply_intent",
    "intent_to_text",
    "local_prompt_for",
    "with_article",
]

# --------------------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Noun phrases
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _NP:
    start: int
    end: int  # index of the head token (inclusive)
    color: str | None
    shape: str | None
    size: str | None
    indefinite: bool  # "a red star"
    pronoun: bool = False

    @property
    def has_shape(self) -> bool:
        return self.shape is not None

    def referent(self) -> Referent:
        return Referent(self.color, self.shape, self.size)


def _content(tok: _Tok | None) -> bool:
    return tok is not None and tok.kind in ("COLOR", "SHAPE", "PH", "USHAPE")


def _group(toks: list[_Tok]) -> tuple[list[_NP], list[tuple[int, str]], list[tuple[int, str]]]:
    """Noun phrases, bare colours ``(index, colour)`` and bare sizes ``(index, "small"|"large")``."""
    nps: list[_NP] = []
    bare_colors: list[tuple[int, str]] = []
    bare_sizes: list[tuple[int, str]] = []
    n = len(toks)

    def nxt(j: int) -> _Tok | None:
        # skip "colored" between a colour and its noun ("the blue coloured square")
        while j < n and toks[j].kind == "CUE" and toks[j].text == "colored":
            j += 1
        return toks[j] if j < n else None

    i = 0
    while i < n:
        t = toks[i]
        if t.kind == "PRON":
            nps.append(_NP(i, i, None, None, None, False, pronoun=True))
            i += 1
            continue
        if t.kind not in ("SIZE", "COLOR", "SHAPE", "PH"):
            i += 1
            continue
        start = i
        size = color = None
        j = i
        # modifiers: at most one size and one colour, in either order
        while j < n and toks[j].kind in ("SIZE", "COLOR"):
            tj = toks[j]
            if tj.kind == "SIZE":
                after = nxt(j + 1)
                # "a little bigger", "a tiny bit": not a size; "make it large": a bare size
                if size is not None or not _content(after):
                    break
                size = tj.value
            else:
                if color is not None:
                    break
                color = tj.value
            j += 1
            while j < n and toks[j].kind == "CUE" and toks[j].text == "colored":
                j += 1
        head = toks[j] if j < n else None
        indefinite = start > 0 and toks[start - 1].kind == "DET" and bool(toks[start - 1].value)
        definite = start > 0 and toks[start - 1].kind == "DET" and not toks[start - 1].value
        if head is not None and head.kind == "PH" and j == start and _content(nxt(j + 1)):
            i = j + 1  # "one red star": a numeral, not a placeholder noun
            continue
        if head is not None and head.kind in ("SHAPE", "PH"):
            nps.append(_NP(start, j, color, head.value, size, indefinite))  # type: ignore[arg-type]
            i = j + 1
            continue
        # no head noun: bare modifiers
        if j == start:  # the token itself could not start a phrase (e.g. "little bigger")
            if t.kind == "SIZE" and t.text != "little":
                after = nxt(i + 1)
                if not (after is not None and after.kind in ("BIT", "COMP")):
                    bare_sizes.append((i, t.value))  # type: ignore[arg-type]
            elif t.kind == "COLOR":
                bare_colors.append((i, t.value))  # type: ignore[arg-type]
            i += 1
            continue
        if color is not None and definite and size is None:
            # "remove the red" / "delete the blue": a colour-only referent
            nps.append(_NP(start, j - 1, color, None, None, False))
        else:
            for k in range(start, j):
                if toks[k].kind == "COLOR":
                    bare_colors.append((k, toks[k].value))  # type: ignore[arg-type]
                elif toks[k].kind == "SIZE" and toks[k].text != "little":
                    bare_sizes.append((k, toks[k].value))  # type: ignore[arg-type]
        i = j
    # a pronoun after a named object refers to it: "the triangle is too big, make it smaller"
    if any(not np.pronoun for np in nps):
        first = next(k for k, np in enumerate(nps) if not np.pronoun)
        nps = nps[: first + 1] + [np for np in nps[first + 1 :] if not np.pronoun]
    return nps, bare_colors, bare_sizes


# --------------------------------------------------------------------------------------------------
# Instruction -> intent
# --------------------------------------------------------------------------------------------------

_HELP = (
    "name one edit and its object, e.g. 'remove the red circle', 'add a small yellow star in the top "
    "left', 'turn the blue square into a red star', 'make the triangle green', 'make the red circle "
    "bigger' or 'change the background to black'"
)


class _ParseError(Exception):
    pass


def _background_intent(toks: list[_Tok], words_top_bottom: dict[str, list[int]]) -> tuple[str, str | None]:
    """``(top, bottom)`` of a background edit; colours after an old-value marker are the old ones."""
    old_spans = _old_spans(toks)
    colors = [(t.i, t.value) for t in toks if t.kind == "COLOR" and not any(a <= t.i < b for a, b in old_spans)]
    has_grad = any(t.kind == "GRAD" for t in toks)
    from_idx = [t.i for t in toks if t.kind == "FROM"]
    # "A to B" with no "from" before A also reads as a gradient ("make the background white to black")
    if not has_grad and len(colors) >= 2:
        (i1, _), (i2, _) = colors[-2], colors[-1]
        between = toks[i1 + 1 : i2]
        if (
            len(between) == 1
            and between[0].kind == "CONN"
            and between[0].value in ("to", "into")
            and not any(f < i1 for f in from_idx)
        ):
            has_grad = True
        # "from A to B" after the gradient-ish verb "go": "make the background go from white to black"
        if any(re.search(r"\b(go|goes|going|running)\b", t.text) for t in toks):
            has_grad = True
        if "top" in words_top_bottom and "bottom" in words_top_bottom:  # "black at the top and white at..."
            has_grad = True
    if has_grad:
        if len(colors) < 2:
            raise _ParseError("a gradient needs two colours, e.g. 'make the background a white to sky blue gradient'")
        (i1, c1), (i2, c2) = colors[-2], colors[-1]
        if "top" in words_top_bottom and "bottom" in words_top_bottom:
            top_pos, bottom_pos = words_top_bottom["top"][0], words_top_bottom["bottom"][0]
            if abs(i1 - bottom_pos) < abs(i1 - top_pos):  # "black at the bottom and white at the top"
                c1, c2 = c2, c1
        if c1 == c2:
            raise _ParseError(f"a gradient needs two different colours, got {c1!r} twice")
        return str(c1), str(c2)
    # solid: the last colour that is not an old one ("from white to black" -> black)
    cands = [(i, c) for i, c in colors if not (i > 0 and toks[i - 1].kind == "FROM")]
    if not cands:
        if colors:
            cands = colors
        else:
            raise _ParseError("the instruction changes the background but names no colour for it")
    return str(cands[-1][1]), None


def _old_spans(toks: list[_Tok]) -> list[tuple[int, int]]:
    """Token ranges introduced by "instead of" / "in place of" / "rather than" (up to the next
    connector, cue or the end)."""
    spans = []
    for t in toks:
        if t.kind == "OLD":
            end = len(toks)
            for u in toks[t.i + 1 :]:
                if u.kind in ("CONN", "CUE", "OLD", "AND") and u.i > t.i + 1:
                    end = u.i
                    break
            spans.append((t.i + 1, end))
    return spans


def _compare(ref: _NP, new: _NP, raw: str) -> EditIntent:
    """Intent for "turn <ref> into <new>": replace, or a colour / size change when only that differs."""
    target = ref.referent()
    if new.shape is not None and new.shape != ref.shape:
        return EditIntent(
            "local", target, new_color=new.color or ref.color, new_shape=new.shape, new_size=new.size, raw=raw
        )
    if new.color is not None and new.color != ref.color:
        return EditIntent("color", target, new_color=new.color, raw=raw)
    if new.size is not None and new.size != ref.size:
        return EditIntent("size", target, bigger=new.size == "large", raw=raw)
    if new.shape is None:
        raise _ParseError("the instruction does not say what the object should become")
    raise _ParseError(f"the new object ({new.referent().text()}) is the same as the old one: nothing to edit")


def _first_between(toks: list[_Tok], a: int, b: int, kinds: tuple[str, ...]) -> _Tok | None:
    for t in toks[a:b]:
        if t.kind in kinds:
            return t
    return None


def parse_intent(instruction: str) -> tuple[EditIntent | None, str | None]:
    """Parse one instruction into ``(intent, error)``; exactly one of the two is None.

    Raises:
        ValueError: when the instruction is empty or whitespace only.
    """
    raw = check_instruction(instruction)
    try:
        return _parse(raw, postnominal=True), None
    except _ParseError:
        pass
    try:
        return _parse(raw), None
    except _ParseError as e:
        return None, f"could not understand {raw!r}: {e}"


# where one edit may end and the next begin: "; ", ". ", "then", "and", "also", "plus"
_CLAUSE_BREAK = re.compile(r"\s*(?:;|\.\s+|,?\s*\b(?:and\s+)?then\b|,?\s+\band\b(?:\s+also\b)?|,\s*also\b|,?\s+\bplus\b)\s*",
                           re.IGNORECASE)
# words that point back at the clause before ("put a star there instead", "replace it with ..."): such a
# clause is not an edit of its own, and the instruction is read whole
_BACK_REFERENCES = ("there", "instead", "its", "one", "ones", "same", "them", "that", "this", "those", "these")
_MAX_EDITS = 5


def split_edits(instruction: str) -> list[str]:
    """The edits one instruction asks for, each an instruction of its own, in order.

    ``"make the star red and the circle blue"`` -> ``["make the star red", "make the circle blue"]``;
    ``"remove the red circle, then add a blue star in the top left"`` -> both clauses;
    ``"turn the square blue and make it bigger"`` -> ``["turn the square blue", "make the blue square
    bigger"]`` ("it" is the object as the first edit leaves it); ``"make the star red and bigger"`` ->
    ``["make the star red", "make the red star bigger"]``; ``"remove the red circle and the blue star"`` ->
    two removals. A clause without a verb borrows the first clause's words before its object. The split is
    taken only when every clause parses as an edit on its own; otherwise (one edit, "get rid of the star
    and put a ball there", "a black at the top and white at the bottom background", at most
    ``_MAX_EDITS`` clauses) the result is ``[instruction]`` stripped.

    Raises:
        ValueError: when the instruction is empty or whitespace only.
    """
    raw = check_instruction(instruction)
    pieces = [q.strip(" ,.!?") for p in _CLAUSE_BREAK.split(raw) for q in _comma_clauses(p)]
    pieces = [p for p in pieces if p]
    if not 2 <= len(pieces) <= _MAX_EDITS:
        return [raw]
    shared = _shared_predicate(pieces)
    if shared is not None:
        return shared
    prefix, _ = _before_object(_lex(_normalise(pieces[0])), ("DET", "COLOR", "SHAPE", "SIZE", "PH", "BG"))
    clauses: list[str] = []
    prev: EditIntent | None = None
    for k, piece in enumerate(pieces):
        toks = _lex(_normalise(piece))
        if any(t.kind == "WORD" and t.value in _BACK_REFERENCES for t in toks) or any(
            t.kind == "DET" and t.text in _BACK_REFERENCES for t in toks
        ):
            return [raw]
        clause, pointed = piece, False
        if k > 0:
            after = _object_after(prev)
            if any(t.kind == "PRON" for t in toks):
                pointed = True  # "... and make it bigger": the object the last edit left
                if after is None:
                    return [raw]
                clause = " ".join(("the " + after) if t.kind == "PRON" else t.text for t in toks)
            elif not any(t.kind in ("CUE", "SIZEVERB", "TAKE") for t in toks):
                if toks and all(t.kind in ("COMP", "BIT", "WORD") for t in toks) and any(t.kind == "COMP" for t in toks):
                    if after is None:  # "... and bigger"
                        return [raw]
                    clause = f"make the {after} {' '.join(t.text for t in toks)}"
                elif toks and toks[0].kind in ("DET", "COLOR", "SIZE", "SHAPE") and any(t.kind == "SHAPE" for t in toks) and prefix:
                    clause = f"{prefix} {' '.join(t.text for t in toks)}"  # "... and the circle blue"
                else:
                    return [raw]
        intent, _ = parse_intent(clause)
        if intent is None:
            return [raw]
        if pointed and intent.op == prev.op:
            return [raw]  # the same edit said twice: "the star is too large; please shrink it"
        clauses.append(clause)
        prev = intent
    return clauses


def _comma_clauses(piece: str) -> list[str]:
    """``piece`` cut at each comma followed by a verb ("remove the star, add a dot in the top left" -> two
    clauses) or by an object ("make the star red, the circle blue", "remove the star, the circle": the later
    clauses borrow the verb in :func:`split_edits`); commas before anything else stay ("add a star, red, top
    left", "move the star, the one on the left, up")."""
    parts = piece.split(",")
    out = [parts[0]]
    for part in parts[1:]:
        toks = [t for t in _lex(_normalise(part)) if t.text != "please"] if part.strip() else []
        verb = bool(toks) and toks[0].kind in ("CUE", "SIZEVERB", "TAKE")
        obj = bool(toks) and toks[0].kind in ("DET", "COLOR", "SIZE", "SHAPE") and any(t.kind == "SHAPE" for t in toks)
        if verb or obj:
            out.append(part)
        else:
            out[-1] += "," + part
    return out


def _shared_predicate(pieces: list[str]) -> list[str] | None:
    """Objects that share one predicate, one edit each: ``["make the circle", "the square red"]`` (of "make the
    circle and the square red"; commas separate objects too) -> ``["make the circle red", "make the square
    red"]``; None when the pieces are not that form (the first must not be an edit alone; the later ones
    objects, the last with a colour or size word after its object) or a clause would not be a recolour or
    resize."""
    pieces = [q.strip() for p in pieces for q in p.split(",") if q.strip()]  # "the circle, the star and the box"
    if len(pieces) < 2 or parse_intent(pieces[0])[0] is not None:
        return None
    first = [t for t in _lex(_normalise(pieces[0])) if t.text != "both"]
    verb, start = _before_object(first, ("DET", "COLOR", "SHAPE", "SIZE"))
    last = _lex(_normalise(pieces[-1]))
    head = max((t.i for t in last if t.kind == "SHAPE"), default=None)
    if not verb or head is None or not any(t.kind in ("COLOR", "COMP", "SIZE") for t in last[head + 1:]):
        return None
    rest = " ".join(t.text for t in last[head + 1:])
    objects = [" ".join(t.text for t in first[start:])]
    for piece in pieces[1:]:
        toks = _lex(_normalise(piece))
        toks = toks[: head + 1] if piece is pieces[-1] else toks
        if any(t.kind in ("CUE", "SIZEVERB", "PRON") for t in toks) or not any(t.kind == "SHAPE" for t in toks):
            return None
        objects.append(" ".join(t.text for t in toks))
    clauses = [f"{verb} {o} {rest}" for o in objects]
    intents = [parse_intent(c)[0] for c in clauses]
    if any(it is None or it.op not in ("color", "size") for it in intents):
        return None
    return clauses


def _before_object(toks: list[_Tok], starts: tuple[str, ...]) -> tuple[str, int]:
    """The words before a clause's object ("could you make" of "could you make the star red") and the
    position of its first token whose kind is in ``starts``: ``("", 0)`` when the clause starts with it or has
    none."""
    start = next((k for k, t in enumerate(toks) if t.kind in starts), 0)
    return " ".join(t.text for t in toks[:start]), start


def _object_after(intent: EditIntent | None) -> str | None:
    """The object an edit leaves, as words ("blue square"), for "it" in the next clause; None when the edit
    leaves no object to point at (a removal, the background) or its shape is unsaid."""
    if intent is None:
        return None
    if intent.op in ("add", "local") and intent.new_shape:
        return Referent(intent.new_color, intent.new_shape).text()
    if intent.op in ("color", "size") and intent.target is not None and intent.target.shape:
        color = intent.new_color if intent.op == "color" else intent.target.color
        return Referent(color, intent.target.shape).text()
    return None


def _parse(raw: str, postnominal: bool = False) -> EditIntent:
    words = _normalise(raw, postnominal)
    toks = _lex(words)
    kinds = {t.kind for t in toks}
    unsupported = [t.text for t in toks if t.kind in ("UCOLOR", "USHAPE")]
    if unsupported:
        raise _ParseError(
            f"{', '.join(repr(u) for u in unsupported)} is not part of the shapes world (colours: "
            f"{', '.join(spec.OBJECT_COLORS)}; background colours: {', '.join(spec.BACKGROUND_COLORS)}; "
            f"shapes: {', '.join(spec.SHAPES)})"
        )
    if "NOT" in kinds:  # "do not remove ..." ("do not want X" is a removal cue, lexed above)
        raise _ParseError("negated instructions ('do not ...') are not supported; say what to change")
    cues: dict[str, list[int]] = {}
    for t in toks:
        if t.kind == "CUE":
            cues.setdefault(str(t.value), []).append(t.i)
    take = next((t.i for t in toks if t.kind == "TAKE"), None)
    if take is not None and any(t.kind == "AWAY" or t.text in ("out", "off") for t in toks[take:]):
        cues.setdefault("remove", []).append(take)  # "take / get the red circle away / out"
    if "rather" in words:  # "I'd rather have a black square than the orange diamond"
        for t in toks:
            if t.kind == "WORD" and t.value == "than" and any(u.text == "rather" for u in toks[: t.i]):
                t.kind = "OLD"
    nps, bare_colors, bare_sizes = _group(toks)
    shaped = [np for np in nps if np.has_shape]
    area_tok = next((t for t in toks if t.kind == "AREA"), None)
    area = None if area_tok is None else str(area_tok.value)
    top_bottom: dict[str, list[int]] = {}
    for t in toks:
        if t.kind == "WORD" and t.value in ("top", "bottom"):
            top_bottom.setdefault(str(t.value), []).append(t.i)

    # 1. background edits: background words and no object named before them
    bg = [t.i for t in toks if t.kind == "BG"]
    if bg:
        first_obj = min((np.start for np in shaped), default=len(toks))
        if not shaped or ("remove" not in cues and "add" not in cues and bg[0] < first_obj):
            top, bottom = _background_intent(toks, top_bottom)
            return EditIntent("background", background=(top, bottom), raw=raw)
    if "move" in cues:
        raise _ParseError("moving, rotating or flipping objects is not an edit of the shapes world")

    old_spans = _old_spans(toks)

    def in_old(i: int) -> bool:
        return any(a <= i < b for a, b in old_spans)

    new_colors = [(i, c) for i, c in bare_colors if not in_old(i) and not (i > 0 and toks[i - 1].kind == "FROM")]
    old_colors = [c for i, c in bare_colors if in_old(i) or (i > 0 and toks[i - 1].kind == "FROM")]
    comps = [bool(t.value) for t in toks if t.kind in ("COMP", "SIZEVERB")]

    def need_target() -> _NP:
        if not nps:
            raise _ParseError("the instruction does not say which object to edit")
        np0 = nps[0]
        if np0.color is None and old_colors and not np0.pronoun:  # "change the circle from red to blue"
            np0 = dataclasses.replace(np0, color=old_colors[0])
        return np0

    # 2. removal; "get rid of the star and put a yellow ball there" is a replacement
    # ... and so is "remove the red circle and replace it with a blue star"
    swap_cues = [i for c in ("add", "replace", "subst") for i in cues.get(c, [])]
    if "remove" in cues and swap_cues and len(shaped) >= 2:
        same_place = any(w in words for w in ("there", "instead")) or any(
            words[k : k + 2] in (["its", "place"], ["same", "place"], ["same", "spot"]) for k in range(len(words))
        ) or (("replace" in cues or "subst" in cues) and any(t.kind == "PRON" for t in toks))
        r, a = min(cues["remove"]), min(swap_cues)
        ref = next((np for np in shaped if np.start > r), None)
        new = next((np for np in shaped if np.start > a), None)
        if same_place and ref is not None and new is not None and ref is not new:
            return _compare(ref, new, raw)
    if "remove" in cues:
        if len([np for np in nps if not np.pronoun]) > 1 and "AND" in kinds:
            raise _ParseError("one edit at a time, please: the instruction names several objects")
        return EditIntent("remove", need_target().referent(), raw=raw)

    # 3. explicit old object: "use a ball instead of the star", "put a star in place of the circle"
    old_nps = [np for np in nps if in_old(np.start)]
    if old_nps and len(nps) >= 2:
        ref = old_nps[0]
        new = next(np for np in nps if np is not ref)
        return _compare(ref, new, raw)

    # 4. two objects: "turn X into Y", "replace X with Y", "swap X for Y", "substitute Y for X"
    comparison = bool(comps) and any(t.text == "than" for t in toks)  # "make the star bigger than the circle"
    if len(nps) >= 2 and not comparison and ("add" not in cues or ("replace" in cues or "subst" in cues)):
        a, b = nps[0], nps[1]
        conn = _first_between(toks, a.end + 1, b.start, ("CONN",))
        changing = any(k in cues for k in ("change", "replace", "subst", "color"))
        if conn is not None or changing:
            reverse = "subst" in cues and conn is not None and conn.value == "for"
            swap_in = any(
                t.kind == "CUE" and t.value == "replace" and t.i + 1 < len(toks) and toks[t.i + 1].text == "in"
                for t in toks
            )
            if reverse or (swap_in and conn is not None and conn.value == "for"):
                a, b = b, a
            if b.pronoun or (a.indefinite and not b.indefinite and conn is None):
                a, b = b, a
            return _compare(a, b, raw)

    # 5. addition
    if "add" in cues and shaped:
        new = next((np for np in shaped if np.indefinite), shaped[0])
        k = nps.index(new)
        if k + 1 < len(nps) and nps[k + 1].shape is None and not nps[k + 1].pronoun:
            # apposition: "add another star, a green one"
            extra = nps[k + 1]
            new = dataclasses.replace(new, color=new.color or extra.color, size=new.size or extra.size)
        if new.color is None and new_colors:  # a bare colour beside it: "add star, red, top left"
            after = [c for i, c in new_colors if i > new.end]
            new = dataclasses.replace(new, color=(after or [c for _, c in new_colors])[0])
        # "put the red star in the top left" moves an object; "put (one) red star there" adds one: WORLD.md's
        # articles are optional
        definite = new.start > 0 and toks[new.start - 1].kind == "DET" and not toks[new.start - 1].value
        if definite and area is not None and len(shaped) == 1 and "put" in words:
            raise _ParseError("moving objects is not an edit of the shapes world (to add one, say 'add a ...')")
        return EditIntent(
            "add", new_color=new.color, new_shape=new.shape, new_size=new.size, area=area, raw=raw
        )

    # 6. size: comparatives ("bigger"), size verbs ("enlarge") or "make the circle large"
    if comps or (bare_sizes and nps and bare_sizes[-1][0] > nps[0].end):
        bigger = comps[-1] if comps else bare_sizes[-1][1] == "large"
        return EditIntent("size", need_target().referent(), bigger=bigger, raw=raw)

    # 7. colour: one object and a bare colour ("make the triangle green", "colour the box yellow")
    if new_colors and nps:
        target = need_target()
        after = [c for i, c in new_colors if i > target.end]
        color = (after or [c for _, c in new_colors])[-1]
        return EditIntent("color", target.referent(), new_color=color, raw=raw)
    # 8. a lone new object: "there should be a red star in the top left", "a red star, please"
    if shaped and (shaped[0].indefinite or area is not None or "add" in cues):
        new = shaped[0]
        return EditIntent(
            "add", new_color=new.color, new_shape=new.shape, new_size=new.size, area=area, raw=raw
        )
    if nps and ("change" in cues or "color" in cues or "replace" in cues):
        raise _ParseError("the instruction names an object but not what should change about it")
    if new_colors and not nps:
        raise _ParseError("the instruction names a colour but not which object (or the background) to recolour")
    raise _ParseError(_HELP)


# --------------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Prompts and canonical text
# --------------------------------------------------------------------------------------------------


def local_prompt_for(intent: EditIntent, resolved: Referent | None = None) -> str:
    """The inpainting prompt inside the edit region. ``resolved`` is the edited object as the source
    caption describes it (fills what the instruction leaves out, e.g. the colour of "the star")."""
    old = resolved or intent.target or Referent()
    if intent.op == "remove":
        return "background"
    if intent.op == "background":
        assert intent.background is not None
        return _background_text(intent.background)
    if intent.op == "add":
        ref = Referent(intent.new_color, intent.new_shape, intent.new_size)
    elif intent.op == "local":
        ref = Referent(intent.new_color or old.color, intent.new_shape, intent.new_size)
    elif intent.op == "color":
        ref = Referent(intent.new_color, old.shape)
    else:  # size
        ref = Referent(old.color, old.shape, "large" if intent.bigger else "small")
    return with_article(ref.text(size=True))


def intent_to_text(intent: EditIntent) -> str:
    """A canonical instruction for an intent ("remove the red circle"); :func:`parse_intent` reads it back."""
    ref = intent.target
    the = "it" if ref is None or not (ref.color or ref.shape or ref.size) else "the " + ref.text(size=True)
    if intent.op == "remove":
        return f"remove {the}"
    if intent.op == "add":
        new = with_article(Referent(intent.new_color, intent.new_shape, intent.new_size).text(size=True))
        return f"add {new}" + (f" in the {intent.area}" if intent.area else "")
    if intent.op == "local":
        new = with_article(Referent(intent.new_color, intent.new_shape, intent.new_size).text(size=True))
        return f"change {the} into {new}"
    if intent.op == "color":
        return f"make {the} {intent.new_color}"
    if intent.op == "size":
        return f"make {the} {'bigger' if intent.bigger else 'smaller'}"
    assert intent.background is not None
    top, bottom = intent.background
    if bottom is None:
        return f"change the background to {top}"
    return f"make the background {with_article(f'{top} to {bottom} gradient')}"


def _check_colors(intent: EditIntent) -> str | None:
    """World constraints on the colours an intent asks for (object vs background palettes)."""
    if intent.op == "background":
        assert intent.background is not None
        bad = [c for c in intent.background if c is not None and c not in spec.BACKGROUND_COLORS]
        if bad:
            return (
                f"{bad[0]!r} is not a background colour of the shapes world "
                f"(choose from {', '.join(spec.BACKGROUND_COLORS)})"
            )
        return None
    for c in (intent.new_color, intent.target.color if intent.target else None):
        if c is not None and c not in spec.OBJECT_COLORS:
            return f"{c!r} is not an object colour of the shapes world (choose from {', '.join(spec.OBJECT_COLORS)})"
    return None


# --------------------------------------------------------------------------------------------------
# The describer
# --------------------------------------------------------------------------------------------------


class WorldDescriber:
    """Rule-based :class:`~regionedit.describe.base.Describer` for the shapes-world language.

    >>> d = WorldDescriber()("Please turn the red ball blue!", "a red circle and a star on a white background")
    >>> d.target_description, d.local_prompt, d.referent_text
    ('a blue circle and a star on a white background', 'a blue circle', 'red circle')

    Without a source caption ``target_description`` is the local prompt (a description of the edited
    region). With one, it is the rewritten caption; if the caption cannot be read, or the referent is
    absent from it or ambiguous, ``error`` says so and ``target_description`` is the source caption
    unchanged (no edit).
    """

    def parse(self, instruction: str) -> tuple[EditIntent | None, str | None]:
        """``(intent, error)`` for one instruction (see :func:`parse_intent`)."""
        return parse_intent(instruction)

    def __call__(self, instruction: str, source_caption: str | None = None) -> Description:
        # 1. check inputs and parse the instruction (one edit: Editor splits one that asks for several)
        parts = split_edits(instruction)
        if len(parts) > 1:
            return Description(None, source_caption or "", "", None,
                               f"this instruction asks for {len(parts)} edits ({'; '.join(parts)}): a description is "
                               "of one edit (regionedit.pipeline.Editor runs them one after the other)")
        intent, error = parse_intent(instruction)
        if intent is None:
            return Description(None, source_caption or "", "", None, error)
        error = _check_colors(intent)

        # 2. read the source caption and find the edited object in it
        resolved: Referent | None = None
        parsed = None
        notes: tuple[str, ...] = ()
        if source_caption is not None and source_caption.strip():
            try:
                parsed = parse_caption(source_caption)
            except ValueError as e:  # the caption is context, not the request: described without it
                notes = (f"source caption set aside: {e}",)
        if parsed is not None and intent.target is not None:
            idx, err = resolve(intent.target, parsed[0])
            if idx is not None:
                resolved = parsed[0][idx]
            error = error or err

        # 3. prompts for the region predictor and the generator
        local_prompt = local_prompt_for(intent, resolved)
        if intent.op == "background":
            referent_text: str | None = "background"
        elif intent.op == "add":
            referent_text = None
        else:
            ref = resolved or intent.target or Referent()
            referent_text = ref.text() if (ref.color or ref.shape) else None
            if referent_text is None:
                error = error or "the instruction does not say which object to edit (name its colour and/or shape)"

        # 4. target description: the rewritten caption, or the local prompt without a caption
        if parsed is None:  # no (readable) source caption: describe the edited region
            target = local_prompt
        elif error is not None:
            target = source_caption  # type: ignore[assignment]
        else:
            objects, background, err = apply_intent(intent, *parsed)
            error = err
            target = format_caption(objects, background) if err is None else source_caption  # type: ignore[assignment]
        return Description(intent, target, local_prompt, referent_text, error, notes, **general_fields(intent))
