"""The Describe stage: the rule-based world parser against the generator's ground truth and against
hand-written phrasings, caption reading/writing, and the LLM backend with a tiny random model.

Accuracy (run ``pytest tests/test_describe.py -s`` to see the numbers and any failures printed).
"""

from __future__ import annotations

import itertools
import json
import re

import pytest

from regionedit.describe import Describer, Description
from regionedit.world.grammar import (
    EditIntent,
    Referent,
    WorldDescriber,
    format_caption,
    intent_to_text,
    parse_caption,
    parse_intent,
    split_edits,
)
from regionedit.world import sample_edit, spec
from regionedit.world.language import AREA_PHRASES, SHAPE_SYNONYMS, VERBS, caption
from regionedit.world.scene import Background, Scene, WorldObject

SEED = 20240611  # dataset seed for the generated-instruction accuracy test
N_GENERATED = 1500


@pytest.fixture(scope="module")
def describer() -> WorldDescriber:
    return WorldDescriber()


@pytest.fixture(scope="module")
def samples():
    return [sample_edit(SEED, i) for i in range(N_GENERATED)]


# --------------------------------------------------------------------------------------------------
# Generated instructions (every category; absent referents are parsed as the edit they pretend to be)
# --------------------------------------------------------------------------------------------------


def _intent_mismatches(sample, intent: EditIntent | None) -> list[str]:
    e = sample.edit
    if intent is None:
        return ["no intent"]
    op = e["as"] if e["op"] == "absent" else e["op"]
    errs = []
    if intent.op != op:
        errs.append(f"op {intent.op!r} != {op!r}")
    if "ref" in e:
        got = None if intent.target is None else (intent.target.color, intent.target.shape)
        if got != (e["ref"]["color"], e["ref"]["shape"]):
            errs.append(f"referent {got} != {(e['ref']['color'], e['ref']['shape'])}")
    if e["op"] == "add":
        got = (intent.new_color, intent.new_shape, intent.new_size, intent.area)
        if got != (e["color"], e["shape"], e["size"], e["area"]):
            errs.append(f"new object {got} != {(e['color'], e['shape'], e['size'], e['area'])}")
    elif e["op"] == "local":
        old = next(o for o in sample.source_scene.objects if o not in sample.target_scene.objects)
        # the instruction states the new colour unless it is kept and the referent is named by shape
        said = e["ref"]["color"] is not None or e["color"] != old.color
        want = e["color"] if said else None
        if (intent.new_shape, intent.new_color) != (e["shape"], want):
            errs.append(f"new object {(intent.new_color, intent.new_shape)} != {(want, e['shape'])}")
    elif e["op"] == "color" and intent.new_color != e["color"]:
        errs.append(f"new colour {intent.new_color!r} != {e['color']!r}")
    elif e["op"] == "size" and intent.bigger != e["bigger"]:
        errs.append(f"bigger {intent.bigger} != {e['bigger']}")
    elif e["op"] == "background" and intent.background != (e["top"], e["bottom"]):
        errs.append(f"background {intent.background} != {(e['top'], e['bottom'])}")
    return errs


def _caption_mismatches(sample, desc: Description) -> list[str]:
    """Target description vs ``caption(target_scene)``: same (colour, shape) objects and background,
    and every size word we write matches the true size class."""
    if sample.category == "absent":  # the right answer is no edit, reported as such
        if desc.error is None or desc.target_description != sample.source_caption:
            return [f"absent referent not reported (error={desc.error!r})"]
        return []
    if desc.error is not None:
        return [f"error {desc.error!r}"]
    want = caption(sample.target_scene, size_words=1.0)
    got_objs, got_bg = parse_caption(desc.target_description)
    want_objs, want_bg = parse_caption(want)
    errs = []
    if sorted((o.color, o.shape) for o in got_objs) != sorted((o.color, o.shape) for o in want_objs):
        errs.append(f"objects of {desc.target_description!r} != {want!r}")
    if got_bg != want_bg:
        errs.append(f"background {got_bg} != {want_bg}")
    sizes = {(o.color, o.shape): o.size for o in want_objs}
    errs += [f"size of {o}" for o in got_objs if o.size is not None and sizes.get((o.color, o.shape)) != o.size]
    return errs


def test_generated_instructions(describer, samples):
    intent_ok = caption_ok = 0
    failures = []
    for s in samples:
        d = describer(s.instruction, s.source_caption)
        ie, ce = _intent_mismatches(s, d.intent), _caption_mismatches(s, d)
        intent_ok += not ie
        caption_ok += not ce
        if ie or ce:
            failures.append(f"[{s.category}] {s.instruction!r} | {s.source_caption!r}: {ie + ce}")
    n = len(samples)
    print(f"\ngenerated (seed {SEED}, n={n}): intent {intent_ok / n:.4f}, target description {caption_ok / n:.4f}")
    for f in failures[:20]:
        print("  FAIL", f)
    assert intent_ok / n >= 0.99
    assert caption_ok / n >= 0.99


def test_generated_without_caption(describer, samples):
    """Without a source caption the intent is the same and t_e describes the edited region."""
    for s in samples[:200]:
        d = describer(s.instruction)
        assert not _intent_mismatches(s, d.intent), s.instruction
        assert d.target_description == d.local_prompt


def test_intent_text_round_trip(describer, samples):
    for s in samples[:300]:
        intent = describer(s.instruction).intent
        again, err = parse_intent(intent_to_text(intent))
        assert err is None, err
        assert dataclasses_equal(again, intent), (s.instruction, intent_to_text(intent))


def dataclasses_equal(a: EditIntent, b: EditIntent) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("raw"), db.pop("raw")
    return da == db


# --------------------------------------------------------------------------------------------------
# Hand-written phrasings, none produced by the generator: ref = (colour, shape) of the edited object
# --------------------------------------------------------------------------------------------------

