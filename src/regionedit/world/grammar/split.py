"""One instruction that asks for several edits -> one instruction per edit (:func:`split_edits`)."""

from __future__ import annotations

import re

from regionedit.describe.base import check_instruction
from regionedit.world.grammar.instructions import parse_intent
from regionedit.world.grammar.lexicon import _Tok, _lex, _normalise
from regionedit.world.intent import EditIntent, Referent

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
