"""The CLIP referent check (world/priors/verify.py) and the world prior's use of it, through the editor, for
near-miss instructions."""

import numpy as np
import pytest

from regionedit.world.grammar import Referent
from regionedit.pipeline import Editor, EditorConfig
from regionedit.world.plugin import world_editor
from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig
from regionedit.world.priors.refine import grow_region
from regionedit.world.priors.verify import ReferentVerifier
from regionedit.world.rendering import object_coverage, render
from regionedit.world.scene import Background, Scene, WorldObject

SCENE = Scene(Background("white"), (WorldObject("star", "red", 0.27, 0.3, 0.17), WorldObject("circle", "blue", 0.72, 0.68, 0.16)))


@pytest.fixture(scope="module")
def editor():
    ed = Editor.from_pretrained("shapes-64", config=EditorConfig(steps=1))
    assert len(ed.priors) == 1 and isinstance(ed.priors[0], WorldPrior)  # the folder names the shapes plugin
    return ed


@pytest.fixture(scope="module")
def prior(editor):
    return editor.prior(WorldPrior)


def _with(editor, **prior_settings) -> Editor:
    """The bundled models, predictor and editor settings with the world prior configured otherwise."""
    return world_editor(editor.models, editor.region_predictor, config=editor.config,
                        prior_config=WorldPriorConfig(**prior_settings))


def _mask(obj, size=64):
    return object_coverage(obj, size) > 0.5


def test_isolate_centres_the_region_at_its_own_scale_on_the_surrounding_colour(prior):
    img = render(SCENE)
    star = _mask(SCENE.objects[0])
    canvas = prior.verifier.isolate(img, star)
    assert canvas.shape == img.shape and canvas.dtype == np.uint8
    assert (canvas[0, 0] == img[0, 0]).all()  # the white around the star
    red = (np.abs(canvas.astype(int) - img[star].mean(0)).max(-1) < 40)
    assert red.sum() == pytest.approx(star.sum(), rel=0.15)  # same scale, not zoomed
    ys, xs = np.nonzero(red)
    assert abs(ys.mean() - 32) < 3 and abs(xs.mean() - 32) < 3  # centred
    assert not (np.abs(canvas.astype(int) - np.array([0, 0, 255])).max(-1) < 60).any()  # the blue circle is gone


def test_clip_reads_the_region_and_scores_only_the_named_attributes(prior):
    img = render(SCENE)
    v = prior.verifier
    star, circle = (_mask(o) for o in SCENE.objects)
    assert v.best(img, star) == "red star" and v.best(img, circle) == "blue circle"
    assert v.score(img, star, Referent("red", "star")) > 0.5
    assert v.score(img, star, Referent("red", None)) > 0.5  # shape not named: not scored
    assert v.score(img, star, Referent("blue", "star")) < 0.05  # wrong colour
    assert v.score(img, circle, Referent("blue", "star")) < 0.05  # wrong shape
    assert v.score(img, star, Referent(None, None)) is None  # a pronoun: nothing to check
    assert v.score(img, np.zeros((64, 64), bool), Referent("red", "star")) is None


def test_scores_agree_across_image_sizes(prior):
    big = render(SCENE, 256)
    star = object_coverage(SCENE.objects[0], 256) > 0.5
    img, r = prior.verifier.to_clip_frame(big, star)
    assert img.shape == (64, 64, 3) and r.shape == (64, 64) and abs(int(r.sum()) - int(_mask(SCENE.objects[0]).sum())) < 12
    assert prior.verifier.score(big, star, Referent("red", "star")) > 0.5
    assert prior.verifier.score(big, star, Referent("red", "circle")) < 0.05
    # the image resized once and passed along scores exactly as the image itself
    small = prior.verifier.clip_image(big)
    for ref in (Referent("red", "star"), Referent("red", "circle"), Referent(None, "star")):
        assert prior.verifier.score(big, star, ref, clip_image=small) == prior.verifier.score(big, star, ref)