# Written by hand while developing the parser (the parser was tuned on these).
DEV = [
    ("I'd like the blue box gone", dict(op="remove", ref=("blue", "square"))),
    ("get rid of that green triangle please!", dict(op="remove", ref=("green", "triangle"))),
    ("could the circle be made purple?", dict(op="color", ref=(None, "circle"), new_color="purple")),
    ("swap out the star for a yellow ball", dict(op="local", ref=(None, "star"), new_color="yellow", new_shape="circle")),
    ("there should be a small red star in the top left", dict(op="add", new_color="red", new_shape="star", area="top left")),
    ("take the purple ball out", dict(op="remove", ref=("purple", "circle"))),
    ("the white square should disappear", dict(op="remove", ref=("white", "square"))),
    ("show me the picture without the black dot", dict(op="remove", ref=("black", "circle"))),
    ("Put a blue triangle in the upper right corner", dict(op="add", new_color="blue", new_shape="triangle", area="top right")),
    ("insert a large orange box at the centre", dict(op="add", new_color="orange", new_shape="square", area="center")),
    ("Draw a green diamond in the lower-left corner.", dict(op="add", new_color="green", new_shape="diamond", area="bottom left")),
    ("can you add a tiny white star?", dict(op="add", new_color="white", new_shape="star")),
    ("I want a purple square at the bottom right", dict(op="add", new_color="purple", new_shape="square", area="bottom right")),
    ("place a black circle top-left", dict(op="add", new_color="black", new_shape="circle", area="top left")),
    ("use a white star instead of the blue circle", dict(op="local", ref=("blue", "circle"), new_color="white", new_shape="star")),
    ("substitute a red box for the yellow triangle", dict(op="local", ref=("yellow", "triangle"), new_color="red", new_shape="square")),
    ("the triangle should become a purple diamond", dict(op="local", ref=(None, "triangle"), new_color="purple", new_shape="diamond")),
    ("I'd like the orange star to be a black circle", dict(op="local", ref=("orange", "star"), new_color="black", new_shape="circle")),
    ("put a green square where the red dot is", dict(op="local", ref=("red", "circle"), new_color="green", new_shape="square")),
    ("Paint the box red.", dict(op="color", ref=(None, "square"), new_color="red")),
    ("recolor the yellow star to orange", dict(op="color", ref=("yellow", "star"), new_color="orange")),
    ("the blue ball should be red", dict(op="color", ref=("blue", "circle"), new_color="red")),
    ("change the circle from red to blue", dict(op="color", ref=("red", "circle"), new_color="blue")),
    ("turn the red circle into a blue one", dict(op="color", ref=("red", "circle"), new_color="blue")),
    ("make the star yellow instead of black", dict(op="color", ref=("black", "star"), new_color="yellow")),
    ("give the square a purple colour", dict(op="color", ref=(None, "square"), new_color="purple")),
    ("enlarge the blue star", dict(op="size", ref=("blue", "star"), bigger=True)),
    ("shrink the box", dict(op="size", ref=(None, "square"), bigger=False)),
    ("Could you make the green diamond a tiny bit smaller?", dict(op="size", ref=("green", "diamond"), bigger=False)),
    ("increase the size of the orange ball", dict(op="size", ref=("orange", "circle"), bigger=True)),
    ("the yellow triangle is too big, make it smaller", dict(op="size", ref=("yellow", "triangle"), bigger=False)),
    ("make the small star large", dict(op="size", ref=(None, "star"), bigger=True)),
    ("scale down the purple square", dict(op="size", ref=("purple", "square"), bigger=False)),
    ("background should be beige", dict(op="background", background=("beige", None))),
    ("I want a grey background", dict(op="background", background=("gray", None))),
    ("paint the backdrop light green", dict(op="background", background=("light green", None))),
    ("give it a gradient background from black to white", dict(op="background", background=("black", "white"))),
    ("change the white background to a gray one", dict(op="background", background=("gray", None))),
    ("Turn the background into a gradient going from beige at the top to sky blue at the bottom.", dict(op="background", background=("beige", "sky blue"))),
    ("set the background colour to sky blue", dict(op="background", background=("sky blue", None))),
    ("REMOVE THE RED CIRCLE!!!", dict(op="remove", ref=("red", "circle"))),
    ("red star in the bottom right, please", dict(op="add", new_color="red", new_shape="star", area="bottom right")),
    ("Convert the purple triangle to a green one", dict(op="color", ref=("purple", "triangle"), new_color="green")),
    ("let's have an orange ball in the top right", dict(op="add", new_color="orange", new_shape="circle", area="top right")),
    ("the circle needs to go", dict(op="remove", ref=(None, "circle"))),
]

# Written afterwards as held-out sets, each scored once before any parser change it prompted.
# First-run scores: HELD_OUT_1 31/36 (misses then fixed: "lose", "no more", "don't want ... remove it",
# apposition "another star, a green one", "black at the top and white at the bottom"); HELD_OUT_2 34/34
# (written after those fixes); HELD_OUT_3 33/36 (misses then fixed: "has got to go", "get rid of X and
# put Y there instead", "I'd rather have X than Y"); HELD_OUT_4 29/30 (2026-11-25, after 6 generator
# phrasings were dropped from its 36; the miss then fixed: "can we drop the green box?"); HELD_OUT_5 18/19 (2026-11-25, after 17 generator
# phrasings were dropped from its 36; the miss then fixed: "the yellow circle is too big", a complaint read
# as "bigger"); HELD_OUT_6 33/35 (2026-11-25, written after that fix; the misses then fixed: "hide the
# orange star", "add star, red, top left"); HELD_OUT_7 32/36 (2026-11-25, written after those fixes; the
# misses then fixed: "would it be possible to remove ...", "the image shouldn't have the black dot", "by
# removing the white triangle", "everything behind the shapes"). Phrasings the generator can produce were dropped
# from all lists (see test_handwritten_not_from_generator).
HELD_OUT_1 = [
    ("Please could you delete the yellow dot?", dict(op="remove", ref=("yellow", "circle"))),
    ("lose the orange triangle", dict(op="remove", ref=("orange", "triangle"))),
    ("Eliminate the big blue diamond from the scene.", dict(op="remove", ref=("blue", "diamond"))),
    ("wipe out the black ball", dict(op="remove", ref=("black", "circle"))),
    ("no more white box please", dict(op="remove", ref=("white", "square"))),
    ("Can the green star be removed?", dict(op="remove", ref=("green", "star"))),
    ("i don't want the red square anymore, remove it", dict(op="remove", ref=("red", "square"))),
    ("Could you add one purple diamond to the bottom left corner of the picture?", dict(op="add", new_color="purple", new_shape="diamond", area="bottom left")),
    ("a large white ball in the upper left would be nice", dict(op="add", new_color="white", new_shape="circle", area="top left")),
    ("Include a black star right in the middle.", dict(op="add", new_color="black", new_shape="star", area="center")),
    ("in the lower right corner, draw a small yellow box", dict(op="add", new_color="yellow", new_shape="square", area="bottom right")),
    ("Add another star, a green one, at the top right", dict(op="add", new_color="green", new_shape="star", area="top right")),
    ("create a blue circle in the centre of the image", dict(op="add", new_color="blue", new_shape="circle", area="center")),
    ("Can you put a red diamond in the top right hand corner?", dict(op="add", new_color="red", new_shape="diamond", area="top right")),
    ("exchange the blue triangle for a white star", dict(op="local", ref=("blue", "triangle"), new_color="white", new_shape="star")),
    ("The orange ball should be replaced by a purple box.", dict(op="local", ref=("orange", "circle"), new_color="purple", new_shape="square")),
    ("instead of the black star, I'd like a red triangle", dict(op="local", ref=("black", "star"), new_color="red", new_shape="triangle")),
    ("replace the star by a ball", dict(op="local", ref=(None, "star"), new_color=None, new_shape="circle")),
    ("switch the purple square for an orange star", dict(op="local", ref=("purple", "square"), new_color="orange", new_shape="star")),
    ("recolour the ball red", dict(op="color", ref=(None, "circle"), new_color="red")),
    ("I want the box to be orange", dict(op="color", ref=(None, "square"), new_color="orange")),
    ("Paint the black star purple.", dict(op="color", ref=("black", "star"), new_color="purple")),
    ("change the red triangle's color to green", dict(op="color", ref=("red", "triangle"), new_color="green")),
    ("the square ought to be blue", dict(op="color", ref=(None, "square"), new_color="blue")),
    ("could you shrink the red ball?", dict(op="size", ref=("red", "circle"), bigger=False)),
    ("the orange box should be bigger", dict(op="size", ref=("orange", "square"), bigger=True)),
    ("Grow the white diamond.", dict(op="size", ref=("white", "diamond"), bigger=True)),
    ("reduce the size of the star", dict(op="size", ref=(None, "star"), bigger=False)),
    ("make the big yellow circle small", dict(op="size", ref=("yellow", "circle"), bigger=False)),
    ("swap the background for a light green one", dict(op="background", background=("light green", None))),
    ("Change the backdrop to a gradient from sky blue to white", dict(op="background", background=("sky blue", "white"))),
    ("the background should fade from black to gray", dict(op="background", background=("black", "gray"))),
    ("use a white background", dict(op="background", background=("white", None))),
    ("recolor the background to sky blue", dict(op="background", background=("sky blue", None))),
    ("Make the background black at the top and white at the bottom", dict(op="background", background=("black", "white"))),
    ("get rid of the small green triangle, thanks", dict(op="remove", ref=("green", "triangle"))),
]

