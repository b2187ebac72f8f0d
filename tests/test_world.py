"""The shapes world against its contract (WORLD.md, spec v1).

Geometry is re-derived here independently of ``regionedit.world.render`` (shape vertices from
trigonometry, a separate signed-distance and dilation implementation), so a wrong constant or a
broken renderer fails these tests rather than agreeing with itself.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pytest

from regionedit.world import render, sample_edit, spec
from regionedit.world.language import SHAPE_SYNONYMS
from regionedit.world.scene import Scene, WorldObject

N_PER_CATEGORY = 40  # samples per category for the per-edit checks

# WORLD.md, copied by hand: a change to spec.py that drifts from the document fails here.
WORLD_BACKGROUNDS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "beige": (240, 230, 180),
    "sky blue": (120, 170, 230),
    "light green": (150, 200, 150),
}
WORLD_OBJECT_COLORS = {
    "red": (220, 40, 40),
    "orange": (240, 130, 30),
    "yellow": (245, 210, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 170),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
}
WORLD_SIZES = {"small": (0.09, 0.12), "large": (0.15, 0.20)}
WORLD_SHAPES = {"circle", "square", "triangle", "star", "diamond"}
WORLD_CATEGORIES = {"remove", "add", "local", "color", "size", "background", "absent"}

# sha256 of sample_edit(0, i).source.tobytes() / .target.tobytes(), recorded when the world was
# frozen: any change to scene sampling, edits or rendering changes them.
GOLDEN_SOURCE_SHA256 = [
    "fb76ab98071ecb76aa06daecb3f7e591062617f16fa798c2840f590a03ddc87a",
    "4abb9639acd8f42e1141feaa00e29261a4f66a0b9ea377b0080a826e01e89e59",
    "941ade97c886797db08298c58ce3afe267e99b628e96bd645e7a30ffcd11ca22",
    "02ba85f286528116d3750e14bce4e922ef9aa937c9995e387aba9493db2d6902",
    "65839ee5a57c493bc63e8dacd755028db230f2b6bbf47943fa7e868349fe46f7",
]
GOLDEN_TARGET_SHA256 = [
    "948484312c27878d85fb9975926974ba5268bdde5a8fb443ae1aec88b5764843",
    "4abb9639acd8f42e1141feaa00e29261a4f66a0b9ea377b0080a826e01e89e59",
    "500e28a06645da3d02a111aabcfce1cddbdd84f5821dbb08aad9005b5a175894",
    "02ba85f286528116d3750e14bce4e922ef9aa937c9995e387aba9493db2d6902",
    "65839ee5a57c493bc63e8dacd755028db230f2b6bbf47943fa7e868349fe46f7",
]


# ------------------------------------------------------------------------------------------------
# independent geometry


def _polygon(obj: WorldObject) -> np.ndarray:
    """Vertices (y down) from the spec's words, via trigonometry: (K, 2) float64."""

    def ring(start_deg: float, k: int, radius: float) -> list[tuple[float, float]]:
        return [
            (radius * math.cos(math.radians(start_deg + 360 * i / k)),
             radius * math.sin(math.radians(start_deg + 360 * i / k)))
            for i in range(k)
        ]

    if obj.shape == "square":  # axis aligned: corners at 45 degrees
        pts = ring(45, 4, 1.0)
    elif obj.shape == "diamond":  # square rotated 45 degrees: a vertex at the top
        pts = ring(-90, 4, 1.0)
    elif obj.shape == "triangle":  # upright equilateral
        pts = ring(-90, 3, 1.0)
    elif obj.shape == "star":  # 5 points, inner radius 0.45 of the outer one
        outer, inner = ring(-90, 5, 1.0), ring(-90 + 36, 5, 0.45)
        pts = [p for pair in zip(outer, inner) for p in pair]
    else:
        raise AssertionError(obj.shape)
    return np.array(pts) * obj.r + np.array([obj.cx, obj.cy])


