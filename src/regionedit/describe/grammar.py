"""The offline instruction grammar: free text -> ``(operation, target, content)``, open over nouns.

It knows the *verbs and frames* of edit instructions and a few closed word classes (colour terms, size words,
positions); any noun phrase is a target and any phrase is content. Words are read through ``lemminflect``
(lemmas and inflections: "wolves" -> "wolf", "smile" -> "smiling", "wore" -> "wear"), and a misspelt edit verb
is matched to the verb lexicon with ``difflib`` ("remvoe" -> "remove", "replce" -> "replace").

Frames (after "please / could you / can you / I want you to ..." and "in the image" are set aside)::

    remove/delete/erase/get rid of/take out X; take X out; no more X; without X; X should go    -> remove  X
    replace X with Y; swap X for Y; substitute Y for X; use Y instead of X; turn X into Y        -> replace X -> Y
    make/paint/colour X <colour>; change the colour of X to <colour>; X should be <colour>       -> recolor X -> colour
    make X bigger/smaller; enlarge/grow X; shrink X; increase the size of X                      -> resize  X -> bigger/smaller/...
    move/shift/slide/drag X <where>; put the X (definite) on the table (definite place)          -> move    X -> where
    change the background to Y; put the dog on a beach (an indefinite place); a Y background     -> background -> Y
    add/insert/include/draw Y [on/in/next to Z]; put a vase on the table; there should be Y      -> add     Y (anchor Z)
    let X wear Y; what if X had Y; give X Y; make X smile / look happy / older; X should wear Y  -> attribute X -> Y
    make it look like Y; in the style of Y; turn the photo into Y; it should be snowing          -> global  -> Y
    have X be Y / let X be Y / what if X were Y / I want X to be Y / X should be Y  -> by what Y is (above)

Choices: ``put|place Y on X`` with an indefinite ``Y`` ("put a hat on the dog") is an **add** anchored at X
(as "add a hat to the man"); the attribute frames are the ones that say the referent itself changes ("let the
dog wear a hat", "give the dog a hat", "what if the dog had a hat"). ``put the dog on a beach`` (a definite
object on an indefinite place) is a **background** edit; ``put the cat on the sofa`` (a definite place) is a
**move**. A declarative global instruction ("it should be snowing") keeps the whole sentence as its content;
imperative ones keep what comes after the frame ("make it look like winter" -> "winter"). Anything without a
known frame is a global edit whose content is the instruction.

This module normalises an instruction and matches its frame (``_parse``, frame by frame in order); what a
matched frame's parts mean (the state in "make X <state>", an addition and its anchor, a placement, a
replacement, a verb on a referent, the clause of "what if ...") is read by :mod:`regionedit.describe.frames`.
"""

from __future__ import annotations

import re

from .base import Description, check_instruction
from .build import describe_edit, is_background_phrase, is_image_word
from .frames import (
    _add,
    _bg_content,
    _frame_make,
    _frame_verb,
    _hypothetical,
    _placed,
    _replace,
    _split_location,
    _state,
    _verb_attribute,
)
from .lexicon import (  # noqa: F401 (COLOR_WORDS, Parse, is_colour, strip_colours re-exported)
    COLOR_WORDS,
    COLOUR_RE,
    _BIGGER,
    _SMALLER,
    _LOC_PREPS,
    _LOC,
    _DIRECTIONS,
    _STRONG_DEST,
    _ANY_DEST,
    _POLITE,
    _TAIL,
    _IMAGE_PLACE,
    _CONTRACTIONS,
    EDIT_VERBS,
    Parse,
    is_colour,
    _colour,
    strip_colours,
    _size,
    _is_verb,
    _participle,
    _fix_verb,
    _clean_np,
    _INDEFINITE,
    _is_definite,
    _plausible_np,
)

__all__ = ["COLOR_WORDS", "Parse", "TemplateDescriber", "is_colour", "parse_instruction", "strip_colours"]

# -- the frames (what their parts mean is read in frames.py) -------------------------------------------------
_MODAL = (r"(?:should|must|could|can|would|will|might|may|shall|needs? to|has to|have to|ought to|is going to|"
          r"are going to|is to|are to|got to|has got to|have got to)")