HELD_OUT_2 = [
    ("The red triangle has to be deleted.", dict(op="remove", ref=("red", "triangle"))),
    ("Hey, can you erase that purple dot for me?", dict(op="remove", ref=("purple", "circle"))),
    ("Please, get rid of the big black box!", dict(op="remove", ref=("black", "square"))),
    ("Take away the yellow star, would you?", dict(op="remove", ref=("yellow", "star"))),
    ("I'd prefer the picture without the orange ball", dict(op="remove", ref=("orange", "circle"))),
    ("delete the blue one", dict(op="remove", ref=("blue", None))),
    ("A small green triangle should be added in the bottom right.", dict(op="add", new_color="green", new_shape="triangle", area="bottom right")),
    ("Put an orange dot near the top left corner", dict(op="add", new_color="orange", new_shape="circle", area="top left")),
    ("draw me a big purple star", dict(op="add", new_color="purple", new_shape="star")),
    ("Add a blue square to the upper-right.", dict(op="add", new_color="blue", new_shape="square", area="top right")),
    ("at the bottom left add a tiny red ball", dict(op="add", new_color="red", new_shape="circle", area="bottom left")),
    ("I'd like a yellow diamond in the middle of the picture", dict(op="add", new_color="yellow", new_shape="diamond", area="center")),
    ("Replace the white star with a green triangle, please.", dict(op="local", ref=("white", "star"), new_color="green", new_shape="triangle")),
    ("can the blue box become a red ball?", dict(op="local", ref=("blue", "square"), new_color="red", new_shape="circle")),
    ("put a purple star in place of the yellow box", dict(op="local", ref=("yellow", "square"), new_color="purple", new_shape="star")),
    ("i want a red circle instead of the blue star", dict(op="local", ref=("blue", "star"), new_color="red", new_shape="circle")),
    ("Could you paint the dot orange?", dict(op="color", ref=(None, "circle"), new_color="orange")),
    ("the star needs to be white", dict(op="color", ref=(None, "star"), new_color="white")),
    ("Recolor the green diamond red", dict(op="color", ref=("green", "diamond"), new_color="red")),
    ("turn the purple ball into a yellow one please", dict(op="color", ref=("purple", "circle"), new_color="yellow")),
    ("switch the color of the triangle to black", dict(op="color", ref=(None, "triangle"), new_color="black")),
    ("Make the blue ball smaller, please!", dict(op="size", ref=("blue", "circle"), bigger=False)),
    ("Enlarge the triangle.", dict(op="size", ref=(None, "triangle"), bigger=True)),
    ("can you shrink the orange star a little?", dict(op="size", ref=("orange", "star"), bigger=False)),
    ("the purple diamond is too small, make it larger", dict(op="size", ref=("purple", "diamond"), bigger=True)),
    ("make the red dot tiny", dict(op="size", ref=("red", "circle"), bigger=False)),
    ("increase the green box's size", dict(op="size", ref=("green", "square"), bigger=True)),
    ("background: sky blue", dict(op="background", background=("sky blue", None))),
    ("Give the image a beige background.", dict(op="background", background=("beige", None))),
    ("turn the background into a black to light green gradient", dict(op="background", background=("black", "light green"))),
    ("I want a gradient background, white to gray", dict(op="background", background=("white", "gray"))),
    ("Could you change the sky blue background to black?", dict(op="background", background=("black", None))),
    ("make the backdrop a gradient from beige to sky blue", dict(op="background", background=("beige", "sky blue"))),
    ("paint the background a gray to white gradient please", dict(op="background", background=("gray", "white"))),
]

HELD_OUT_3 = [
    ("Could you please get the green diamond out of the picture?", dict(op="remove", ref=("green", "diamond"))),
    ("That white star has got to go.", dict(op="remove", ref=("white", "star"))),
    ("erase the tiny orange box in the corner", dict(op="remove", ref=("orange", "square"))),
    ("We don't need the black triangle, delete it.", dict(op="remove", ref=("black", "triangle"))),
    ("remove the ball from the image, please and thank you", dict(op="remove", ref=(None, "circle"))),
    ("Make the yellow circle disappear", dict(op="remove", ref=("yellow", "circle"))),
    ("Please add, in the top left corner, a purple triangle.", dict(op="add", new_color="purple", new_shape="triangle", area="top left")),
    ("Stick a small white box in the lower left.", dict(op="add", new_color="white", new_shape="square", area="bottom left")),
    ("I need a red diamond in the top-right", dict(op="add", new_color="red", new_shape="diamond", area="top right")),
    ("Could there be an orange star in the center?", dict(op="add", new_color="orange", new_shape="star", area="center")),
    ("a black ball should appear at the bottom right", dict(op="add", new_color="black", new_shape="circle", area="bottom right")),
    ("Draw one more shape: a green circle, upper right.", dict(op="add", new_color="green", new_shape="circle", area="top right")),
    ("Put in a large blue diamond.", dict(op="add", new_color="blue", new_shape="diamond")),
    ("Get rid of the star and put a yellow ball there instead", dict(op="local", ref=(None, "star"), new_color="yellow", new_shape="circle")),
    ("Replace that purple dot by a white triangle.", dict(op="local", ref=("purple", "circle"), new_color="white", new_shape="triangle")),
    ("I'd rather have a black square than the orange diamond", dict(op="local", ref=("orange", "diamond"), new_color="black", new_shape="square")),
    ("Change the green triangle so that it is a red star", dict(op="local", ref=("green", "triangle"), new_color="red", new_shape="star")),
    ("Can you swap out the blue ball for a box?", dict(op="local", ref=("blue", "circle"), new_color="blue", new_shape="square")),
    ("the diamond: turn it into a white circle", dict(op="local", ref=(None, "diamond"), new_color="white", new_shape="circle")),
    ("Change only the colour of the star, to orange.", dict(op="color", ref=(None, "star"), new_color="orange")),
    ("I want the red box to be yellow instead.", dict(op="color", ref=("red", "square"), new_color="yellow")),
    ("Could you recolour the circle in green?", dict(op="color", ref=(None, "circle"), new_color="green")),
    ("give the purple triangle a white colour", dict(op="color", ref=("purple", "triangle"), new_color="white")),
    ("The black diamond should be painted blue.", dict(op="color", ref=("black", "diamond"), new_color="blue")),
    ("turn the color of the ball to purple", dict(op="color", ref=(None, "circle"), new_color="purple")),
    ("Make the dot a larger size", dict(op="size", ref=(None, "circle"), bigger=True)),
    ("the white star is too large; please shrink it", dict(op="size", ref=("white", "star"), bigger=False)),
    ("Scale up the green square.", dict(op="size", ref=("green", "square"), bigger=True)),
    ("make the orange triangle much smaller", dict(op="size", ref=("orange", "triangle"), bigger=False)),
    ("Could you make the box a little bit bigger please?", dict(op="size", ref=(None, "square"), bigger=True)),
    ("Change the background to a beige colour.", dict(op="background", background=("beige", None))),
    ("switch the background to light green", dict(op="background", background=("light green", None))),
    ("I'd like a sky blue to white gradient as the background.", dict(op="background", background=("sky blue", "white"))),
    ("Make the whole background black", dict(op="background", background=("black", None))),
    ("background gradient from gray to beige, please", dict(op="background", background=("gray", "beige"))),
    ("Could the background be white instead?", dict(op="background", background=("white", None))),
]

