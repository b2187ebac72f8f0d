"""The readers of a frame's parts, called by :mod:`regionedit.describe.grammar` once it has matched a frame.

What the complement of a frame says the referent becomes (``_state``: "make X <state>", "X should be <state>",
"have X be <state>", "it should be snowing"), what an addition adds and where it is anchored (``_add``), what a
placement means (``_placed``: a move, a new background or an attribute), replacements (``_replace``), a verb on a
referent (``_verb_attribute``, ``_frame_verb``), the split of "make T <state>" (``_frame_make``) and the clause
of "what if ..." (``_hypothetical``). Split out of :mod:`regionedit.describe.grammar`, which normalises an
instruction and matches its frame; the word classes both use live in :mod:`regionedit.describe.lexicon`.
"""

from __future__ import annotations

import re

from lemminflect import getAllLemmas

from .build import bare, is_background_phrase, is_image_word
from .lexicon import (
    COLOUR_RE,
    _DIRECTIONS,
    _FUNCTION,
    _INDEFINITE,
    _IMAGE_PLACE,
    _LOC,
    _POSITION_NP,
    _PRONOUN,
    Parse,
    _clean_np,
    _colour,
    _ing,
    _is_definite,
    _is_verb,
    _lemmas,
    _plausible_np,
    _size,
    _verb_lemma,
    is_colour,
)


# -- anchors and content of additions ------------------------------------------------------------------------
def _split_location(text: str) -> tuple[str, str | None, str | None]:
    """``"a boat on the lake"`` -> ``("a boat", "on", "the lake")``: the content and the first location phrase."""
    m = re.search(r"\s+(?P<prep>" + _LOC + r")\s+(?P<rest>.+)$", text, re.I)
    if not m:
        return text, None, None
    # "a plate of food on the table": the first location preposition after the head
    return text[: m.start()], m.group("prep").lower(), m.group("rest")


def _anchor(place: str | None) -> str | None:
    """The object an addition is anchored at: "the left side of the sofa" -> "the sofa"; a bare position
    ("the top left corner") or the image itself -> None."""
    if not place:
        return None
    place = _clean_np(place)
    if not place or is_image_word(place) or re.match(r"^" + _IMAGE_PLACE + r"$", place, re.I):
        return None
    m = _POSITION_NP.match(place)
    if m:
        return _anchor(m.group("of")) if m.group("of") else None
    if re.match(r"^(?:the\s+)?(?:air|distance|sky above)$", place, re.I):
        return None
    return place


def _add(content: str, place_prep: str | None = None, place: str | None = None) -> Parse:
    c = _clean_np(content) or content
    if place is None:
        c, place_prep, place = _split_location(c)
    if re.search(r"\b(?:background|backdrop)$", c, re.I) and not place:
        return Parse("background", None, _bg_content(c))
    if re.search(r"\b(?:filter|effect|look|style|tone|vibe|lighting|atmosphere|glow|vignette|feel|aesthetic)$",
                 c, re.I):
        return Parse("global", None, c)
    return Parse("add", _anchor(place), _clean_np(c))


def _bg_content(text: str) -> str:
    t = _clean_np(text) or text
    t = re.sub(r"\s*(?:background|backdrop)(?:\s+(?:colou?r|image|scene))?$", "", t, flags=re.I).strip()
    t = re.sub(r"^(?:(?:the|a|an)\s+)?(?:background|backdrop)\s+(?:of|with|showing|depicting)\s+", "", t,
               flags=re.I)
    col = _colour(re.sub(r"^(?:a|an)\s+", "", t, flags=re.I)) if t else None
    if col:
        return col
    t = re.sub(r"\s+(?:one|colou?r)$", "", t, flags=re.I)
    return t or "plain"


# -- the state a referent is to be in: "make X <state>", "X should be <state>", "have X be <state>" ---------
_REMOVED_STATE = re.compile(
    r"^(?:gone|removed|deleted|erased|eliminated|invisible|hidden|missing|absent|taken (?:out|away)|"
    r"disappear(?:ed)?|vanish(?:ed)?|go away|went away|go|out of (?:the )?(?:picture|image|photo|frame)|"
    r"no longer there|not there|not visible|wiped out|cut out|cropped out|edited out|got rid of|gotten rid of|"
    r"rid of)$", re.I)


