"""Crop boxes, resizing, morphology, the in-region blend weights and the guarantee: no pixel outside the
region changes, bit for bit, for every method."""

from __future__ import annotations

import os
import time

import cv2
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
    dilate_square,
    erode,
    feather,
    paste_back,
    region_alpha,
    region_crop,
    uncrop_resize,
)
from regionedit.compose.blend import dilate as blend_dilate  # the pre-split import path
from regionedit.compose.morphology import inside_distance
from regionedit.compose.poisson import _cg_laplace, harmonic_fill


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
# morphology (OpenCV) against brute force


def _brute_distance(t: np.ndarray) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest True pixel of ``t`` (inf if none)."""
    h, w = t.shape
    ys, xs = np.nonzero(t)
    if ys.size == 0:
        return np.full((h, w), np.inf)
    yy, xx = np.mgrid[:h, :w]
    return np.sqrt(((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).min(-1))


def test_morphology_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(16):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        t = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.2, 0.9])
        to_t = _brute_distance(t)
        for px in (0, 1, 2, 4, 8, 9, 23, 60):  # <= 8: disk kernel; > 8: distance transform
            np.testing.assert_array_equal(dilate(t, px), to_t <= px)
            # erosion: the whole disk inside t, beyond the frame counting as outside
            pad = np.pad(t, 1)
            np.testing.assert_array_equal(erode(t, px), t if px == 0 else
                                          (_brute_distance(~pad)[1:-1, 1:-1] > px))
            sq = np.zeros_like(t)
            for y, x in zip(*np.nonzero(t)):
                sq[max(y - px, 0): y + px + 1, max(x - px, 0): x + px + 1] = True
            np.testing.assert_array_equal(dilate_square(t, px), sq)
        d = inside_distance(t)
        want = np.where(t, _brute_distance(~t), 0.0)
        assert np.array_equal(np.isinf(d), np.isinf(want))
        fin = ~np.isinf(want)
        assert np.all(np.abs(d[fin] - want[fin]) < 1e-4)
    assert blend_dilate is dilate


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
# the in-region alpha and its width rule


def test_region_alpha_width_rule():
    r = np.zeros((60, 90), bool)
    r[2, 5:40] = True  # 1 px wide
    r[6:8, 5:40] = True  # 2 px
    r[12:15, 5:40] = True  # 3 px
    r[20:25, 5:40] = True  # 5 px
    r[30:58, 5:40] = True  # 28 px: thick
    r[40, 60] = True  # a single pixel
    r[10:50, 50] = True  # 1 px line, 9 px from the blob: a separate component keeps its own width
    r[0:20, 70:90] = True  # a blob touching the top and right image edges
    a = region_alpha(r, 4)
    assert a.dtype == np.float32 and a.shape == r.shape
    assert (a[~r] == 0).all() and (a[r] > 0).all()
    col = 20
    assert (a[2, 5:40] == 1).all() and (a[6:8, 5:40] == 1).all() and a[40, 60] == 1
    np.testing.assert_allclose(a[12:15, col], [0.5, 1, 0.5])
    np.testing.assert_allclose(a[20:25, col], [0.259259, 0.740741, 1, 0.740741, 0.259259], atol=1e-5)
    np.testing.assert_allclose(a[30:36, col], [0.15625, 0.5, 0.84375, 1, 1, 1])  # smoothstep(d / 4)
    assert (a[10:50, 50] == 1).all()
    assert a[0, 80] == 1 and a[10, 89] == 1 and a[19, 80] < 0.2  # no fade towards the frame
    np.testing.assert_array_equal(region_alpha(r, 0), r.astype(np.float32))
    # thick region: plain smoothstep(d / width); the edge weight shrinks with the width but stays > 0
    big = _disk(200, 200, 100, 100, 80)
    for width in (2, 8, 24):
        a = region_alpha(big, width)
        d = inside_distance(big)
        assert (a[d >= width] == 1).all() and (a[(d > 0) & (d < width)] < 1).all()
        assert (a[big] > 0).all()


def test_blend_mask_is_region_and_alpha():
    _, _, region = _case(80, 90, seed=9)
    support, weight = blend_mask(region, feather_px=3)
    np.testing.assert_array_equal(support, region >= 0.5)
    np.testing.assert_array_equal(weight, region_alpha(region >= 0.5, 3))
    with pytest.warns(DeprecationWarning, match="dilate_px"):
        blend_mask(region, dilate_px=4)


# ------------------------------------------------------------------------------------------------
# the guarantee: outside the region, the source's own bytes


def _random_region(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A binary region of a random kind: 1-px lines (straight, diagonal, polylines), single pixels,
    blobs (touching the frame or not), rings (holes), thin strips along the frame, speckles, the
    whole image; sometimes a union of two."""
    kinds = ["pixels", "hline", "vline", "diag", "poly", "blob", "ring", "corner", "strip"]
    if h * w <= 256 * 256:
        kinds += ["speckle", "full"]
    r = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        kind = kinds[int(rng.integers(len(kinds)))]
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        rad = int(rng.integers(1, max(2, min(h, w, 300) // 3)))
        if kind == "pixels":
            r[rng.integers(0, h, 4), rng.integers(0, w, 4)] = 1
        elif kind == "hline":
            r[cy, max(cx - rad, 0): cx + rad + 1] = 1
        elif kind == "vline":
            r[max(cy - rad, 0): cy + rad + 1, cx] = 1
        elif kind == "diag":
            n = np.arange(-rad, rad + 1)
            ok = (cy + n >= 0) & (cy + n < h) & (cx + n >= 0) & (cx + n < w)
            r[(cy + n)[ok], (cx + n)[ok]] = 1
        elif kind == "poly":
            pts = np.stack([rng.integers(0, w, 4), rng.integers(0, h, 4)], 1).astype(np.int32)
            cv2.polylines(r, [pts], False, 1, thickness=int(rng.integers(1, 4)))
        elif kind in ("blob", "ring", "corner"):
            if kind == "corner":
                cy, cx = int(rng.choice([0, h - 1])), int(rng.choice([0, w - 1]))
            cv2.ellipse(r, (cx, cy), (rad, int(rng.integers(1, rad + 1))), float(rng.uniform(0, 180)),
                        0, 360, 1, -1)
            if kind == "ring":
                cv2.circle(r, (cx, cy), rad // 2, 0, -1)
        elif kind == "strip":
            t = int(rng.integers(1, 4))
            side = int(rng.integers(4))
            sl = [(slice(0, t), slice(None)), (slice(h - t, h), slice(None)),
                  (slice(None), slice(0, t)), (slice(None), slice(w - t, w))][side]
            r[sl] = 1
        elif kind == "speckle":
            r |= (rng.random((h, w)) < 0.05).astype(np.uint8)
        elif kind == "full":
            r[:] = 1
    return r.astype(bool)


def _sizes(rng: np.random.Generator, i: int) -> tuple[int, int]:
    if 8 <= i < 16:  # 8 large cases: every method through compose and paste_back
        return int(rng.integers(1024, 2049)), int(rng.integers(1024, 2049))
    if i % 10 == 3:
        return int(rng.integers(300, 700)), int(rng.integers(300, 700))
    return int(rng.integers(64, 257)), int(rng.integers(64, 257))


def test_randomized_nothing_changes_outside_region():
    """240 random cases (every method 60 times, half through compose, half through paste_back; images
    64 to 2048 px): ``(out != src).any(-1)`` is a subset of the region, bit-exact."""
    rng = np.random.default_rng(2024)
    t0 = time.perf_counter()
    changed_any = {m: 0 for m in METHODS}
    for i in range(240):
        method = METHODS[i % len(METHODS)]
        use_compose = (i // len(METHODS)) % 2 == 0
        h, w = _sizes(rng, i)
        src = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, w, 3)
        r = _random_region(rng, h, w)
        region: np.ndarray = r
        if rng.random() < 0.3:  # soft map: the region is the part >= 0.5
            region = np.where(r, rng.uniform(0.5, 1.0, r.shape), rng.uniform(0.0, 0.4999, r.shape))
        if not r.any():
            continue
        if use_compose:
            edited = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, w, 3)
            if rng.random() < 0.25:
                edited = edited.astype(np.float32) / 255
            out = compose(src, edited, region, feather_px=int(rng.integers(0, 12)), method=method)
        else:
            box = region_crop(r, context=float(rng.choice([0.0, 0.25, 0.5])), min_size=int(rng.choice([1, 16, 64])))
            side = int(rng.choice([16, 64, 128]))
            patch = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            if rng.random() < 0.25:
                patch = patch.astype(np.float32) / 255
            fpx = None if rng.random() < 0.5 else int(rng.integers(0, 12))
            out = paste_back(src, patch, box, region, method=method, feather_px=fpx)
        assert out.dtype == np.uint8 and out.shape == src.shape
        changed = (out != src).any(-1)
        assert not (changed & ~r).any(), f"case {i}: {method} changed {int((changed & ~r).sum())} px outside"
        changed_any[method] += bool(changed.any())
    assert all(v >= 50 for v in changed_any.values()), changed_any  # the edits did land
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(64, 64), (100, 173), (512, 512), (2048, 2048)])
def test_compose_bit_exact_outside_region(size, method):
    src, edited, region = _case(*size, radius=min(0.2 * min(size), 120))
    out = compose(src, edited, region, feather_px=4, method=method)
    support, weight = blend_mask(region, feather_px=4)
    assert out.dtype == np.uint8 and out.shape == src.shape
    assert np.array_equal(out[~support], src[~support])
    if method in ("feather", "laplacian", "hard"):
        full = weight >= 1 if method != "hard" else support
        assert full.any()
        assert np.array_equal(out[full], edited[full])
    assert not np.array_equal(out[support], src[support])


@pytest.mark.parametrize("method", METHODS)
def test_compose_region_at_image_border_and_float_edited(method):
    src, edited, _ = _case(90, 120, seed=3)
    region = np.zeros((90, 120), bool)
    region[:30, 80:] = True  # touches top and right edges
    out = compose(src, edited.astype(np.float64) / 255, region, feather_px=3, method=method)
    assert np.array_equal(out[~region], src[~region])
    if method != "poisson":
        assert np.array_equal(out[:27, 83:], edited[:27, 83:])  # no fade towards the frame


def test_compose_empty_region_errors_and_deprecated_dilate_px():
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
    region = _disk(32, 32, 16, 16, 8)
    with pytest.warns(DeprecationWarning, match="dilate_px"):
        old = compose(src, edited, region, 4, 4)  # the old positional (dilate_px, feather_px)
    np.testing.assert_array_equal(old, compose(src, edited, region, feather_px=4))


@pytest.mark.skipif(_available_bytes() < 2 * 2**30, reason="needs ~1 GiB of free memory")
def test_compose_and_paste_back_4096():
    # 4096 x 4096: 48 MB per image. Runtime ~1-3 s: work is limited to the region's box.
    h = w = 4096
    rng = np.random.default_rng(7)
    src = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, w, 3).copy()
    edited = src ^ np.uint8(0x5A)  # differs from the source at every pixel
    region = np.zeros((h, w), bool)
    region[3700:4000, 100:400] = _disk(300, 300, 150, 150, 140)
    out = compose(src, edited, region, feather_px=8, method="laplacian")
    _assert_same_outside(out, src, region)
    inner = erode(region, 8)
    assert np.array_equal(out[inner], edited[inner])
    box = region_crop(region)
    patch = crop_resize(edited, box, 64)
    pasted = paste_back(src, patch, box, region, method="feather")
    _assert_same_outside(pasted, src, region)
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
    r = region >= 0.5
    assert np.array_equal(out[~r], src[~r])
    assert not np.array_equal(out[r], src[r])