HELD_OUT_4 = [
    ("Please take the orange diamond off the canvas", dict(op="remove", ref=("orange", "diamond"))),
    ("erase that small white dot", dict(op="remove", ref=("white", "circle"))),
    ("can we drop the green box?", dict(op="remove", ref=("green", "square"))),
    ("the purple star must be deleted", dict(op="remove", ref=("purple", "star"))),
    ("clear out the yellow triangle", dict(op="remove", ref=("yellow", "triangle"))),
    ("make the blue diamond vanish", dict(op="remove", ref=("blue", "diamond"))),
    ("add an orange diamond near the lower right corner", dict(op="add", new_color="orange", new_shape="diamond", area="bottom right")),
    ("could you draw a little black star up in the top-right?", dict(op="add", new_color="black", new_shape="star", area="top right")),
    ("insert a big purple ball right in the middle", dict(op="add", new_color="purple", new_shape="circle", area="center")),
    ("there needs to be a white triangle in the upper-left area", dict(op="add", new_color="white", new_shape="triangle", area="top left")),
    ("Place one yellow square at the bottom left.", dict(op="add", new_color="yellow", new_shape="square", area="bottom left")),
    ("swap the black circle out for a white diamond", dict(op="local", ref=("black", "circle"), new_color="white", new_shape="diamond")),
    ("I'd like a purple star in place of the red square", dict(op="local", ref=("red", "square"), new_color="purple", new_shape="star")),
    ("turn that yellow ball into a black triangle please", dict(op="local", ref=("yellow", "circle"), new_color="black", new_shape="triangle")),
    ("the white box should be a red circle instead", dict(op="local", ref=("white", "square"), new_color="red", new_shape="circle")),
    ("recolour the diamond orange", dict(op="color", ref=(None, "diamond"), new_color="orange")),
    ("the star ought to be green", dict(op="color", ref=(None, "star"), new_color="green")),
    ("give the red ball a blue colour instead", dict(op="color", ref=("red", "circle"), new_color="blue")),
    ("change the orange star's colour to purple", dict(op="color", ref=("orange", "star"), new_color="purple")),
    ("the green triangle is too small, make it bigger", dict(op="size", ref=("green", "triangle"), bigger=True)),
    ("I want the blue dot to be larger", dict(op="size", ref=("blue", "circle"), bigger=True)),
    ("reduce the white star in size", dict(op="size", ref=("white", "star"), bigger=False)),
    ("can you enlarge the box?", dict(op="size", ref=(None, "square"), bigger=True)),
    ("shrink down the red triangle", dict(op="size", ref=("red", "triangle"), bigger=False)),
    ("put the whole thing on a black background", dict(op="background", background=("black", None))),
    ("I'd like the background to be light green", dict(op="background", background=("light green", None))),
    ("give it a white to beige gradient background", dict(op="background", background=("white", "beige"))),
    ("swap the background for sky blue", dict(op="background", background=("sky blue", None))),
    ("the backdrop should be gray", dict(op="background", background=("gray", None))),
    ("make the background fade from black at the top to gray at the bottom", dict(op="background", background=("black", "gray"))),
]

HELD_OUT_5 = [
    ("pls remove the dot", dict(op="remove", ref=(None, "circle"))),
    ("Could you take away the large green box, please?", dict(op="remove", ref=("green", "square"))),
    ("get rid of that blue triangle!", dict(op="remove", ref=("blue", "triangle"))),
    ("the yellow diamond has to go", dict(op="remove", ref=("yellow", "diamond"))),
    ("add a tiny red triangle in the top left corner", dict(op="add", new_color="red", new_shape="triangle", area="top left")),
    ("please add one small white diamond to the lower left", dict(op="add", new_color="white", new_shape="diamond", area="bottom left")),
    ("place a huge purple circle top right", dict(op="add", new_color="purple", new_shape="circle", area="top right")),
    ("convert the green square to a yellow circle", dict(op="local", ref=("green", "square"), new_color="yellow", new_shape="circle")),
    ("replace the purple triangle by a green star", dict(op="local", ref=("purple", "triangle"), new_color="green", new_shape="star")),
    ("change the red diamond into a white triangle, thanks", dict(op="local", ref=("red", "diamond"), new_color="white", new_shape="triangle")),
    ("paint the square purple", dict(op="color", ref=(None, "square"), new_color="purple")),
    ("make the large blue square small", dict(op="size", ref=("blue", "square"), bigger=False)),
    ("make the small green ball big", dict(op="size", ref=("green", "circle"), bigger=True)),
    ("scale down the orange triangle", dict(op="size", ref=("orange", "triangle"), bigger=False)),
    ("the yellow circle is too big", dict(op="size", ref=("yellow", "circle"), bigger=False)),
    ("set the background to beige", dict(op="background", background=("beige", None))),
    ("make the background go from sky blue to white", dict(op="background", background=("sky blue", "white"))),
    ("background: black to gray gradient", dict(op="background", background=("black", "gray"))),
    ("use a white background", dict(op="background", background=("white", None))),
]