_REMOVE_VERB = (r"(?:remove|delete|erase|eliminate|get rid of|take out|take away|take off|wipe out|wipe away|"
                r"wipe off|rub out|clear away|clear out|clear|lose|drop|hide|omit|exclude|cut out|crop out|edit out|"
                r"extract|ditch|discard|throw out|throw away|do away with|banish|scrub out|scrub|remove away|"
                r"make disappear|make vanish)")


def _dest_split(r: str) -> list[str]:
    """``"the cat on the left to the right"`` -> ``["the cat on the left", "to the right"]``: the first direction
    (else location) phrase after a plausible noun phrase; ``[r]`` when there is none."""
    for pattern in (_STRONG_DEST, _ANY_DEST):
        for m in pattern.finditer(r):
            head = r[: m.start()].split()
            if head and _plausible_np(head) and head[-1].lower() not in _LOC_PREPS:
                return [r[: m.start()], r[m.end():]]
    return [r]


def _split_first(text: str) -> tuple[str, str]:
    head, _, rest = text.partition(" ")
    return head, rest


def parse_instruction(instruction: str) -> Parse | None:
    """Read one edit instruction; None when no frame matches (the caller treats it as a global edit).

    Raises ``ValueError`` for an empty instruction."""
    text = normalise(instruction)
    return _parse(text, text)


def normalise(instruction: str) -> str:
    """Lower-cased, contractions spelled out, politeness and "in the image" set aside, the edit verb's typo fixed."""
    t = check_instruction(instruction)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"\s+", " ", t.lower()).strip(" \"'`")
    for pat, rep in _CONTRACTIONS:
        t = re.sub(pat, rep, t)
    t = re.sub(r"[.!?]+$", "", t).strip()
    t = re.sub(r"\s*[.!]+\s+(?:thanks?|thank you|thx)\b.*$", "", t)
    for _ in range(6):
        new = _POLITE.sub("", t).strip(" ,")
        if new == t:
            break
        t = new
    t = _TAIL.sub("", t).strip(" ,.!?")
    head, rest = _split_first(t)
    fixed = _fix_verb(head)
    if fixed != head:
        t = (fixed + " " + rest).strip()
    return t


def _first_clause(text: str) -> str:
    """The first of several edits joined by "and" ("remove the dog and add a cat" -> "remove the dog")."""
    for m in re.finditer(r"(?:,\s*|\s+)(?:and\s+(?:then\s+)?|then\s+)(?P<v>\w+)\b", text):
        v = m.group("v").lower()
        if v in EDIT_VERBS and v not in ("set", "show", "let", "have", "get", "want", "use", "take", "draw") and \
                m.start() > 0:
            return text[: m.start()]
    return text


