"""The Describe stage: ``(instruction, source caption) -> Description`` (seed paper 001, Sec. 3.1).

Backends share the :class:`Describer` protocol and return a :class:`Description` (operation, target, content,
target description, local prompt). The shapes world's grammar (:class:`regionedit.world.grammar.WorldDescriber`)
and its LM describer are in the world plugin; :class:`TemplateDescriber` (the open instruction grammar of
:mod:`.grammar`) is the general offline default, and :class:`LMDescriber` asks any chat LM / VLM for the same
structured edit.
"""

from .base import OPERATIONS, REFERENT_OPERATIONS, Describer, Description, check_instruction
from .build import describe_edit
from .grammar import Parse, parse_instruction
from .lm import LMDescriber
from .templates import TemplateDescriber

__all__ = ["OPERATIONS", "REFERENT_OPERATIONS", "Describer", "Description", "LMDescriber", "Parse",
           "TemplateDescriber", "check_instruction", "describe_edit", "parse_instruction"]