def sdf(obj: WorldObject, size: int) -> np.ndarray:
    """Signed distance in *pixels* (negative inside) of each pixel centre to ``obj``: (S, S)."""
    c = (np.arange(size) + 0.5) / size
    px, py = np.meshgrid(c, c)  # px varies along columns, py along rows
    if obj.shape == "circle":
        return (np.hypot(px - obj.cx, py - obj.cy) - obj.r) * size
    verts = _polygon(obj)
    dist = np.full(px.shape, np.inf)
    winding = np.zeros(px.shape, dtype=int)
    for (ax, ay), (bx, by) in zip(verts, np.roll(verts, -1, axis=0)):
        ex, ey = bx - ax, by - ay
        t = np.clip(((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey), 0, 1)
        dist = np.minimum(dist, np.hypot(px - ax - t * ex, py - ay - t * ey))
        cross = ex * (py - ay) - ey * (px - ax)
        winding += np.where((ay <= py) & (by > py) & (cross > 0), 1, 0)
        winding -= np.where((ay > py) & (by <= py) & (cross < 0), 1, 0)
    return np.where(winding != 0, -dist, dist) * size


def dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """Binary dilation with a (2r+1)^2 square, via padding: (H, W) bool."""
    p = np.pad(mask, r)
    h, w = mask.shape
    return np.any([p[dy : dy + h, dx : dx + w] for dy in range(2 * r + 1) for dx in range(2 * r + 1)], axis=0)


def expected_background(scene: Scene, size: int) -> np.ndarray:
    """Solid colour or top-to-bottom linear gradient at pixel-centre rows: (S, 3) float per row."""
    top = np.array(WORLD_BACKGROUNDS[scene.background.top], float)
    if scene.background.bottom is None:
        return np.tile(top, (size, 1))
    bottom = np.array(WORLD_BACKGROUNDS[scene.background.bottom], float)
    t = ((np.arange(size) + 0.5) / size)[:, None]
    return top + (bottom - top) * t


def changed_objects(a: Scene, b: Scene) -> list[WorldObject]:
    return [o for o in a.objects if o not in b.objects] + [o for o in b.objects if o not in a.objects]


def rgb_distance(a, b) -> float:
    return math.dist(a, b)


# ------------------------------------------------------------------------------------------------
# fixtures: a fixed set of samples per category (computed once per test session)


@pytest.fixture(scope="module")
def by_category() -> dict[str, list]:
    return {c: [sample_edit(11, i, category=c) for i in range(N_PER_CATEGORY)] for c in spec.CATEGORIES}


@pytest.fixture(scope="module")
def all_samples(by_category) -> list:
    return [s for samples in by_category.values() for s in samples]


# ------------------------------------------------------------------------------------------------
# constants and scene invariants


def test_constants_match_world_md():
    assert spec.BACKGROUND_COLORS == WORLD_BACKGROUNDS
    assert spec.OBJECT_COLORS == WORLD_OBJECT_COLORS
    assert spec.SIZE_RANGES == WORLD_SIZES
    assert set(spec.SHAPES) == WORLD_SHAPES
    assert set(spec.CATEGORIES) == WORLD_CATEGORIES
    assert spec.MIN_GAP == 0.03 and spec.STAR_INNER_RATIO == 0.45 and spec.NATIVE_SIZE == 64
    assert spec.MAX_OBJECTS == 3


def _check_scene(scene: Scene, min_objects: int = 1) -> None:
    bg = scene.background
    assert bg.top in WORLD_BACKGROUNDS
    assert bg.bottom is None or (bg.bottom in WORLD_BACKGROUNDS and bg.bottom != bg.top)
    assert min_objects <= len(scene.objects) <= 3
    pairs = [(o.color, o.shape) for o in scene.objects]
    assert len(set(pairs)) == len(pairs), f"(colour, shape) pairs repeat: {pairs}"
    for o in scene.objects:
        assert o.shape in WORLD_SHAPES and o.color in WORLD_OBJECT_COLORS
        lo, hi = WORLD_SIZES["small"] if o.r <= 0.125 else WORLD_SIZES["large"]
        assert lo <= o.r <= hi, f"radius {o.r} outside the small/large ranges"
        assert o.r <= o.cx <= 1 - o.r and o.r <= o.cy <= 1 - o.r, f"{o} not fully inside the canvas"
        for end in bg.ends:
            d = rgb_distance(WORLD_OBJECT_COLORS[o.color], WORLD_BACKGROUNDS[end])
            assert d >= 60, f"{o.color} object on {end} background: colour distance {d:.1f} < 60"
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1 :]:
            gap = math.hypot(a.cx - b.cx, a.cy - b.cy) - a.r - b.r
            assert gap >= 0.03 - 1e-12, f"objects {a} and {b} only {gap:.4f} apart"


