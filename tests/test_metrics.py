"""Editing metrics (regionedit.evaluation.metrics): hand-computed values on tiny arrays, agreement
with torchmetrics (PSNR, SSIM), CLIP/DINO metrics with tiny random models, ground-truth metrics on
shapes-world samples, and the clear failure of metrics whose weights are not available."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from regionedit.evaluation.metrics import (
    BACKGROUND_TOLERANCE,
    FeatureExtractor,
    MetricUnavailable,
    absent_accuracy,
    clip_dir,
    clip_extractor,
    clip_i,
    clip_t,
    dino_extractor,
    dino_sim,
    edit_success,
    edit_success_sample,
    fid,
    frechet_distance,
    l1,
    l2,
    leakage,
    lpips,
    preservation,
    psnr,
    region_iou,
    ssim,
)
from regionedit.world import sample_edit, spec

CATEGORIES = spec.CATEGORIES

# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from regionedit import models
    from regionedit.world.tiny import save_tiny_models

    folder = save_tiny_models(tmp_path_factory.mktemp("tiny"))
    return models.load(folder)


@pytest.fixture(scope="module")
def clip_ext(tiny_models):
    return clip_extractor(tiny_models)


@pytest.fixture(scope="module")
def dino_folders(tmp_path_factory):
    from transformers import Dinov2Config, Dinov2Model, ViTConfig, ViTModel

    root = tmp_path_factory.mktemp("dino")
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8)
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(**small)).save_pretrained(root / "dinov2")
    torch.manual_seed(0)
    ViTModel(ViTConfig(**small)).save_pretrained(root / "vit")
    return root


@pytest.fixture(scope="module")
def samples():
    """Two world samples of every category (64 px)."""
    return {c: [sample_edit(7, i, category=c) for i in range(2)] for c in CATEGORIES}


def mean_color_extractor() -> FeatureExtractor:
    """A hand-checkable extractor: image embedding = mean RGB in [0, 1]; texts from a table."""
    table = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0)}
    return FeatureExtractor(
        "mean-rgb",
        embed_images=lambda x: x.mean(dim=(2, 3)),
        embed_texts=lambda texts: torch.tensor([table[t] for t in texts]),
    )


def solid(rgb, size=4) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (size, size, 3)).copy()


# ------------------------------------------------------------------------------------------------
# pixel metrics: hand values


def two_by_two():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (255, 0, 0)
    b[1, 1] = (51, 51, 51)
    return a, b


def test_l1_l2_psnr_hand_values():
    a, b = two_by_two()
    # |a - b| / 255 over 12 values: 1.0 (red channel of (0,0)) + 3 * 0.2 ((1,1)) = 1.6 -> 1.6 / 12
    assert l1(a, b) == pytest.approx(1.6 / 12, abs=1e-12)
    # squared: 1.0 + 3 * 0.04 = 1.12 -> 1.12 / 12 = 0.09333 (MSE, not RMSE)
    assert l2(a, b) == pytest.approx(1.12 / 12, abs=1e-12)
    # PSNR = 10 log10(1 / 0.093333) = 10 log10(10.714286) = 10.29963
    assert psnr(a, b) == pytest.approx(10 * math.log10(12 / 1.12), abs=1e-9)
    assert psnr(a, b) == pytest.approx(10.29963, abs=1e-5)
    # the same images given as floats in [0, 1]: the same numbers
    assert l1(a / 255.0, b / 255.0) == pytest.approx(1.6 / 12, abs=1e-12)
    # identical images
    assert l1(a, a) == 0.0 and l2(a, a) == 0.0 and psnr(a, a) == math.inf


def test_batches_are_per_image_means():
    a, b = two_by_two()
    batch_a, batch_b = np.stack([a, a]), np.stack([b, a])  # second pair identical
    np.testing.assert_allclose(l1(batch_a, batch_b, reduce=False), [1.6 / 12, 0.0])
    assert l1(batch_a, batch_b) == pytest.approx(0.8 / 12)  # (1.6/12 + 0) / 2
    assert l2([a, a], [b, a]) == pytest.approx(0.56 / 12)  # lists of images are stacked
    per = psnr(batch_a, batch_b, reduce=False)
    assert per[0] == pytest.approx(10.29963, abs=1e-5) and per[1] == math.inf
    assert isinstance(l1(a, b), float)


def test_input_validation():
    a, b = two_by_two()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        l1(a.astype(np.float64), b.astype(np.float64))  # floats in [0, 255]
    with pytest.raises(ValueError, match="shape"):
        l1(a, np.zeros((3, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        l1(a[..., 0], b[..., 0])
    with pytest.raises(TypeError):
        l1(a.astype(np.int32), b.astype(np.int32))


def test_ssim_hand_value_constant_images():
    # Constant images: local means are the constants (the window is normalised), variances and
    # covariance are 0, so SSIM = (2*0.5*0.25 + C1) / (0.5^2 + 0.25^2 + C1) * (0 + C2) / (0 + C2)
    # with C1 = 0.01^2 = 1e-4: 0.2501 / 0.3126 = 0.8000640
    a = np.full((12, 12, 3), 0.5)
    b = np.full((12, 12, 3), 0.25)
    expected = 0.2501 / 0.3126
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert ssim(a, b, padding="reflect") == pytest.approx(expected, abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


# ------------------------------------------------------------------------------------------------
# pixel metrics: torchmetrics agreement


def torchmetrics_pairs():
    rng = np.random.default_rng(0)
    noisy_a = rng.random((2, 40, 48, 3))
    noisy_b = np.clip(noisy_a + rng.normal(0.0, 0.1, noisy_a.shape), 0.0, 1.0)
    edit = sample_edit(0, 0, category="remove")
    color = sample_edit(0, 1, category="color", size=96)
    return {
        "random": (rng.random((2, 16, 16, 3)), rng.random((2, 16, 16, 3))),
        "random-correlated": (noisy_a, noisy_b),
        "world-remove-64": (edit.source, edit.target),
        "world-color-96": (color.source, color.target),
        "world-vs-shifted": (edit.source, np.roll(edit.source, 3, axis=1)),
    }


@pytest.mark.parametrize("case", list(torchmetrics_pairs()))
def test_psnr_ssim_match_torchmetrics(case):
    pytest.importorskip("torchmetrics")
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    a, b = torchmetrics_pairs()[case]

    def t(x):
        x = np.asarray(x)
        x = x[None] if x.ndim == 3 else x
        x = x / 255.0 if x.dtype == np.uint8 else x
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).to(torch.float64)

    ta, tb = t(a), t(b)
    tm_psnr = peak_signal_noise_ratio(ta, tb, data_range=1.0, dim=(1, 2, 3), reduction="none")
    np.testing.assert_allclose(psnr(a, b, reduce=False), tm_psnr.numpy(), atol=1e-4)

    tm_default, full = structural_similarity_index_measure(ta, tb, data_range=1.0, reduction="none", return_full_image=True)
    pad = 5  # 11 // 2
    reflect_ref = full.reshape(full.shape[0], -1).mean(-1).numpy()  # map over every pixel
    valid_ref = full[..., pad:-pad, pad:-pad].reshape(full.shape[0], -1).mean(-1).numpy()  # window inside
    ours_reflect = ssim(a, b, padding="reflect", reduce=False)
    ours_valid = ssim(a, b, reduce=False)
    np.testing.assert_allclose(ours_reflect, reflect_ref, atol=1e-4)
    np.testing.assert_allclose(ours_valid, valid_ref, atol=1e-4)
    # torchmetrics' own default averages the full (reflect-padded) map since its PR #2721 and the
    # valid part before it: ours matches it with the corresponding padding
    assert np.allclose(tm_default.numpy(), ours_reflect, atol=1e-4) or np.allclose(tm_default.numpy(), ours_valid, atol=1e-4)
    # another window: torchmetrics (like scikit-image) filters with 2 * int(3.5 sigma + 0.5) + 1 taps,
    # 7 for sigma 0.8 (valid: scikit-image; reflect: our scipy version)
    _, full7 = structural_similarity_index_measure(ta, tb, data_range=1.0, reduction="none", return_full_image=True,
                                                   kernel_size=7, sigma=0.8)
    np.testing.assert_allclose(ssim(a, b, window=7, sigma=0.8, padding="reflect", reduce=False),
                               full7.reshape(full7.shape[0], -1).mean(-1).numpy(), atol=1e-4)
    np.testing.assert_allclose(ssim(a, b, window=7, sigma=0.8, reduce=False),
                               full7[..., 3:-3, 3:-3].reshape(full7.shape[0], -1).mean(-1).numpy(), atol=1e-4)


def test_general_metric_modules_do_not_import_the_world():
    # the shapes-world metrics live in regionedit.world.edit_success; only the package re-exports them
    import ast
    from pathlib import Path

    import regionedit.evaluation.metrics as metrics_pkg

    for path in Path(metrics_pkg.__file__).parent.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("regionedit.world", "...world")), (path.name, name)


# ------------------------------------------------------------------------------------------------
# feature metrics: hand values with a mean-colour extractor


def test_feature_metrics_hand_values():
    ext = mean_color_extractor()
    red, green, yellow = solid((255, 0, 0)), solid((0, 255, 0)), solid((255, 255, 0))
    # embeddings (1,0,0), (0,1,0), (1,1,0): cos(red, green) = 0; cos(red, yellow) = 1/sqrt(2)
    assert clip_i(ext, red, green) == pytest.approx(0.0, abs=1e-12)
    assert clip_i(ext, red, yellow) == pytest.approx(1 / math.sqrt(2), abs=1e-7)
    np.testing.assert_allclose(
        clip_i(ext, np.stack([red, red]), np.stack([green, yellow]), reduce=False), [0.0, 1 / math.sqrt(2)], atol=1e-7
    )
    # CLIP-T: cos(yellow image (1,1,0), "red" (1,0,0)) = 1/sqrt(2); a single caption is broadcast
    assert clip_t(ext, yellow, "red") == pytest.approx(1 / math.sqrt(2), abs=1e-7)
    np.testing.assert_allclose(clip_t(ext, np.stack([red, green]), "red", reduce=False), [1.0, 0.0], atol=1e-7)
    # CLIP-dir, red -> yellow asked as "red" -> "green":
    # image direction (1,1,0)/sqrt2 - (1,0,0) = (0.7071-1, 0.7071, 0); text direction (-1, 1, 0)
    # cos = (0.2929 + 0.7071) / (sqrt(0.2929^2 + 0.7071^2) * sqrt(2)) = 1 / (0.76537 * 1.41421) = 0.92388
    u = np.array([1 / math.sqrt(2) - 1, 1 / math.sqrt(2), 0.0])
    expected = (-u[0] + u[1]) / (np.linalg.norm(u) * math.sqrt(2))
    assert expected == pytest.approx(0.92388, abs=1e-5)
    assert clip_dir(ext, red, yellow, "red", "green") == pytest.approx(expected, abs=1e-7)
    assert clip_dir(ext, red, yellow, "green", "red") == pytest.approx(-expected, abs=1e-7)
    # no change (or identical captions): zero direction -> 0, not NaN
    assert clip_dir(ext, red, red, "red", "green") == 0.0
    assert clip_dir(ext, red, yellow, "red", "red") == 0.0
    assert dino_sim(ext, red, yellow) == pytest.approx(1 / math.sqrt(2), abs=1e-7)


def test_feature_metric_argument_checks():
    ext = mean_color_extractor()
    red = solid((255, 0, 0))
    with pytest.raises(ValueError, match="captions"):
        clip_t(ext, np.stack([red, red]), ["red"])
    with pytest.raises(ValueError, match="same number"):
        clip_i(ext, np.stack([red, red]), red)
    image_only = FeatureExtractor("image-only", embed_images=lambda x: x.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match="no text encoder"):
        clip_t(image_only, red, "red")


# ------------------------------------------------------------------------------------------------
# feature metrics: tiny random CLIP


def test_clip_extractor_tiny(clip_ext, tiny_models, samples):
    s = samples["color"][0]
    assert clip_ext.name.startswith("clip:") and clip_ext.name.endswith("@32px")
    assert clip_ext.config["interpolation"] == "bicubic"  # the processor's resample
    assert clip_ext.config["center_crop"] == (32, 32)
    both = np.stack([s.source, s.target])
    emb = clip_ext.image_embed(both)
    assert emb.shape == (2, 32) and emb.dtype == torch.float32
    # the same embedding as CLIPModel.get_image_features on the checkpoint's own processor output
    # (PIL bicubic there, torch antialiased bicubic here: close, not bit-equal)
    from PIL import Image

    pv = tiny_models.clip_processor(images=[Image.fromarray(im) for im in both], return_tensors="pt").pixel_values
    with torch.no_grad():
        ref = tiny_models.clip.get_image_features(pixel_values=pv)
    ref = getattr(ref, "pooler_output", ref)
    assert torch.nn.functional.cosine_similarity(emb, ref).min() > 0.999
    # text embeddings: CLIPModel.get_text_features
    tok = tiny_models.clip_tokenizer([s.target_caption], padding="max_length", max_length=16, truncation=True, return_tensors="pt")
    with torch.no_grad():
        tref = tiny_models.clip.get_text_features(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
    tref = getattr(tref, "pooler_output", tref)
    torch.testing.assert_close(clip_ext.text_embed([s.target_caption]), tref, atol=1e-5, rtol=1e-5)


def test_clip_metrics_tiny(clip_ext, samples):
    s = samples["remove"][0]
    src, tgt = s.source, s.target
    assert clip_i(clip_ext, src, src) == pytest.approx(1.0, abs=1e-6)
    per = clip_i(clip_ext, np.stack([src, tgt]), np.stack([src, tgt]), reduce=False)
    assert per.shape == (2,) and np.allclose(per, 1.0, atol=1e-6)
    assert clip_i(clip_ext, src, tgt) < 1.0 - 1e-6
    ct = clip_t(clip_ext, tgt, s.target_caption)
    assert -1.0 <= ct <= 1.0 and isinstance(ct, float)
    d = clip_dir(clip_ext, src, tgt, s.source_caption, s.target_caption)
    assert d != 0.0 and -1.0 <= d <= 1.0
    # swapping the captions, or the images, flips the sign
    assert clip_dir(clip_ext, src, tgt, s.target_caption, s.source_caption) == pytest.approx(-d, abs=1e-6)
    assert clip_dir(clip_ext, tgt, src, s.source_caption, s.target_caption) == pytest.approx(-d, abs=1e-6)
    # a larger image is resized by the extractor (shortest edge 32, bicubic): same scene, similar embedding
    big = sample_edit(7, 0, category="remove", size=128)
    assert clip_i(clip_ext, big.source, src) > 0.99


# ------------------------------------------------------------------------------------------------
# DINO


@pytest.mark.parametrize("kind", ["dinov2", "vit"])
def test_dino_tiny(dino_folders, samples, kind):
    ext = dino_extractor(dino_folders / kind, crop_size=32)
    assert ext.name == f"dino:{dino_folders / kind}@32px"
    assert ext.config["resize"] == {"shortest_edge": 36}  # int(32 * 256 / 224)
    assert ext.config["image_embedding"].startswith("last_hidden_state[:, 0]")
    s = samples["local"][0]
    assert dino_sim(ext, s.source, s.source) == pytest.approx(1.0, abs=1e-6)
    other = sample_edit(8, 0, category="background")
    assert dino_sim(ext, s.source, other.source) < 1.0 - 1e-6
    # the embedding is the CLS token of the model's last hidden state
    x = torch.from_numpy(s.source / 255.0).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(x, size=(36, 36), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    x = x[..., 2:34, 2:34]
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    from transformers import AutoModel

    with torch.no_grad():
        ref = AutoModel.from_pretrained(dino_folders / kind)(pixel_values=x).last_hidden_state[:, 0]
    torch.testing.assert_close(ext.image_embed(s.source), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no text encoder"):
        clip_t(ext, s.source, s.source_caption)


def test_dino_vit_other_resolution(dino_folders):
    ext = dino_extractor(dino_folders / "vit", crop_size=48)  # != config.image_size: interpolated
    assert ext.config["interpolate_pos_encoding"] is True
    img = sample_edit(7, 0, category="remove").source
    assert dino_sim(ext, img, img) == pytest.approx(1.0, abs=1e-6)


def test_dino_missing_weights_clear_failure(tmp_path, dino_folders):
    with pytest.raises(MetricUnavailable, match="facebook/dino-vits16") as e:
        dino_extractor("facebook/dino-vits16", local_files_only=True)
    assert "huggingface-cli download" in str(e.value)
    with pytest.raises(MetricUnavailable, match="does not exist"):
        dino_extractor(str(tmp_path / "no-such-folder"))
    (tmp_path / "config-only").mkdir()
    (tmp_path / "config-only" / "config.json").write_text((dino_folders / "vit" / "config.json").read_text())
    with pytest.raises(MetricUnavailable, match="config-only"):
        dino_extractor(tmp_path / "config-only")


def test_dino_rejects_other_models(tiny_models):
    with pytest.raises(ValueError, match="ViT or Dinov2"):
        dino_extractor(f"{tiny_models.location}/clip")


# ------------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_distance_hand_values():
    # 1-D: a = {0, 2}: mean 1, unbiased var (1 + 1) / 1 = 2; b = {1, 5}: mean 3, var (4 + 4) / 1 = 8
    # FD = (1 - 3)^2 + 2 + 8 - 2 sqrt(2 * 8) = 4 + 10 - 8 = 6
    assert frechet_distance([[0.0], [2.0]], [[1.0], [5.0]]) == pytest.approx(6.0, abs=1e-12)
    # diagonal 2-D: a = {(1,0), (-1,0), (0,2), (0,-2)}: mean 0, cov diag(2/3, 8/3);
    # b = a * (2, 1) + (3, 0): mean (3, 0), cov diag(8/3, 8/3)
    # FD = 9 + (2/3 + 8/3) + (8/3 + 8/3) - 2 (sqrt(2/3 * 8/3) + sqrt(8/3 * 8/3)) = 9 + 26/3 - 2 * 4 = 29/3
    a = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    b = a * np.array([2.0, 1.0]) + np.array([3.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(29 / 3, abs=1e-10)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-10)
    assert frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(29 / 3, abs=1e-10)
    with pytest.raises(ValueError):
        frechet_distance(a[:1], b)


def test_frechet_distance_general_case():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6)) + 0.5
    # reference: Tr sqrt(S_a S_b) from the (real, non-negative) eigenvalues of the non-symmetric product
    ta, tb = torch.tensor(a), torch.tensor(b)
    sa, sb = torch.cov(ta.T), torch.cov(tb.T)
    tr = torch.linalg.eigvals(sa @ sb).real.clamp(min=0).sqrt().sum()
    ref = float(((ta.mean(0) - tb.mean(0)) ** 2).sum() + sa.trace() + sb.trace() - 2 * tr)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    try:
        from torchmetrics.image.fid import _compute_fid
    except ImportError:
        return
    tm = float(_compute_fid(ta.mean(0), sa, tb.mean(0), sb))
    assert frechet_distance(a, b) == pytest.approx(tm, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# ground-truth metrics


def test_region_iou():
    pred = np.array([[True, True], [False, False]])
    gt = np.array([[True, False], [True, False]])
    assert region_iou(pred, gt) == pytest.approx(1 / 3)  # intersection 1, union 3
    empty = np.zeros((2, 2), bool)
    assert region_iou(empty, empty) == 1.0  # both empty: defined as 1
    assert region_iou(pred, empty) == 0.0 and region_iou(empty, gt) == 0.0
    np.testing.assert_allclose(region_iou(np.stack([pred, empty]), np.stack([gt, empty]), reduce=False), [1 / 3, 1.0])
    assert region_iou(np.stack([pred, empty]), np.stack([gt, empty])) == pytest.approx(2 / 3)
    with pytest.raises(TypeError):
        region_iou(pred.astype(np.uint8), gt)


def test_leakage_and_preservation_hand_values():
    source = np.zeros((2, 2, 3), np.uint8)
    edited = source.copy()
    edited[0, 0] = (255, 255, 255)  # inside the mask
    edited[0, 1] = (51, 0, 0)  # outside: mean over channels 0.2 / 3
    mask = np.array([[True, False], [False, False]])
    # outside: 3 pixels, mean |diff| per pixel (0.2/3, 0, 0) -> 0.2 / 9
    assert leakage(edited, source, mask) == pytest.approx(0.2 / 9, abs=1e-12)
    assert preservation(edited, source, mask) == pytest.approx(2 / 3)  # 2 of 3 outside pixels identical
    # empty mask: all 4 pixels: (1 + 0.2/3 + 0 + 0) / 4 and 2 of 4 identical
    none = np.zeros((2, 2), bool)
    assert leakage(edited, source, none) == pytest.approx((1 + 0.2 / 3) / 4, abs=1e-12)
    assert preservation(edited, source, none) == 0.5
    # mask covering everything: nothing outside -> NaN; a batch mean skips such images
    full = np.ones((2, 2), bool)
    assert math.isnan(leakage(edited, source, full)) and math.isnan(preservation(edited, source, full))
    batch_masks = np.stack([mask, full])
    np.testing.assert_allclose(leakage(np.stack([edited, edited]), np.stack([source, source]), batch_masks, reduce=False),
                               [0.2 / 9, np.nan])
    assert preservation(np.stack([edited, edited]), np.stack([source, source]), batch_masks) == pytest.approx(2 / 3)
    # an unchanged image: no leakage, everything preserved
    assert leakage(source, source, mask) == 0.0 and preservation(source, source, mask) == 1.0
    with pytest.raises(ValueError, match="mask shape"):
        leakage(edited, source, np.zeros((3, 3), bool))


def test_leakage_preservation_on_world_targets(samples):
    # the ground-truth target differs from the source only inside the GT mask
    for cat in ("remove", "add", "local", "color", "size", "background"):
        s = samples[cat][0]
        assert leakage(s.target, s.source, s.mask) == 0.0
        assert preservation(s.target, s.source, s.mask) == 1.0
        # flipping the lowest bit of every value preserves nothing and leaks 1/255 everywhere
        flipped = s.source ^ 1
        assert preservation(flipped, s.source, s.mask) == 0.0
        assert leakage(flipped, s.source, s.mask) == pytest.approx(1 / 255)


@pytest.mark.parametrize("category", CATEGORIES)
def test_edit_success_world_samples(samples, category):
    for s in samples[category]:
        ok, reason = edit_success_sample(s, s.target, return_reason=True)
        assert ok, (s.instruction, reason)
        if category == "absent":
            assert edit_success_sample(s, s.source)  # unchanged image
            assert edit_success_sample(s, s.source, status="no_edit")
            assert not edit_success_sample(s, s.source, status="edited")
            changed = s.source.copy()
            changed[0, 0] ^= 1
            assert not edit_success_sample(s, changed)
        else:
            ok, reason = edit_success_sample(s, s.source, return_reason=True)
            assert not ok, (s.instruction, reason)
            assert not edit_success_sample(s, s.target, status="no_edit")


def test_edit_success_other_resolution_and_failures():
    # at 128 px the same rules hold (normalised coordinates)
    for cat in ("remove", "size", "background"):
        s = sample_edit(3, 0, category=cat, size=128)
        assert edit_success_sample(s, s.target)
        assert not edit_success_sample(s, s.source)
    # a colour edit's target does not satisfy a different colour edit
    s1, s2 = sample_edit(3, 1, category="color"), sample_edit(3, 2, category="color")
    assert not edit_success(s2.target, s1.target_scene, "color")
    # remove / add need the source scene; absent needs a status or the source image
    s = sample_edit(3, 0, category="remove")
    with pytest.raises(ValueError, match="source_scene"):
        edit_success(s.target, s.target_scene, "remove")
    with pytest.raises(ValueError, match="status"):
        edit_success(s.source, s.source_scene, "absent")
    with pytest.raises(ValueError, match="category"):
        edit_success(s.target, s.target_scene, "rotate")


def test_edit_success_background_tolerance():
    s = sample_edit(3, 0, category="background")
    assert BACKGROUND_TOLERANCE == 0.05
    # a small uniform shift (4 levels = 0.016) of the whole image keeps the background within tolerance
    shifted = np.clip(s.target.astype(int) + 4, 0, 255).astype(np.uint8)
    assert edit_success(shifted, s.target_scene, "background")


def test_absent_accuracy():
    statuses = ["no_edit", "edited", "no_edit", "edited", "edited"]
    is_absent = [True, True, False, False, False]
    # absent: 1 of 2 refused -> 0.5; present: 1 of 3 wrongly refused -> 1/3
    out = absent_accuracy(statuses, is_absent)
    assert out["no_edit_rate_on_absent"] == 0.5
    assert out["false_no_edit_rate"] == pytest.approx(1 / 3)
    assert (out["n_absent"], out["n_present"]) == (2, 3)
    none_absent = absent_accuracy(["edited"], [False])
    assert math.isnan(none_absent["no_edit_rate_on_absent"]) and none_absent["false_no_edit_rate"] == 0.0
    with pytest.raises(ValueError):
        absent_accuracy(["edited"], [True, False])


# ------------------------------------------------------------------------------------------------
# metrics whose weights are not available here


def test_lpips_clear_failure():
    a, b = sample_edit(0, 0, category="remove").source, sample_edit(0, 0, category="remove").target
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = lpips(a, b)
    except MetricUnavailable as e:
        msg = str(e)
        assert "LPIPS" in msg and "torchvision" in msg and "alexnet-owt-7be5be79.pth" in msg
        return
    pytest.skip(f"LPIPS weights are available here (lpips = {value:.4f})")


def test_fid_clear_failure():
    imgs = np.stack([sample_edit(0, i).source for i in range(4)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = fid(imgs[:2], imgs[2:], feature=64)
    except MetricUnavailable as e:
        msg = str(e)
        assert "FID" in msg and "torch-fidelity" in msg and "weights-inception-2015-12-05" in msg
        return
    pytest.skip(f"FID weights are available here (fid = {value:.4f})")


def test_add_iou_ceiling_bounds_every_region_that_does_not_see_the_placement():
    from regionedit.evaluation.metrics import add_iou_ceiling
    from regionedit.world.priors.placement import place_region
    from regionedit.world.rendering import render
    from regionedit.world.scene import Background, Scene, WorldObject

    scene = Scene(Background("white"), (WorldObject("circle", "blue", 0.7, 0.7, 0.15),))
    edit = {"color": "red", "shape": "star", "size": "small", "area": "top left"}
    bound, masks = add_iou_ceiling(scene, edit, k=120, seed=1, return_samples=True)
    assert 0.0 < bound < 0.6 and masks.shape == (120, 64, 64)
    yy, xx = np.mgrid[:64, :64] + 0.5
    candidates = [(yy - 16) ** 2 + (xx - 16) ** 2 <= r * r for r in (4, 7, 10, 16)]
    candidates += [place_region(render(scene), "top left", "small"), masks.mean(0) >= 0.3, masks.any(0)]
    for region in candidates:  # the bound holds for every region, exactly, on the placements it was estimated from
        expected = float(np.mean([region_iou(region, m) for m in masks]))
        assert expected <= bound + 1e-9
    anywhere = add_iou_ceiling(scene, dict(edit, area=None), k=120, seed=1)
    assert anywhere < bound  # no area named: the placement is even less determined
    full = Scene(Background("white"), tuple(WorldObject("square", c, x, y, 0.2) for c, x, y in
                                             (("blue", 0.25, 0.25), ("green", 0.75, 0.25), ("black", 0.25, 0.75))))
    assert np.isnan(add_iou_ceiling(full, {"color": "red", "shape": "star", "size": "large", "area": "top left"}, k=20))