@pytest.mark.parametrize("method", ["feather", "laplacian", "hard"])
@pytest.mark.parametrize("patch_side", [64, 200])
def test_paste_back_interior_is_the_patch_where_alpha_is_1(method, patch_side):
    src, edited, region = _case(200, 150, seed=2)
    box = region_crop(region, min_size=1)
    patch = crop_resize(edited, box, patch_side)  # the model's square (64: upscaled back; 200: downscaled)
    up = np.zeros_like(src)
    up[box.slices] = uncrop_resize(patch, box)
    px = auto_blend_px(box, patch.shape)
    r = region >= 0.5
    full = r if method == "hard" else region_alpha(r, px) == 1
    assert 0 < full.sum() < r.sum() or method == "hard"
    out = paste_back(src, patch, box, region, method=method)
    assert np.array_equal(out[full], up[full])
    patch_f = patch.astype(np.float32) / 255
    fl = paste_back(src, patch_f, box, region, method=method)
    up_f = np.zeros_like(src)
    up_f[box.slices] = np.rint(uncrop_resize(patch_f, box) * np.float32(255)).astype(np.uint8)  # resampled in float
    assert np.array_equal(fl[full], up_f[full])


@pytest.mark.parametrize("method", METHODS)
def test_thin_regions_are_edited(method):
    h, w = 80, 90
    src, edited, _ = _case(h, w, seed=6)
    region = np.zeros((h, w), bool)
    region[20, 10:70] = True  # a 1-px horizontal line
    region[np.arange(30, 70), np.arange(15, 55)] = True  # a 1-px diagonal (8-connected)
    region[60:62, 60:85] = True  # 2 px wide
    region[12, 80] = True  # a single pixel
    for out in (compose(src, edited, region, feather_px=6, method=method),
                paste_back(src, edited[10:75, 5:90], CropBox(5, 10, 90, 75), region, method=method,
                           feather_px=6)):
        changed = (out != src).any(-1)
        assert not (changed & ~region).any()
        if method == "poisson":  # the edit's gradients, matched to the source around: most pixels move
            assert changed[region].mean() > 0.8
        else:  # alpha is 1 on regions 1-2 px wide: the edit itself
            np.testing.assert_array_equal(out[region], edited[region])


