"""The structured meaning of a shapes-world instruction (WORLD.md's edit categories): :class:`EditIntent`,
read by the world's grammar (:mod:`regionedit.world.grammar`) and used by the world's priors."""

from __future__ import annotations

import dataclasses
from typing import Any

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


# the world's edit categories -> the core's operations (regionedit.describe.OPERATIONS)
OPERATION_OF: dict[str, str] = {"remove": "remove", "add": "add", "local": "replace", "color": "recolor",
                                "size": "resize", "background": "background"}


def general_fields(intent: EditIntent | None) -> dict[str, Any]:
    """The core's ``operation`` / ``target`` / ``content`` of a :class:`~regionedit.describe.Description` for an
    intent (all None for None): ``replace the blue square with a red star`` -> ``{"operation": "replace",
    "target": "the blue square", "content": "a red star"}``."""
    if intent is None:
        return {"operation": None, "target": None, "content": None}
    target = "the " + intent.target.text(size=True) if intent.target is not None else None
    new = " ".join(w for w in (intent.new_size, intent.new_color, intent.new_shape or "object") if w)
    content = {"remove": None, "add": ("an " if new[0] in "aeiou" else "a ") + new, "color": intent.new_color,
               "size": None if intent.bigger is None else ("bigger" if intent.bigger else "smaller")}.get(intent.op)
    if intent.op == "local":
        content = ("an " if new[0] in "aeiou" else "a ") + new
    if intent.op == "background" and intent.background is not None:
        top, bottom = intent.background
        content = top if bottom is None else f"{top} to {bottom} gradient"
    if intent.op == "add":
        target = intent.area
    return {"operation": OPERATION_OF[intent.op], "target": target, "content": content}