def _state(target: str, x: str, frame: str = "make", whole: str | None = None) -> Parse | None:
    """What ``target`` should become, read from the complement ``x`` of a frame ("make T x", "T should be x").

    ``whole`` is the instruction, kept as the content of a declarative global edit ("it should be snowing")."""
    target = _clean_np(target) or target
    x = _clean_np(x) or ""
    x = re.sub(r"^(?:be|become|turn|get|look more|seem more|appear more)\s+(?=\S)", "", x, flags=re.I) \
        if frame != "make" or re.match(r"^(?:be|become)\s", x, re.I) else x
    x = re.sub(r"^(?:more like|like)\s+(?=a |an )", "", x, flags=re.I)
    if not x:
        return None
    if is_image_word(target):
        content = re.sub(r"^(?:look|looks|seem|seems|appear|appears|feel|feels)\s+(?:like\s+|as if\s+)?", "", x,
                         flags=re.I)
        content = re.sub(r"^(?:into|to|as|in)\s+(?=\S)", "", content, flags=re.I)
        return Parse("global", None, whole if (whole and frame == "declarative") else content)
    if is_background_phrase(target):
        if _REMOVED_STATE.match(x):
            return Parse("background", None, "plain white")
        return Parse("background", None, _bg_content(re.sub(r"^(?:into|to|a picture of)\s+", "", x, flags=re.I)))
    m = re.match(r"^(?:the\s+)?(?:colou?r|hue|shade|paint)\s+of\s+(?P<t>.+)$", target, re.I) or \
        re.match(r"^(?P<t>.+?)'s?\s+(?:colou?r|hue|shade)$", target, re.I)
    if m:
        t2 = m.group("t")
        if is_background_phrase(t2):
            return Parse("background", None, _bg_content(x))
        col = _colour(re.sub(r"^(?:into|to)\s+", "", x, flags=re.I))
        return Parse("recolor", t2, col or re.sub(r"^(?:into|to)\s+", "", x, flags=re.I))
    m = re.match(r"^(?:the\s+)?size\s+of\s+(?P<t>.+)$", target, re.I) or \
        re.match(r"^(?P<t>.+?)'s?\s+size$", target, re.I)
    if m:
        s = _size(re.sub(r"^(?:into|to|be)\s+", "", x, flags=re.I))
        return Parse("resize", m.group("t"), s or re.sub(r"^(?:into|to)\s+", "", x, flags=re.I))
    m = re.match(r"^(?:the\s+)?(?:position|location|place|placement)\s+of\s+(?P<t>.+)$", target, re.I)
    if m:
        return Parse("move", m.group("t"), x)
    m = re.match(r"^(?:the\s+)?(?P<attr>expression|mood|pose|posture|emotion|age|hair ?style|hair|texture|"
                 r"material|pattern|shape|style|outfit|clothes|clothing|face|look|appearance|species|breed|"
                 r"gender|season|weather)\s+of\s+(?P<t>.+)$", target, re.I)
    if m:
        t2 = m.group("t")
        if is_image_word(t2):
            return Parse("global", None, re.sub(r"^(?:into|to)\s+", "", x, flags=re.I))
        c = re.sub(r"^(?:into|to)\s+", "", x, flags=re.I)
        if m.group("attr").lower().startswith("hair") and is_colour(c):
            return Parse("recolor", f"the hair of {bare(t2)}" if False else t2 + "'s hair", _colour(c))
        return Parse("attribute", t2, c)
    x_low = x.lower()
    if _REMOVED_STATE.match(x_low):
        return Parse("remove", target, None)
    m = re.match(r"^(?:replaced|swapped|substituted|exchanged|switched)\s+(?:out\s+)?(?:with|by|for)\s+(?P<c>.+)$",
                 x, re.I)
    if m:
        return Parse("replace", target, _clean_np(m.group("c")))
    m = re.match(r"^(?:re)?(?:painted|colou?red|dyed|tinted|recolou?red|changed|turned|made)\s+(?:in\s+|to\s+|into\s+)?"
                 r"(?P<c>.+)$", x, re.I)
    if m and is_colour(m.group("c")):
        return Parse("recolor", target, _colour(m.group("c")))
    m = re.match(r"^(?:from\s+" + COLOUR_RE + r"\s+)?(?:into\s+|to\s+|in\s+)?(?P<c>.+)$", x, re.I)
    if m and is_colour(m.group("c")):
        return Parse("recolor", target, _colour(m.group("c")))
    if m and (_size(m.group("c")) or _size(re.sub(r"^(?:re)?sized\s+|^scaled\s+", "", m.group("c")))):
        return Parse("resize", target, _size(m.group("c")) or _size(re.sub(r"^(?:re)?sized\s+|^scaled\s+", "",
                                                                            m.group("c"))))
    if x_low in ("higher", "lower", "further away", "farther away", "closer"):
        return Parse("move", target, x_low)
    if re.match(r"^(?:enlarged|grown|expanded|magnified|scaled up|made bigger|increased in size)$", x_low):
        return Parse("resize", target, "bigger")
    if re.match(r"^(?:shrunk|shrunken|reduced|scaled down|made smaller|decreased in size|reduced in size)$", x_low):
        return Parse("resize", target, "smaller")
    m = re.match(r"^(?:moved|shifted|placed|put|positioned|located|relocated|situated|sitting|standing|lying|"
                 r"moving|put back)\s+(?P<d>.+)$", x, re.I)
    if m and _DIRECTIONS.match(m.group("d")):
        return _placed(target, m.group("d"))
    if re.match(r"^(?:look|looks|looking|resemble|resembles|be like|appear|appears|seem|seems)\s+(?:like|as)\s+",
                x, re.I):
        c = re.sub(r"^\w+\s+(?:like|as)\s+", "", x, flags=re.I)
        return Parse("replace", target, c) if _INDEFINITE.match(c) or not _is_adjectival(c) else \
            Parse("attribute", target, c)
    m = re.match(r"^(?:look|looks|seem|seems|appear|appears|feel|feels)\s+(?P<c>.+)$", x, re.I)
    if m and (is_colour(m.group("c")) or _size(m.group("c"))):
        return _state(target, m.group("c"), frame, whole)
    if m:
        return Parse("attribute", target, m.group("c"), "adjective" if len(m.group("c").split()) == 1 else None)
    if _POSITION_NP.match(re.sub(r"^(?:on|at|to|in|towards?|into)\s+", "", x, flags=re.I)) and \
            re.match(r"^(?:on|at|to|in|towards?|into)\s+", x, re.I):
        return Parse("move", target, x)
    if re.match(r"^" + _LOC + r"\s+\S", x, re.I) and not re.match(r"^(?:to|into)\s", x, re.I):
        return _placed(target, x)
    m = re.match(r"^(?:wearing|wear|wears|wore|dressed in|dressed up in|in)\s+(?P<c>.+)$", x, re.I)
    if m and (x_low.startswith("wear") or x_low.startswith("dressed") or _is_garment(m.group("c"))):
        return Parse("attribute", target, _clean_np(m.group("c")), "wearing")
    m = re.match(r"^(?:with|having|have|has|had|given|get|got|gets)\s+(?P<c>.+)$", x, re.I)
    if m:
        return Parse("attribute", target, _clean_np(m.group("c")), "with")
    m = re.match(r"^(?:holding|hold|holds|held|carrying|carry|carries)\s+(?P<c>.+)$", x, re.I)
    if m:
        return Parse("attribute", target, f"holding {_clean_np(m.group('c'))}")
    m = re.match(r"^(?:into|to|as|a picture of|like)\s+(?P<c>.+)$", x, re.I)
    if m:
        c = m.group("c")
        if _is_adjectival(c) and not _INDEFINITE.match(c):
            return Parse("attribute", target, c, "adjective" if len(c.split()) == 1 else None)
        return Parse("replace", target, c)
    if _INDEFINITE.match(x):
        return Parse("replace", target, x)
    first = x.split()[0]
    if first.lower().endswith("ing") and _is_verb(first):
        return Parse("attribute", target, x)
    if _is_adjectival(x):
        return Parse("attribute", target, x, "adjective" if len(x.split()) == 1 else None)
    if _is_verb(first) and frame in ("make", "let", "modal"):
        rest = x[len(first):].strip()
        return Parse("attribute", target, (_ing(first) + (" " + rest if rest else "")).strip())
    if frame == "make" and not _is_nounish(x):
        return None
    return Parse("replace", target, x)


