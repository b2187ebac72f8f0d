"""Data types of the Describe stage: ``(instruction, source caption) -> Description``.

Seed paper 001 (Sec. 3.1) asks an LLM for the description ``t_e`` of the edited image given the source
description and the instruction. Here that stage returns a typed :class:`Description`: the general structured
edit (``operation``, ``target``, ``content``), the target description ``t_e``, the short prompt for the
generator inside the edit region, the referring text for the localizer, and the describer's own structured
form (``intent``: a plugin's, e.g. the shapes world's :class:`~regionedit.world.intent.EditIntent`, which only
that plugin's priors read). Every backend implements the :class:`Describer` protocol.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

OPERATIONS: tuple[str, ...] = ("add", "remove", "replace", "recolor", "resize", "move", "attribute", "background",
                               "global")
# operations on an object already in the image: the localizer must find it, and an absent one means "no edit"
REFERENT_OPERATIONS: tuple[str, ...] = ("remove", "replace", "recolor", "resize", "move", "attribute")


@dataclasses.dataclass
class Description:
    """Output of a :class:`Describer`.

    Attributes:
        intent: the describer's structured form of the instruction (the shapes world's ``EditIntent``; any
            object a plugin's priors read), or None when the instruction could not be understood. The core
            never looks inside it.
        target_description: ``t_e``: with a source caption, the caption of the edited image; without one, a
            description of the edited region (the local prompt).
        local_prompt: the prompt for the generator inside the edit region: ``"a red star"``, ``"background"``
            (remove), ``"a black background"``. Empty when nothing was understood.
        referent_text: what the localizer should look for (``"red circle"``); ``"background"`` for background
            edits; None for additions (the region is free space, not an object).
        error: None on success, else a message saying what went wrong (unparseable instruction, the referent
            is not in the source caption, an LM answer that could not be read...).
        notes: what was set aside without failing, e.g. a source caption that could not be read.
        operation: one of :data:`OPERATIONS` (None when not understood).
        target: the noun phrase edited ("the red circle"); for ``add`` the anchor, if any; None for global edits.
        content: what the edit brings: the new object, colour, size direction or background ("a blue star",
            "blue", "bigger", "a forest"); None for removals.
    """

    intent: Any
    target_description: str
    local_prompt: str
    referent_text: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()
    operation: str | None = None
    target: str | None = None
    content: str | None = None

    def __post_init__(self) -> None:
        if self.operation is not None and self.operation not in OPERATIONS:
            raise ValueError(f"unknown edit operation {self.operation!r}; choose one of {list(OPERATIONS)}")

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def on_referent(self) -> bool:
        """Whether the edit changes an object already in the image (:data:`REFERENT_OPERATIONS`)."""
        return self.operation in REFERENT_OPERATIONS

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        intent = self.intent.to_dict() if hasattr(self.intent, "to_dict") else self.intent
        return {
            "operation": self.operation,
            "target": self.target,
            "content": self.content,
            "target_description": self.target_description,
            "local_prompt": self.local_prompt,
            "referent_text": self.referent_text,
            "error": self.error,
            "intent": intent,
        }


@runtime_checkable
class Describer(Protocol):
    """``(instruction, source caption) -> Description``; never raises for unparseable text (the
    :attr:`Description.error` says what went wrong), raises ``ValueError`` for an empty instruction."""

    def __call__(self, instruction: str, source_caption: str | None = None) -> Description: ...


def check_instruction(instruction: str) -> str:
    """Validate an instruction; returns it stripped. Raises ``ValueError`` when it is empty."""
    if not isinstance(instruction, str):
        raise ValueError(f"the instruction must be a string, got {type(instruction).__name__}")
    text = instruction.strip()
    if not text:
        raise ValueError(
            "the instruction is empty: give an edit instruction, e.g. 'remove the red circle' or "
            "'add a small yellow star in the top left'"
        )
    return text