def test_scene_invariants_sources_and_targets(all_samples):
    for s in all_samples:
        _check_scene(s.source_scene)
        # removing the only object leaves an empty scene; every other target keeps >= 1 object
        _check_scene(s.target_scene, min_objects=0 if s.category == "remove" else 1)


def test_scene_round_trip(all_samples):
    for s in all_samples[::7]:
        assert Scene.from_dict(s.source_scene.to_dict()) == s.source_scene


def test_size_classes_are_both_used(all_samples):
    radii = [o.r for s in all_samples for o in s.source_scene.objects]
    small = [r for r in radii if r <= 0.12]
    assert 0.25 < len(small) / len(radii) < 0.75
    assert min(radii) >= 0.09 and max(radii) <= 0.20


# ------------------------------------------------------------------------------------------------
# rendering


def _check_palette(image: np.ndarray, scene: Scene) -> None:
    size = image.shape[0]
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    dists = [sdf(o, size) for o in scene.objects]
    for o, d in zip(scene.objects, dists):
        inside = d <= -1.0  # pixel fully covered (one pixel from the edge)
        assert inside.sum() > 0, f"{o} has no fully covered pixel at {size}px"
        got = image[inside]
        assert (got == np.array(WORLD_OBJECT_COLORS[o.color])).all(), (
            f"{o.color} {o.shape}: fully covered pixels are {np.unique(got, axis=0)[:4]}, "
            f"not {WORLD_OBJECT_COLORS[o.color]}"
        )
    outside = np.ones((size, size), bool)
    for d in dists:
        outside &= d >= 1.0
    want = np.broadcast_to(expected_background(scene, size)[:, None, :], image.shape)
    err = np.abs(image.astype(float) - want)[outside]
    tol = 0.0 if scene.background.bottom is None else 0.51  # gradients: rounding of the ramp
    assert err.max() <= tol, f"background pixels off by up to {err.max()} from {scene.background}"


def test_palette_conformance_native(all_samples):
    for s in all_samples:
        _check_palette(s.source, s.source_scene)
        _check_palette(s.target, s.target_scene)


def test_palette_conformance_high_resolution(all_samples):
    # at 256 px a misplaced vertex (a wrong star ratio, a tilted triangle) is a few pixels off
    for s in all_samples[::10]:
        _check_palette(render(s.source_scene, 256), s.source_scene)


def test_every_shape_and_colour_occurs(all_samples):
    objs = [o for s in all_samples for o in s.source_scene.objects]
    assert {o.shape for o in objs} == WORLD_SHAPES
    assert {o.color for o in objs} == set(WORLD_OBJECT_COLORS)
    assert any(s.source_scene.background.bottom is not None for s in all_samples)
    assert any(s.source_scene.background.bottom is None for s in all_samples)


def test_same_scene_at_any_resolution():
    for i in range(12):
        native = sample_edit(5, i)
        big = sample_edit(5, i, size=128)
        assert big.source.shape == (128, 128, 3) and big.mask.shape == (128, 128)
        assert big.instruction == native.instruction and big.category == native.category
        assert big.source_scene == native.source_scene and big.target_scene == native.target_scene
        assert big.source_caption == native.source_caption
        assert np.array_equal(big.mask, np.repeat(np.repeat(native.mask, 2, axis=0), 2, axis=1))
        down = big.source.astype(float).reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
        assert np.abs(down - native.source).mean() < 1.0
        # 512 -> 64 box filter against the native anti-aliasing
        hi = render(native.source_scene, 512).astype(float).reshape(64, 8, 64, 8, 3).mean(axis=(1, 3))
        d = np.abs(hi - native.source)
        assert d.mean() < 1.0 and np.percentile(d, 99) < 16 and d.max() < 100, (d.mean(), d.max())


# ------------------------------------------------------------------------------------------------
# masks


