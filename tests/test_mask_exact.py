"""The reported mask covers every change: on random edits of many kinds and sizes, the output equals the input
bit-for-bit outside ``EditResult.mask`` (what ``--mask-out`` writes), always."""

from __future__ import annotations

import numpy as np
import pytest

from regionedit import models
from regionedit.pipeline import EditorConfig
from regionedit.world import render, sample_edit, spec
from regionedit.world.plugin import world_editor
from regionedit.world.tiny import save_tiny_models, tiny_region_predictor

N_EDITS = 210
SIZES = (64, 64, 64, 80, 96, 128, 128, 173, 256, 512, 1024, 2048)  # long sides, weighted to the small (speed)


def _image(scene, side: int, h: int) -> np.ndarray:
    """The scene at ``side`` px (rendered at <= 256 px and resized: large renders are slow), cropped to ``h`` rows."""
    from PIL import Image

    small = render(scene, min(side, 256))
    image = small if side <= 256 else np.asarray(Image.fromarray(small).resize((side, side), Image.BILINEAR))
    return np.ascontiguousarray(image[:h])


@pytest.fixture(scope="module")
def editors(tmp_path_factory):
    m = models.load(save_tiny_models(tmp_path_factory.mktemp("tiny")))
    out = {}
    for bias in (3.0, 0.3, -30.0):  # the map lights everything / a random half / nothing
        pred = tiny_region_predictor(bias)
        for blend in ("feather", "laplacian", "poisson", "hard"):
            cfg = EditorConfig(steps=1, blend=blend, candidates=2)
            out[bias, blend, True] = world_editor(m, pred, cfg)
            out[bias, blend, False] = world_editor(m, pred, cfg, priors=False)
    return out


def test_output_equals_input_outside_the_reported_mask(editors):
    rng = np.random.default_rng(2026)
    counts = {"edited": 0, "no_edit": 0}
    big = 0
    for k in range(N_EDITS):
        side = int(rng.choice(SIZES))
        big += side >= 1024
        cat = str(rng.choice(spec.CATEGORIES))
        s = sample_edit(31000 + k, 0, category=cat)
        h = side if rng.random() < 0.7 else int(side * rng.uniform(0.5, 1.0))
        image = _image(s.source_scene, side, h)
        if rng.random() < 0.2:  # texture a photo would have: the rules' flat colours are gone
            image = np.clip(image.astype(int) + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
        key = (float(rng.choice([3.0, 0.3, -30.0])), str(rng.choice(["feather", "laplacian", "poisson", "hard"])),
               bool(rng.random() < 0.6))
        mask = None
        if rng.random() < 0.3:  # a user's mask: a random blob, sometimes touching the frame, sometimes 1 px wide
            mask = np.zeros(image.shape[:2], bool)
            y0, x0 = rng.integers(0, image.shape[0]), rng.integers(0, image.shape[1])
            hh, ww = rng.integers(1, max(2, image.shape[0] // 2)), rng.integers(1, max(2, image.shape[1] // 2))
            mask[y0:y0 + hh, x0:x0 + ww] = True
        res = editors[key](image, s.instruction, seed=k, mask=mask)
        counts[res.status] += 1
        changed = (res.image != image).any(-1)
        assert not (changed & ~res.mask).any(), (k, side, cat, key, res.status, int((changed & ~res.mask).sum()))
        assert res.image.shape == image.shape and res.image.dtype == np.uint8
        if res.status == "no_edit":
            assert not res.mask.any() and np.array_equal(res.image, image)
        if mask is not None and res.status == "edited" and not res.steps:
            assert not (res.mask & ~mask).any() or s.edit["category"] in ("size", "add", "background")
    assert counts["edited"] >= N_EDITS // 2 and big >= 10, (counts, big)  # the test exercised real edits, large ones too
