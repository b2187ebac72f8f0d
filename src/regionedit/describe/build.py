"""Structured edit -> :class:`~regionedit.describe.Description`: the local prompt, the localizer's text and the
target description, built the same way for every describer (the offline grammar and the LM describer).

    describe_edit("replace", "the cat", "a dog")            -> local prompt "a dog", referent "cat"
    describe_edit("recolor", "the red car", "blue")          -> "a blue car", referent "red car"
    describe_edit("attribute", "the cat", "a hat", "wearing") -> "a cat wearing a hat"
    describe_edit("remove", "the person on the left", None)  -> "background", referent "person on the left"

Words are matched by lemma (``lemminflect``): "cats" in an instruction finds "cat" in a source caption.
"""

from __future__ import annotations

import re

from lemminflect import getAllLemmas

from .base import OPERATIONS, Description

__all__ = ["DETERMINERS", "bare", "describe_edit", "head_noun", "head_phrase", "lemma", "with_article",
           "is_image_word", "is_background_phrase"]

DETERMINERS = ("the", "a", "an", "this", "that", "these", "those", "my", "his", "her", "its", "their", "our",
               "your", "some", "any", "all", "every", "each", "both")
_DET = re.compile(r"^(?:" + "|".join(DETERMINERS) + r")\s+", re.I)
# prepositions that start a position or relative phrase after the head of a noun phrase ("the cup on the table")
_POST = re.compile(r"\s+(?:on|in|at|near|next to|beside|behind|under|underneath|above|below|over|by|from|inside|"
                   r"outside|between|among|around|against|along|across|to the (?:left|right) of|in front of|"
                   r"that|which|who|with|wearing|holding)\s+.*$", re.I)
IMAGE_WORDS = ("it", "this", "image", "picture", "photo", "photograph", "pic", "scene", "everything", "day",
               "daytime", "night", "nighttime", "night time", "morning", "evening", "summer", "winter", "spring",
               "autumn",
               "whole thing", "whole image", "whole picture", "whole scene", "entire image", "entire picture",
               "entire scene", "shot", "frame", "weather", "season", "time of day", "lighting", "atmosphere",
               "mood", "style", "overall look", "whole photo", "entire photo", "all")
_IMAGE = re.compile(r"^(?:(?:the|this|that|my|our)\s+)?(?:whole\s+|entire\s+|overall\s+)?(?:" +
                    "|".join(re.escape(w) for w in IMAGE_WORDS) + r")$", re.I)
_BACKGROUND = re.compile(r"^(?:(?:the|this|that|its|their|his|her)\s+)?"
                         r"(?:(?!(?:in|on|of|at|from|behind|near|by|with|and)\s)[\w'-]+\s+){0,3}?"
                         r"(?:background|backdrop|back ground|surroundings|scenery|setting|environment)"
                         r"(?:\s+(?:colou?r|image|scene|area))?(?:\s+(?:of|behind|around)\s+.+)?$", re.I)


def lemma(word: str) -> str:
    """The dictionary form of one word, read as a noun when it can be one ("wolves" -> "wolf", "cats" -> "cat");
    unknown words are returned lower-cased."""
    w = word.lower()
    found = getAllLemmas(w)
    for upos in ("NOUN", "PROPN", "VERB", "ADJ", "ADV"):
        if upos in found:
            return found[upos][0]
    return w


def bare(text: str | None) -> str:
    """A noun phrase without its leading determiners and trailing punctuation ("the red car" -> "red car")."""
    out = re.sub(r"[\s,.!?;:]+$", "", (text or "").strip())
    while True:
        new = _DET.sub("", out)
        if new == out:
            return out
        out = new


def with_article(text: str) -> str:
    """A noun phrase with an indefinite article unless it has a determiner, a number or is a plural/mass word
    that reads fine bare ("dog" -> "a dog", "the sun" -> "the sun", "sunglasses" -> "sunglasses")."""
    t = re.sub(r"[\s,.!?;:]+$", "", text.strip())
    if not t or re.match(r"^(?:a|an|the|some|any|many|several|few|two|three|four|five|six|seven|eight|nine|ten|"
                         r"more|lots of|a lot of|\d+|his|her|their|its|my|our|your)\b", t, re.I):
        return t
    last = t.split()[-1].lower()
    if last.endswith("s") and not last.endswith("ss") and lemma(last) != last:  # a plural: "sunglasses", "boats"
        return t
    if last in ("glasses", "people", "sheep", "fish", "deer", "hair", "grass", "water", "snow", "fog", "rain",
                "sand", "smoke", "fire") or last.endswith("ing"):  # "falling snow" reads fine bare too
        return t
    return ("an " if t[:1].lower() in "aeiou" else "a ") + t


