"""``TemplateDescriber``: the general offline describer (kept at this path; the grammar is
:mod:`regionedit.describe.grammar`)."""

from .grammar import COLOR_WORDS, TemplateDescriber

__all__ = ["COLOR_WORDS", "TemplateDescriber"]
