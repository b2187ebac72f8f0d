"""The independent renderer (evaluation/alt_render.py): it draws WORLD.md's scenes (checked against this
package's renderer and its palette/shape measurement), differently at the pixel level."""

import numpy as np
import pytest

from regionedit.evaluation import scene_match
from regionedit.world.alt_render import RENDERERS, drawn_by, render_by, render_pil, rerender_sample
from regionedit.world import Background, Scene, WorldObject, object_coverage, render, sample_edit, spec


@pytest.mark.parametrize("shape", spec.SHAPES)
def test_same_geometry_as_the_spec(shape):
    # one object of each shape: its footprint (colour distance from the background) matches the exact coverage
    scene = Scene(Background("white"), (WorldObject(shape, "blue", 0.45, 0.55, 0.18),))
    img = render_pil(scene, 128).astype(float)
    full = np.abs(np.array(spec.OBJECT_COLORS["blue"], float) - 255).sum()
    drawn = np.abs(img - 255).sum(-1) > full / 2  # over half covered
    exact = object_coverage(scene.objects[0], 128) > 0.5
    iou = (drawn & exact).sum() / (drawn | exact).sum()
    assert iou > 0.97, iou


def test_pixels_differ_from_ours_but_scenes_measure_the_same():
    changed, matched = [], []
    for i in range(12):
        s = sample_edit(21000, i, category="remove")
        ours, theirs = render(s.source_scene, 64), render_pil(s.source_scene, 64)
        changed.append((ours != theirs).any(-1).mean())
        m = scene_match(theirs, s.source_scene)
        matched.append(m["all_correct"])
    assert np.mean(changed) > 0.02  # a different renderer (edges, gradients), not a copy
    assert np.mean(matched) == 1.0


def test_gradient_ends_on_the_first_and_last_rows():
    scene = Scene(Background("black", "white"), ())
    img = render_pil(scene, 16)
    assert (img[0] == 0).all() and (img[-1] == 255).all()
    assert (np.diff(img[:, 0, 0].astype(int)) >= 0).all()
    ours = render(scene, 16)
    assert ours[0, 0, 0] > 0 and ours[-1, 0, 0] < 255  # ours stops half a row short


def test_aliased_edges_have_no_blend():
    s = sample_edit(21000, 0, category="color")
    img = render_pil(s.source_scene, 64, supersample=1)
    palette = {tuple(c) for c in spec.OBJECT_COLORS.values()}
    bg = {tuple(c) for c in map(tuple, img[:, 0])}  # gradient rows: each row's background colour
    assert {tuple(p) for p in img.reshape(-1, 3)} <= palette | bg | {tuple(r) for r in img[:, -1]}


def test_rerendered_sample_and_names():
    s = sample_edit(21000, 1, category="local")
    r = rerender_sample(s)
    assert r.instruction == s.instruction and r.target_scene == s.target_scene
    assert np.array_equal(r.source, render_pil(s.source_scene, 64))
    diff = (r.source != r.target).any(-1)
    assert r.mask[diff].all() and r.mask.sum() <= diff.sum() * 9  # the pixels that differ, dilated by 1
    assert drawn_by(s, "regionedit") is s
    assert np.array_equal(drawn_by(s, "pil-aliased").source, render_pil(s.source_scene, 64, supersample=1))
    assert set(RENDERERS) == {"regionedit", "pil", "pil-aliased"}
    with pytest.raises(ValueError, match="unknown renderer"):
        drawn_by(s, "blender")
    with pytest.raises(ValueError, match="supersample"):
        render_pil(s.source_scene, 64, supersample=0)


def test_render_by_names_the_renderers():
    sc = sample_edit(20000, 0).source_scene
    assert np.array_equal(render_by(sc, "regionedit"), render(sc, 64))
    assert np.array_equal(render_by(sc, "pil", 128), render_pil(sc, 128))
    assert np.array_equal(render_by(sc, "pil-aliased"), render_pil(sc, 64, supersample=1))
    with pytest.raises(ValueError, match="unknown renderer"):
        render_by(sc, "blender")