def test_editor_refuses_a_region_that_is_a_look_alike(editor):
    """"remove the red circle" where the image has a red star and a blue circle: a map on either look-alike
    is refused by the check (whatever the presence head says), the real object is kept."""
    img = render(SCENE)
    desc = editor.describer("remove the red circle")
    off = _with(editor, verify_referent=False)
    for obj in SCENE.objects:
        prob = _mask(obj).astype(np.float32)
        assert not editor.region_from(prob, 1.0, img, desc, presence_threshold=0.0, verify_threshold=0.05).any()
        assert off.region_from(prob, 1.0, img, desc, presence_threshold=0.0).any()  # the check is what refuses
        # verify_threshold reaches the world prior's refine through region_from's overrides: 0 turns the check off
        assert editor.region_from(prob, 1.0, img, desc, presence_threshold=0.0, verify_threshold=0.0).any()
    right = editor.describer("remove the red star")
    prob = _mask(SCENE.objects[0]).astype(np.float32)
    assert editor.region_from(prob, 1.0, img, right, presence_threshold=0.0, verify_threshold=0.05).any()
    # add edits have no referent: never checked
    add = editor.describer("add a red circle in the top right")
    assert editor.region_from(np.zeros((64, 64), np.float32), 1.0, img, add, verify_threshold=0.99).any()


def test_verify_threshold_comes_from_config_then_predictor_then_default(editor, prior):
    pred = editor.region_predictor
    calibrated = getattr(pred, "verify_threshold", None)
    assert calibrated is not None and calibrated > 0  # the bundled predictor's card carries one
    assert WorldPrior(editor.models, pred, WorldPriorConfig(verify_threshold=0.3)).verify_threshold == 0.3
    assert WorldPrior(editor.models, pred).verify_threshold == calibrated
    assert prior.verify_threshold == calibrated  # the editor's own prior reads its predictor's
    assert WorldPrior(editor.models, None).verify_threshold == 0.0  # uncalibrated: off


TWO = Scene(Background("white"), (WorldObject("circle", "red", 0.27, 0.3, 0.17), WorldObject("circle", "blue", 0.72, 0.68, 0.16)))


@pytest.mark.parametrize("size", [64, 256])
def test_a_rejected_region_moves_to_the_object_clip_reads_as_the_referent(editor, size):
    """"remove the red circle" with the map on the blue circle: CLIP rejects it and relocation finds the red
    circle among the image's object proposals; without relocation the answer is no edit."""
    img = render(TWO, size)
    red, blue = (object_coverage(o, size) > 0.5 for o in TWO.objects)
    desc = editor.describer("remove the red circle")
    region = editor.region_from(blue.astype(np.float32), 1.0, img, desc, presence_threshold=0.0, verify_threshold=0.05)
    assert (region & red).sum() >= 0.95 * red.sum() and not (region & blue).any()
    assert region.sum() <= 1.6 * red.sum()  # the object and its edge, not the background
    stay = _with(editor, relocate=False)
    assert not stay.region_from(blue.astype(np.float32), 1.0, img, desc, presence_threshold=0.0, verify_threshold=0.05).any()


def test_relocate_returns_none_and_the_best_score_when_nothing_reads_as_the_referent(prior):
    img = render(SCENE)
    region, score = prior.verifier.relocate(img, Referent("green", "triangle"), threshold=0.05)
    assert region is None and 0.0 <= score < 0.05
    region, score = prior.verifier.relocate(img, Referent("blue", "circle"), threshold=0.05)
    assert region is not None and score > 0.5 and (region & _mask(SCENE.objects[1])).sum() >= 0.95 * _mask(SCENE.objects[1]).sum()