def test_paste_back_frame_of_box_untouched():
    # A region reaching the box edge (box given by the caller): the seam must stay inside the box.
    src, edited, _ = _case(100, 100, seed=4)
    region = np.zeros((100, 100), bool)
    region[40:60, 40:60] = True
    box = CropBox(45, 30, 70, 70)  # cuts the region on the left
    for method in METHODS:
        out = paste_back(src, edited[box.slices], box, region, method=method, feather_px=3)
        changed = np.any(out != src, axis=2)
        ys, xs = np.nonzero(changed)
        assert xs.min() > box.x0 and xs.max() < box.x1 - 1 and ys.min() > box.y0 and ys.max() < box.y1 - 1
        assert not (changed & ~region).any()
    with pytest.warns(DeprecationWarning, match="dilate_px"):
        paste_back(src, edited[box.slices], box, region, dilate_px=3)


# ------------------------------------------------------------------------------------------------
# seam quality of the better methods


def test_seams_on_a_colour_shift():
    h, w = 160, 160
    src = _smooth_image(h, w)
    edited = np.clip(src.astype(int) + np.array([30, -20, 25]), 0, 255).astype(np.uint8)
    region = _disk(h, w, 80, 80, 35)
    outs = {m: compose(src, edited, region, feather_px=8, method=m) for m in METHODS}

    def max_step(img):  # largest jump between 4-neighbours, in grey levels
        a = img.astype(int)
        return max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())

    base = max_step(src)
    assert max_step(outs["hard"]) >= 25 + base - 2  # a visible seam
    for m in ("feather", "laplacian"):
        assert max_step(outs[m]) <= base + 8  # the shift is spread over the ramp
        inner = erode(region, 8)
        assert np.array_equal(outs[m][inner], edited[inner])
    # Poisson with a pure colour shift: the gradients equal the source's, so it returns the source.
    assert np.abs(outs["poisson"][region].astype(int) - src[region]).max() <= 1


def test_poisson_cascade_matches_direct_solve():
    h, w = 130, 120
    omega = _disk(h, w, 65, 60, 55)
    rng = np.random.default_rng(0)
    vals = np.zeros((h, w, 2))
    vals[..., 0] = 20 * np.sin(np.arange(w) / 9.0)[None, :] + 0.2 * np.arange(h)[:, None]
    vals[..., 1] = rng.normal(0, 5, (h, w))
    direct = _cg_laplace(np.where(omega[..., None], 0.0, vals), omega, tol=1e-10, max_iter=10_000)
    cascade = harmonic_fill(vals, omega, direct_max=24 * 24)
    # three coarse levels; values span ~60 grey levels: approximate to about one level
    assert np.ptp(direct[omega]) > 40
    assert np.abs(cascade - direct)[omega].max() < 2.0
    assert np.abs(cascade - direct)[omega].mean() < 0.45
    np.testing.assert_array_equal(cascade[~omega], vals[~omega])
