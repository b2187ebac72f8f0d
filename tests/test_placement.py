"""Placement of added objects (world/priors/placement.py): free space from pixels, the named area, the size
word; and the world prior's use of it, through the editor, for "add" edits."""

import numpy as np
import pytest
from PIL import Image

from regionedit.world.priors.placement import PlacementConfig, free_space, place_region
from regionedit.world import spec
from regionedit.world.rendering import object_coverage, render
from regionedit.world.scene import Background, Scene, WorldObject, sample_scene


def _occupied(scene, size=64):
    return sum((object_coverage(o, size) > 0 for o in scene.objects), np.zeros((size, size), bool))


def _centre(region):
    ys, xs = np.nonzero(region)
    return (xs.mean() + 0.5) / region.shape[1], (ys.mean() + 0.5) / region.shape[0]


def _room(scene, area, size_word="small", size=64):
    """From the scene itself (not its pixels): whether the smallest region placement falls back to (the
    object's own disc, region_scale 1, plus region_margin) fits with its centre in ``area`` (anywhere for None),
    clear of every object pixel and of the frame by PlacementConfig.margin."""
    cfg = PlacementConfig()
    r = {"small": cfg.radius_small, "large": cfg.radius_large}.get(size_word, cfg.radius_default) * size
    need = r + cfg.region_margin * size / 64 + cfg.margin * size
    yy, xx = np.mgrid[:size, :size] + 0.5
    ok = (xx >= need) & (xx <= size - need) & (yy >= need) & (yy <= size - need)
    if area is not None:
        ok &= spec.in_area(area, xx / size, yy / size)
    oy, ox = np.nonzero(_occupied(scene, size))
    for y, x in zip(oy + 0.5, ox + 0.5):
        ok &= (yy - y) ** 2 + (xx - x) ** 2 >= need ** 2
    return bool(ok.any())


@pytest.mark.parametrize("seed", range(6))
def test_disc_in_free_space_in_the_named_area(seed):
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng)  # solid or gradient background, 1-3 objects
    img = render(scene)
    for area in (None,) + spec.AREAS:
        region = place_region(img, area, "small")
        # a disc is placed exactly when the scene has room for one there: an empty region means the area is
        # really crowded (seeds 1, 3 and 4 have such areas), never a placement that missed free space
        assert region.any() == _room(scene, area), area
        if region.any():  # a placed disc clears the objects and lies in its area
            assert not (region & _occupied(scene)).any(), area
            if area is not None:
                assert spec.in_area(area, *_centre(region)), area


def test_crowded_areas_are_the_only_empty_placements():
    """Of the 60 placements above (6 scenes x 10 areas), exactly these find no room; every other one is checked
    for clearing the objects and lying in its area."""
    empty = {(seed, area) for seed in range(6) for scene in [sample_scene(np.random.default_rng(seed))]
             for area in (None,) + spec.AREAS if not place_region(render(scene), area, "small").any()}
    assert empty == {(1, "bottom left"), (3, "center"), (4, "bottom right"), (4, "center")}


def test_size_words_set_the_radius_and_the_frame_is_respected():
    img = render(Scene(Background("white"), ()))
    small, large, default = (place_region(img, None, s) for s in ("small", "large", None))
    assert small.sum() < default.sum() < large.sum()
    r_large = np.sqrt(large.sum() / np.pi) / 64
    assert 0.26 <= r_large <= 0.29  # 0.175 of the side x region_scale 1.4, plus the 2 px region margin
    # no room for the scaled disc: the object's own (plus the margin), not "no edit"
    tight = place_region(img, None, "large", PlacementConfig(region_scale=3.0))
    assert 0.19 <= np.sqrt(tight.sum() / np.pi) / 64 <= 0.22
    for r in (small, large, default):
        assert not (r[0].any() or r[-1].any() or r[:, 0].any() or r[:, -1].any())


def test_gradient_background_is_free_and_objects_are_not():
    scene = Scene(Background("gray", "sky blue"), (WorldObject("star", "red", 0.5, 0.5, 0.18),))
    free = free_space(render(scene))
    occ = _occupied(scene)
    assert free[~occ].mean() > 0.97 and not free[object_coverage(scene.objects[0]) > 0.5].any()


def test_no_room_gives_an_empty_region():
    # 8 px tiles of two colours: every segment is small, no disc fits
    tiles = (np.add.outer(np.arange(64) // 8, np.arange(64) // 8) % 2).astype(bool)
    checker = np.where(tiles[..., None], np.uint8(250), np.uint8(10)).repeat(3, -1)
    assert not place_region(checker, None, "large").any()
    # noise: no background segment large enough to hold a disc
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    assert not place_region(noise, "center", "small").any()


def test_any_size_image_and_bad_area():
    scene = Scene(Background("black"), (WorldObject("circle", "yellow", 0.25, 0.25, 0.12),))
    big = np.asarray(Image.fromarray(render(scene)).resize((300, 500), Image.NEAREST))
    region = place_region(big, "bottom right", None)
    assert region.shape == (500, 300) and spec.in_area("bottom right", *_centre(region))
    with pytest.raises(ValueError, match="unknown area"):
        place_region(big, "upper left")
    assert PlacementConfig().radius_small < PlacementConfig().radius_large


def test_editor_places_added_objects_and_reports_no_room(tmp_path):
    from regionedit.pipeline import Editor, EditorConfig
    from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig
    from regionedit.world.tiny import save_tiny_models

    d = save_tiny_models(tmp_path / "tiny", region_bias=-30.0)  # the learned map is empty everywhere
    ed = Editor.from_pretrained(d, config=EditorConfig(steps=2))  # the folder names the shapes plugin
    assert ed.region_predictor is not None and isinstance(ed.prior(WorldPrior), WorldPrior)
    scene = Scene(Background("white"), (WorldObject("circle", "red", 0.7, 0.7, 0.12),))
    img = render(scene)
    res = ed(img, "please add a small green star in the top left", seed=0)
    assert res.status == "edited" and spec.in_area("top left", *_centre(res.mask))
    assert not (res.mask & _occupied(scene)).any()
    assert (res.image[~res.mask] == img[~res.mask]).all() and (res.image[res.mask] != img[res.mask]).any()
    tiles = (np.add.outer(np.arange(64) // 8, np.arange(64) // 8) % 2).astype(bool)
    full = np.where(tiles[..., None], np.uint8(250), np.uint8(10)).repeat(3, -1)
    res = ed(full, "add a large green star", seed=0)
    assert res.status == "no_edit" and "no free space" in res.reason
    # the learned map instead, as configured: empty here, so no edit
    ed2 = Editor.from_pretrained(d, config=EditorConfig(steps=2),
                                 plugin_options={"config": WorldPriorConfig(add_placement="predictor")})
    res = ed2(img, "add a small green star in the top left")
    assert res.status == "no_edit" and "no region found" in res.reason and not res.mask.any()
    with pytest.raises(ValueError, match="add_placement"):
        WorldPriorConfig(add_placement="anywhere")