@pytest.mark.parametrize("size", [64, 256])
def test_a_map_on_two_objects_keeps_the_one_clip_reads_as_the_referent(editor, size):
    """"remove the red star" with the map lighting both objects (more on the blue circle): the editor keeps
    one connected piece, the red star, by CLIP's reading (with verify_threshold 0 too: this is a choice,
    not a rejection); without single_object the region spans both; without CLIP it keeps the more probable."""
    img = render(SCENE, size)
    star, circle = (object_coverage(o, size) > 0.5 for o in SCENE.objects)
    prob = np.where(circle, 0.95, np.where(star, 0.8, 0.0)).astype(np.float32)
    desc = editor.describer("remove the red star")
    for vth in (0.0, 0.05):
        region = editor.region_from(prob, 1.0, img, desc, threshold=0.5, presence_threshold=0.0, verify_threshold=vth)
        assert (region & star).sum() >= 0.95 * star.sum() and not (region & circle).any()
    both = _with(editor, single_object=False)
    region = both.region_from(prob, 1.0, img, desc, threshold=0.5, presence_threshold=0.0, verify_threshold=0.0)
    assert (region & star).any() and (region & circle).any()
    blind = _with(editor, verify_referent=False)
    region = blind.region_from(prob, 1.0, img, desc, threshold=0.5, presence_threshold=0.0)
    assert (region & circle).sum() >= 0.95 * circle.sum() and not (region & star).any()


def test_slivers_are_not_objects_and_score_zero(prior):
    from regionedit.world.priors.refine import grow_region

    v = prior.verifier
    rng = np.random.default_rng(0)
    for shape in ("circle", "square", "triangle", "star", "diamond"):  # the smallest objects, grown by their edge
        for _ in range(20):
            o = WorldObject(shape, "red", rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), 0.09)
            assert v.is_object(grow_region(_mask(o), 1)), (shape, o)
    img = render(SCENE)
    star = _mask(SCENE.objects[0])
    edge = grow_region(star, 1) & ~star  # the star's anti-aliased rim alone: a 1-2 px ring
    for sliver in (edge, np.pad(np.ones((3, 30), bool), ((40, 21), (10, 24)))):
        assert not v.is_object(sliver)
        assert v.score(img, sliver, Referent("red", "star")) == 0.0
    assert v.score(img, star, Referent("red", "star")) > 0.5
    big = np.kron(np.pad(np.ones((3, 30), bool), ((40, 21), (10, 24))), np.ones((4, 4), bool))
    assert not v.is_object(v.clip_region(big))  # the same line at 256 px, in CLIP's frame


@pytest.mark.parametrize("instruction,which", [("remove the blue circle", 1), ("make the red star green", 0)])
def test_large_images_are_localised_at_the_working_size_and_agree_with_64_px(editor, instruction, which, monkeypatch):
    import torch.nn.functional as F
    import torch

    seen = []
    region_from = editor.region_from

    def spy(prob, presence, image, *a, **k):
        seen.append(image.shape[:2])
        return region_from(prob, presence, image, *a, **k)

    monkeypatch.setattr(editor, "region_from", spy)
    small, _ = editor.find_region(render(SCENE, 64), instruction, shape=False)
    big, prob = editor.find_region(render(SCENE, 1024), instruction, shape=False)
    assert editor.work_side == WorldPriorConfig().work_side == 256  # the world prior's working side
    assert seen == [(64, 64), (256, 256)]  # 1024 px: decided at the working side
    assert big.shape == prob.shape == (1024, 1024) and big.dtype == bool
    back = F.adaptive_avg_pool2d(torch.from_numpy(big.astype(np.float32))[None], (64, 64))[0].numpy() >= 0.5
    obj, other = _mask(SCENE.objects[which]), _mask(SCENE.objects[1 - which])
    for found in (small, back):  # both sizes find the referent (the 1 px edge grown at 256 px is thinner at 64)
        assert (found & obj).sum() / (found | obj).sum() > 0.55 and not (found & other).any()


