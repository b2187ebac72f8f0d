"""The Describe stage: ``(instruction, source caption) -> target description`` (seed paper 001, Sec. 3.1).

Backends share the :class:`Describer` protocol and return a :class:`Description`:

- :class:`WorldDescriber` (default): an offline rule-based parser of the shapes-world language.
- :class:`TransformersDescriber`: any ``transformers`` causal LM prompted few-shot for JSON, falling back
  to the rule-based parser when its answer cannot be read.
"""

from .base import Describer, Description, EditIntent, OPS, REFERENT_OPS, Referent
from .parser import (
    WorldDescriber,
    apply_intent,
    format_caption,
    intent_to_text,
    local_prompt_for,
    parse_caption,
    parse_intent,
    split_edits,
    with_article,
)


def __getattr__(name: str):
    # the LLM backend imports torch/transformers lazily, only when asked for
    if name == "TransformersDescriber":
        from .llm import TransformersDescriber

        return TransformersDescriber
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OPS",
    "REFERENT_OPS",
    "Describer",
    "Description",
    "EditIntent",
    "Referent",
    "WorldDescriber",
    "TransformersDescriber",
    "apply_intent",
    "split_edits",
    "with_article",
    "format_caption",
    "intent_to_text",
    "local_prompt_for",
    "parse_caption",
    "parse_intent",
]
