"""The grammar's closed word classes and word helpers: colour, size and position words, the edit-verb lexicon
(for typo matching), the :class:`Parse` record, and lemma / inflection / noun-phrase helpers over ``lemminflect``.
Split out of :mod:`regionedit.describe.grammar`, which reads instructions with them."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from lemminflect import getAllLemmas, getInflection

# -- closed word classes -------------------------------------------------------------------------------------
COLOR_WORDS = frozenset(
    "red orange yellow green blue purple violet pink brown black white gray grey beige cyan magenta teal navy "
    "maroon olive lime gold golden silver turquoise indigo crimson blond blonde brunette tan cream ivory "
    "lavender lilac peach coral salmon scarlet burgundy khaki mint aqua azure amber bronze copper charcoal "
    "rainbow multicolored multicoloured colorful colourful rose ruby emerald sapphire mauve fuchsia ochre "
    "sepia".split())
_SHADES = ("light", "dark", "bright", "pale", "deep", "pastel", "neon", "vivid", "dull", "hot", "baby", "sky",
           "navy", "royal", "forest", "lime", "olive", "sea", "emerald", "mint", "blood", "jet", "off", "dusty",
           "metallic", "matte", "matt", "glossy", "shiny", "electric", "midnight", "bold", "soft", "muted", "rich",
           "dirty", "pure", "snow", "lemon", "cherry", "fire", "brick", "rose", "ocean", "golden", "silvery")
_COLOUR_WORD = r"(?:" + "|".join(sorted(COLOR_WORDS, key=len, reverse=True)) + r")(?:ish|dish)?"
COLOUR_RE = (r"(?:(?:" + "|".join(_SHADES) + r")[\s-]+)*" + _COLOUR_WORD +
             r"(?:(?:[\s-]+|\s+and\s+|\s*/\s*|-)(?:(?:" + "|".join(_SHADES) + r")[\s-]+)*" + _COLOUR_WORD + r")*")
_COLOUR_FULL = re.compile(r"^(?:a\s+|an\s+)?(?:(?:in|to|into|with|of)\s+)?(?P<c>" + COLOUR_RE +
                          r")(?:\s+(?:colou?r(?:ed)?|tone|tint|hue|paint|shade|one|ones))?(?:\s+instead)?$", re.I)
_BIGGER = ("bigger", "larger", "huge", "big", "large", "giant", "gigantic", "enormous", "taller", "longer",
           "wider", "higher", "fatter", "thicker", "massive", "greater", "tall", "long", "wide", "fat", "thick")
_SMALLER = ("smaller", "tinier", "tiny", "small", "little", "shorter", "thinner", "narrower", "miniature",
            "mini", "skinnier", "slimmer", "short", "thin", "narrow", "less big", "less large")
_SIZE_RE = re.compile(r"^(?:(?:a\s+)?(?:lot|bit|little|tiny bit|little bit|touch)\s+|slightly\s+|much\s+|way\s+|"
                      r"even\s+|somewhat\s+|far\s+|considerably\s+|significantly\s+|very\s+|really\s+)*"
                      r"(?P<s>" + "|".join(_BIGGER + _SMALLER) + r")(?:\s+(?:in size|than (?:before|it is|now)"
                      r"|size|sized))?$", re.I)
_TIMES_RE = re.compile(r"^(?:(?:twice|two times|three times|double|triple|\d+(?:\.\d+)? times)\s+(?:as\s+)?"
                       r"(?:big|large|tall|long|wide|the size)|(?:double|triple)(?:\s+(?:its|the)\s+size|"
                       r"\s+in size)?|half\s+(?:the|its)\s+size|half\s+as\s+(?:big|large|tall))$", re.I)
POSITION_WORDS = ("left", "right", "top", "bottom", "center", "centre", "middle", "corner", "side", "edge",
                  "foreground", "front", "back", "upper left", "upper right", "lower left", "lower right",
                  "top left", "top right", "bottom left", "bottom right", "far left", "far right", "top-left",
                  "top-right", "bottom-left", "bottom-right", "upper-left", "upper-right", "lower-left",
                  "lower-right", "rear", "distance", "horizon")
_POS = r"(?:(?:far|upper|lower|top|bottom|left|right)[\s-]+)?(?:" + "|".join(
    re.escape(w) for w in POSITION_WORDS) + r")(?:\s+(?:side|corner|part|half|edge|end|hand side|-hand side))?"
_POSITION_NP = re.compile(r"^(?:the\s+)?" + _POS + r"(?:\s+of\s+(?P<of>.+))?$", re.I)
_LOC_PREPS = ("next to", "in front of", "on top of", "to the left of", "to the right of", "on the left of",
              "on the right of", "at the top of", "at the bottom of", "in the middle of", "in the center of",
              "in the centre of", "close to", "near to", "on", "in", "at", "to", "onto", "into", "near", "beside",
              "behind", "under", "underneath", "above", "below", "over", "inside", "around", "by", "between",
              "among", "against", "along", "across", "atop", "within", "outside")
_LOC = r"(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in _LOC_PREPS) + r")"
_DIRECTIONS = re.compile(r"^(?:(?:a\s+(?:bit|little|little bit|tiny bit)|slightly|further|farther|a few inches|"
                         r"some)\s+)?(?:to|towards?|up|down|upward|upwards|downward|downwards|left|right|leftward|"
                         r"rightward|closer|further|farther|away|back|backward|backwards|forward|forwards|across|"
                         r"over|into|onto|next to|near|beside|behind|in front of|above|below|under|on top of|"
                         r"on|in|at|around|higher|lower|out of)\b", re.I)
_STRONG_DEST = re.compile(r"\s+(?=(?:(?:a\s+(?:bit|little|little bit|tiny bit)|slightly|further|farther)\s+)?"
                          r"(?:next to|close to|closer to|in front of|on top of|to|towards?|up|down|upwards?|downwards?|left|right|closer|further|farther|away|back|"
                          r"forwards?|backwards?|across|over to|higher|lower|out of)\b)", re.I)
_ANY_DEST = re.compile(r"\s+(?=" + _LOC + r"\s)", re.I)

_POLITE = re.compile(
    r"^(?:please|pls|plz|kindly|hey|hi|ok|okay|now|just|also|then|and|so|alright|well|"
    r"(?:can|could|would|will|wo) (?:you|we|u|someone)(?: please| kindly| maybe| perhaps| possibly)?|"
    r"(?:can|could) i(?: please)?(?= have\b)|"
    r"i (?:want|would like|need|wish|would love|am asking|ask) (?:you|u) to|i(?: would)? like you to|"
    r"(?:would|is) it (?:be )?possible to|is there a way to|try to|try and|go ahead and|help me|"
    r"i (?:want|would like|need|wish|would love) to|we (?:need|want|should|must|would like) to|"
    r"you (?:should|need to|must|can|could)|let us|lets|time to|it is time to|i think you should|"
    r"do you mind|would you mind|please do|maybe|perhaps|first|next|finally|now)[\s,]+", re.I)
_TAIL = re.compile(
    r"(?:[\s,]+(?:please|pls|thanks|thank you|thx|for me|if possible|if you can|if you could|for me please|"
    r"would you|will you|could you|can you|ok|okay|instead|as well|too|right now|now))+$", re.I)
_IMAGE_PLACE = (r"(?:the|this|that|my|our|your)\s+(?:whole\s+|entire\s+)?(?:image|picture|photo|photograph|pic|"
                r"scene|shot|frame|view|composition)")
_IN_IMAGE = re.compile(r"\s+(?:in|from|of|to|into|on|within|out of|off)\s+" + _IMAGE_PLACE + r"\b", re.I)
_CONTRACTIONS = [
    (r"\bi'd\b", "i would"), (r"\bi'm\b", "i am"), (r"\bit's\b", "it is"), (r"\blet's\b", "let us"),
    (r"\bthere's\b", "there is"), (r"\bthat's\b", "that is"), (r"\bwhat's\b", "what is"),
    (r"\bdon't\b", "do not"), (r"\bdoesn't\b", "does not"), (r"\bshouldn't\b", "should not"),
    (r"\bisn't\b", "is not"), (r"\baren't\b", "are not"), (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"),
    (r"\bwouldn't\b", "would not"), (r"\bwe'd\b", "we would"), (r"\bwe're\b", "we are"), (r"\bi've\b", "i have"),
    (r"\byou'd\b", "you would"), (r"\bthey're\b", "they are"), (r"\bhe's\b", "he is"), (r"\bshe's\b", "she is"),
    (r"\bcannot\b", "can not"), (r"\bwanna\b", "want to"), (r"\bgonna\b", "going to"),
]

# -- verb lexicon (for typo matching: the first word of an instruction) --------------------------------------
REMOVE_VERBS = ("remove", "delete", "erase", "eliminate", "lose", "drop", "hide", "omit", "exclude", "ditch",
                "discard", "banish", "extract", "clear", "wipe", "rub", "scrub", "cut", "crop", "edit")
REPLACE_VERBS = ("replace", "substitute", "swap", "switch", "exchange", "trade", "change", "turn", "transform",
                 "convert", "morph", "alter")
RECOLOR_VERBS = ("paint", "color", "colour", "recolor", "recolour", "dye", "tint", "repaint", "shade")
RESIZE_VERBS = ("enlarge", "shrink", "grow", "expand", "magnify", "resize", "scale", "upscale", "downsize",
                "minimize", "maximize", "increase", "decrease", "reduce", "widen", "lengthen", "shorten",
                "stretch", "extend", "heighten", "amplify", "blow")
MOVE_VERBS = ("move", "shift", "slide", "drag", "push", "pull", "relocate", "reposition", "nudge", "bring",
              "lift", "raise", "lower", "translate", "position")
ADD_VERBS = ("add", "insert", "include", "draw", "create", "put", "place", "sketch", "stick", "plant",
             "generate", "introduce", "attach", "hang", "set", "show", "build", "throw", "spawn", "depict")
OTHER_VERBS = ("make", "give", "let", "have", "get", "take", "apply", "render", "dress", "imagine", "use",
               "want", "render")
EDIT_VERBS = tuple(dict.fromkeys(REMOVE_VERBS + REPLACE_VERBS + RECOLOR_VERBS + RESIZE_VERBS + MOVE_VERBS +
                                 ADD_VERBS + OTHER_VERBS))


@dataclass
class Parse:
    """What the grammar read: ``operation`` (one of the nine), ``target``, ``content`` and for attributes the
    ``relation`` of the content to the target ("wearing", "with", "holding", "adjective" or None)."""

    operation: str
    target: str | None
    content: str | None
    relation: str | None = None


# -- small helpers -------------------------------------------------------------------------------------------
def is_colour(text: str | None) -> bool:
    """Whether a phrase is a colour ("red", "light blue", "dark green coloured", "black and white")."""
    return bool(text) and bool(_COLOUR_FULL.match(text.strip()))


def _colour(text: str) -> str | None:
    m = _COLOUR_FULL.match(text.strip())
    return m.group("c").lower() if m else None


def strip_colours(phrase: str) -> str:
    """``phrase`` without colour words ("red car" -> "car", "light blue wall" -> "wall")."""
    out = re.sub(r"\b" + COLOUR_RE + r"\b(?:[\s-]colou?red)?\s*", "", phrase, flags=re.I)
    return re.sub(r"\s{2,}", " ", out).strip()


def _size(text: str) -> str | None:
    t = text.strip().lower()
    if _TIMES_RE.match(t):
        return "smaller" if t.startswith("half") else "bigger"
    m = _SIZE_RE.match(t)
    return m.group("s").lower() if m else None


def _lemmas(word: str) -> dict:
    return getAllLemmas(word.lower())


def _is_verb(word: str) -> bool:
    return "VERB" in _lemmas(word)


def _verb_lemma(word: str) -> str:
    found = _lemmas(word).get("VERB")
    return found[0] if found else word.lower()


def _ing(verb: str) -> str:
    """Present participle of a verb ("smile" -> "smiling"; "wore" -> "wearing")."""
    base = _verb_lemma(verb)
    out = getInflection(base, "VBG")
    return out[0] if out else base + "ing"


def _participle(verb: str) -> str:
    base = _verb_lemma(verb)
    out = getInflection(base, "VBN")
    return out[0] if out else base + "ed"


def _fix_verb(word: str) -> str:
    """A misspelt edit verb mapped to the lexicon ("remvoe" -> "remove"); known words are kept."""
    w = word.lower()
    if w in EDIT_VERBS or not w.isalpha() or len(w) < 2:
        return word
    known = _lemmas(w)
    if known and ("VERB" in known or len(w) > 3):  # a real word: kept ("dog", "red"), unless a short non-verb
        return word                                # like "ad" ("ad a cat")
    close = difflib.get_close_matches(w, EDIT_VERBS, n=1, cutoff=0.75 if len(w) > 3 else 0.8)
    return close[0] if close else word


def _clean_np(text: str | None) -> str | None:
    """A noun phrase without trailing punctuation, politeness and "in the image"."""
    if text is None:
        return None
    t = _IN_IMAGE.sub("", text.strip())
    t = _TAIL.sub("", t)
    t = re.sub(r"^[\s,]+|[\s,.!?;:]+$", "", t)
    t = re.sub(r"\s+(?:too|as well|also|instead|altogether|completely|entirely|anymore|any more)$", "", t)
    return t or None


_DEFINITE = re.compile(r"^(?:the|this|that|these|those|my|his|her|its|their|our|your|[\w-]+'s?)\b", re.I)
_PRONOUN = re.compile(r"^(?:him|her|them|he|she|they|it|this|that|these|those|everyone|everybody|"
                      r"the (?:people|person|man|woman|boy|girl|guy|lady|kid|child))$", re.I)
_INDEFINITE = re.compile(r"^(?:a|an|some|one|two|three|four|five|six|seven|eight|nine|ten|several|many|"
                         r"a few|few|more|another|lots of|a lot of|a couple of|a pair of|\d+)\b", re.I)
_FUNCTION = frozenset("the a an this that these those my his her its their our your some any of to in on at "
                      "with by for from and or into onto as is are be very more".split())


def _is_definite(np: str) -> bool:
    return bool(_DEFINITE.match(np.strip())) or bool(_PRONOUN.match(np.strip()))


def _plausible_np(words: list[str]) -> bool:
    """Whether words can be a noun phrase that a frame's complement follows: not ending in a function word, no
    word after the first that can only be a verb ("the man eat" is not one)."""
    if len(words) == 1 and _PRONOUN.match(words[0]):
        return True
    if not words or words[-1].lower() in _FUNCTION:
        return False
    for w in words[1:]:
        lem = _lemmas(w)
        if set(lem) == {"VERB"} and not w.lower().endswith(("ed", "ing", "en")):
            return False
    return True