_PRONOUNS = {"him": "man", "he": "man", "her": "woman", "she": "woman", "them": "people", "they": "people",
             "everyone": "people", "everybody": "people"}


def head_phrase(target: str | None) -> str:
    """The object a target names, for a prompt: no determiner, no position or relative clause, the possessed noun
    of a possessive ("the car on the left" -> "car"; "the man's shirt" -> "shirt")."""
    t = bare(target)
    t = _PRONOUNS.get(t.lower(), t)
    t = _POST.sub("", t)
    if "'s " in t:
        t = t.rsplit("'s ", 1)[1]
    return bare(t)


def head_noun(target: str | None) -> str:
    """The lemma of a target's head noun ("the red cars on the left" -> "car")."""
    words = head_phrase(target).split()
    return lemma(words[-1]) if words else ""


def is_image_word(target: str | None) -> bool:
    """Whether a target names the whole image ("it", "the photo", "the whole scene", "the weather")."""
    return bool(target) and bool(_IMAGE.match(target.strip()))


def is_background_phrase(target: str | None) -> bool:
    """Whether a target names the background ("the background", "the white backdrop")."""
    return bool(target) and bool(_BACKGROUND.match(target.strip()))


def _colour_free(phrase: str) -> str:
    """``phrase`` without the colour words a recolour replaces ("red car" -> "car")."""
    from .grammar import strip_colours  # the colour lexicon lives with the grammar

    return strip_colours(phrase) or phrase


def _attribute_prompt(target: str, content: str, relation: str | None) -> str:
    obj = head_phrase(target) or bare(target) or "object"
    c = content.strip()
    if relation in ("wearing", "with", "holding") and not c.lower().startswith(relation):
        return f"{with_article(obj)} {relation} {c}"
    if relation == "after":
        return f"{with_article(obj)} {c}"
    if relation == "adjective" or (relation is None and len(c.split()) == 1 and "ADJ" in getAllLemmas(c.lower())
                                   and not c.lower().endswith("ing")):
        return with_article(f"{c} {obj}")
    if relation is None and re.match(r"^(?:a|an|some)\s", c, re.I):  # an object the referent gets: "a hat"
        return f"{with_article(obj)} with {c}"
    return f"{with_article(obj)} {c}"


def _caption_span(caption: str, noun: str) -> tuple[int, int] | None:
    """The span of the noun phrase of ``caption`` whose head has lemma ``noun`` (determiner and adjectives
    before it included), or None."""
    words = list(re.finditer(r"[A-Za-z'-]+", caption))
    for k, m in enumerate(words):
        if lemma(m.group().lower()) == noun or m.group().lower() == noun:
            j = k
            while j > 0 and words[j - 1].end() + 1 >= words[j].start() and j > k - 4:
                prev = words[j - 1].group().lower()
                if prev in ("and", "on", "in", "with", "of", "at", "near", "next", "to", "by", "is", "are"):
                    break
                j -= 1
            return words[j].start(), m.end()
    return None