def test_relocation_proposes_a_star_whose_tips_chain_to_the_background(prior):
    import dataclasses

    from regionedit.world.priors.verify import VerifierConfig

    star = WorldObject("star", "purple", 0.45, 0.55, 0.11)
    img = render(Scene(Background("gray"), (star, WorldObject("circle", "yellow", 0.8, 0.2, 0.1))))
    want = _mask(star)
    region, score = prior.verifier.relocate(img, Referent("purple", "star"), 0.05)
    assert region is not None and (region & want).sum() / (region | want).sum() > 0.6 and score >= 0.05
    coarse = ReferentVerifier(prior.models, dataclasses.replace(VerifierConfig(), proposal_tol=24.0, flat_proposals=False))
    region24, score24 = coarse.relocate(img, Referent("purple", "star"), 0.05)  # at 24 the star is part of the
    assert region24 is None and score24 < 0.05  # background: no proposal reads as it
    flat24 = ReferentVerifier(prior.models, dataclasses.replace(VerifierConfig(), proposal_tol=24.0))
    region24, _ = flat24.relocate(img, Referent("purple", "star"), 0.05)  # its flat-pixel segment is a proposal:
    edged = grow_region(want, 1)  # the star with its 1 px anti-aliased edge, tips included
    assert region24 is not None and (region24 & edged).sum() / (region24 | edged).sum() > 0.9


def test_background_edit_keeps_a_star_chained_to_the_background(editor):
    """A white star on beige is no colour segment (its tips fade into the beige in small steps): without
    the flat-pixel proposals the background region swallows it and the edit repaints it."""
    import dataclasses

    star = WorldObject("star", "white", 0.6115359464549076, 0.6354099517446612, 0.1948851443990266)
    img = render(Scene(Background("beige"), (star,)))
    cov = object_coverage(star, 64)
    on_star = cov > 0.5
    out = editor(img, "make the background sky blue", seed=0)
    assert out.status == "edited" and not out.mask[cov > 0.97].any() and (out.image[cov > 0.97] == img[cov > 0.97]).all()
    assert out.mask[(cov > 0.05) & (cov < 0.85)].mean() > 0.9  # its anti-aliased edge is repainted (no beige rim)
    assert out.mask[~grow_region(on_star, 3)].mean() > 0.95  # the background itself is edited
    old = world_editor(editor.models, editor.region_predictor, config=editor.config,
                       prior_config=dataclasses.replace(editor.prior(WorldPrior).config, flat_islands=False))
    assert old(img, "make the background sky blue", seed=0).mask[on_star].mean() > 0.5  # what it prevents


def test_large_background_edit_border_is_decided_per_pixel(editor):
    """At 512 px the background region is decided at 256 px and comes back in 2 px blocks; the border is
    then put right pixel by pixel: every pure object pixel kept bit-identical, no old-background pixel
    next to an object kept, and the blended edge repainted."""
    objs = (WorldObject("star", "red", 0.3, 0.35, 0.15), WorldObject("triangle", "purple", 0.7, 0.65, 0.18))
    img = render(Scene(Background("beige"), objs), 512)
    cov = np.max([object_coverage(o, 512) for o in objs], 0)
    out = editor(img, "make the background black", seed=0)
    assert out.status == "edited"
    assert not out.mask[cov == 1].any() and (out.image[cov == 1] == img[cov == 1]).all()
    band = grow_region(cov > 0, 6)
    assert out.mask[band & (cov == 0)].all()
    assert out.mask[(cov > 0.05) & (cov < 0.8)].mean() > 0.98