HELD_OUT_6 = [
    ("I need you to remove the purple circle", dict(op="remove", ref=("purple", "circle"))),
    ("Can the red square be removed?", dict(op="remove", ref=("red", "square"))),
    ("no more triangle please", dict(op="remove", ref=(None, "triangle"))),
    ("wipe out the black diamond", dict(op="remove", ref=("black", "diamond"))),
    ("hide the orange star", dict(op="remove", ref=("orange", "star"))),
    ("let's lose the white box", dict(op="remove", ref=("white", "square"))),
    ("add star, red, top left", dict(op="add", new_color="red", new_shape="star", area="top left")),
    ("I want a green diamond in the bottom-right corner", dict(op="add", new_color="green", new_shape="diamond", area="bottom right")),
    ("can there be a small blue circle in the middle?", dict(op="add", new_color="blue", new_shape="circle", area="center")),
    ("stick a yellow triangle in the upper right", dict(op="add", new_color="yellow", new_shape="triangle", area="top right")),
    ("include a black square at the lower left", dict(op="add", new_color="black", new_shape="square", area="bottom left")),
    ("put in an orange dot", dict(op="add", new_color="orange", new_shape="circle")),
    ("blue square to red circle", dict(op="local", ref=("blue", "square"), new_color="red", new_shape="circle")),
    ("exchange the green star for a purple box", dict(op="local", ref=("green", "star"), new_color="purple", new_shape="square")),
    ("make a white diamond out of the red triangle", dict(op="local", ref=("red", "triangle"), new_color="white", new_shape="diamond")),
    ("instead of the yellow ball I want a blue star", dict(op="local", ref=("yellow", "circle"), new_color="blue", new_shape="star")),
    ("the orange square should become a green triangle", dict(op="local", ref=("orange", "square"), new_color="green", new_shape="triangle")),
    ("recolor circle to red", dict(op="color", ref=(None, "circle"), new_color="red")),
    ("the triangle needs to be blue", dict(op="color", ref=(None, "triangle"), new_color="blue")),
    ("let the star be orange", dict(op="color", ref=(None, "star"), new_color="orange")),
    ("fill the white square with black", dict(op="color", ref=("white", "square"), new_color="black")),
    ("i'd prefer the diamond in yellow", dict(op="color", ref=(None, "diamond"), new_color="yellow")),
    ("switch the purple ball to green", dict(op="color", ref=("purple", "circle"), new_color="green")),
    ("bigger star please", dict(op="size", ref=(None, "star"), bigger=True)),
    ("double the size of the red box", dict(op="size", ref=("red", "square"), bigger=True)),
    ("halve the green circle", dict(op="size", ref=("green", "circle"), bigger=False)),
    ("make the blue triangle grow", dict(op="size", ref=("blue", "triangle"), bigger=True)),
    ("shrink the diamond a little", dict(op="size", ref=(None, "diamond"), bigger=False)),
    ("increase the size of the yellow star", dict(op="size", ref=("yellow", "star"), bigger=True)),
    ("background black", dict(op="background", background=("black", None))),
    ("replace the background with a sky blue one", dict(op="background", background=("sky blue", None))),
    ("I want a beige backdrop", dict(op="background", background=("beige", None))),
    ("recolour the background gray", dict(op="background", background=("gray", None))),
    ("gradient background from white (top) to black (bottom)", dict(op="background", background=("white", "black"))),
    ("make the background light-green to beige", dict(op="background", background=("light green", "beige"))),
]

HELD_OUT_7 = [
    ("Would it be possible to remove the orange circle?", dict(op="remove", ref=("orange", "circle"))),
    ("I'd like the green star gone", dict(op="remove", ref=("green", "star"))),
    ("purple square: remove", dict(op="remove", ref=("purple", "square"))),
    ("the image shouldn't have the black dot", dict(op="remove", ref=("black", "circle"))),
    ("eliminate that big yellow diamond", dict(op="remove", ref=("yellow", "diamond"))),
    ("clean up the picture by removing the white triangle", dict(op="remove", ref=("white", "triangle"))),
    ("bottom right: add a green star", dict(op="add", new_color="green", new_shape="star", area="bottom right")),
    ("Add to the upper-left corner a small purple box", dict(op="add", new_color="purple", new_shape="square", area="top left")),
    ("could you add in a red diamond near the centre?", dict(op="add", new_color="red", new_shape="diamond", area="center")),
    ("a yellow ball should appear at the top right", dict(op="add", new_color="yellow", new_shape="circle", area="top right")),
    ("new object: blue triangle, lower left", dict(op="add", new_color="blue", new_shape="triangle", area="bottom left")),
    ("draw me a black star", dict(op="add", new_color="black", new_shape="star")),
    ("swap out the red circle and put in an orange square", dict(op="local", ref=("red", "circle"), new_color="orange", new_shape="square")),
    ("where the blue diamond is, put a white star", dict(op="local", ref=("blue", "diamond"), new_color="white", new_shape="star")),
    ("the green box becomes a purple ball", dict(op="local", ref=("green", "square"), new_color="purple", new_shape="circle")),
    ("morph the yellow triangle into a red circle", dict(op="local", ref=("yellow", "triangle"), new_color="red", new_shape="circle")),
    ("I want the black star replaced by a green diamond", dict(op="local", ref=("black", "star"), new_color="green", new_shape="diamond")),
    ("recolor: circle -> orange", dict(op="color", ref=(None, "circle"), new_color="orange")),
    ("can the square be made red?", dict(op="color", ref=(None, "square"), new_color="red")),
    ("the diamond, but in purple", dict(op="color", ref=(None, "diamond"), new_color="purple")),
    ("tint the white star yellow", dict(op="color", ref=("white", "star"), new_color="yellow")),
    ("give the triangle a green color", dict(op="color", ref=(None, "triangle"), new_color="green")),
    ("make the orange circle blue-colored", dict(op="color", ref=("orange", "circle"), new_color="blue")),
    ("enlarge the purple diamond please", dict(op="size", ref=("purple", "diamond"), bigger=True)),
    ("make the green star a lot smaller", dict(op="size", ref=("green", "star"), bigger=False)),
    ("the red box could be bigger", dict(op="size", ref=("red", "square"), bigger=True)),
    ("reduce the size of the circle", dict(op="size", ref=(None, "circle"), bigger=False)),
    ("upscale the white triangle", dict(op="size", ref=("white", "triangle"), bigger=True)),
    ("make the yellow ball huge", dict(op="size", ref=("yellow", "circle"), bigger=True)),
    ("background -> black", dict(op="background", background=("black", None))),
    ("I'd prefer a gray background", dict(op="background", background=("gray", None))),
    ("repaint the background sky blue", dict(op="background", background=("sky blue", None))),
    ("set a beige to white gradient as the background", dict(op="background", background=("beige", "white"))),
    ("the background should go from light green at the top to gray at the bottom", dict(op="background", background=("light green", "gray"))),
    ("make everything behind the shapes white", dict(op="background", background=("white", None))),
    ("change the backdrop to a black-to-sky-blue gradient", dict(op="background", background=("black", "sky blue"))),
]

HANDWRITTEN = DEV + HELD_OUT_1 + HELD_OUT_2 + HELD_OUT_3 + HELD_OUT_4 + HELD_OUT_5 + HELD_OUT_6 + HELD_OUT_7


def _handwritten_mismatch(describer, text: str, exp: dict) -> str | None:
    d = describer(text)
    it = d.intent
    if it is None:
        return f"error {d.error!r}"
    got: dict = {"op": it.op}
    if "ref" in exp:
        got["ref"] = None if it.target is None else (it.target.color, it.target.shape)
    for k in ("new_color", "new_shape", "area", "bigger", "background"):
        if k in exp:
            got[k] = getattr(it, k)
    return None if got == exp else f"got {got}, expected {exp}"


@pytest.mark.parametrize("name", ["DEV", *(f"HELD_OUT_{k}" for k in range(1, 8)), "HANDWRITTEN"])
def test_handwritten_phrasings(describer, name):
    cases = globals()[name]
    fails = [(t, m) for t, e in cases if (m := _handwritten_mismatch(describer, t, e)) is not None]
    acc = 1 - len(fails) / len(cases)
    print(f"\nhand-written {name}: {len(cases) - len(fails)}/{len(cases)} = {acc:.3f}")
    for t, m in fails:
        print(f"  FAIL {t!r}: {m}")
    assert acc >= 0.90


# The generator's instruction templates (regionedit.world.language) as one regular expression.
def _alt(words):
    return "(?:" + "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True)) + ")"

