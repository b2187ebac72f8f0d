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

Modules: :mod:`.lexicon` (step 1), :mod:`.phrases` (step 2), :mod:`.instructions` (step 3,
:func:`parse_intent`), :mod:`.split` (:func:`split_edits`: one instruction per edit), :mod:`.captions`
(reading, writing and editing captions: step 4's rewrite) and :mod:`.describer` (:class:`WorldDescriber`,
the prompts of step 4). Every name in ``__all__`` is importable from ``regionedit.world.grammar``.
"""

from regionedit.world.grammar.captions import apply_intent, format_caption, parse_caption, resolve, with_article
from regionedit.world.grammar.describer import WorldDescriber, intent_to_text, local_prompt_for
from regionedit.world.grammar.instructions import parse_intent
from regionedit.world.grammar.split import split_edits
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
    "split_edits",
    "resolve",
    "OPS",
    "REFERENT_OPS",
    "EditIntent",
    "Referent",
]
