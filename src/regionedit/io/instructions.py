"""Checking edit instructions: :func:`validate_instruction`."""

from __future__ import annotations

from typing import Any

from regionedit.io.errors import ImageInputError

MAX_INSTRUCTION_CHARS = 500
"""Default limit on the length of an edit instruction, in characters, after stripping."""


def validate_instruction(text: Any, max_chars: int = MAX_INSTRUCTION_CHARS) -> str:
    """Check an edit instruction and return it stripped of surrounding whitespace.

    Raises:
        ImageInputError: not a ``str`` (e.g. ``bytes`` or ``None``), empty or only whitespace,
            contains NUL / control characters other than tab and newline, or longer than
            ``max_chars`` characters after stripping.
    """
    if isinstance(text, (bytes, bytearray)):
        raise ImageInputError("instruction is bytes; decode it first, e.g. text.decode('utf-8')")
    if not isinstance(text, str):
        raise ImageInputError(
            f"instruction must be a str like 'make the sky blue', got {type(text).__name__}"
        )
    s = text.strip()
    if not s:
        raise ImageInputError(
            "instruction is empty; describe the edit, e.g. 'remove the red circle'"
        )
    bad = sorted({repr(c) for c in s if ord(c) < 32 and c not in "\t\n\r"})
    if bad:
        raise ImageInputError(f"instruction contains control characters {', '.join(bad)}; remove them")
    if len(s) > max_chars:
        raise ImageInputError(
            f"instruction is {len(s)} characters, over the limit of {max_chars}; shorten it to one "
            "concise edit (e.g. 'turn the square blue')"
        )
    return s
