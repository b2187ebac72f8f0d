"""Data types of the Describe stage: ``(instruction, source caption) -> target description``.

Seed paper 001 (Sec. 3.1) asks an LLM for the description ``t_e`` of the edited image given the source
description and the instruction. Here that stage returns a typed :class:`Description`: the parsed
:class:`EditIntent` (the structured meaning, mirroring ``EditSample.edit`` of the shapes world), the
target description ``t_e``, the short prompt for the inpainting generator inside the edit region and the
referring text for the region predictor. Every backend (the offline rule-based
:class:`~regionedit.describe.parser.WorldDescriber`, an LLM through
:class:`~regionedit.describe.llm.TransformersDescriber`) implements the :class:`Describer` protocol.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

OPS: tuple[str, ...] = ("remove", "add", "local", "color", "size", "background")
REFERENT_OPS: tuple[str, ...] = ("remove", "color", "local", "size")  # edits of an object already in the image


@dataclasses.dataclass(frozen=True)
class Referent:
    """An object named in text: any field may be None when the text does not say it.

    ``Referent(None, None, None)`` stands for a pronoun ("it", "this one") whose object must come
    from the source caption.
    """

    color: str | None = None  # a key of spec.OBJECT_COLORS (canonical spelling, e.g. "gray")
    shape: str | None = None  # one of spec.SHAPES (synonyms already mapped: "ball" -> "circle")
    size: str | None = None  # "small" | "large" | None

    def text(self, size: bool = False) -> str:
        """``"red circle"`` (``"small red circle"`` with ``size=True``); ``"object"`` when no shape."""
        words = [self.size if size else None, self.color, self.shape or "object"]
        return " ".join(w for w in words if w)

    def matches(self, other: "Referent") -> bool:
        """Whether ``other`` (a fully known object, e.g. from a caption) fits this description.

        A colour or size word only excludes objects whose colour or size is known and different.
        """
        return (
            (self.color is None or other.color is None or self.color == other.color)
            and (self.shape is None or self.shape == other.shape)
            and (self.size is None or other.size is None or self.size == other.size)
        )


@dataclasses.dataclass
class EditIntent:
    """The structured meaning of one instruction (what it says, not what the image allows).

    Field use per ``op``:

    - ``remove``: ``target``.
    - ``add``: ``new_color``, ``new_shape``, ``new_size`` (when said), ``area`` (when said).
    - ``local`` (replace): ``target``, ``new_shape``, ``new_color`` (the target's colour when the
      instruction names none: "turn the red square into a star"; None when that is unknown too),
      ``new_size`` (when said).
    - ``color``: ``target``, ``new_color``.
    - ``size``: ``target``, ``bigger`` (True: to the large class, False: to the small class).
    - ``background``: ``background = (top, bottom)``, ``bottom`` None for a solid colour.
    """

    op: str  # one of OPS
    target: Referent | None = None
    new_color: str | None = None
    new_shape: str | None = None
    new_size: str | None = None
    area: str | None = None  # one of spec.AREAS
    bigger: bool | None = None
    background: tuple[str, str | None] | None = None
    raw: str = ""  # the instruction as given

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown edit op {self.op!r}; choose one of {list(OPS)}")

    def instruction(self) -> str:
        """The edit in WORLD.md's template wording ("remove the red circle", "replace the blue square with a
        red star", "add a small yellow star in the top left", "make the background a white to black
        gradient"): what the intent means, whatever the words it was read from."""
        ref = "the " + self.target.text(size=True) if self.target is not None else "the object"
        new = " ".join(w for w in (self.new_size, self.new_color, self.new_shape or "object") if w)
        if self.op == "remove":
            return f"remove {ref}"
        a = "an" if new[0] in "aeiou" else "a"
        if self.op == "add":
            return f"add {a} {new}" + (f" in the {self.area}" if self.area else "")
        if self.op == "local":
            return f"replace {ref} with {a} {new}"
        if self.op == "color":
            return f"make {ref} {self.new_color}"
        if self.op == "size":
            return f"make {ref} {'bigger' if self.bigger else 'smaller'}"
        top, bottom = self.background or ("", None)
        return f"change the background to {top}" if bottom is None else f"make the background a {top} to {bottom} gradient"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.background is not None:
            d["background"] = list(self.background)
        return d


@dataclasses.dataclass
class Description:
    """Output of a :class:`Describer`.

    Attributes:
        intent: the parsed instruction, or None when it could not be understood.
        target_description: ``t_e``. With a source caption, the caption of the edited image in the
            world caption format; without one, a description of the edited region (the local prompt).
        local_prompt: the prompt for the inpainting generator inside the edit region: ``"a red star"``
            (add / local / color / size), ``"background"`` (remove), ``"a black background"`` or
            ``"a white to sky blue background"`` (background edits). Empty when nothing was understood.
        referent_text: what the region predictor should look for (``"red circle"``); ``"background"``
            for background edits; None for additions (the region is free space, not an object).
        error: None on success, else a message saying what went wrong (unparseable instruction, the
            referent is not in the source caption, an LLM answer that could not be read...).
        notes: what was set aside without failing, e.g. a source caption that could not be read (the
            description is then made as without one).
    """

    intent: EditIntent | None
    target_description: str
    local_prompt: str
    referent_text: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "intent": None if self.intent is None else self.intent.to_dict(),
            "target_description": self.target_description,
            "local_prompt": self.local_prompt,
            "referent_text": self.referent_text,
            "error": self.error,
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
