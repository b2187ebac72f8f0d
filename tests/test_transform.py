"""Objects between layers (world/priors/transform.py): resized in place (the world prior's resample path for
size edits) and laid back over a new background (background edits); and, on the bundled models, the world
prior completing a prompt the instruction leaves short from CLIP's reading of the referent."""

import dataclasses

import numpy as np
import pytest

from regionedit.world.priors.transform import (circumradius, composite, debleed, fill_nearest, fit_object_size, fit_replaced_size, matte_kept,
                                         new_object_footprint, relay_objects, rescale_object)
from regionedit.pipeline import Editor, EditorConfig
from regionedit.world.plugin import world_editor
from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig
from regionedit.world.priors.refine import grow_region
from regionedit.world import spec
from regionedit.world.rendering import object_coverage, render
from regionedit.world.scene import Background, Scene, WorldObject

RED = np.array([220, 40, 40])


def _red(img):
    return (np.abs(img.astype(int) - RED).max(-1) < 30).sum()


@pytest.mark.parametrize("size", [64, 256])
def test_rescale_object_keeps_colour_and_shape_and_scales_the_area(size):
    star = WorldObject("star", "red", 0.5, 0.5, 0.1)
    img = render(Scene(Background("white"), (star,)), size)
    footprint = grow_region(object_coverage(star, size) > 0.5, max(1, size // 64))
    for factor in (1.5, 0.6):
        layer, alpha = rescale_object(img, footprint, factor, edge_px=max(1, size // 64))
        base = img if factor > 1 else np.full_like(img, 255)  # "smaller": the object removed first
        out = composite(base, layer, alpha)
        want = render(Scene(Background("white"), (WorldObject("star", "red", 0.5, 0.5, 0.1 * factor),)), size)
        assert _red(out) == pytest.approx(_red(want), rel=0.25)
        assert np.abs(out.astype(int) - want).mean() < np.abs(img.astype(int) - want).mean() / 2
        assert (out[alpha == 0] == base[alpha == 0]).all()  # alpha 0: copied exactly
    with pytest.raises(ValueError, match="scale factor"):
        rescale_object(img, footprint, 0)
    with pytest.raises(ValueError, match="image's size"):
        rescale_object(img, footprint[:-1], 1.5)


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star", "diamond"])
def test_circumradius_of_rendered_shapes(shape):
    obj = WorldObject(shape, "red", 0.5, 0.5, 0.15)
    got = circumradius(object_coverage(obj, 128) > 0.5)
    assert got == pytest.approx(0.15 * 128, abs=1.5)


@pytest.mark.parametrize("size", [64, 192])
def test_fit_object_size_shrinks_a_new_object_into_the_range_and_drops_the_rest(size):
    bg = Scene(Background("beige"), (WorldObject("circle", "blue", 0.2, 0.2, 0.1),))
    source = render(bg, size)
    region = np.zeros((size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    region[(yy - 0.65 * size) ** 2 + (xx - 0.65 * size) ** 2 <= (0.28 * size) ** 2] = True
    too_big = WorldObject("star", "red", 0.65, 0.65, 0.19)  # drawn "large" for "add a small red star"
    generated = render(Scene(bg.background, bg.objects + (too_big,)), size)
    speck = (int(0.9 * size), int(0.65 * size))  # a generator speck inside the region, off the object
    assert region[speck]
    generated[speck] = (0, 0, 0)
    found = new_object_footprint(source, generated, region)
    assert circumradius(found) == pytest.approx(0.19 * size, abs=1.5)
    lo, hi = 0.09 * size, 0.12 * size
    out, edited = fit_object_size(source, generated, region, (lo, hi))
    assert lo <= circumradius(new_object_footprint(source, out, region)) <= hi
    assert (out[~edited] == source[~edited]).all()  # outside the new object: the input, bit-identical
    assert (out[speck] == source[speck]).all()
    assert edited.sum() < (object_coverage(too_big, size) > 0).sum()
    want = render(Scene(bg.background, bg.objects + (WorldObject("star", "red", 0.65, 0.65, 0.12),)), size)
    assert _red(out) == pytest.approx(_red(want), rel=0.3)
    # already the right size, or nothing drawn: returned as generated
    ok = render(Scene(bg.background, bg.objects + (WorldObject("star", "red", 0.65, 0.65, 0.105),)), size)
    same, same_region = fit_object_size(source, ok, region, (lo, hi))
    assert same is ok and same_region is region
    assert fit_object_size(source, source, region, (lo, hi))[0] is source
    # growing that would leave the region (free space) is not done
    tiny_region = object_coverage(WorldObject("circle", "red", 0.65, 0.65, 0.06), size) > 0
    tiny = render(Scene(bg.background, bg.objects + (WorldObject("circle", "red", 0.65, 0.65, 0.05),)), size)
    assert fit_object_size(source, tiny, tiny_region, (lo, hi))[0] is tiny


@pytest.fixture(scope="module")
def editor():
    ed = Editor.from_pretrained("shapes-64", config=EditorConfig(steps=2))
    assert len(ed.priors) == 1 and isinstance(ed.priors[0], WorldPrior)  # the folder names the shapes plugin
    return ed


def _with(editor, **prior_settings) -> Editor:
    """The bundled models, predictor and editor settings with the world prior configured otherwise."""
    return world_editor(editor.models, editor.region_predictor, config=editor.config,
                        prior_config=WorldPriorConfig(**prior_settings))


def test_size_edits_resample_the_object_found(editor):
    scene = Scene(Background("white"), (WorldObject("star", "red", 0.3, 0.35, 0.1), WorldObject("circle", "blue", 0.72, 0.7, 0.16)))
    img = render(scene)
    big = editor(img, "make the red star bigger", seed=0)
    assert big.status == "edited" and big.local_prompt == "a large red star"
    assert 2.25 < _red(big.image) / _red(img) < 4.0  # r 0.1 -> the large class, 0.15-0.20 (size_factor)
    assert (big.image[~big.mask] == img[~big.mask]).all()  # nothing outside the region changed
    assert not big.mask[object_coverage(scene.objects[1], 64) > 0.5].any()  # the blue circle is untouched
    small = editor(img, "make the red star smaller", seed=0)
    assert small.status == "edited" and small.local_prompt == "background"
    assert 0.2 < _red(small.image) / _red(img) < 0.6  # 0.6x linear, the rest refilled by the generator
    assert (small.image[~small.mask] == img[~small.mask]).all()  # the refill's blend stays inside the mask too
    gen = _with(editor, size_edit="generate")
    r = gen(img, "make the red star smaller", seed=0)
    assert r.status == "edited" and r.local_prompt == "a small red star"
    assert (r.image[~r.mask] == img[~r.mask]).all()
    with pytest.raises(ValueError, match="size_edit"):
        WorldPriorConfig(size_edit="stretch")


@pytest.mark.parametrize("size", [64, 200])
def test_relay_objects_rematts_the_edge_against_the_new_background(size):
    objs = (WorldObject("star", "red", 0.3, 0.35, 0.12), WorldObject("circle", "blue", 0.7, 0.7, 0.1))
    old = render(Scene(Background("black"), objs), size)
    want = render(Scene(Background("white"), objs), size)  # the renderer's own anti-aliasing on white
    new_bg = render(Scene(Background("white"), ()), size)
    cov = np.maximum(*(object_coverage(o, size) for o in objs))
    core = cov > 0.99
    out = relay_objects(old, new_bg, core)
    assert (out[core] == old[core]).all()  # the objects: bit-identical
    assert (out[cov == 0] == new_bg[cov == 0]).all()  # pure old background: the new one
    edge = (cov > 0) & ~core
    naive = np.where(core[..., None], old, new_bg)  # objects pasted back with their old (black) edge
    err = np.abs(out[edge].astype(int) - want[edge]).mean()
    assert err < 8 and err < np.abs(naive[edge].astype(int) - want[edge]).mean() / 4
    with pytest.raises(ValueError, match="match in size"):
        relay_objects(old, new_bg[:-1], core)
    assert (relay_objects(old, new_bg, np.zeros_like(core)) == new_bg).all()


@pytest.mark.parametrize("size", [64, 200])
def test_matte_kept_gives_the_pixels_that_carry_the_old_background_to_the_region(size):
    """A background region that stops at the objects' edge keeps their anti-aliased pixels; laid back
    as kept, they draw a rim of the old background. matte_kept takes them out of the kept set."""
    objs = (WorldObject("star", "red", 0.3, 0.35, 0.12), WorldObject("triangle", "purple", 0.7, 0.65, 0.18),
            WorldObject("circle", "blue", 0.95, 0.1, 0.12))  # the circle crosses the frame
    old = render(Scene(Background("beige"), objs), size)
    want = render(Scene(Background("black"), objs), size)
    new_bg = render(Scene(Background("black"), ()), size)
    cov = np.max([object_coverage(o, size) for o in objs], 0)
    kept = grow_region(cov > 0, 1)  # every pixel an object touches, and 1 px more (as islands are kept)
    edge = kept & ~matte_kept(old, kept, px=2)
    assert not (matte_kept(old, kept, px=2) & ~kept).any()  # nothing of the background joins
    assert not (edge & ~kept).any() and not edge[cov > 0.97].any()  # pure object pixels stay kept
    mixed = (cov > 0.05) & (cov < 0.85)
    assert edge[mixed].mean() > 0.95
    rim = (cov > 0) & (cov < 0.97)
    naive = relay_objects(old, new_bg, kept)  # the edge kept: the beige rim
    fixed = relay_objects(old, new_bg, kept & ~edge)
    err = np.abs(fixed[rim].astype(int) - want[rim]).mean()
    assert err < 10 and err < np.abs(naive[rim].astype(int) - want[rim]).mean() / 3
    bg_piece = np.zeros_like(kept)
    bg_piece[size // 2:, : size // 4] = True  # a kept piece of the old background has no edge
    assert (matte_kept(old, bg_piece & (cov == 0)) == (bg_piece & (cov == 0))).all()
    with pytest.raises(ValueError, match="match in size"):
        matte_kept(old, kept[:-1])
    import torch
    import torch.nn.functional as F

    from regionedit.compose import dilate_square

    specks = np.random.default_rng(size).random((size, size + 7)) > 0.99
    pooled = F.max_pool2d(torch.from_numpy(specks).float()[None, None], 5, 1, 2)[0, 0].numpy() > 0  # the 5x5 square
    assert (dilate_square(specks, 2) == pooled).all()


def test_matte_kept_puts_a_blocky_border_right_pixel_by_pixel():
    """A background region decided at 256 px comes back to 1024 px in 4 px blocks: specks of the old
    background stay kept and blocks cut into the objects. With px of the block, each pixel goes back to its
    side: kept = the objects (their pure pixels), region = the rest."""
    size, block = 1024, 4
    objs = (WorldObject("star", "red", 0.3, 0.35, 0.15), WorldObject("triangle", "purple", 0.7, 0.65, 0.18))
    img = render(Scene(Background("beige"), objs), size)
    cov = np.max([object_coverage(o, size) for o in objs], 0)
    small = cov.reshape(size // block, block, size // block, block).mean((1, 3)) > 0.5
    kept = np.repeat(np.repeat(small, block, 0), block, 1)  # the objects, in blocks
    assert (kept & (cov == 0)).sum() > 300 and (~kept & (cov == 1)).sum() > 300
    got = matte_kept(img, kept, px=2 * block)
    assert not (got & (cov == 0)).any() and got[cov == 1].all()
    # what keeps less than 0.9 of the object is repainted (but at the far end of a tip, 1031 of them before)
    assert (got & (cov < 0.8)).sum() <= 10


@pytest.mark.parametrize("size", ["small", "large"])
def test_added_objects_get_the_size_the_instruction_names(editor, size):
    scene = Scene(Background("white"), (WorldObject("circle", "blue", 0.25, 0.25, 0.1),))
    img = render(scene)
    r = editor(img, f"add a {size} red star in the bottom right", seed=0, steps=20)
    assert r.status == "edited"
    drawn = new_object_footprint(img, r.image, np.ones(img.shape[:2], bool))
    lo, hi = spec.SIZE_RANGES[size]
    assert lo * 64 <= circumradius(drawn) <= hi * 64
    assert (r.image[~r.mask] == img[~r.mask]).all()


def test_background_edits_keep_every_object(editor):
    scene = Scene(Background("black"), (WorldObject("star", "green", 0.3, 0.75, 0.12), WorldObject("triangle", "yellow", 0.8, 0.8, 0.08)))
    img = render(scene)
    r = editor(img, "make the background gray", seed=0)
    assert r.status == "edited"
    for o in scene.objects:  # no pixel of an object's core is in the region, none changed
        core = object_coverage(o, 64) > 0.99
        assert not r.mask[core].any()
        assert (r.image[core] == img[core]).all()
    assert (r.image[~r.mask] == img[~r.mask]).all()


def test_a_replace_without_a_colour_keeps_the_colour_clip_reads(editor):
    scene = Scene(Background("white"), (WorldObject("square", "blue", 0.35, 0.4, 0.15), WorldObject("circle", "red", 0.75, 0.75, 0.1)))
    img = render(scene)
    r = editor(img, "replace the square with a triangle", seed=0)
    assert r.status == "edited" and r.local_prompt == "a blue triangle"  # the instruction names no colour
    assert editor.prior(WorldPrior).verifier.read(img, object_coverage(scene.objects[1], 64) > 0.5) == ("red", "circle")
    plain = _with(editor, complete_prompt=False)
    assert plain(img, "replace the square with a triangle", seed=0).local_prompt == "a triangle"


def test_a_recolour_without_a_shape_keeps_the_shape_clip_reads(editor):
    scene = Scene(Background("white"), (WorldObject("star", "red", 0.35, 0.4, 0.15), WorldObject("square", "green", 0.75, 0.75, 0.1)))
    img = render(scene)
    r = editor(img, "make the red one blue", seed=0)  # the instruction names no shape
    assert r.status == "edited" and r.local_prompt == "a blue star"
    plain = _with(editor, complete_prompt=False)
    assert plain(img, "make the red one blue", seed=0).local_prompt == "a blue object"


def test_debleed_paints_over_what_the_generator_drew_of_a_kept_object():
    # the generator's new background (black) with a blue blob grown out of the kept square, its edge blended;
    # debleed paints the blob and its blend over with the new background and touches nothing else
    scene = Scene(Background("white"), (WorldObject("square", "blue", 0.3, 0.5, 0.12),))
    source = render(scene)
    square = object_coverage(scene.objects[0], 64) > 0.5
    objects = grow_region(square, 1)
    region = ~objects
    blob = Scene(Background("black"), (WorldObject("circle", "blue", 0.38, 0.45, 0.1),))
    generated = render(blob)
    generated[50:, 50:] = (30, 30, 30)  # something far from the objects that is not background: left alone
    out = debleed(generated, source, objects, region, px=6)
    near = region & grow_region(objects, 6)
    blue = np.array(spec.OBJECT_COLORS["blue"], float)
    holds_blue = (out.astype(float) @ blue) / (blue @ blue)  # projection on the segment black -> blue
    assert (holds_blue[near] < 0.25).all()
    assert ((generated != 0).any(-1) & near).sum() > 20  # there was a blob to remove
    assert np.array_equal(out[~near], generated[~near])  # beyond px, and the objects: untouched
    assert np.array_equal(out[50:, 50:], generated[50:, 50:])
    # nothing to do when the generator kept to the background
    clean = render(Scene(Background("black"), ()))
    assert np.array_equal(debleed(clean, source, objects, region, px=6), clean)


def test_fill_nearest_copies_the_nearest_known_pixel():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = (10, 20, 30)
    img[:, 4:] = (200, 0, 0)
    known = np.zeros((8, 8), bool)
    known[:, 0] = known[:, 7] = True
    fill = np.zeros((8, 8), bool)
    fill[:, 1] = fill[:, 6] = fill[:, 3] = True
    out = fill_nearest(img, known, fill, radius=2)
    assert (out[:, 1] == (10, 20, 30)).all() and (out[:, 6] == (200, 0, 0)).all()
    assert (out[:, 3] == img[:, 3]).all()  # nothing known within 2 px: unchanged
    assert out.dtype == np.uint8 and not np.shares_memory(out, img)


@pytest.mark.parametrize("bg", ["white", "sky blue"])
def test_fit_replaced_size_brings_the_new_object_to_the_old_size(bg):
    # a replacement drawn too large in its region: resampled to the old radius over the background it left
    region = object_coverage(WorldObject("circle", "red", 0.5, 0.5, 0.2), 64) > 0
    big = WorldObject("star", "red", 0.5, 0.5, 0.17)
    generated = render(Scene(Background(bg, "gray" if bg == "white" else None), (big,)))
    want_px = 0.11 * 64
    out = fit_replaced_size(generated, region, want_px)
    assert np.array_equal(out[~region], generated[~region])  # outside the region: untouched
    small = render(Scene(Background(bg, "gray" if bg == "white" else None), (dataclasses.replace(big, r=0.11),)))
    red = lambda im: (np.abs(im.astype(int) - spec.OBJECT_COLORS["red"]).max(-1) < 40)
    assert abs(circumradius(red(out)) - circumradius(red(small))) <= 1.0  # as the renderer draws a 0.11 star
    assert np.abs(out.astype(int) - small.astype(int)).max(-1).mean() < 4  # the object, small, on its background
    # the right size (within tol) or growth past the region: as generated
    assert out is not generated and fit_replaced_size(generated, region, 0.17 * 64) is generated
    assert fit_replaced_size(generated, region, 0.3 * 64) is generated