def test_mask_is_dilated_pixel_difference(all_samples):
    for s in all_samples:
        assert s.mask.dtype == bool and s.mask.shape == s.source.shape[:2]
        assert s.source.dtype == np.uint8 and s.target.dtype == np.uint8
        want = dilate(np.any(s.source != s.target, axis=-1))
        assert np.array_equal(s.mask, want), f"{s.category}: {s.instruction!r}"
        if s.category == "absent":
            assert not s.mask.any() and np.array_equal(s.source, s.target)
        else:
            assert s.mask.any(), f"empty mask for {s.category}: {s.instruction!r}"


def label_map(scene: Scene, size: int = 64) -> np.ndarray:
    """What each pixel must show: 0 = background (no coverage), 1 + palette index of the object
    colour (full coverage), -1 = anti-aliased edge (undetermined): (S, S) int."""
    labels = np.zeros((size, size), int)
    edge = np.zeros((size, size), bool)
    colours = list(WORLD_OBJECT_COLORS)
    for o in scene.objects:
        d = sdf(o, size)
        labels[d <= -0.6] = 1 + colours.index(o.color)
        edge |= np.abs(d) < 0.6
    labels[edge] = -1
    return labels


def test_mask_covers_the_change_and_nothing_else(by_category):
    for cat in ("remove", "add", "local", "color", "size"):
        for s in by_category[cat]:
            assert changed_objects(s.source_scene, s.target_scene), f"{cat} changed no object"
            a, b = label_map(s.source_scene), label_map(s.target_scene)
            known = (a >= 0) & (b >= 0)
            differ = np.any(s.source != s.target, axis=-1)
            must_change = known & (a != b)
            must_keep = known & (a == b)
            if cat != "size":  # a star grown from r=0.12 to 0.15 may change only edge pixels
                assert must_change.any(), f"{cat}: {s.instruction!r} changes no whole pixel"
            assert differ[must_change].all() and s.mask[must_change].all(), f"{cat}: {s.instruction!r}"
            assert not differ[must_keep].any(), f"{cat}: {s.instruction!r} changed pixels it should keep"


# ------------------------------------------------------------------------------------------------
# determinism


def _digest(s) -> str:
    h = hashlib.sha256()
    for part in (s.source, s.target, s.mask):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(s.instruction.encode())
    h.update(s.target_caption.encode())
    return h.hexdigest()


def test_determinism_same_seed_same_bytes():
    first = [_digest(sample_edit(7, i)) for i in range(12)]
    second = [_digest(sample_edit(7, i)) for i in reversed(range(12))][::-1]  # random access order
    assert first == second
    assert len(set(first)) == len(first)
    assert _digest(sample_edit(8, 0)) != first[0]


def test_golden_hashes():
    got_src = [hashlib.sha256(sample_edit(0, i).source.tobytes()).hexdigest() for i in range(5)]
    got_tgt = [hashlib.sha256(sample_edit(0, i).target.tobytes()).hexdigest() for i in range(5)]
    assert got_src == GOLDEN_SOURCE_SHA256, (
        "scene sampling or rendering changed; if intended, bump the world spec version and re-record"
    )
    assert got_tgt == GOLDEN_TARGET_SHA256, (
        "edits or rendering changed; if intended, bump the world spec version and re-record"
    )


def test_category_rates():
    n = 700
    counts = Counter(sample_edit(2024, i).category for i in range(n))
    assert set(counts) == WORLD_CATEGORIES
    p = 1 / 7
    sd = math.sqrt(n * p * (1 - p))
    for cat, k in counts.items():
        assert abs(k - n * p) <= 4 * sd, f"{cat}: {k} of {n}, expected {n * p:.0f} +- {4 * sd:.0f}"


# ------------------------------------------------------------------------------------------------
# language


def _mentions(text: str, color: str | None, shape: str) -> bool:
    t = text.lower()
    colour_ok = color is None or color in t or (color == "gray" and "grey" in t)
    return colour_ok and any(w in t for w in SHAPE_SYNONYMS[shape])


def test_captions_list_objects_left_to_right(all_samples):
    for s in all_samples:
        for scene, cap in ((s.source_scene, s.source_caption), (s.target_scene, s.target_caption)):
            bg = scene.background
            bg_words = bg.top if bg.bottom is None else f"{bg.top} to {bg.bottom}"
            assert cap.endswith(f"{bg_words} background"), cap
            positions = [cap.find(f"{o.color} {o.shape}") for o in sorted(scene.objects, key=lambda o: o.cx)]
            assert all(p >= 0 for p in positions) and positions == sorted(positions), cap


