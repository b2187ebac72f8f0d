"""Snapping a predicted region to the image's colour segments (region/refine.py)."""

import numpy as np
import pytest

from regionedit.world.priors.refine import (color_segments, connected_regions, downscale_nearest, enclosed_objects, grow_region,
                                      object_segments, snap_region, upscale_nearest, working_block)


def _scene(n=64):
    """A vertical-gradient background with a flat red disc (radius n/5 at the centre) and a blue square."""
    yy, xx = np.mgrid[:n, :n]
    img = np.zeros((n, n, 3), np.uint8)
    img[..., 2] = (40 + 150 * yy / n).astype(np.uint8)  # smooth: one segment despite the gradient
    img[..., 1] = 90
    disc = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= (n / 5) ** 2
    img[disc] = (220, 30, 30)
    sq = (yy < n // 6) & (xx < n // 6)
    img[sq] = (20, 20, 230)
    return img, disc, sq


def test_color_segments_separate_flat_objects_from_a_smooth_background():
    img, disc, sq = _scene()
    lab = color_segments(img)
    assert len(np.unique(lab[disc])) == 1 and len(np.unique(lab[sq])) == 1
    assert lab[disc][0] != lab[sq][0] != lab[~(disc | sq)][0]
    assert len(np.unique(lab)) == 3


def test_color_segments_label_each_segment_by_its_first_pixel():
    # the documented ids: a segment's label is the flat index of its first pixel in raster order
    img, disc, sq = _scene()
    for image in (img, np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)):
        flat = color_segments(image).ravel()
        ids = np.unique(flat)
        assert (ids == [np.flatnonzero(flat == i)[0] for i in ids]).all()
    steps = np.zeros((7, 5, 3), np.uint8)
    steps[..., 0] = (np.arange(35) * 7).reshape(7, 5)  # every 4-neighbour 7 or 35 levels apart
    assert (color_segments(steps, tol=5) == np.arange(35).reshape(7, 5)).all()  # nothing joins: one each


def test_grow_region_is_the_square_dilation():
    def brute(m, px):  # a pixel is in when its (2 px + 1)-square (clipped to the image) holds a region pixel
        h, w = m.shape
        return np.array([[m[max(0, y - px):y + px + 1, max(0, x - px):x + px + 1].any() for x in range(w)]
                         for y in range(h)])

    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random(tuple(rng.integers(1, 30, 2))) < rng.uniform(0.02, 0.5)
        for px in (1, 2, 5):
            assert (grow_region(m, px) == brute(m, px)).all()
    m = rng.random((6, 6)) < 0.5
    assert grow_region(m, 0) is m


def test_snap_fills_the_object_and_drops_stray_pixels():
    img, disc, sq = _scene()
    n = img.shape[0]
    yy, xx = np.mgrid[:n, :n]
    inner = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= (n / 5 - 3) ** 2  # the predictor stops inside the edge
    region = inner.copy()
    region[2:4, 40:44] = True  # stray pixels on the background
    snapped = snap_region(region, img, grow=0)
    assert (snapped == disc).all()
    grown = snap_region(region, img, grow=1)
    assert (grown == grow_region(disc, 1)).all() and grown.sum() > disc.sum()


def test_snap_is_scale_consistent_and_keeps_empty_or_unsupported_regions():
    img, disc, _ = _scene(512)
    region = disc & (np.arange(512)[None, :] < 300)  # most of the disc
    snapped = snap_region(region, img, grow=0)
    assert snapped.shape == (512, 512)
    iou = (snapped & disc).sum() / (snapped | disc).sum()
    assert iou > 0.97  # segmented at 256 px and scaled back
    empty = np.zeros((512, 512), bool)
    assert not snap_region(empty, img).any()
    speck = np.zeros((512, 512), bool)
    speck[0, 500] = True  # a vote nothing wins: the input comes back unchanged
    assert (snap_region(speck, img, grow=0) == speck).all()
    with pytest.raises(ValueError, match="image's size"):
        snap_region(np.zeros((10, 10), bool), img)


def test_object_segments_propose_each_object_and_not_the_background():
    img, disc, sq = _scene()
    props = object_segments(img)
    assert len(props) == 2  # the gradient background (> 40% of the image) is not a proposal
    big, small = props  # largest first
    assert (big & disc).sum() == disc.sum() and (big & ~grow_region(disc, 1)).sum() == 0
    assert (small & sq).sum() == sq.sum() and not (small & disc).any()
    assert len(object_segments(img, min_frac=0.05)) == 1  # the 10 px square (2.4%) is too small


def test_connected_regions_split_a_region_into_its_pieces_largest_first():
    img, disc, sq = _scene()
    pieces = connected_regions(disc | sq)
    assert len(pieces) == 2 and (pieces[0] == disc).all() and (pieces[1] == sq).all()
    assert connected_regions(np.zeros((8, 8), bool)) == []
    # large regions are split at a working scale and come back whole at full resolution
    big = np.kron(disc | sq, np.ones((8, 8), bool))  # 512 px
    pieces = connected_regions(big, max_side=128)
    assert len(pieces) == 2 and (pieces[0] | pieces[1] == big).all() and not (pieces[0] & pieces[1]).any()
    assert (pieces[1] == np.kron(sq, np.ones((8, 8), bool))).all()


def test_connected_regions_equal_sizes_keep_raster_order():
    m = np.zeros((10, 10), bool)
    m[6:8, 1:3] = True  # same size, lower
    m[1:3, 6:8] = True  # same size, first in raster order
    m[4, 4] = True  # diagonal to nothing: a piece of its own
    pieces = connected_regions(m)
    assert len(pieces) == 3 and pieces[0][1, 6] and pieces[1][6, 1] and pieces[2][4, 4]


