"""Reworded instructions: a world edit said in WORLD.md's vocabulary but not in the generator's templates.

The bundled instruction encoder and region predictor were trained on the generator's phrasings
(``regionedit.world.language``). WORLD.md allows "any order, with or without articles, politeness words";
:func:`reword` says an edit in such other ways (constituents reordered, topicalised, "X: verb", other
politeness), so benchmarks can measure what unseen wording costs (``benchmarks/edit.py --reword``).
It reads the edit's ground-truth record (``WorldEdit.edit``), as an evaluation tool may; nothing here is
used at inference.
"""

from __future__ import annotations

import numpy as np

from regionedit.world import spec

_REMOVE = ["remove", "delete", "erase", "get rid of", "take away"]
_ADD = ["add", "put", "place", "insert", "draw"]
_CHANGE = ["change", "turn", "convert", "transform"]
_SHAPE_WORDS = {"circle": ["circle", "ball", "dot"], "square": ["square", "box"]}
_OPENERS = ["", "hey, ", "ok so ", "kindly ", "if you can, "]
_CLOSERS = ["", " thanks", " thank you", ", cheers", " pls"]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _obj(rng: np.random.Generator, color: str | None, shape: str, size: str | None = None) -> str:
    """``"red ball"``: colour (when known), shape or one of its WORLD.md synonyms."""
    shape_word = _pick(rng, _SHAPE_WORDS.get(shape, [shape]))
    return " ".join(w for w in (size, color, shape_word) if w)


def _an(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def reword(edit: dict, rng: np.random.Generator) -> str:
    """An instruction for ``edit`` (a ``WorldEdit.edit`` record: ``op`` remove / add / local / color / size /
    background, or absent with ``as`` the op it is phrased as) in a wording the generator never produces.

    Raises:
        ValueError: for an unknown op.
    """
    op = edit["op"]
    if op == "absent":  # its record names the referent only: the rest of the edit is free
        op = edit["as"]
        ref = edit["ref"]
        edit = {"color": _pick(rng, [c for c in spec.OBJECT_COLORS if c != ref["color"]]),
                "shape": _pick(rng, [s for s in spec.SHAPES if s != ref["shape"]]), "bigger": bool(rng.integers(2)), **edit}
    ref = edit.get("ref")
    the = "the " + _obj(rng, ref["color"], ref["shape"]) if ref else ""
    if op == "remove":
        v = _pick(rng, _REMOVE)
        core = _pick(rng, [f"{the}: {v}", f"{the}, {v} it", f"{v}, {the}", f"{v} {the}"])
    elif op == "add":
        new = _obj(rng, edit.get("color"), edit["shape"], edit.get("size"))
        v, area = _pick(rng, _ADD), edit.get("area")
        if area:
            core = _pick(rng, [f"in the {area}, {v} {_an(new)}", f"{v} one {new} {area}", f"{area}: {v} {_an(new)}"])
        else:
            core = _pick(rng, [f"{v} one {new}", f"{_an(new)}, {v} it", f"{v} {new}"])
    elif op == "local":
        new = _obj(rng, edit.get("color"), edit["shape"])
        core = _pick(rng, [f"{the}, swap it for {_an(new)}", f"into {_an(new)} {_pick(rng, _CHANGE)} {the}",
                           f"{the}: replace with {_an(new)}"])
    elif op == "color":
        c = edit["color"]
        core = _pick(rng, [f"{the}, paint it {c}", f"{c}, make {the}", f"{the}: make it {c}",
                           f"{_pick(rng, _CHANGE)} {the} to {c}"])
    elif op == "size":
        comp = _pick(rng, ["bigger", "larger"] if edit["bigger"] else ["smaller", "tinier"])
        core = _pick(rng, [f"{the}: {comp}", f"{comp}, make {the}", f"{the}, make it {comp}"])
    elif op == "background":
        top, bottom = edit["top"], edit.get("bottom")
        if bottom is None:
            core = _pick(rng, [f"the background: {top}", f"{top}, make the background", f"background to {top}, change"])
        else:
            core = _pick(rng, [f"the background: a {top} to {bottom} gradient",
                               f"a {top} to {bottom} gradient, make the background",
                               f"give the background a gradient from {top} to {bottom}"])
    else:
        raise ValueError(f"unknown edit op {op!r}; expected remove, add, local, color, size, background or absent")
    return _pick(rng, _OPENERS) + core + _pick(rng, _CLOSERS)
