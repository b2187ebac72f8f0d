"""Crop boxes, resizing, dilation/feathering and the bit-exact composition guarantee."""

from __future__ import annotations

import os

import numpy as np
import pytest

from regionedit.compose import (
    METHODS,
    CropBox,
    auto_blend_px,
    blend_mask,
    compose,
    crop_resize,
    crop_resize_mask,
    dilate,
    feather,
    paste_back,
    region_crop,
    uncrop_resize,
)
from regionedit.compose.blend import _cg_laplace, _dist_to_true, _harmonic_fill, _within


def _disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _smooth_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, 90 + 60 * (xx + yy) / (h + w)], axis=2)
    return np.rint(img).astype(np.uint8)


def _case(h: int, w: int, seed: int = 0, radius: float | None = None):
    """Random source and edited images, a soft off-centre disk region (radius in pixels)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    edited = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    r = 0.2 * min(h, w) if radius is None else radius
    region = _disk(h, w, 0.45 * h, 0.6 * w, r).astype(np.float32)
    region *= rng.uniform(0.5, 1.0, size=region.shape).astype(np.float32)  # soft, all >= 0.5
    region[0, 0] = 0.49  # a soft value under the threshold: not part of the region
    return src, edited, region


def _assert_same_outside(out: np.ndarray, src: np.ndarray, support: np.ndarray) -> None:
    """np.array_equal on the pixels outside ``support`` (without copying them out)."""
    assert out.shape == src.shape and out.dtype == src.dtype == np.uint8
    assert np.array_equal(np.where(support[..., None], 0, out), np.where(support[..., None], 0, src))


def _available_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


# ------------------------------------------------------------------------------------------------
# crop boxes


@pytest.mark.parametrize("seed", range(40))
def test_region_crop_properties(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(20, 300, 2))
    region = np.zeros((h, w), bool)
    y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
    region[y0 : y0 + int(rng.integers(1, h)), x0 : x0 + int(rng.integers(1, w))] = True
    context = float(rng.choice([0.0, 0.25, 0.5, 1.0]))
    min_size = int(rng.choice([1, 32, 64]))
    box = region_crop(region, context=context, min_size=min_size)
    assert box.fits(h, w)
    ys, xs = np.nonzero(region)
    assert box.y0 <= ys.min() and ys.max() < box.y1 and box.x0 <= xs.min() and xs.max() < box.x1
    side = max(min_size, int(np.ceil(max(np.ptp(ys) + 1, np.ptp(xs) + 1) * (1 + 2 * context))))
    # square of the requested side, except along an axis shorter than that side
    assert box.width == min(side, w) and box.height == min(side, h)
    assert region[box.slices].sum() == region.sum()


def test_region_crop_shifts_at_border_and_uses_whole_small_image():
    region = np.zeros((200, 300), bool)
    region[0:10, 290:300] = True  # top-right corner
    box = region_crop(region, context=0.5, min_size=64)
    assert (box.width, box.height) == (64, 64)  # shifted, not shrunk
    assert (box.x1, box.y0) == (300, 0)
    small = np.zeros((40, 50), bool)
    small[10:30, 10:40] = True
    assert region_crop(small, context=0.5, min_size=16) == CropBox(0, 0, 50, 40)
    rect = region_crop(small, context=0.0, min_size=1, square=False)
    assert rect == CropBox(10, 10, 40, 30)


def test_region_crop_soft_map_and_errors():
    soft = np.full((50, 50), 0.2, np.float32)
    soft[20:30, 20:30] = 0.9
    box = region_crop(soft, context=0.0, min_size=1)
    assert box == CropBox(20, 20, 30, 30)
    with pytest.raises(ValueError, match="empty"):
        region_crop(np.zeros((10, 10)))
    with pytest.raises(ValueError):
        CropBox(5, 0, 5, 10)
    with pytest.raises(ValueError, match="does not fit"):
        crop_resize(np.zeros((10, 10, 3), np.uint8), CropBox(0, 0, 11, 10), 8)


def test_crop_resize_and_back():
    img = _smooth_image(120, 200)
    box = CropBox(30, 10, 130, 110)
    patch = crop_resize(img, box, 64)
    assert patch.shape == (64, 64, 3) and patch.dtype == np.uint8
    np.testing.assert_array_equal(crop_resize(img, box, 100), img[10:110, 30:130])
    back = uncrop_resize(patch, box)
    assert back.shape == (100, 100, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - img[box.slices]).mean() < 1.0  # smooth image: near lossless
    fback = uncrop_resize(patch.astype(np.float32) / 255, box)
    assert fback.dtype == np.float32 and fback.min() >= 0 and fback.max() <= 1
    assert np.abs(fback * 255 - back).max() <= 1.5
    rect = CropBox(0, 0, 150, 90)
    assert uncrop_resize(crop_resize(img, rect, 64), rect).shape == (90, 150, 3)
    mask = np.zeros((120, 200), bool)
    mask[40:80, 60:100] = True
    m = crop_resize_mask(mask, box, 64)
    assert m.shape == (64, 64) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
    assert abs(m.mean() - mask[box.slices].mean()) < 0.02  # area preserved
    up = crop_resize_mask(mask, CropBox(50, 30, 82, 62), 64)
    assert up.shape == (64, 64) and 0 <= up.min() and up.max() <= 1


# ------------------------------------------------------------------------------------------------
# dilation and feathering


def test_distance_and_dilate_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(16):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        t = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.2, 0.9])
        yy, xx = np.mgrid[:h, :w]
        ys, xs = np.nonzero(t)
        bf = (
            np.sqrt(((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).min(-1))
            if ys.size
            else np.full((h, w), np.inf)
        )
        for limit in (0, 1, 4, 9, 23, 60):
            d = _dist_to_true(t, limit)
            assert np.all(np.where(bf <= limit, np.abs(d - bf) < 1e-5, (d > limit) & (d <= limit + 1)))
            np.testing.assert_array_equal(_within(t, limit), bf <= limit)  # the O(H*W) dilation core
            np.testing.assert_array_equal(dilate(t, limit), bf <= limit)


def test_feather_properties():
    m = np.zeros((60, 80), bool)
    m[10:50, 5:80] = True  # touches the right image edge
    w = feather(m, 6)
    assert w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1
    assert (w[~m] == 0).all()
    assert (w[m] > 0).all()
    assert (w[20:40, 20:70] == 1).all()
    assert w[30, 79] == 1  # no fade towards the image border
    assert w[10, 40] < 0.1 and w[11, 40] < w[12, 40] < w[13, 40] < 1 == w[15, 40]
    np.testing.assert_array_equal(feather(m, 0), m.astype(np.float32))


# ------------------------------------------------------------------------------------------------
# the guarantee: outside the dilated region, the source's own bytes


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(64, 64), (100, 173), (512, 512), (2048, 2048)])
def test_compose_bit_exact_outside_support(size, method):
    src, edited, region = _case(*size, radius=min(0.2 * min(size), 120))
    out = compose(src, edited, region, dilate_px=5, feather_px=4, method=method)
    support, weight = blend_mask(region, dilate_px=5, feather_px=4)
    assert out.dtype == np.uint8 and out.shape == src.shape
    assert np.array_equal(out[~support], src[~support])
    assert support.sum() < support.size  # the test means something
    if method in ("feather", "laplacian", "hard"):
        full = weight >= 1 if method != "hard" else support
        assert full.any()
        assert np.array_equal(out[full], edited[full])
    region_bin = region >= 0.5
    if method in ("feather", "laplacian"):
        assert (weight[region_bin] == 1).all()  # feather_px <= dilate_px: the region is all edit


@pytest.mark.parametrize("method", METHODS)
def test_compose_region_at_image_border_and_float_edited(method):
    src, edited, _ = _case(90, 120, seed=3)
    region = np.zeros((90, 120), bool)
    region[:30, 80:] = True  # touches top and right edges
    out = compose(src, edited.astype(np.float64) / 255, region, 3, 3, method)
    support = dilate(region, 3)
    assert np.array_equal(out[~support], src[~support])


def test_compose_empty_region_and_errors():
    src, edited, _ = _case(32, 32)
    out = compose(src, edited, np.zeros((32, 32)))
    assert np.array_equal(out, src) and out is not src
    with pytest.raises(ValueError, match="method"):
        compose(src, edited, np.ones((32, 32)), method="magic")
    with pytest.raises(ValueError, match="shape"):
        compose(src, edited[:10], np.ones((32, 32)))
    with pytest.raises(ValueError, match="region"):
        compose(src, edited, np.ones((31, 32)))
    with pytest.raises(ValueError, match="uint8"):
        compose(src.astype(np.float32), edited, np.ones((32, 32)))


@pytest.mark.skipif(_available_bytes() < 2 * 2**30, reason="needs ~1 GiB of free memory")
def test_compose_and_paste_back_4096():
    # 4096 x 4096: 48 MB per image. Runtime ~1-3 s: work is limited to the region's box.
    h = w = 4096
    rng = np.random.default_rng(7)
    src = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, w, 3).copy()
    edited = src ^ np.uint8(0x5A)  # differs from the source at every pixel
    region = np.zeros((h, w), bool)
    region[3700:4000, 100:400] = _disk(300, 300, 150, 150, 140)
    out = compose(src, edited, region, dilate_px=8, feather_px=8, method="laplacian")
    _assert_same_outside(out, src, dilate(region, 8))
    assert np.array_equal(out[3700:4000, 100:400][region[3700:4000, 100:400]],
                          edited[3700:4000, 100:400][region[3700:4000, 100:400]])
    box = region_crop(region)
    patch = crop_resize(edited, box, 64)
    pasted = paste_back(src, patch, box, region, method="feather")
    _assert_same_outside(pasted, src, dilate(region, auto_blend_px(box, patch.shape)))
    assert not np.array_equal(pasted[box.slices], src[box.slices])


# ------------------------------------------------------------------------------------------------
# paste_back


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("size", "patch_side"), [((64, 64), 64), ((100, 173), 64), ((512, 512), 64), ((2048, 2048), 512)])
def test_paste_back_bit_exact(size, patch_side, method):
    src, edited, region = _case(*size, seed=5, radius=min(0.2 * min(size), 150))
    box = region_crop(region)
    patch = crop_resize(edited, box, patch_side)
    out = paste_back(src, patch, box, region, method=method)
    px = auto_blend_px(box, patch.shape)
    support = dilate(region >= 0.5, px)
    assert np.array_equal(out[~support], src[~support])
    outside_box = np.ones(size, bool)
    outside_box[box.slices] = False
    assert np.array_equal(out[outside_box], src[outside_box])
    assert not np.array_equal(out[region >= 0.5], src[region >= 0.5])


def test_paste_back_identity_patch_gives_edited_in_region():
    src, edited, region = _case(200, 150, seed=2)
    box = region_crop(region, min_size=1)
    patch = edited[box.slices]  # already at box size: no resampling
    out = paste_back(src, patch, box, region, method="feather", dilate_px=4, feather_px=4)
    r = region >= 0.5
    assert np.array_equal(out[r], edited[r])
    fl = paste_back(src, patch.astype(np.float32) / 255, box, region, dilate_px=4, feather_px=4)
    assert np.array_equal(fl[r], edited[r])


def test_paste_back_support_clipped_to_box_interior():
    # A region reaching the box edge (box given by the caller): the seam must stay inside the box.
    src, edited, _ = _case(100, 100, seed=4)
    region = np.zeros((100, 100), bool)
    region[40:60, 40:60] = True
    box = CropBox(45, 30, 70, 70)  # cuts the region on the left
    for method in METHODS:
        out = paste_back(src, edited[box.slices], box, region, method=method, dilate_px=3, feather_px=3)
        changed = np.any(out != src, axis=2)
        ys, xs = np.nonzero(changed)
        assert xs.min() > box.x0 and xs.max() < box.x1 - 1 and ys.min() > box.y0 and ys.max() < box.y1 - 1


# ------------------------------------------------------------------------------------------------
# seam quality of the better methods


def test_seams_on_a_colour_shift():
    h, w = 160, 160
    src = _smooth_image(h, w)
    edited = np.clip(src.astype(int) + np.array([30, -20, 25]), 0, 255).astype(np.uint8)
    region = _disk(h, w, 80, 80, 35)
    outs = {m: compose(src, edited, region, dilate_px=8, feather_px=8, method=m) for m in METHODS}

    def max_step(img):  # largest jump between 4-neighbours, in grey levels
        a = img.astype(int)
        return max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())

    base = max_step(src)
    assert max_step(outs["hard"]) >= 25 + base - 2  # a visible seam
    for m in ("feather", "laplacian"):
        assert max_step(outs[m]) <= base + 8  # the shift is spread over the ramp
    # Poisson with a pure colour shift: the gradients equal the source's, so it returns the source.
    support = dilate(region, 8)
    assert np.abs(outs["poisson"][support].astype(int) - src[support]).max() <= 1


def test_poisson_cascade_matches_direct_solve():
    h, w = 130, 120
    omega = _disk(h, w, 65, 60, 55)
    rng = np.random.default_rng(0)
    vals = np.zeros((h, w, 2))
    vals[..., 0] = 20 * np.sin(np.arange(w) / 9.0)[None, :] + 0.2 * np.arange(h)[:, None]
    vals[..., 1] = rng.normal(0, 5, (h, w))
    direct = _cg_laplace(np.where(omega[..., None], 0.0, vals), omega, tol=1e-10, max_iter=10_000)
    cascade = _harmonic_fill(vals, omega, direct_max=24 * 24)
    # three coarse levels; values span ~60 grey levels: approximate to about one level
    assert np.ptp(direct[omega]) > 40
    assert np.abs(cascade - direct)[omega].max() < 2.0
    assert np.abs(cascade - direct)[omega].mean() < 0.45
    np.testing.assert_array_equal(cascade[~omega], vals[~omega])
