"""evaluation.reword: world edits said outside the generator's templates, and EditIntent.instruction."""

import dataclasses

import numpy as np
import pytest

from regionedit.world.grammar import parse_intent
from regionedit.world.reword import reword
from regionedit.world import sample_edit, spec


def _same_edit(a, b, category: str) -> bool:
    # the edit's record leaves out a size word the generator may say ("the small star"): sizes aside
    a, b = (dataclasses.replace(x, target=x.target and dataclasses.replace(x.target, size=None)) for x in (a, b))
    if category == "absent":  # only the referent and the kind of edit are recorded
        return (a.op, a.target) == (b.op, b.target) or (a.target == b.target and {a.op, b.op} <= {"local", "color"})
    if a.op == "local" and a.new_color is None:  # the generator left the new colour unsaid; reword says it
        b = dataclasses.replace(b, new_color=None)
    return a.instruction() == b.instruction()


@pytest.mark.parametrize("category", spec.CATEGORIES)
def test_reworded_edits_mean_the_same(category):
    ci = spec.CATEGORIES.index(category)
    bad, seen = [], set()
    for i in range(120):
        s = sample_edit(30000 + ci, i, category=category)
        text = reword(s.edit, np.random.default_rng(i))
        seen.add(text.lower())
        a, b = parse_intent(s.instruction)[0], parse_intent(text)[0]
        assert a is not None
        if b is None or not _same_edit(a, b, category):
            bad.append((s.instruction, text, b))
        assert text.lower() != s.instruction.lower()
    assert bad == []
    assert len(seen) > 100  # varied, not one template


def test_intent_instruction_reads_back():
    for ci, category in enumerate(spec.CATEGORIES):
        for i in range(60):
            it = parse_intent(sample_edit(31000 + ci, i, category=category).instruction)[0]
            back = parse_intent(it.instruction())[0]
            assert back is not None and back.instruction() == it.instruction()
            assert (back.op, back.target, back.new_color, back.new_shape, back.area, back.bigger, back.background) == (
                it.op, it.target, it.new_color, it.new_shape, it.area, it.bigger, it.background)
    assert parse_intent("hey, into an orange box convert the ball")[0].instruction() == "replace the circle with an orange square"


def test_unknown_op_is_an_error():
    with pytest.raises(ValueError, match="unknown edit op"):
        reword({"op": "rotate"}, np.random.default_rng(0))