def _edited_caption(caption: str, op: str, target: str | None, content: str | None, local_prompt: str) -> str | None:
    """The caption of the edited image from the source caption, or None when the target is not in it."""
    cap = caption.strip().rstrip(".")
    if op == "global":
        return f"{cap}, {content}" if content else cap
    if op == "background":
        return f"{cap}, on {local_prompt}"
    if op == "add":
        return f"{cap}, with {local_prompt}" + (f" {_anchor_prep(target)} {target}" if target else "")
    span = _caption_span(cap, head_noun(target))
    if span is None:
        return None
    a, b = span
    if op == "remove":
        rest = cap[b:] if head_phrase(target) == bare(target) else re.sub(r"^\s+(?:on|in|at|near|next to|beside|behind|under|above|by|with|wearing|holding)\s+.*?"
                      r"(?=\s+and\s|\s+with\s|,|$)", "", cap[b:], count=1)
        out = cap[:a] + rest
        out = re.sub(r"\s+and\s+(?=(?:on|in|at|near|by|under|beside|behind)\s)", " ", out)
        out = re.sub(r"^\s*(?:on|in|at|near|by|under|beside|behind)\s+.*?\s+and\s+", "", out)
        out = re.sub(r"\s+(?:and|with)\s*(?=,|$)", "", out)
        out = re.sub(r"^\s*(?:and|with)\s+", "", out)
        out = re.sub(r"\s+(?:and|with)\s+(?=(?:and|with)\b)", " ", out)
        return re.sub(r"\s{2,}", " ", out).strip(" ,") or cap
    if op in ("move", "resize"):
        return cap
    return cap[:a] + local_prompt + cap[b:]


def _anchor_prep(target: str | None) -> str:
    return "on"


def describe_edit(operation: str, target: str | None, content: str | None, relation: str | None = None,
                  source_caption: str | None = None, instruction: str | None = None,
                  notes: tuple[str, ...] = ()) -> Description:
    """A :class:`Description` from a structured edit.

    Args:
        operation: one of :data:`~regionedit.describe.OPERATIONS`.
        target: the noun phrase edited ("the cat"); the anchor for ``add`` (or None); None for global and
            background edits.
        content: what the edit brings ("a dog", "red", "bigger", "to the left", "a hat", "a forest", "winter");
            None for removals.
        relation: for ``attribute``: how the content goes with the target ("wearing", "with", "holding",
            "adjective", "after": the content follows the noun), None to guess from the content.
        source_caption: the caption of the source image; when given, ``target_description`` is that caption
            edited (and a note says when the target was not found in it).
        instruction: the instruction (the global prompt when ``content`` is None).
        notes: carried over to the Description.
    Returns:
        The Description; its ``error`` says what is missing when the fields cannot make an edit (e.g. a replace
        without content).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown edit operation {operation!r}; choose one of {list(OPERATIONS)}")
    notes = tuple(notes)
    target = target.strip() if isinstance(target, str) and target.strip() else None
    content = content.strip() if isinstance(content, str) and content.strip() else None
    referent: str | None = bare(target) if target else None
    if operation == "global":
        content = content or (instruction.strip() if instruction else None)
        target = None
        prompt = content or ""
        referent = None
    elif operation == "background":
        c = content or "plain"
        c = re.sub(r"\s*(?:background|backdrop)$", "", c, flags=re.I).strip() or "plain"
        from .grammar import is_colour

        prompt = f"a {c} background" if is_colour(c) else f"{with_article(c)} background"
        prompt = re.sub(r"^a (plain|blurred|blurry|white|black)", r"a \1", prompt)
        referent, target, content = "background", None, c
    elif operation == "add":
        prompt = with_article(content) if content else ""
        referent = None
    elif operation == "remove":
        prompt, content = "background", None
    elif operation == "replace":
        prompt = with_article(content) if content else ""
    elif operation == "recolor":
        obj = _colour_free(head_phrase(target)) if target else "object"
        prompt = f"{with_article(content + ' ' + obj)}" if content else ""
        if content and re.match(r"^(?:a|an)\s", prompt):
            prompt = ("an " if content[:1].lower() in "aeiou" else "a ") + f"{content} {obj}"
    elif operation in ("resize", "move"):
        prompt = with_article(head_phrase(target)) if target else ""
    else:  # attribute
        prompt = _attribute_prompt(target, content, relation) if (target and content) else ""
    if operation in ("remove", "replace", "recolor", "resize", "move", "attribute") and not target:
        return Description(None, "", "", None, f"the {operation} edit names no object to edit", notes, operation,
                           None, content)
    if not prompt:
        return Description(None, "", "", referent, f"the {operation} edit says nothing about what to draw "
                           "(no content)", notes, operation, target, content)
    described = prompt
    if source_caption:
        edited = _edited_caption(source_caption, operation, target, content, prompt)
        if edited is None:
            notes += (f"the source caption does not mention {head_noun(target)!r}; the target description is the "
                      "edited region's",)
        else:
            described = edited
    return Description(None, described, prompt, referent, None, notes, operation, target, content)