def test_localisation_holds_on_another_renderers_scenes(editor):
    # WORLD.md: scenes from other renderers that follow it must work. The same edits drawn by the independent
    # renderer (evaluation/alt_render.py: supersampled PIL, other gradient ends) localise as well as ours
    from regionedit.world.alt_render import drawn_by
    from regionedit.evaluation.metrics import region_iou
    from regionedit.world import sample_edit

    ious = {"regionedit": [], "pil": []}
    for cat in ("remove", "color", "size", "local"):
        for i in range(3):
            for name in ious:
                s = drawn_by(sample_edit(21000, i, category=cat), name)
                ious[name].append(region_iou(editor.find_region(s.source, s.instruction)[0], s.mask))
    ours, theirs = np.mean(ious["regionedit"]), np.mean(ious["pil"])
    print(f"\nmean region IoU, ours {ours:.3f}, other renderer {theirs:.3f}")
    assert theirs > 0.7 and theirs > ours - 0.08, (ours, theirs)
    s = drawn_by(sample_edit(21000, 0, category="absent"), "pil")
    assert not editor.find_region(s.source, s.instruction)[0].any()  # an absent referent: still no region


TWO_CIRCLES = Scene(Background("white"), (WorldObject("circle", "red", 0.25, 0.3, 0.15),
                                          WorldObject("circle", "blue", 0.7, 0.7, 0.15),
                                          WorldObject("square", "yellow", 0.75, 0.22, 0.11)))


def test_ambiguous_referents_get_no_edit(editor, prior):
    # "the circle" with a red and a blue circle: WORLD.md names an object by shape alone only when unique
    img = render(TWO_CIRCLES)
    res = editor(img, "remove the circle")
    assert res.status == "no_edit" and "ambiguous" in res.reason and "circle" in res.reason
    assert np.array_equal(res.image, img) and not res.mask.any()
    assert editor(img, "remove the red circle").status == "edited"  # named in full
    assert editor(img, "make the square blue").status == "edited"  # unique by shape
    off = _with(editor, refuse_ambiguous=0)
    assert off(img, "remove the circle").status == "edited"
    # the check itself: the other circle is named, the referent's own fragments are no second object
    desc = editor.describer("remove the circle")
    fp, _ = editor.find_region(img, "remove the circle", desc, shape=False)
    others = prior.ambiguous(img, desc.intent, fp)
    assert len(others) == 1 and others[0].endswith("circle")
    square = editor.describer("remove the square")
    assert prior.ambiguous(img, square.intent, editor.find_region(img, "remove the square", square, shape=False)[0]) == []


def test_candidate_score_ranks_candidates_by_the_edit_asked(prior):
    # the score ranks the candidates of one edit: the right background / object must outrank a wrong one
    from regionedit.world.grammar import parse_intent
    from regionedit.world import render
    from regionedit.world.scene import Background, Scene, WorldObject

    def draw(top, bottom=None, color="blue", shape="star"):
        return render(Scene(Background(top, bottom), (WorldObject(shape, color, 0.5, 0.5, 0.17),)))

    whole = np.ones((64, 64), bool)

    def score(text, img, region=whole):
        return prior.scorer(img, region, parse_intent(text)[0])

    for want, wrong in [(("beige",), ("black",)), (("gray",), ("white",)), (("black", "white"), ("white", "black")),
                        (("sky blue", "beige"), ("beige", "sky blue")), (("light green",), ("light green", "black"))]:
        text = f"make the background {want[0]}" if len(want) == 1 else f"make the background a {want[0]} to {want[1]} gradient"
        assert score(text, draw(*want)) > score(text, draw(*wrong)), (want, wrong)
    star = np.zeros((64, 64), bool)
    star[18:46, 18:46] = True
    assert score("add a blue star", draw("beige"), star) > score("add a blue star", draw("beige", color="red"), star)
    assert score("add a blue star", draw("beige"), star) > score("add a blue star", draw("beige", shape="circle"), star)
    assert score("make the square green", draw("beige", "gray", "green", "square"), star) > score(
        "make the square green", draw("beige", "gray", "orange", "square"), star)
    assert score("remove the blue star", draw("beige"), star) is None
    assert score("make the star bigger", draw("beige"), star) is None
