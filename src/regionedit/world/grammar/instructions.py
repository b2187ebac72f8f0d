"""Instruction -> :class:`~regionedit.world.intent.EditIntent` (step 3 of :mod:`regionedit.world.grammar`).

:func:`parse_intent` decides the edit from cues and slot positions (first match wins: background, removal,
an explicit old object, two objects around a connector, addition, size, colour, a lone new object) and
returns ``(intent, error)``.
"""

from __future__ import annotations

import dataclasses
import re

from regionedit.describe.base import check_instruction
from regionedit.world import spec
from regionedit.world.grammar.lexicon import _Tok, _lex, _normalise
from regionedit.world.grammar.phrases import _NP, _group
from regionedit.world.intent import EditIntent

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