_C = _alt(list(spec.OBJECT_COLORS) + list(spec.BACKGROUND_COLORS) + ["grey"])
_S = _alt([w for ws in SHAPE_SYNONYMS.values() for w in ws])
_REF = rf"(?:the )?(?:(?:small|large) )?(?:{_C} )?{_S}"
_NEW = rf"an? (?:(?:small|large) )?(?:{_C} )?{_S}"
_AREA = _alt([p for ps in AREA_PHRASES.values() for p in ps])
_COLOUR = "colou?r"
_TEMPLATES = [
    rf"{_alt(VERBS['remove'])} {_REF}(?: from the (?:image|picture))?",
    rf"take {_REF} away",
    rf"{_alt(VERBS['add'])} {_NEW}(?: {_AREA}| to the image| somewhere)?",
    rf"{_AREA}, {_alt(VERBS['add'])} {_NEW}",
    rf"(?:change {_REF} (?:into|to)|(?:turn|transform|convert) {_REF} into|make {_REF}|replace {_REF} with|swap {_REF} (?:for|with)) {_NEW}",
    rf"(?:make|turn|colou?r) {_REF} {_C}(?: instead)?",
    rf"(?:change|convert) {_REF} to {_C}",
    rf"change the {_COLOUR} of {_REF} to {_C}",
    rf"make {_REF}(?: a bit| a little)? (?:bigger|larger|smaller|tinier)",
    rf"(?:change the background(?: {_COLOUR})? to|make the background|turn the background) {_C}(?: instead)?",
    rf"(?:make the background|change the background (?:to|into)) an? {_C} to {_C} gradient",
    rf"turn the background into a gradient from {_C} to {_C}",
]
_GENERATOR_RE = re.compile(
    r"^(?:please |could you please |could you |can you |would you |kindly )?(?:" + "|".join(_TEMPLATES) + r")(?: please)?[.!?]?$"
)

def _generator_could_say(text: str) -> bool:
    return _GENERATOR_RE.match(text.lower()) is not None


def test_handwritten_not_from_generator(samples):
    assert all(_generator_could_say(s.instruction) for s in samples)  # the expression covers the generator
    assert len(HANDWRITTEN) >= 40
    assert not [t for t, _ in HANDWRITTEN if _generator_could_say(t)]


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_instruction_raises(describer, text):
    with pytest.raises(ValueError, match="instruction is empty: give an edit instruction"):
        describer(text)
    with pytest.raises(ValueError, match="give an edit instruction"):
        parse_intent(text)


@pytest.mark.parametrize(
    "text",
    [
        "hello there",
        "asdf qwerty",
        "what a lovely day",
        "move the star to the left",  # not an edit of the world
        "make the pink circle blue",  # not a colour of the world
        "don't remove the star",
        "make the background a gradient",  # gradient with one colour
        "!!!",
    ],
)
def test_unparseable_returns_error(describer, text):
    d = describer(text, "a red circle and a blue star on a white background")
    assert d.intent is None
    assert isinstance(d.error, str) and "could not understand" in d.error
    assert d.local_prompt == ""
    json.dumps(d.to_dict())


def test_absent_and_ambiguous_referents(describer):
    cap = "a small red circle, a large blue star and a red square on a white background"
    d = describer("remove the green star", cap)
    assert d.intent is not None and d.intent.op == "remove"
    assert "no green star" in d.error and d.target_description == cap
    d = describer("make the red one bigger", cap)
    assert "ambiguous" in d.error and d.target_description == cap
    d = describer("make it bigger")  # a pronoun needs a caption to resolve
    assert d.intent is not None and d.error is not None
    d = describer("make it bigger", "a small red circle on a beige background")
    assert d.error is None and d.target_description == "a large red circle on a beige background"


def test_world_palette_is_enforced(describer):
    assert "not a background colour" in describer("make the background red").error
    assert "not an object colour" in describer("add a beige star").error


# --------------------------------------------------------------------------------------------------
# Descriptions, prompts and captions
# --------------------------------------------------------------------------------------------------

CAP = "a small red circle, a large blue star and a green square on a white background"


@pytest.mark.parametrize(
    "instruction, target, local_prompt, referent",
    [
        ("remove the star", "a small red circle and a green square on a white background", "background", "blue star"),
        ("Add a small yellow star in the top left!", "a small yellow star, a small red circle, a large blue star and "
         "a green square on a white background", "a small yellow star", None),
        ("add an orange diamond", "a small red circle, a large blue star, a green square and an orange diamond on a "
         "white background", "an orange diamond", None),
        ("turn the red ball into a triangle", "a small red triangle, a large blue star and a green square on a white "
         "background", "a red triangle", "red circle"),
        ("please make the box purple", "a small red circle, a large blue star and a purple square on a white "
         "background", "a purple square", "green square"),
        ("make the blue star smaller", "a small red circle, a small blue star and a green square on a white "
         "background", "a small blue star", "blue star"),
        ("change the background to black", "a small red circle, a large blue star and a green square on a black "
         "background", "a black background", "background"),
        ("make the background a white to sky blue gradient", "a small red circle, a large blue star and a green "
         "square on a white to sky blue background", "a white to sky blue background", "background"),
    ],
)  # fmt: skip
def test_descriptions(describer, instruction, target, local_prompt, referent):
    d = describer(instruction, CAP)
    assert d.error is None
    assert (d.target_description, d.local_prompt, d.referent_text) == (target, local_prompt, referent)
    assert json.loads(json.dumps(d.to_dict()))["target_description"] == target


def test_descriptions_without_caption(describer):
    d = describer("replace the green ball with an orange diamond")
    assert (d.target_description, d.local_prompt, d.referent_text) == ("an orange diamond", "an orange diamond", "green circle")
    d = describer("take the purple ball away")
    assert (d.target_description, d.local_prompt, d.referent_text) == ("background", "background", "purple circle")


def test_removing_the_last_object(describer):
    d = describer("delete the dot", "a small black circle on a gray to sky blue background")
    assert d.target_description == "a gray to sky blue background"


def test_caption_round_trip():
    bg = Background("gray", "sky blue")
    objs = (WorldObject("star", "orange", 0.7, 0.3, 0.1), WorldObject("circle", "red", 0.2, 0.5, 0.18))
    scene = Scene(bg, objs)
    for size_words in (0.0, 1.0):
        text = caption(scene, size_words=size_words)
        parsed_objs, parsed_bg = parse_caption(text)
        assert parsed_bg == ("gray", "sky blue")
        assert format_caption(parsed_objs, parsed_bg) == text
    assert parse_caption("A Small Red Circle and a grey star on a Beige background.") == (
        [Referent("red", "circle", "small"), Referent("gray", "star", None)],
        ("beige", None),
    )
    assert parse_caption("a white background") == ([], ("white", None))
    with pytest.raises(ValueError, match="not a shapes-world caption"):
        parse_caption("a photo of a cat")


