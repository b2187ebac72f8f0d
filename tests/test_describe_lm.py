"""LMDescriber: a tiny random Qwen2 causal LM with an offline byte-level BPE tokenizer and a chat template, built
in a fixture and loaded by folder; the answer parser and schema check with a fake generator."""

from __future__ import annotations

import json

import pytest
import torch

from regionedit.describe import OPERATIONS, Description, LMDescriber
from regionedit.describe.lm import extract_json, validate_answer

@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A folder with a random 2-layer Qwen2ForCausalLM (hidden 32) and its offline tokenizer, saved with
    save_pretrained (regionedit.models.tiny_describers)."""
    from regionedit.models.tiny_describers import save_tiny_chat_lm

    return save_tiny_chat_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_free_mode_with_a_random_model_reports_an_error_not_an_exception(tiny_lm):
    d = LMDescriber.from_pretrained(tiny_lm, max_new_tokens=12, retries=2, constrained=False)
    assert not d.constrained and d.tokenizer.chat_template
    out = d("replace the cat with a dog")
    assert isinstance(out, Description) and out.error and "could not be read after 3 attempt" in out.error
    assert d.last_attempts == 3 and len(d.last_outputs) == 3
    assert out.local_prompt == "" and out.operation is None
    answers = list(d.last_outputs)
    again = d("replace the cat with a dog")  # greedy first attempt, seeded retries: the same answers
    assert d.last_outputs == answers and again.error == out.error


def test_retries_are_seeded_and_differ_from_greedy(tiny_lm):
    d = LMDescriber.from_pretrained(tiny_lm, max_new_tokens=8, retries=2, constrained=False, seed=3)
    d("remove the dog")
    first = list(d.last_outputs)
    d("remove the dog")
    assert d.last_outputs == first  # deterministic
    assert len(set(first)) > 1  # the sampled retries are not the greedy answer again


def test_constrained_mode_is_always_schema_valid(tiny_lm):
    d = LMDescriber.from_pretrained(tiny_lm, max_new_tokens=6)  # small model: constrained by default
    assert d.constrained
    for ins in ("let the cat wear a hat", "make it look like winter", "remove the person on the left"):
        out = d(ins, source_caption="a cat on a sofa")
        assert out.error is None, out.error
        assert out.operation in OPERATIONS and out.local_prompt and out.target_description
        fields, problem = validate_answer(json.loads(d.last_outputs[-1]))
        assert problem is None and fields["operation"] == out.operation
        if out.operation in ("global", "background"):
            assert out.target is None


def test_bf16_load_works(tiny_lm):
    d = LMDescriber.from_pretrained(tiny_lm, torch_dtype="bfloat16", max_new_tokens=4)
    assert next(d.model.parameters()).dtype == torch.bfloat16
    out = d("make the car red")
    assert out.error is None and out.operation in OPERATIONS


def test_a_folder_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="could not load a language model from"):
        LMDescriber.from_pretrained(tmp_path / "nowhere")


# -- parsing and validation with a fake generator ----------------------------------------------------------------
def _fake(*answers):
    calls = []

    def fn(messages, attempt):
        calls.append(attempt)
        return answers[min(attempt, len(answers) - 1)]

    return fn, calls


def test_valid_json_answer():
    fn, calls = _fake('{"operation": "attribute", "target": "the cat", "content": "a hat", '
                      '"target_description": "a cat wearing a hat"}')
    d = LMDescriber(generate_fn=fn, retries=2)(" let the cat wear a hat ")
    assert (d.operation, d.target, d.content, d.referent_text) == ("attribute", "the cat", "a hat", "cat")
    assert d.local_prompt == "a cat with a hat" or d.local_prompt.startswith("a cat")
    assert d.target_description == "a cat wearing a hat" and calls == [0]


def test_json_inside_prose_and_python_quotes():
    fn, _ = _fake("Sure! Here it is: {'operation': 'remove', 'target': 'the dog', 'content': None, "
                  "'target_description': 'background'} Hope that helps.")
    d = LMDescriber(generate_fn=fn)("get rid of the dog")
    assert (d.operation, d.target, d.content, d.local_prompt, d.referent_text) == (
        "remove", "the dog", None, "background", "dog")


def test_invalid_then_valid_on_retry():
    fn, calls = _fake('{"operation": "paint", "target": "the car", "content": "red", "target_description": "x"}',
                      '{"operation": "recolor", "target": "the car"}',
                      '{"operation": "recolor", "target": "the car", "content": "red", "target_description": "a red car"}')
    des = LMDescriber(generate_fn=fn, retries=2)
    d = des("make the car red")
    assert calls == [0, 1, 2] and d.error is None and d.local_prompt == "a red car"
    assert des.last_attempts == 3 and any("attempt 3" in n for n in d.notes)


def test_every_answer_invalid_gives_an_error_description():
    fn, calls = _fake("I cannot do that.")
    d = LMDescriber(generate_fn=fn, retries=1)("make the car red")
    assert d.error and "could not be read after 2 attempt" in d.error and "no JSON object" in d.error
    assert calls == [0, 1]


@pytest.mark.parametrize("obj,problem", [
    ({"operation": "paint", "target": "x", "content": "y", "target_description": "z"}, "not one of"),
    ({"operation": "remove", "content": None, "target_description": "z"}, "lacks target"),
    ({"operation": "remove", "target": None, "content": None, "target_description": "z"}, "needs a target"),
    ({"operation": "replace", "target": "the cat", "content": None, "target_description": "z"}, "needs content"),
    ({"operation": "add", "target": None, "content": "a dog", "target_description": ""}, "non-empty"),
    ({"operation": "move", "target": 3, "content": "left", "target_description": "z"}, "string or null"),
])
def test_validation_rules(obj, problem):
    fields, why = validate_answer(obj)
    assert fields is None and problem in why


def test_validation_accepts_null_targets_where_allowed():
    for op in ("global", "background", "add"):
        fields, why = validate_answer({"operation": op.upper(), "target": "null", "content": "snow",
                                       "target_description": "a snowy scene"})
        assert why is None and fields["operation"] == op and fields["target"] is None


def test_extract_json_first_object():
    assert extract_json('x {"a": "}"} {"b": 1}') == {"a": "}"}
    assert extract_json("no json here") is None
