"""Region shaping by edit type (regionedit.world.priors.shaping)."""

import numpy as np
import pytest

from regionedit.world.grammar import WorldDescriber
from regionedit.compose import erode
from regionedit.world.priors.shaping import ShapingConfig, scale_about_centroid, shape_region


def _square(h=64, y=20, x=30, r=5):
    m = np.zeros((h, h), bool)
    m[y - r:y + r, x - r:x + r] = True
    return m


def test_bigger_is_the_footprint_scaled_about_its_centroid_minus_a_kept_core():
    region = _square()  # 10 x 10 px at rows 15..24, cols 25..34
    intent = WorldDescriber()("make the red square bigger").intent
    out = shape_region(region, intent, ShapingConfig(grow=1.5, core_erode=3, size_classes=None))
    scaled = scale_about_centroid(region, 1.5)
    assert 14 <= scaled.sum() ** 0.5 <= 16  # a 15 x 15 square
    ys, xs = np.nonzero(scaled)
    assert abs(ys.mean() - 19.5) < 0.6 and abs(xs.mean() - 29.5) < 0.6
    core = erode(region, 3)
    assert core.sum() == 16 and core[18:22, 28:32].all()  # the 4 x 4 centre
    assert (out == (scaled & ~core)).all()
    # the earlier rule is kept as mode "disc": a disc around the footprint
    disc = shape_region(region, intent, ShapingConfig(mode="disc"))
    assert disc[region].all() and disc.sum() > 2.5 * region.sum()


def test_smaller_is_the_ring_around_a_scaled_down_core():
    region = _square(r=10)  # 20 x 20
    intent = WorldDescriber()("make the red square smaller").intent
    out = shape_region(region, intent, ShapingConfig(shrink=0.5, core_erode=2, size_classes=None))
    kept = region & ~out  # what stays of the object: a smaller square at the same centre
    assert not (out & ~region).any()
    assert 7 <= kept.sum() ** 0.5 <= 9  # (20 - 2 * 2) * 0.5 = 8 px wide
    ys, xs = np.nonzero(kept)
    assert abs(ys.mean() - 19.5) < 1 and abs(xs.mean() - 29.5) < 1
    # a footprint too thin for a core is left whole
    thin = np.zeros((64, 64), bool)
    thin[20, 10:30] = True
    assert (shape_region(thin, intent) == thin).all()


def test_scaling_and_erosion_edge_cases():
    with pytest.raises(ValueError, match="scale factor"):
        scale_about_centroid(_square(), 0)
    assert not scale_about_centroid(np.zeros((8, 8), bool), 2).any()
    corner = np.zeros((32, 32), bool)
    corner[:6, :6] = True
    assert scale_about_centroid(corner, 3).shape == (32, 32)  # clipped at the border
    assert not erode(corner, 3)[0].any()  # outside the image counts as outside
    with pytest.raises(ValueError, match="shaping mode"):
        shape_region(_square(), WorldDescriber()("make the square bigger").intent, ShapingConfig(mode="blob"))


def test_replace_uses_the_circumscribed_disc_and_other_edits_keep_the_region():
    region = _square()
    out = shape_region(region, WorldDescriber()("replace the red square with a blue star").intent)
    assert out[region].all() and region.sum() < out.sum() < 2.2 * region.sum()
    for text in ("remove the red square", "turn the red square green"):
        assert (shape_region(region, WorldDescriber()(text).intent) == region).all()
    assert not shape_region(np.zeros((8, 8), bool), WorldDescriber()("make the square bigger").intent).any()