def _is_adjectival(text: str) -> bool:
    """Whether a phrase is an adjective phrase ("happy", "very old", "older", "covered in snow")."""
    words = text.lower().split()
    if not words:
        return False
    while len(words) > 1 and words[0] in ("very", "more", "less", "much", "really", "extremely", "slightly", "a",
                                          "bit", "little", "super", "quite", "so", "too", "even"):
        words = words[1:]
    lem = getAllLemmas(words[0])
    if len(words) == 1 and words[0].endswith(("ed", "en", "nt")) and "VERB" in lem and "NOUN" not in lem:
        return True  # a participle: "flooded", "frozen", "burnt"
    if len(words) == 1:
        return "ADJ" in lem and not ("NOUN" in lem and words[0] in ("winter", "summer", "night", "day"))
    if words[0].endswith("ed") and "VERB" in lem and words[1] in ("in", "with", "by", "on"):
        return True  # "covered in snow"
    return False


def _is_nounish(text: str) -> bool:
    words = text.lower().split()
    return bool(words) and ("NOUN" in getAllLemmas(words[-1]) or not getAllLemmas(words[-1]))


def _is_garment(np: str) -> bool:
    """Whether a noun phrase names something worn ("a spacesuit", "a red dress", "pyjamas")."""
    words = bare(np).lower().split()
    return bool(words) and bool(re.search(_GARMENTS, words[-1]))