@pytest.mark.parametrize(
    "caption, objects, background",
    [
        ("red circle, blue star, white background", [("red", "circle", None), ("blue", "star", None)], ("white", None)),
        ("a purple diamond on white", [("purple", "diamond", None)], ("white", None)),
        ("a gradient background from beige to black with a red ball", [("red", "circle", None)], ("beige", "black")),
        ("The background is sky blue; there is a tiny yellow star and a big black box.",
         [("yellow", "star", "small"), ("black", "square", "large")], ("sky blue", None)),
        ("two shapes: a green dot and an orange triangle, background light green",
         [("green", "circle", None), ("orange", "triangle", None)], ("light green", None)),
        # held-out wordings (2026-11-25; 5 of 15 failed before: an Oxford comma, a word before the colour,
        # "fading from", a gradient without "background", a preposition other than "on")
        ("A small red circle, a large blue star, and a green square on a white background.",
         [("red", "circle", "small"), ("blue", "star", "large"), ("green", "square", None)], ("white", None)),
        ("a large purple diamond over a beige background", [("purple", "diamond", "large")], ("beige", None)),
        ("a red triangle on a background fading from sky blue to white", [("red", "triangle", None)],
         ("sky blue", "white")),
        ("a green star against a light green to beige gradient", [("green", "star", None)], ("light green", "beige")),
        ("a red star on a plain beige background", [("red", "star", None)], ("beige", None)),
        ("a red star in front of a black background", [("red", "star", None)], ("black", None)),
    ],
)
def test_captions_in_other_words(caption, objects, background):
    assert parse_caption(caption) == ([Referent(*o) for o in objects], background)


def test_unreadable_caption_is_a_note_not_an_error(describer):
    d = describer("remove the red circle", "a photo of a cat")
    assert d.error is None and d.local_prompt == "background" and any("caption set aside" in n for n in d.notes)
    assert d.target_description == describer("remove the red circle").target_description
    d = describer("remove the green star", "red circle, blue star, white background")  # read: not in it
    assert d.error is not None and not d.notes


def test_caption_round_trip_generated(samples):
    for s in samples[:300]:
        for text in (s.source_caption, s.target_caption):
            assert format_caption(*parse_caption(text)) == text


def test_describer_protocol(describer):
    assert isinstance(describer, Describer)
    with pytest.raises(ValueError, match="unknown edit op"):
        EditIntent("explode")


# --------------------------------------------------------------------------------------------------
# LLM backend with a tiny random GPT-2 and the world tokenizer (built offline)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from regionedit.world.training.tokenizer import build_world_tokenizer

    tok = build_world_tokenizer(
        vocab_size=300,
        corpus=[
            "remove the red circle",
            "a small red circle and a blue star on a white background",
            '{"target_description": "a white background", "local_prompt": "background", "referent": null}',
        ],
    )
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=32, n_positions=512, vocab_size=len(tok),
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("tiny_lm")
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llm(tiny_lm_dir):
    from regionedit.world.lm_describer import TransformersDescriber

    return TransformersDescriber(tiny_lm_dir, max_new_tokens=12)


def test_llm_loads_runs_and_falls_back(llm, describer):
    ins, cap = "turn the red ball into a triangle", CAP
    d = llm(ins, cap)
    ref = describer(ins, cap)
    assert isinstance(llm.last_output, str)
    # a random model writes garbage: the rule-based description is used (no error: the edit goes on) and a
    # note says so
    assert d.error is None and any("could not be used" in n for n in d.notes)
    assert (d.local_prompt, d.referent_text, d.target_description) == (
        ref.local_prompt, ref.referent_text, ref.target_description
    )  # fmt: skip
    assert d.intent == ref.intent
    first = llm.last_output
    llm(ins, cap)
    assert llm.last_output == first  # greedy: deterministic
    with pytest.raises(ValueError, match="give an edit instruction"):
        llm("  ")


def test_llm_uses_a_readable_answer(llm, monkeypatch):
    answer = 'Sure! {"target_description": "a red triangle on a white background", "local_prompt": "a red triangle", "referent": "red circle"} done'
    monkeypatch.setattr(llm, "generate", lambda prompt: answer)
    d = llm("turn the red ball into a triangle", "a red circle on a white background")
    assert d.error is None
    assert (d.target_description, d.local_prompt, d.referent_text) == (
        "a red triangle on a white background", "a red triangle", "red circle"
    )  # fmt: skip
    monkeypatch.setattr(llm, "generate", lambda prompt: '{"local_prompt": "a red triangle"}')
    assert any("lacks target_description" in n for n in llm("turn the red ball into a triangle").notes)


def test_llm_prompt_plain_and_chat_template(llm, monkeypatch):
    plain = llm.prompt("remove the star", CAP)
    assert plain.rstrip().endswith("JSON:") and f"Source: {CAP}\nInstruction: remove the star" in plain
    template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    monkeypatch.setattr(llm.tokenizer, "chat_template", template, raising=False)
    chat = llm.prompt("remove the star", CAP)
    assert chat.startswith("<system>") and chat.endswith("<assistant>")
    assert isinstance(llm("remove the star", CAP), Description)


def test_extract_json():
    from regionedit.world.lm_describer import extract_json

    assert extract_json('noise {"a": "x}", "b": {"c": 1}} tail {"d": 2}') == {"a": "x}", "b": {"c": 1}}
    assert extract_json("{'target_description': 'a star', 'referent': None}") == {
        "target_description": "a star", "referent": None
    }  # fmt: skip
    assert extract_json("{broken {\"ok\": 1}") == {"ok": 1}
    assert extract_json("no json here") is None


def test_docstring_examples():
    import doctest

    import importlib
    import pkgutil

    import regionedit.world.grammar as parser

    # the grammar is a package: its examples live in the submodules (testmod does not follow re-exports)
    modules = [parser] + [importlib.import_module(f"{parser.__name__}.{m.name}")
                          for m in pkgutil.iter_modules(parser.__path__)]
    results = [doctest.testmod(m) for m in modules]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) > 0  # the WorldDescriber example ran


@pytest.mark.parametrize(
    "text, exp",
    [
        ("remove the circle that is red", dict(op="remove", ref=("red", "circle"))),
        ("delete the star which is blue", dict(op="remove", ref=("blue", "star"))),
        ("make the triangle that is green red", dict(op="color", ref=("green", "triangle"), new_color="red")),
        ("make the box which is small and white bigger", dict(op="size", ref=("white", "square"), bigger=True)),
        ("turn the dot that is purple into an orange star",
         dict(op="local", ref=("purple", "circle"), new_color="orange", new_shape="star")),
        ("change the square so that it is red", dict(op="color", ref=(None, "square"), new_color="red")),
        # after the noun: the referent's colour, or the new one when the instruction names no other
        ("remove the circle colored red", dict(op="remove", ref=("red", "circle"))),
        ("erase the ball in red", dict(op="remove", ref=("red", "circle"))),
        ("change the star in red to blue", dict(op="color", ref=("red", "star"), new_color="blue")),
        ("paint the star in red", dict(op="color", ref=(None, "star"), new_color="red")),
        ("make the box coloured white", dict(op="color", ref=(None, "square"), new_color="white")),
        ("add a star colored blue in the top left", dict(op="add", new_color="blue", new_shape="star", area="top left")),
        # "the shape of", a trailing particle
        ("change the shape of the red circle to a star", dict(op="local", ref=("red", "circle"), new_shape="star")),
        ("change the red circle shape to a star", dict(op="local", ref=("red", "circle"), new_shape="star")),
        ("scale the blue square up please", dict(op="size", ref=("blue", "square"), bigger=True)),
        ("blow the red ball up", dict(op="size", ref=("red", "circle"), bigger=True)),
        ("scale the big green star down", dict(op="size", ref=("green", "star"), bigger=False)),
        ("drop a red star in the top left", dict(op="add", new_color="red", new_shape="star", area="top left")),
        # "less big", "get ... out", "everything except the shapes"
        ("make the red circle less big", dict(op="size", ref=("red", "circle"), bigger=False)),
        ("make the square less small", dict(op="size", ref=(None, "square"), bigger=True)),
        ("get the red circle out", dict(op="remove", ref=("red", "circle"))),
        ("could you get the blue box out of the picture", dict(op="remove", ref=("blue", "square"))),
        ("make everything except the shapes black", dict(op="background", background=("black", None))),
        # a complaint asks for the opposite size
        ("the red ball is way too large", dict(op="size", ref=("red", "circle"), bigger=False)),
        ("the star isn't big enough", dict(op="size", ref=(None, "star"), bigger=True)),
        ("the box is not small enough", dict(op="size", ref=(None, "square"), bigger=False)),
        ("the diamond is too tiny", dict(op="size", ref=(None, "diamond"), bigger=True)),
        ("remove the red circle from the drawing", dict(op="remove", ref=("red", "circle"))),
        ("is it possible to make the star blue?", dict(op="color", ref=(None, "star"), new_color="blue")),
        ("make the space around the objects beige", dict(op="background", background=("beige", None))),
    ],
)
def test_qualifiers_after_the_noun(describer, text, exp):
    # "the circle that is red" is "the red circle": one colour (and one size) in the clause; a colour after it
    # is the new one
    assert _handwritten_mismatch(describer, text, exp) is None, _handwritten_mismatch(describer, text, exp)


