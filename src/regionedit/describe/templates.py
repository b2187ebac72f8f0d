"""``TemplateDescriber``: the general offline describer, a small grammar of the instruction forms people write.

It knows no vocabulary of its own (any noun phrase is a target, any phrase is content) and reads the edit's
operation from its verb pattern::

    remove / delete / erase / get rid of / take out X          -> remove    X
    replace X with Y / swap X for Y / turn|change X into Y     -> replace   X -> Y
    make|turn|paint|colour X <colour word>                      -> recolor   X -> colour
    make X bigger|larger|smaller                                -> resize    X -> bigger / smaller
    move X <where>                                              -> move      X -> where
    change|make|set the background (to|into) Y / ... Y background -> background -> Y
    add|put|place|insert Y [in|on|to|at ... Z]                  -> add       Y (anchor Z)
    anything else                                               -> global    (the whole instruction is the content)

The local prompt is the content ("a dog"), "background" for removals, and the instruction itself for global
edits. A plugin with a grammar of its own (the shapes world's) brings its own describer.
"""

from __future__ import annotations

import re

from .base import Description, check_instruction

# colour words a recolour names (basic colour terms and common shades); any other adjective is content
COLOR_WORDS = frozenset(
    "red orange yellow green blue purple violet pink brown black white gray grey beige cyan magenta teal navy "
    "maroon olive lime gold golden silver turquoise indigo crimson".split())
_POLITE = re.compile(r"^(?:please|could you|can you|would you|kindly|i want you to|i'd like you to)\s+", re.I)
_ARTICLE = re.compile(r"^(?:the|a|an|this|that|these|those|my)\s+", re.I)


def _np(text: str) -> str:
    """A noun phrase without trailing punctuation and politeness ("the cat, please" -> "the cat")."""
    return re.sub(r"[\s,.!?;]*(?:please)?[\s,.!?;]*$", "", text.strip(), flags=re.I)


def _bare(text: str) -> str:
    """A noun phrase without its article ("the red car" -> "red car")."""
    return _ARTICLE.sub("", _np(text))


def _with_article(text: str) -> str:
    bare = _bare(text)
    if re.match(r"^(?:a|an|the|some|\d+)\b", _np(text), re.I):
        return _np(text)
    return ("an " if bare[:1].lower() in "aeiou" else "a ") + bare


_RULES: list[tuple[str, re.Pattern]] = [
    ("background", re.compile(r"^(?:change|make|set|turn|replace)\s+the\s+background\s+(?:to|into|with|a|an)?\s*(?P<content>.+)$", re.I)),
    ("background", re.compile(r"^(?:put|place|set)\s+(?:it|everything|the scene)\s+(?:on|in front of)\s+(?P<content>.+?)\s*background$", re.I)),
    ("remove", re.compile(r"^(?:remove|delete|erase|get rid of|take out|take away|eliminate)\s+(?P<target>.+)$", re.I)),
    ("replace", re.compile(r"^(?:replace|substitute)\s+(?P<target>.+?)\s+(?:with|by)\s+(?P<content>.+)$", re.I)),
    ("replace", re.compile(r"^swap\s+(?P<target>.+?)\s+(?:for|with)\s+(?P<content>.+)$", re.I)),
    ("resize", re.compile(r"^make\s+(?P<target>.+?)\s+(?P<content>bigger|larger|smaller|tinier|huge|tiny)$", re.I)),
    ("recolor", re.compile(r"^(?:make|turn|paint|colou?r|change)\s+(?P<target>.+?)\s+(?:to\s+|into\s+)?(?P<content>\w+)$", re.I)),
    ("replace", re.compile(r"^(?:turn|change|transform|make)\s+(?P<target>.+?)\s+(?:into|to)\s+(?P<content>.+)$", re.I)),
    ("move", re.compile(r"^move\s+(?P<target>.+?)\s+(?P<content>(?:to|up|down|left|right|towards?)\b.*)$", re.I)),
    ("add", re.compile(r"^(?:add|put|place|insert|draw)\s+(?P<content>.+?)(?:\s+(?:in|on|to|at|next to|near|above|below)\s+(?P<target>.+))?$", re.I)),
]


class TemplateDescriber:
    """:class:`~regionedit.describe.Describer` from verb patterns, open over nouns (see the module docstring).

    >>> TemplateDescriber()("replace the cat with a dog").local_prompt
    'a dog'
    """

    def __call__(self, instruction: str, source_caption: str | None = None) -> Description:
        text = _POLITE.sub("", check_instruction(instruction)).rstrip(" .!?")
        for op, pattern in _RULES:
            m = pattern.match(text)
            if m is None:
                continue
            groups = m.groupdict()
            target = _np(groups["target"]) if groups.get("target") else None
            content = _np(groups["content"]) if groups.get("content") else None
            if op == "recolor" and (content or "").lower() not in COLOR_WORDS:
                continue  # "make the cat happy" is not a recolour
            if op == "background":
                content = re.sub(r"\s*background$", "", content or "", flags=re.I) or None
                if not content:
                    continue
                return Description(None, f"{_with_article(content)} background", f"{_with_article(content)} background",
                                   "background", operation="background", content=content)
            if op == "remove":
                return Description(None, "background", "background", _bare(target), operation="remove", target=target)
            if op == "recolor":
                prompt = f"a {content.lower()} {_bare(target)}"
                return Description(None, prompt, prompt, _bare(target), operation="recolor", target=target,
                                   content=content.lower())
            if op in ("resize", "move"):  # the object itself is redrawn: "a dog"
                prompt = _with_article(_bare(target))
                return Description(None, prompt, prompt, _bare(target), operation=op, target=target,
                                   content=content.lower() if op == "resize" else content)
            if op == "add":
                return Description(None, _with_article(content), _with_article(content), None, operation="add",
                                   target=target, content=content)
            return Description(None, _with_article(content), _with_article(content), _bare(target), operation=op,
                               target=target, content=content)
        return Description(None, text, text, None, operation="global", content=text)
