"""The Describe stage: ``(instruction, source caption) -> Description`` (seed paper 001, Sec. 3.1).

Backends share the :class:`Describer` protocol and return a :class:`Description` (operation, target, content,
target description, local prompt). The shapes world's grammar (:class:`regionedit.world.grammar.WorldDescriber`)
and its LM describer are in the world plugin; :class:`TemplateDescriber` is the general offline default.
"""

from .base import OPERATIONS, REFERENT_OPERATIONS, Describer, Description, check_instruction
from .templates import TemplateDescriber

__all__ = ["OPERATIONS", "REFERENT_OPERATIONS", "Describer", "Description", "TemplateDescriber", "check_instruction"]