def _parse(t: str, whole: str) -> Parse | None:  # noqa: C901 - one frame per branch, in order
    t = _first_clause(t)
    # ---- global frames that name the style / the whole image --------------------------------------------
    m = re.match(r"^(?:(?:make|render|paint|redo|redraw|draw|turn|convert|transform|change|recreate|reimagine|show)\s+"
                 r"(?:it|this|everything|" + _IMAGE_PLACE + r"|the image|the photo|the picture)?\s*)?"
                 r"(?P<c>(?:in|into)\s+(?:the\s+|a\s+)?style\s+of\s+.+|(?:in|into)\s+(?:a\s+|an\s+)?[\w\s-]+\s+style"
                 r"|as\s+if\s+(?:it\s+)?(?:was|were)\s+.+)$", t)
    if m:
        return Parse("global", None, m.group("c"))
    if re.match(r"^(?:in\s+)?(?:the\s+)?style\s+of\s+", t) or re.match(r"^[\w\s-]+\s+style$", t):
        return Parse("global", None, t)
    m = re.match(r"^(?:apply|use|add|give (?:it|" + _IMAGE_PLACE + r"))\s+(?P<c>(?:a|an|some)?\s*[\w\s-]*"
                 r"(?:filter|effect|look|style|tone|vibe|lighting|atmosphere|feel|aesthetic|treatment|grading))"
                 r"(?:\s+(?:to|on)\s+(?:it|" + _IMAGE_PLACE + r"))?$", t)
    if m:
        return Parse("global", None, m.group("c"))
    m = re.match(r"^(?:change|set|switch|turn|make)\s+(?:the\s+)?(?P<a>weather|season|time of day|time|lighting|"
                 r"atmosphere|mood|style|art style|era|setting time)\s+(?:to|into|in)\s+(?P<c>.+)$", t)
    if m:
        return Parse("global", None, m.group("c"))
    m = re.match(r"^(?:zoom|crop|brighten|darken|sharpen|blur|saturate|desaturate|enhance|lighten|rotate|flip|"
                 r"mirror|invert|colou?rize|upscale|denoise|increase the (?:brightness|contrast|saturation)|"
                 r"decrease the (?:brightness|contrast|saturation)|reduce the (?:brightness|contrast|saturation|noise))"
                 r"(?:\s+(?:in|out|up))?(?:\s+(?:it|" + _IMAGE_PLACE + r"|the image|the photo|everything))?"
                 r"(?:\s+(?:a bit|slightly|a little|more|horizontally|vertically))?$", t)
    if m:
        return Parse("global", None, t)
    m = re.match(r"^(?:use|have|set|choose|pick|try|select|go with)\s+(?P<c>.+?\s+(?:background|backdrop))$", t)
    if m:
        return Parse("background", None, _bg_content(m.group("c")))
    m = re.match(r"^(?P<v>make|turn|paint|colou?r|change|recolou?r|dye)\s+(?P<r>.+?\s+" + COLOUR_RE +
                 r")\s+(?:instead of|rather than|not)\s+" + COLOUR_RE + r"$", t)
    if m:
        t = f"{m.group('v')} {m.group('r')}"
    m = re.match(r"^(?:can|could|should|would|will|may|might|shall)\s+(?P<t>.+?)\s+(?P<r>(?:be|look|have|wear|hold|"
                 r"get|become|go|disappear|appear)\s+.+|go|disappear|vanish)$", t)
    if m and _plausible_np(m.group("t").split()):
        t = f"{m.group('t')} should {m.group('r')}"
    m = re.match(r"^(?:i|we)\s+(?:would rather have|would rather see|would prefer|prefer|would rather|rather have)\s+"
                 r"(?P<c>.+?)\s+(?:than|over|to|instead of)\s+(?P<t>.+)$", t)
    if m:
        return _replace(m.group("t"), m.group("c"))
    m = re.match(r"^(?:swap|switch|exchange|trade|reverse)\s+(?:the\s+)?(?:positions?|places?|locations?|spots?|sides?)"
                 r"\s+of\s+(?P<t>.+)$", t)
    if m:
        return Parse("move", _clean_np(m.group("t")), "swapped")
    m = re.match(r"^(?:turn|switch)\s+(?P<t>.+?)\s+(?P<c>on|off)$", t) or \
        re.match(r"^(?:turn|switch)\s+(?P<c>on|off)\s+(?P<t>.+)$", t)
    if m:
        return Parse("attribute", _clean_np(m.group("t")), m.group("c"), "after")
    # ---- "I want ..." / "I would like ..." -------------------------------------------------------------------
    m = re.match(r"^(?:i|we)\s+(?:do not|dont|no longer|don't)\s+(?:want|like|need)\s+(?:to see\s+)?(?P<t>.+?)"
                 r"(?:\s+(?:anymore|any more|there|here|in it))?$", t)
    if m:
        return Parse("remove", _clean_np(m.group("t")), None)
    m = re.match(r"^(?:i|we)\s+(?:want|would like|would love|need|wish for|would prefer|prefer|would rather have|"
                 r"would like to see|want to see|would love to see|hope for)\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        m2 = re.match(r"^(?P<t>.+?)\s+to\s+(?:be|become|look|appear|have|wear|hold|get)\b(?P<x>.*)$", r)
        if m2:
            verb = re.match(r"^.+?\s+to\s+(\w+)", r).group(1)
            x = m2.group("x").strip()
            if verb in ("have", "wear", "hold", "look", "get"):
                x = f"{verb} {x}"
            p = _state(m2.group("t"), x, "want", whole)
            if p is not None:
                return p
        m2 = re.match(r"^there\s+to\s+be\s+(?P<c>.+)$", r)
        if m2:
            return _add(m2.group("c"))
        if _INDEFINITE.match(r) or not _is_definite(r):
            return _add(r)
        p = _frame_make(r, whole)
        if p is not None:
            return p
        return Parse("add", None, _clean_np(r))
    # ---- removals ------------------------------------------------------------------------------------------
    m = re.match(r"^" + _REMOVE_VERB + r"\s+(?:(?:all|both|every|each)\s+(?:of\s+)?)?(?P<t>.+?)"
                 r"(?:\s+(?:from|out of|off)\s+(?P<from>.+))?$", t)
    if m:
        target = _clean_np(m.group("t"))
        if is_background_phrase(target):
            return Parse("background", None, "plain white")
        if re.match(r"^(?:all|both|every|each)$", target or ""):
            target = _clean_np(m.group("t"))
        return Parse("remove", target, None)
    m = re.match(r"^(?:take|get|cut|edit|crop|wipe|rub|throw|clean|clear|move|pull|put)\s+(?P<t>.+?)\s+"
                 r"(?:out|away|off)(?:\s+(?:of\s+|from\s+)?.+)?$", t)
    if m and not re.match(r"^(?:move|pull|put)\b", t) or (m and re.search(r"\b(?:out of|off)\s+" + _IMAGE_PLACE, t)):
        return Parse("remove", _clean_np(m.group("t")), None)
    m = re.match(r"^(?:make|let|have|get)\s+(?P<t>.+?)\s+(?:to\s+)?(?:disappear|vanish|go away|go|invisible|gone|leave|"
                 r"(?:fly|run|walk|swim|drive|sail|float|wander) (?:away|off))$", t)
    if m:
        return Parse("remove", _clean_np(m.group("t")), None)
    m = re.match(r"^(?:no more|no longer any|without any|without|minus|no)\s+(?P<t>.+)$", t)
    if m:
        return Parse("remove", _clean_np(m.group("t")), None)
    m = re.match(r"^(?:show|give)\s+(?:me\s+)?(?:it|the same|" + _IMAGE_PLACE + r"|the image|the picture|the photo)"
                 r"\s+(?:without|minus)\s+(?P<t>.+)$", t) or \
        re.match(r"^(?:the\s+)?(?:same\s+)?(?:image|picture|photo|scene)\s+(?:without|minus)\s+(?P<t>.+)$", t) or \
        re.match(r"^(?:there\s+" + _MODAL + r"\s+(?:not\s+)?be\s+no|there\s+" + _MODAL + r"\s+not\s+be(?:\s+any)?|"
                 r"there\s+(?:is|are)\s+no)\s+(?P<t>.+)$", t)
    if m:
        return Parse("remove", _clean_np(m.group("t")), None)
    # ---- replacements ---------------------------------------------------------------------------------------
    m = re.match(r"^(?:substitute|sub)\s+(?P<c>.+?)\s+for\s+(?P<t>.+)$", t)
    if m:
        return _replace(m.group("t"), m.group("c"))
    m = re.match(r"^(?:replace|substitute|swap out|swap|switch out|switch|exchange|trade|sub out|sub)\s+"
                 r"(?P<t>.+?)\s+(?:with|by|for|to|into|out for|for a|in favou?r of)\s+(?P<c>.+)$", t)
    if m:
        return _replace(m.group("t"), m.group("c"))
    m = re.match(r"^(?:replace|swap|switch|exchange)\s+(?P<t>.+)$", t)
    if m and not re.search(r"\s(?:with|by|for)\s", t):
        return Parse("replace", _clean_np(m.group("t")), None)
    m = re.match(r"^(?:(?:use|put|place|have|add|draw|show|insert|i want|i would like|make it|let there be)\s+)?"
                 r"(?P<c>.+?)\s+(?:instead of|in place of|rather than|in lieu of)\s+(?P<t>.+)$", t)
    if m and not re.match(r"^(?:make|turn|change|paint|colou?r)\s", t):
        return _replace(m.group("t"), m.group("c"))
    m = re.match(r"^(?:instead of|in place of)\s+(?P<t>.+?),?\s+(?:(?:use|put|have|add|draw|show|i want|i would like|"
                 r"there should be|make it|let there be|place)\s+)?(?P<c>.+)$", t)
    if m:
        return _replace(m.group("t"), m.group("c"))
    m = re.match(r"^(?:put|place|add|draw|insert)\s+(?P<c>.+?)\s+(?:where|in the place of|at the place of)\s+"
                 r"(?P<t>.+?)(?:\s+(?:is|are|was|were|used to be|stands|sits))?$", t)
    if m:
        return _replace(m.group("t"), m.group("c"))
    # ---- change / turn / convert / transform X (from A) to|into Y ---------------------------------------------
    m = re.match(r"^(?:change|turn|convert|transform|morph|alter|modify|switch|make|recolou?r|colou?r|paint|"
                 r"dye|set|update|edit|adjust)\s+(?P<t>.+?)(?:\s+from\s+(?P<a>.+?))?\s+(?:into|to|in to|to be|"
                 r"so it is|so that it is|so it looks like|for)\s+(?P<c>.+)$", t)
    if m:
        target = m.group("t")
        c = m.group("c")
        if m.group("a") and is_colour(m.group("a")) and is_colour(c):
            return Parse("recolor", _clean_np(target), _colour(c))
        p = _state(target, "into " + c if not re.match(r"^(?:look|be)\b", c) else c, "change", whole)
        if p is not None:
            return p
    m = re.match(r"^(?:change|alter|modify|set|update)\s+(?P<t>.+?)\s+(?:colou?r|hue)\s+(?:to\s+)?(?P<c>.+)$", t)
    if m and is_colour(m.group("c")):
        return _state(m.group("t") + " colour", "to " + m.group("c"), "change", whole)
    # ---- recolour verbs --------------------------------------------------------------------------------------
    m = re.match(r"^(?:re)?(?:paint|colou?r|dye|tint|shade|spray paint|spray)\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        words = r.split()
        for k in range(1, len(words)):
            cand = " ".join(words[k:])
            cand2 = re.sub(r"^(?:in|with|to|using)\s+", "", cand)
            if is_colour(cand2) and _plausible_np(words[:k]):
                target = _clean_np(" ".join(words[:k]))
                if is_background_phrase(target):
                    return Parse("background", None, _colour(cand2))
                if is_image_word(target):
                    return Parse("global", None, _colour(cand2))
                return Parse("recolor", target, _colour(cand2))
        if _INDEFINITE.match(r) and re.match(r"^(?:paint|draw)", t):
            return _add(r)
        m2 = re.match(r"^(?P<t>.+?)\s+(?:like|as|in the style of|in)\s+(?P<c>.+)$", r)
        if m2 and is_image_word(_clean_np(m2.group("t"))):
            return Parse("global", None, m2.group("c"))
    m = re.match(r"^give\s+(?P<t>.+?)\s+(?:a\s+|an\s+)?(?P<c>" + COLOUR_RE + r")\s+(?:colou?r|tint|hue|shade|paint|"
                 r"paint job|coat(?: of paint)?|finish|colou?ring|look)$", t)
    if m:
        target = _clean_np(m.group("t"))
        if is_background_phrase(target):
            return Parse("background", None, m.group("c"))
        return Parse("recolor", target, m.group("c"))
    # ---- resize verbs ----------------------------------------------------------------------------------------
    m = re.match(r"^(?:enlarge|grow|expand|magnify|upscale|blow up|scale up|upsize|widen|lengthen|heighten|"
                 r"stretch|extend|increase the size of|increase the scale of|make larger|make bigger|double the size of|"
                 r"triple the size of|amplify|supersize|maximi[sz]e|inflate)\s+(?P<t>.+?)(?:\s+(?:a bit|a little|"
                 r"slightly|a lot|more|up|by \S+|(?:two|three|\d+)\s*(?:x|times|fold)))?$", t)
    if m:
        verb = t.split()[0]
        content = {"widen": "wider", "lengthen": "longer", "heighten": "taller", "stretch": "longer",
                   "extend": "longer"}.get(verb, "bigger")
        return Parse("resize", _clean_np(m.group("t")), content)
    m = re.match(r"^(?:reduce the size of|decrease the size of|lessen the size of|halve the size of|shrink down|"
                 r"shrink|downsize|scale down|minimi[sz]e|reduce|decrease|make smaller|shorten|narrow|compress|"
                 r"diminish|cut down)\s+"
                 r"(?P<t>.+?)(?:\s+(?:a bit|a little|slightly|a lot|down|in size|by \S+|by half))?$", t)
    if m:
        verb = t.split()[0]
        if m.group("t").startswith(("the brightness", "the contrast", "the saturation", "the noise")):
            return Parse("global", None, t)
        content = {"shorten": "shorter", "narrow": "narrower"}.get(verb, "smaller")
        return Parse("resize", _clean_np(m.group("t")), content)
    m = re.match(r"^(?:scale|size|resize)\s+(?P<t>.+?)\s+(?P<d>up|down)$", t)
    if m:
        return Parse("resize", _clean_np(m.group("t")), "bigger" if m.group("d") == "up" else "smaller")
    m = re.match(r"^(?:resize|rescale|scale)\s+(?P<t>.+?)(?:\s+(?:to\s+(?:be\s+)?|so (?:that )?it is\s+)(?P<c>.+))?$", t)
    if m:
        c = _size(m.group("c") or "") if m.group("c") else None
        return Parse("resize", _clean_np(m.group("t")), c or _clean_np(m.group("c")) or "resized")
    # ---- move verbs ----------------------------------------------------------------------------------------
    m = re.match(r"^(?:move|shift|slide|drag|push|pull|relocate|reposition|nudge|bring|translate|lift|raise|lower|"
                 r"position|carry|take|send|walk)\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        verb = t.split()[0]
        parts = _dest_split(r)
        if len(parts) == 2 and parts[0].strip():
            target, dest = _clean_np(parts[0]), _clean_np(parts[1]) or parts[1].strip()
            if verb == "take" and not _DIRECTIONS.match(dest):
                pass
            else:
                return Parse("move", target, dest)
        elif verb in ("lift", "raise", "lower"):
            return Parse("move", _clean_np(r), "up" if verb != "lower" else "down")
        elif verb not in ("take", "bring", "carry", "send", "walk", "pull", "push"):
            return Parse("move", _clean_np(r), None)
    # ---- put / place: additions, moves and new backgrounds ------------------------------------------------------
    m = re.match(r"^(?:put|place|set|position|stick|sit|stand|drop|throw|plant|hang|lay)\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        obj, prep, place = _split_location(r)
        if _is_definite(obj) and prep is not None and not _INDEFINITE.match(obj):
            return _placed(_clean_np(obj), f"{prep} {place}")
        if re.match(r"^(?:in|on)\s+", r):  # "put in a tree"
            return _add(re.sub(r"^(?:in|on)\s+", "", r))
        return _add(obj, prep, place)
    # ---- additions -------------------------------------------------------------------------------------------
    m = re.match(r"^(?:add|insert|include|draw|create|sketch|generate|introduce|attach|build|spawn|depict|paint|"
                 r"show|see|bring in|throw in|put in|drop in|add in|draw in|incorporate|display|feature|overlay)\s+"
                 r"(?:in\s+|on\s+)?(?P<c>.+)$", t)
    if m:
        return _add(m.group("c"))
    m = re.match(r"^(?:let\s+there\s+be|there\s+(?:should|must|could|would|will|might|needs? to|has to|ought to)\s+"
                 r"be|there\s+(?:is|are)|have there be|make there be|can there be|(?:what|how)\s+about|"
                 r"(?:can|could)\s+(?:we|i|you)\s+(?:have|get|see)|(?:we|i)\s+(?:should|could|can)\s+(?:have|see))\s+"
                 r"(?P<c>.+)$", t)
    if m:
        c = m.group("c")
        if not _is_definite(c) or _INDEFINITE.match(c):
            return _add(c)
    m = re.match(r"^(?P<c>(?:a|an|some|one|two|three|another|more)\s+.+?)\s+" + _MODAL + r"\s+(?:also\s+)?be\s+"
                 r"(?:added|inserted|included|drawn|placed|put)(?:\s+(?P<rest>.+))?$", t)
    if m:
        rest = m.group("rest") or ""
        m2 = re.match(r"^(?P<prep>" + _LOC + r")\s+(?P<place>.+)$", rest)
        return _add(m.group("c"), *(m2.group("prep", "place") if m2 else (None, None)))
    # ---- what if / imagine / have / let / give ------------------------------------------------------------
    m = re.match(r"^(?:what|how)\s+(?:if|would it look(?: like)? if|would (?:this|the image|the picture|it) look "
                 r"like if|about if)\s+(?P<r>.+)$", t) or re.match(r"^(?:imagine|suppose|pretend)\s+(?:if\s+|that\s+)?"
                                                                     r"(?P<r>.+)$", t) or \
        re.match(r"^if\s+(?P<r>.+)$", t)
    if m:
        p = _hypothetical(m.group("r"), whole)
        if p is not None:
            return p
    m = re.match(r"^(?:let|have|get|allow)\s+(?P<r>.+)$", t)
    if m and _INDEFINITE.match(m.group("r")) and not re.match(r"^(?:a|an)\s+(?:bit|little)\b", m.group("r")):
        return _add(m.group("r"))  # "have a dog sitting on the bench"
    if m:
        r = m.group("r")
        m2 = re.match(r"^(?P<t>.+?)\s+(?:be|become|look|appear|seem)\s+(?P<x>.+)$", r)
        if m2:
            x = m2.group("x")
            if re.search(r"\s(?:look|appear|seem)\s", f" {r} ") and not re.match(r"^(?:be|become)\b", x):
                verb = re.search(r"\s(look|appear|seem)\s", f" {r} ").group(1)
                x = f"{verb} {x}"
            p = _state(m2.group("t"), x, "let", whole)
            if p is not None:
                return p
        m2 = re.match(r"^(?P<t>.+?)\s+(?:to\s+)?(?P<v>wear|wearing|put on|don|sport|have|has|hold|holding|carry|"
                      r"get|grow)\s+(?P<c>.+)$", r)
        if m2 and _plausible_np(m2.group("t").split()):
            return _verb_attribute(m2.group("t"), m2.group("v"), m2.group("c"))
        p = _frame_verb(r)
        if p is not None:
            return p
        if _INDEFINITE.match(r):  # "have a dog on the sofa"
            return _add(r)
    m = re.match(r"^give\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        m2 = re.match(r"^(?P<t>it|" + _IMAGE_PLACE + r"|the image|the photo|the picture|everything)\s+(?P<c>.+)$", r)
        if m2:
            c = m2.group("c")
            if re.search(r"\b(?:background|backdrop)$", c):
                return Parse("background", None, _bg_content(c))
            return Parse("global", None, c)
        words = r.split()
        splits = [(words[:k], " ".join(words[k:])) for k in range(1, len(words))
                  if _plausible_np(words[:k]) and (_is_definite(" ".join(words[:k])) or k == 1)]
        # an indefinite object first ("give her dog a bone"), else the shortest receiver ("give her blue eyes")
        for tw, c in sorted(splits, key=lambda s: not _INDEFINITE.match(s[1]))[:1]:
            target = _clean_np(" ".join(tw))
            if is_background_phrase(target) or re.search(r"\b(?:background|backdrop)$", c):
                return Parse("background", None, _bg_content(c))
            if re.match(r"^(?:a|an)\s+(?P<s>" + "|".join(_BIGGER + _SMALLER) + r")(?:ger|ler)?\s+size$", c):
                return Parse("resize", target, _size(c.split()[1]) or c)
            return Parse("attribute", target, _clean_np(c), "with")
    # ---- dress / wear --------------------------------------------------------------------------------------
    m = re.match(r"^(?:dress|clothe)\s+(?P<t>.+?)\s+(?:up\s+)?(?:in|with)\s+(?P<c>.+)$", t)
    if m:
        return Parse("attribute", _clean_np(m.group("t")), _clean_np(m.group("c")), "wearing")
    m = re.match(r"^(?:dress|clothe)\s+(?P<t>.+?)\s+(?:up\s+)?as\s+(?P<c>.+)$", t)
    if m:
        return Parse("attribute", _clean_np(m.group("t")), "dressed as " + _clean_np(m.group("c")))
    # ---- make / turn / render X <state> -----------------------------------------------------------------------
    m = re.match(r"^(?:make|turn|render|get|leave|keep|paint|recolou?r|colou?r|change|set|have|let)\s+(?P<r>.+)$", t)
    if m:
        r = m.group("r")
        if re.match(r"^(?:it|this|everything|the (?:image|photo|picture|scene))\s+(?P<x>.+)$", r):
            x = re.match(r"^(?:it|this|everything|the (?:image|photo|picture|scene))\s+(?P<x>.+)$", r).group("x")
            return _state("it", x, "make", whole)
        p = _frame_make(r, whole)
        if p is not None:
            return p
    # ---- declaratives: "X should be Y", "X is Y", "X should wear Y" ------------------------------------------
    m = re.match(r"^(?P<t>.+?)\s+(?:" + _MODAL + r"\s+(?:also\s+|now\s+|rather\s+|instead\s+)?(?:be|become|look|"
                 r"appear|seem|turn)|(?:is|are)\s+(?:now\s+)?(?:to be\s+)?|becomes?|turns?(?:\s+into)?|looks?|"
                 r"(?:is|are) (?:turned|changed|made)|gets?|got)\s+(?P<x>.+)$", t)
    if m and _plausible_np(m.group("t").split()) and len(m.group("t").split()) <= 8:
        verb = re.search(r"\b(look|looks|appear|seem)\b", t[m.end("t"): m.start("x")])
        x = (verb.group(1) + " " + m.group("x")) if verb else m.group("x")
        p = _state(m.group("t"), x, "declarative", whole)
        if p is not None:
            return p
    m = re.match(r"^(?P<t>.+?)\s+(?:" + _MODAL + r"\s+(?:not\s+)?(?:be\s+)?|(?:is|are)\s+(?:going to\s+)?)"
                 r"(?P<v>\w+)(?:\s+(?P<rest>.+))?$", t)
    if m and _plausible_np(m.group("t").split()):
        v = m.group("v")
        if re.match(r"^(?:go|disappear|vanish|leave|removed|deleted|erased|gone)$", v):
            return Parse("remove", _clean_np(m.group("t")), None)
        if _is_verb(v):
            if is_image_word(m.group("t")):
                return Parse("global", None, whole)
            return _verb_attribute(m.group("t"), v, m.group("rest") or "")
    m = re.match(r"^(?P<t>(?:the|this|that|these|those|his|her|their|its)\s+.+?)\s+(?:with|wearing|having|holding)\s+"
                 r"(?P<c>.+)$", t)
    if m:
        rel = re.search(r"\s(with|wearing|having|holding)\s", t).group(1)
        return Parse("attribute", _clean_np(m.group("t")), _clean_np(m.group("c")),
                     {"having": "with"}.get(rel, rel))
    m = re.match(r"^(?P<t>.+?)\s+(?:into|to|->|=>|as)\s+(?P<c>(?:a|an|some)\s+.+)$", t)
    if m and _is_definite(m.group("t")):
        return _replace(m.group("t"), m.group("c"))
    # ---- any other verb with a definite object: an attribute ("open the door", "fill the glass with water") ---
    head, rest = _split_first(t)
    if rest and _is_verb(head):
        if is_image_word(_clean_np(rest)) or re.match(r"^(?:it|" + _IMAGE_PLACE + r")\b", rest):
            return Parse("global", None, t)
        m2 = re.match(r"^(?P<t>.+?)(?:\s+(?P<r>(?:with|in|into|as|to|like|using|up|down|over|around|open|closed|"
                      r"shut|on|off)\b.*))?$", rest)
        target = _clean_np(m2.group("t"))
        if target and _is_definite(target):
            if is_background_phrase(target):
                return Parse("background", None, _participle(head) + (" " + m2.group("r") if m2.group("r") else ""))
            return Parse("attribute", target, (_participle(head) + (" " + m2.group("r") if m2.group("r") else "")))
    return None


class TemplateDescriber:
    """The general offline :class:`~regionedit.describe.Describer`: the instruction grammar of this module, open
    over nouns, then :func:`~regionedit.describe.build.describe_edit` for the prompts.

    ``__call__(instruction, source_caption=None) -> Description``; an instruction no frame matches is a global
    edit whose content is the instruction. Raises ``ValueError`` only for an empty instruction.

    >>> TemplateDescriber()("replace the cat with a dog").local_prompt
    'a dog'
    """

    def parse(self, instruction: str) -> Parse:
        """The structured edit of an instruction (a global :class:`Parse` when no frame matches)."""
        text = normalise(instruction)
        p = _parse(text, text)
        if p is None or (p.operation in ("remove", "replace", "recolor", "resize", "move", "attribute")
                         and not p.target):
            return Parse("global", None, text)
        if p.operation == "global" and not p.content:
            p.content = text
        if p.target is not None and is_image_word(p.target) and p.operation != "add":
            return Parse("global", None, p.content or text)
        return p

    def __call__(self, instruction: str, source_caption: str | None = None) -> Description:
        p = self.parse(instruction)
        notes: tuple[str, ...] = ()
        full = normalise(instruction)
        if _first_clause(full) != full:
            notes = (f"only the first edit was read ({_first_clause(full)!r}); give the others one at a time",)
        return describe_edit(p.operation, p.target, p.content, p.relation, source_caption, full, notes)