def test_shaping_scales_with_the_image():
    small = shape_region(_square(64), WorldDescriber()("make the square bigger").intent)
    big = shape_region(np.kron(_square(64), np.ones((4, 4), bool)), WorldDescriber()("make the square bigger").intent)
    assert abs(big.mean() - small.mean()) < 0.01


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star", "diamond"])
@pytest.mark.parametrize("size", [64, 256])
def test_size_factor_swaps_the_world_size_class(shape, size):
    # WORLD.md: "bigger / smaller" swap the class (small r 0.09-0.12, large 0.15-0.20); the footprint is the
    # object's snapped colour segment, as the editor finds it
    from regionedit.world.priors.refine import snap_region
    from regionedit.world.priors.shaping import size_factor
    from regionedit.world import render
    from regionedit.world.rendering import object_coverage
    from regionedit.world.scene import Background, Scene, WorldObject

    for bg in ("white", "sky blue"):
        for r, bigger, (lo, hi) in [(0.09, True, (0.15, 0.20)), (0.12, True, (0.15, 0.20)),
                                    (0.15, False, (0.09, 0.12)), (0.20, False, (0.09, 0.12))]:
            obj = WorldObject(shape, "red", 0.5, 0.5, r)
            img = render(Scene(Background(bg), (obj,)), size)
            foot = snap_region(object_coverage(obj, size) > 0.5, img)
            new_r = r * size_factor(foot, bigger, image=img, shape=shape)
            assert lo <= new_r <= hi, (shape, size, bg, r, new_r)
            rough = r * size_factor(foot, bigger)  # from the footprint alone: coarser, the right side of the middle
            assert (rough > 0.135) if bigger else (rough < 0.135), (shape, size, bg, r, rough)


def test_size_factor_fixed_or_clipped():
    from regionedit.world.priors.shaping import size_factor

    # a fixed factor leaves a 0.09 object at 0.135: below the large class
    assert 0.09 * ShapingConfig().grow < 0.15
    foot = _square(r=10)
    assert size_factor(foot, True, ShapingConfig(size_classes=None)) == 1.5
    assert size_factor(foot, False, ShapingConfig(size_classes=None)) == 0.6
    # already in the class asked for: still a visible change
    assert size_factor(_square(r=1), False) == ShapingConfig().shrink_range[1]
    assert size_factor(np.ones((64, 64), bool), True) == ShapingConfig().grow_range[0]


def test_replace_region_is_a_disc_of_the_old_radius():
    from regionedit.world.priors.refine import snap_region
    from regionedit.world import render
    from regionedit.world.rendering import object_coverage
    from regionedit.world.scene import Background, Scene, WorldObject

    obj = WorldObject("square", "red", 0.5, 0.5, 0.15)
    img = render(Scene(Background("white"), (obj,)))
    foot = snap_region(object_coverage(obj, 64) > 0.5, img)
    intent = WorldDescriber()("replace the red square with a blue star").intent
    tight = shape_region(foot, intent, ShapingConfig(), img)
    loose = shape_region(foot, intent, ShapingConfig(local_disc="footprint"), img)
    assert tight[foot].all() and loose[tight].all() and tight.sum() < loose.sum()
    r = np.sqrt(tight.sum() / np.pi) / 64  # the disc's radius: the square's (0.15) and a 1 px margin
    assert 0.15 <= r <= 0.15 + 2.5 / 64, r
    with pytest.raises(ValueError, match="local_disc"):
        shape_region(foot, intent, ShapingConfig(local_disc="box"), img)


def test_the_world_prior_shapes_with_its_config():
    # the Editor's shaping step is the world prior's ``shape`` hook: shape_region with WorldPriorConfig.shaping,
    # the footprint as found when shape_regions is off or the description has no world intent
    import dataclasses

    from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig

    region = _square()
    desc = WorldDescriber()("make the red square bigger")
    shaping = ShapingConfig(grow=1.5, core_erode=3, size_classes=None)
    prior = WorldPrior(None, config=WorldPriorConfig(shaping=shaping))  # no model is read to shape
    want = shape_region(region, desc.intent, shaping)
    assert (prior.shape(region, desc, None) == want).all() and not (want == region).all()
    off = WorldPrior(None, config=WorldPriorConfig(shaping=shaping, shape_regions=False))
    assert (off.shape(region, desc, None) == region).all()
    assert (prior.shape(region, dataclasses.replace(desc, intent=None), None) == region).all()
