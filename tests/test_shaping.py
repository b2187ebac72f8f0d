"""Region shaping by edit type (regionedit.region.shaping)."""

import numpy as np
import pytest

from regionedit.describe import WorldDescriber
from regionedit.compose import erode
from regionedit.region.shaping import ShapingConfig, scale_about_centroid, shape_region


def _square(h=64, y=20, x=30, r=5):
    m = np.zeros((h, h), bool)
    m[y - r:y + r, x - r:x + r] = True
    return m


def test_bigger_is_the_footprint_scaled_about_its_centroid_minus_a_kept_core():
    region = _square()  # 10 x 10 px at rows 15..24, cols 25..34
    intent = WorldDescriber()("make the red square bigger").intent
    out = shape_region(region, intent, ShapingConfig(grow=1.5, core_erode=3))
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
    out = shape_region(region, intent, ShapingConfig(shrink=0.5, core_erode=2))
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