def _placed(target: str, where: str) -> Parse:
    """A referent put somewhere: an indefinite or open place ("on a beach", "in space") is a new background;
    a definite place or a direction ("on the sofa", "to the left") is a move; a garment ("in a suit") is an
    attribute, an idiom ("on fire", "in bloom") too."""
    m = re.match(r"^(?:in|into)\s+(?P<c>.+)$", where, re.I)
    if m and _is_garment(m.group("c")) and not _is_definite(m.group("c")):
        return Parse("attribute", target, _clean_np(m.group("c")), "wearing")
    if re.match(r"^(?:on|in)\s+(?:fire|flames|bloom|love|motion|focus|shape|colou?r|danger|trouble|pain|action|"
                r"disguise|costume|uniform|pieces|half|ruins|tears|shadow|darkness|the spotlight)$", where, re.I):
        return Parse("attribute", target, where)
    m = re.match(r"^(?P<prep>" + _LOC + r")\s+(?P<place>.+)$", where, re.I)
    if m and m.group("prep").lower() in ("on", "in", "at", "inside", "into", "onto", "among", "within") and not (
            _is_definite(m.group("place")) or _POSITION_NP.match(m.group("place"))):
        place = _clean_np(m.group("place"))
        if place and not re.match(r"^(?:the\s+)?(?:air|sky|water|ground|floor|grass|table)$", place, re.I):
            return Parse("background", None, place)
    return Parse("move", target, where)


# -- garments, the split of "make T <state>", replacements, verb attributes, hypotheticals -------------------
_GARMENTS = (r"(?:suit|spacesuit|tuxedo|dress|gown|costume|outfit|uniform|clothes|clothing|jacket|coat|shirt|"
             r"t-shirt|sweater|hoodie|jumper|armou?r|robe|bikini|swimsuit|pyjamas|pajamas|jeans|pants|trousers|"
             r"shorts|skirt|hat|cap|helmet|mask|glasses|sunglasses|goggles|scarf|tie|bowtie|vest|cloak|cape|kimono|"
             r"sari|overalls|apron|boots|shoes|sneakers|gloves|mittens|sweatshirt|blazer|raincoat|parka|gear|"
             r"attire|wear|lingerie|leotard|wetsuit|jersey|necklace|earrings|crown|tiara|wig)s?$")


def _frame_make(t: str, whole: str) -> Parse | None:
    """``make|turn|get|render T <state>`` and ``make T into|look like Y``: the split of T and the state that
    reads best: a frame word, colour, size, removal or indefinite noun phrase first, then an adjective, then a
    verb phrase (shortest plausible T first)."""
    words = t.split()
    splits = []
    for k in range(1, len(words)):
        tw, xw = words[:k], words[k:]
        if not _plausible_np(tw) or tw[0].lower() in ("into", "to"):
            continue
        if len(tw) == 1 and tw[0].lower() in _FUNCTION:
            continue
        splits.append((tw, xw, " ".join(tw), " ".join(xw)))
    for tw, xw, target, x in splits:  # 1. the complement says what it is
        if xw[0].lower() in ("into", "to", "look", "looks", "seem", "appear", "be", "become", "wear", "have", "hold",
                             "disappear", "vanish", "go", "gone", "invisible", "as", "like", "resemble") or \
                is_colour(x) or _size(x) or _REMOVED_STATE.match(x) or _INDEFINITE.match(x):
            p = _state(target, x, "make", whole)
            if p is not None:
                return p
    for tw, xw, target, x in splits:  # 2. an adjective phrase
        if _is_adjectival(x):
            return _state(target, x, "make", whole)
    for tw, xw, target, x in splits:  # 3. a verb phrase ("make the man smile", "make the hot dog dance")
        if not _is_verb(xw[0]):
            continue
        if "NOUN" in _lemmas(xw[0]) and len(xw) > 1 and _is_verb(xw[1]) and xw[1].lower() not in _FUNCTION:
            continue  # "the hot | dog dance": "dog" is the head of the target
        p = _state(target, x, "make", whole)
        if p is not None:
            return p
    return None