@pytest.mark.parametrize(
    "text, parts",
    [
        ("make the star red and the circle blue", ["make the star red", "make the circle blue"]),
        ("could you please make the star red and the circle blue?",
         ["could you please make the star red", "could you please make the circle blue"]),
        ("remove the red circle and the blue star", ["remove the red circle", "remove the blue star"]),
        ("turn the star red, then remove the circle", ["turn the star red", "remove the circle"]),
        ("Remove the red circle. Then make the square green.", ["Remove the red circle", "make the square green"]),
        ("delete the star; add a dot in the center", ["delete the star", "add a dot in the center"]),
        ("make the star red and bigger", ["make the star red", "make the red star bigger"]),
        ("turn the square blue and make it bigger", ["turn the square blue", "make the blue square bigger"]),
        ("add a red star and a blue circle", ["add a red star", "add a blue circle"]),
        ("remove the red circle and add a star", ["remove the red circle", "add a star"]),
        ("make the background black and the circle white", ["make the background black", "make the circle white"]),
        # objects sharing one predicate (read before as "turn the circle into a square")
        ("make the circle and the square red", ["make the circle red", "make the square red"]),
        ("make both the star and the circle blue", ["make the star blue", "make the circle blue"]),
        ("make the red circle, the star and the box a bit smaller",
         ["make the red circle a bit smaller", "make the star a bit smaller", "make the box a bit smaller"]),
        # a comma before a verb starts an edit
        ("remove the star, add a dot in the top left", ["remove the star", "add a dot in the top left"]),
        ("remove the red circle, make the star blue, shrink the square",
         ["remove the red circle", "make the star blue", "shrink the square"]),
        ("turn the square blue, make it bigger", ["turn the square blue", "make the blue square bigger"]),
        # a comma before an object starts an edit that borrows the verb (read before as "turn the star into a
        # circle", "remove the star")
        ("make the star red, the circle blue", ["make the star red", "make the circle blue"]),
        ("remove the star, the circle", ["remove the star", "remove the circle"]),
        ("remove the star, the circle and the square", ["remove the star", "remove the circle", "remove the square"]),
        ("make the circle, the square red", ["make the circle red", "make the square red"]),
        ("add a red star, a blue circle", ["add a red star", "add a blue circle"]),
        # one edit
        ("add star, red, top left", None),
        ("move the star, the one on the left, up", None),
        ("if possible, remove the star", None),
        ("the circle is too small, enlarge it", None),
        ("delete the circle, put a star there", None),
        ("remove the red circle and replace it with a blue star", None),
        ("get rid of the red circle and put a blue star there instead", None),
        ("make the box which is small and white bigger", None),
        ("make the background black at the top and white at the bottom", None),
        ("make the background a black and white gradient", None),
        ("remove the red circle and leave the rest alone", None),
        ("remove the star and make it bigger", None),  # "it" is gone: read whole
        ("make the circle and the square", None),
    ],
)
def test_split_edits(describer, text, parts):
    assert split_edits(text) == (parts or [text])
    d = describer(text)
    if parts:
        assert d.intent is None and f"asks for {len(parts)} edits" in d.error
        assert all(describer(p).intent is not None for p in parts)


def test_single_edits_are_not_split(samples):
    assert [t for t, _ in HANDWRITTEN if split_edits(t) != [t.strip()]] == []
    assert [s.instruction for s in samples if split_edits(s.instruction) != [s.instruction]] == []
    assert parse_intent("remove the red circle and replace it with a blue star")[0] == EditIntent(
        "local", Referent("red", "circle"), new_color="blue", new_shape="star",
        raw="remove the red circle and replace it with a blue star")



_ORDERS = [  # WORLD.md: "any order, with or without articles"; each constituent order must read the same
    (["remove", "the red ball"], dict(op="remove", ref=("red", "circle"))),
    (["draw", "a white star", "in the top left"], dict(op="add", new_color="white", new_shape="star", area="top left")),
    (["convert", "blue box", "into a green triangle"],
     dict(op="local", ref=("blue", "square"), new_color="green", new_shape="triangle")),
    (["swap", "the purple diamond", "with an orange dot"],
     dict(op="local", ref=("purple", "diamond"), new_color="orange", new_shape="circle")),
    (["paint", "the yellow star", "black"], dict(op="color", ref=("yellow", "star"), new_color="black")),
    (["make", "green triangle", "tinier"], dict(op="size", ref=("green", "triangle"), bigger=False)),
    (["change", "the background", "to sky blue"], dict(op="background", background=("sky blue", None))),
    (["make", "the background", "a beige to gray gradient"], dict(op="background", background=("beige", "gray"))),
]


@pytest.mark.parametrize("parts, exp", _ORDERS)
def test_constituents_in_any_order(describer, parts, exp):
    orders = [sep.join(p) for p in itertools.permutations(parts) for sep in (" ", ", ")]
    assert [(t, m) for t in orders if (m := _handwritten_mismatch(describer, t, exp)) is not None] == []


@pytest.mark.parametrize(
    "text, exp",
    [
        # "put" is an add verb with or without an article (was read as moving an object)
        ("put green ball at the bottom left", dict(op="add", new_color="green", new_shape="circle", area="bottom left")),
        ("Kindly put one small white box in the bottom right please",
         dict(op="add", new_color="white", new_shape="square", area="bottom right")),
        ("hey, put one red dot center thanks", dict(op="add", new_color="red", new_shape="circle", area="center")),
    ],
)
def test_put_without_article_adds(describer, text, exp):
    assert _handwritten_mismatch(describer, text, exp) is None, _handwritten_mismatch(describer, text, exp)


def test_put_the_object_somewhere_is_a_move():
    for text in ("put the red star in the top left", "put that red star in the top left"):
        intent, err = parse_intent(text)
        assert intent is None and "moving objects is not an edit" in err