def test_references_name_exactly_one_object(by_category):
    for cat in ("remove", "local", "color", "size"):
        for s in by_category[cat]:
            ref = s.edit["ref"]
            matches = s.source_scene.find(ref["color"], ref["shape"])
            assert len(matches) == 1, f"{s.instruction!r} matches {len(matches)} objects"
            assert _mentions(s.instruction, ref["color"], ref["shape"]), s.instruction


def test_absent_referents_are_not_in_the_scene(by_category):
    for s in by_category["absent"]:
        ref = s.edit["ref"]
        assert s.source_scene.find(ref["color"], ref["shape"]) == [], f"{s.instruction!r} names a present object"
        assert s.target_scene == s.source_scene and s.target_caption == s.source_caption
        assert _mentions(s.instruction, ref["color"], ref["shape"]), s.instruction


# ------------------------------------------------------------------------------------------------
# each category's ground truth


def _in_area(area: str, cx: float, cy: float) -> bool:
    if area == "center":
        return abs(cx - 0.5) <= 0.15 and abs(cy - 0.5) <= 0.15
    vert, horiz = area.split()
    return (cy < 0.5) == (vert == "top") and (cx < 0.5) == (horiz == "left")


def test_remove(by_category):
    for s in by_category["remove"]:
        gone = [o for o in s.source_scene.objects if o not in s.target_scene.objects]
        assert len(gone) == 1 and len(s.target_scene.objects) == len(s.source_scene.objects) - 1
        assert s.target_scene.background == s.source_scene.background


def test_add(by_category):
    named_area = 0
    for s in by_category["add"]:
        new = [o for o in s.target_scene.objects if o not in s.source_scene.objects]
        assert len(new) == 1 and len(s.target_scene.objects) == len(s.source_scene.objects) + 1
        o, e = new[0], s.edit
        assert (o.color, o.shape) == (e["color"], e["shape"])
        if e["size"] is not None:
            assert o.size == e["size"]
        if e["area"] is not None:
            named_area += 1
            assert _in_area(e["area"], o.cx, o.cy), f"{s.instruction!r}: centre ({o.cx:.2f}, {o.cy:.2f})"
    assert named_area > 0


def test_size_keeps_centre_and_swaps_class(by_category):
    for s in by_category["size"]:
        old, new = changed_objects(s.source_scene, s.target_scene)
        assert (old.cx, old.cy, old.shape, old.color) == (new.cx, new.cy, new.shape, new.color)
        classes = {o.size for o in (old, new)}
        assert classes == {"small", "large"}
        assert s.edit["bigger"] == (new.r > old.r)


def test_local_keeps_centre_and_radius(by_category):
    for s in by_category["local"]:
        old, new = changed_objects(s.source_scene, s.target_scene)
        assert (old.cx, old.cy, old.r) == (new.cx, new.cy, new.r)
        assert old.shape != new.shape
        assert (new.color, new.shape) == (s.edit["color"], s.edit["shape"])


def test_color_keeps_shape_place_and_size(by_category):
    for s in by_category["color"]:
        old, new = changed_objects(s.source_scene, s.target_scene)
        assert (old.cx, old.cy, old.r, old.shape) == (new.cx, new.cy, new.r, new.shape)
        assert old.color != new.color == s.edit["color"]


def test_background_changes_every_non_object_pixel(by_category):
    for s in by_category["background"]:
        assert s.target_scene.objects == s.source_scene.objects
        assert s.target_scene.background != s.source_scene.background
        bg = s.target_scene.background
        assert (bg.top, bg.bottom) == (s.edit["top"], s.edit["bottom"])
        dists = [sdf(o, 64) for o in s.source_scene.objects]
        free = np.all([d >= 0.6 for d in dists], axis=0)  # zero object coverage
        interior = np.any([d <= -0.6 for d in dists], axis=0)  # full object coverage
        assert np.any(s.source != s.target, axis=-1)[free].all(), s.instruction
        assert (s.source == s.target)[interior].all()
