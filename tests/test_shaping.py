"""Region shaping by edit type (regionedit.region.shaping)."""

import numpy as np

from regionedit.describe import WorldDescriber
from regionedit.region.shaping import shape_region


def _square(h=64, y=20, x=30, r=5):
    m = np.zeros((h, h), bool)
    m[y - r:y + r, x - r:x + r] = True
    return m


def test_bigger_grows_a_disc_about_the_centroid_and_keeps_the_footprint():
    region = _square()
    intent = WorldDescriber()("make the red square bigger").intent
    out = shape_region(region, intent)
    assert out[region].all()
    assert out.sum() > 2.5 * region.sum()
    ys, xs = np.nonzero(out)
    assert abs(ys.mean() - 19.5) < 1 and abs(xs.mean() - 29.5) < 1


def test_replace_uses_the_circumscribed_disc_and_other_edits_keep_the_region():
    region = _square()
    out = shape_region(region, WorldDescriber()("replace the red square with a blue star").intent)
    assert out[region].all() and region.sum() < out.sum() < 2.2 * region.sum()
    for text in ("remove the red square", "make the red square smaller", "turn the red square green"):
        assert (shape_region(region, WorldDescriber()(text).intent) == region).all()
    assert not shape_region(np.zeros((8, 8), bool), WorldDescriber()("make the square bigger").intent).any()


def test_shaping_scales_with_the_image():
    small = shape_region(_square(64), WorldDescriber()("make the square bigger").intent)
    big = shape_region(np.kron(_square(64), np.ones((4, 4), bool)), WorldDescriber()("make the square bigger").intent)
    assert abs(big.mean() - small.mean()) < 0.01