def test_snap_keeps_the_predicted_region_when_its_object_lost_the_vote():
    """An object whose anti-aliased edge joins it to the background loses the vote; the snap must not
    shrink the prediction to a few stray pixels then."""
    img, disc, sq = _scene()
    yy, xx = np.mgrid[:64, :64]
    leaky = img.copy()
    for k in range(12):  # a ramp of small steps from the disc's red to the background: one segment
        leaky[32, 45 + k] = (220 - 18 * k, 30 + 5 * k, 30 + 10 * k)
    assert color_segments(leaky)[32, 32] == color_segments(leaky)[5, 40]  # disc and background joined
    pred = (disc & (xx < 40)) | sq  # most of the disc, and a small object that wins its vote
    out = snap_region(pred, leaky)
    assert (out & disc == pred & disc).all() and (out & ~disc == grow_region(sq, 1)).all()  # each object on its own
    shrunk = snap_region(pred, leaky, min_keep=0.0)  # what the fallback prevents: only the small object
    assert (shrunk & disc).sum() == 0 and shrunk[sq].all()


def test_enclosed_objects_are_the_islands_of_a_background_region():
    from regionedit.world.rendering import object_coverage, render
    from regionedit.world.scene import Background, Scene, WorldObject

    objs = (WorldObject("star", "red", 0.35, 0.4, 0.18), WorldObject("square", "green", 0.75, 0.75, 0.1),
            WorldObject("circle", "blue", 0.9, 0.2, 0.1))  # the circle crosses the frame
    img = render(Scene(Background("gray", "sky blue"), objs), 64)
    everything = np.ones((64, 64), bool)
    got = enclosed_objects(img, everything, tol=12)
    star, square, circle = (object_coverage(o, 64) > 0 for o in objs)
    for o in objs[:2]:
        cov = object_coverage(o, 64)
        assert got[cov > 0.6].all() and got[cov > 0.1].mean() > 0.95  # whole, nearly all its anti-aliased edge
    assert not got[circle & ~grow_region(star | square, 2)].any()  # touches the frame: not an island
    assert got.sum() < 1.6 * (star | square).sum()  # the background is not
    half = np.zeros((64, 64), bool)
    half[:, 48:] = True  # a region that leaves the star out does not surround it
    assert not enclosed_objects(img, half, tol=12)[star].any()
    flat = render(Scene(Background("gray"), ()), 64)
    cut = flat.copy()
    cut[20:30, 20:30] = cut[20:30, 20:30] + 5  # a piece of background of (nearly) its own colour
    assert not enclosed_objects(cut, everything, tol=3).any()


def test_flat_segments_propose_an_object_whose_edge_chains_it_to_the_background():
    """A white star on beige: its tips fade into the background in steps below the tolerance, so it is no
    colour segment at all; the flat-pixel segments still propose it, tips included."""
    from regionedit.world.priors.refine import flat_segments
    from regionedit.world.rendering import object_coverage, render
    from regionedit.world.scene import Background, Scene, WorldObject

    star = WorldObject("star", "white", 0.6115359464549076, 0.6354099517446612, 0.1948851443990266)  # chains here
    img = render(Scene(Background("beige"), (star,)), 64)
    cov = object_coverage(star, 64)
    assert object_segments(img, tol=12) == []  # chained: no proposal (what flat_segments is for)
    props = flat_segments(img, tol=12)
    assert len(props) == 1
    got = props[0]
    assert got[cov > 0.5].all()  # the whole star, tips included
    assert not got[~grow_region(cov > 0, 1)].any()  # and nothing of the background beyond its edge
    both = object_segments(img, tol=12, flat=True)
    assert len(both) == 1 and (both[0] == got).all()
    img2, disc, sq = _scene()  # flat objects are proposed once (the colour segment and its flat twin agree)
    assert len(object_segments(img2, flat=True)) == len(object_segments(img2)) == 2


def test_enclosed_objects_with_flat_segments_keep_a_chained_star():
    from regionedit.world.rendering import object_coverage, render
    from regionedit.world.scene import Background, Scene, WorldObject

    star = WorldObject("star", "white", 0.6115359464549076, 0.6354099517446612, 0.1948851443990266)
    img = render(Scene(Background("beige"), (star,)), 64)
    cov = object_coverage(star, 64)
    everything = np.ones((64, 64), bool)
    assert not enclosed_objects(img, everything, tol=12)[cov > 0.5].any()  # chained: repainted as background
    got = enclosed_objects(img, everything, tol=12, flat=True)
    assert got[cov > 0.5].all() and not got[~grow_region(cov > 0, 1)].any()


@pytest.mark.parametrize("hw", [(64, 64), (256, 256), (257, 100), (512, 512), (300, 1000), (1024, 768), (2048, 2048)])
def test_working_block_is_the_downscale_pixel_size(hw):
    # one working pixel comes back as a run of at most `working_block` full-size pixels (and, when the image is
    # shrunk at all, some run is that long: the block is not an overestimate)
    h, w = hw
    small, up = downscale_nearest(np.zeros((h, w), np.uint8), 256)
    block = working_block(h, w, 256)
    if up is None:
        assert block == 1 and small.shape == (h, w)
        return
    ids = upscale_nearest(np.arange(small.size).reshape(small.shape), up)
    runs = [np.bincount(ids[:, 0]).max(), np.bincount(ids[0]).max()]
    assert max(runs) == block
