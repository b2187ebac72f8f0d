"""The general offline describer: operation, target and content from the verb pattern, any nouns."""

import pytest

from regionedit.describe import OPERATIONS, Description, TemplateDescriber

CASES = [
    ("replace the cat with a dog", "replace", "the cat", "a dog", "a dog"),
    ("Please swap the red car for a bicycle.", "replace", "the red car", "a bicycle", "a bicycle"),
    ("turn the old house into a castle", "replace", "the old house", "a castle", "a castle"),
    ("remove the person on the left", "remove", "the person on the left", None, "background"),
    ("get rid of the lamp post", "remove", "the lamp post", None, "background"),
    ("make the sofa blue", "recolor", "the sofa", "blue", "a blue sofa"),
    ("make the dog bigger", "resize", "the dog", "bigger", "a dog"),
    ("move the vase to the left", "move", "the vase", "to the left", "a vase"),
    ("add a hat to the man", "add", "the man", "a hat", "a hat"),
    ("change the background to a forest", "background", None, "a forest", "a forest background"),
    ("it should be snowing", "global", None, "it should be snowing", "it should be snowing"),
]


@pytest.mark.parametrize("text,op,target,content,prompt", CASES)
def test_template_describer_reads_the_verb_pattern(text, op, target, content, prompt):
    d = TemplateDescriber()(text)
    assert isinstance(d, Description) and d.ok and d.operation in OPERATIONS
    assert (d.operation, d.target, d.content, d.local_prompt) == (op, target, content, prompt)


def test_a_non_colour_adjective_is_not_a_recolour():
    d = TemplateDescriber()("make the cat happy")
    assert d.operation != "recolor"


def test_operation_must_be_known():
    with pytest.raises(ValueError, match="unknown edit operation"):
        Description(None, "", "", operation="paint")


def test_empty_instruction_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        TemplateDescriber()("   ")