def _replace(target: str, content: str) -> Parse:
    target = _clean_np(target) or target
    content = _clean_np(content) or content
    if is_background_phrase(target):
        return Parse("background", None, _bg_content(content))
    if is_image_word(target):
        return Parse("global", None, content)
    if is_colour(content) and re.match(r"^(?:a\s+|an\s+)?" + COLOUR_RE + r"\s+one$", content):
        return Parse("recolor", target, _colour(content))
    return Parse("replace", target, content)


def _verb_attribute(target: str, verb: str, rest: str) -> Parse:
    """``T wear|have|hold|<verb> rest`` -> an attribute of ``T``."""
    target = _clean_np(target) or target
    lem = _verb_lemma(verb) if verb not in ("wearing", "holding") else verb[:-3].replace("wear", "wear")
    if verb.startswith("wear") or lem in ("wear", "don", "sport", "put on"):
        return Parse("attribute", target, _clean_np(rest), "wearing")
    if lem in ("have", "get", "grow", "gain"):
        return Parse("attribute", target, _clean_np(rest), "with")
    if lem in ("hold", "carry"):
        return Parse("attribute", target, f"holding {_clean_np(rest)}")
    if lem in ("disappear", "vanish", "go", "leave"):
        return Parse("remove", target, None)
    if lem in ("be", "become", "look", "seem", "appear"):
        return _state(target, f"{lem} {rest}".strip() if lem != "be" else rest, "let") or \
            Parse("attribute", target, rest)
    phrase = (_ing(lem) + (" " + _clean_np(rest) if rest.strip() else "")).strip()
    return Parse("attribute", target, phrase)


def _frame_verb(r: str) -> Parse | None:
    """``T <verb> [rest]`` after let / have / get (to): "the dog run", "the man smile", "the cat eat a fish"."""
    words = r.split()
    for k in range(1, len(words)):
        tw, v = words[:k], words[k]
        if v.lower() == "to" and k + 1 < len(words):
            v, k = words[k + 1], k + 1
        if _plausible_np(tw) and _is_verb(v) and (len(tw) > 1 or _PRONOUN.match(tw[0]) or "NOUN" in _lemmas(tw[0])):
            if "NOUN" in _lemmas(v) and "VERB" in _lemmas(v) and k + 1 < len(words) and \
                    _is_verb(words[k + 1]) and not words[k + 1].endswith("s"):
                continue
            if v.lower() in ("be", "become", "look", "seem", "appear"):
                continue
            return _verb_attribute(" ".join(tw), v, " ".join(words[k + 1:]))
    return None


def _hypothetical(r: str, whole: str) -> Parse | None:
    """The clause of "what if ...": "the man had a beard", "the dog were a wolf", "it was winter", "there was
    a boat on the lake"."""
    r = re.sub(r"^(?:we|i)\s+(?:had|added|have|add)\s+", "there was ", r)
    m = re.match(r"^there\s+(?:was|were|is|are|would be|will be)\s+(?P<c>.+)$", r)
    if m:
        if re.match(r"^no\s+", m.group("c")):
            return Parse("remove", _clean_np(re.sub(r"^no\s+", "", m.group("c"))), None)
        return _add(m.group("c"))
    m = re.match(r"^(?P<t>.+?)\s+(?:was|were|is|are|would be|became|turned into|got|looked|looks|look)\s+(?P<x>.+)$", r)
    if m and _plausible_np(m.group("t").split()) and len(m.group("t").split()) <= 7:
        verb = re.search(r"\s(looked|looks|look|got)\s", f" {r} ")
        x = m.group("x")
        if verb and verb.group(1).startswith("look"):
            x = "look " + x
        if re.search(r"\s(?:turned into)\s", f" {r} "):
            x = "into " + x
        p = _state(m.group("t"), x, "want", whole)
        if p is not None:
            return p
    m = re.match(r"^(?P<t>.+?)\s+(?:did not|didn't|had no|has no)\s+(?:have\s+)?(?P<c>.+)$", r)
    if m and not re.match(r"^(?:exist|there)", m.group("c")):
        return Parse("remove", _clean_np(m.group("c")), None)
    m = re.match(r"^(?P<t>.+?)\s+(?:did not exist|was gone|were gone|was not there|were not there|disappeared|"
                 r"vanished|was removed|were removed)$", r)
    if m:
        return Parse("remove", _clean_np(m.group("t")), None)
    words = r.split()
    for k in range(1, len(words)):
        tw, v = words[:k], words[k]
        if _plausible_np(tw) and _is_verb(v) and len(tw) <= 6 and (_lemmas(v).get("VERB", ("",))[0] != v.lower() or
                                                                     v.lower() in ("had", "wore", "held")):
            return _verb_attribute(" ".join(tw), v, " ".join(words[k + 1:]))
    return None
