"""The seed-001 region predictor: shapes, multi-scale output, and a gradient path that really reaches
every predictor parameter through the CLIP losses (soft-mask composite, no no_grad, no PIL round trip)."""

import pytest
import torch

from regionedit import models
from regionedit.world.tiny import save_tiny_models
from regionedit.localize import (
    RegionPredictor,
    RegionPredictorConfig,
    SemanticAlignment,
    clip_directional_loss,
    clip_global_loss,
    clip_structural_loss,
    semantic_alignment_loss,
    soft_composite,
)
from regionedit.localize.features import clip_pixels, image_features, instruction_inputs, text_embeddings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.load(save_tiny_models(tmp_path_factory.mktemp("tiny")))


def test_region_shapes_and_range():
    torch.manual_seed(0)
    p = RegionPredictor(RegionPredictorConfig(image_dim=32, instruction_dim=24, dim=32, heads=4))
    out = p(torch.randn(2, 64, 32), torch.randn(2, 7, 24), torch.ones(2, 7, dtype=torch.long), pixels=torch.rand(2, 3, 48, 48) * 2 - 1)
    assert out["region"].shape == (2, 1, 48, 48)
    assert out["patch_region"].shape == (2, 1, 8, 8)
    assert out["f_edited"].shape == (2, 64, 32)
    r = out["region"]
    assert (r >= 0).all() and (r <= 1).all()
    with pytest.raises(ValueError, match="square patch grid"):
        p(torch.randn(1, 65, 32), torch.randn(1, 3, 24))


def test_instruction_changes_region():
    torch.manual_seed(0)
    p = RegionPredictor(RegionPredictorConfig(image_dim=16, instruction_dim=16, dim=16, heads=2))
    f_img = torch.randn(1, 16, 16)
    a = p(f_img, torch.randn(1, 5, 16))["patch_region"]
    b = p(f_img, torch.randn(1, 5, 16))["patch_region"]
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("clip_text", [False, True], ids=["t5-only", "t5+clip-text"])
def test_every_predictor_parameter_gets_gradient_from_the_full_loss(tiny, clip_text):
    clip, tok = tiny.clip, tiny.clip_tokenizer
    d = clip.config.projection_dim
    torch.manual_seed(0)
    text_dim = clip.config.text_config.hidden_size if clip_text else 0
    pred = RegionPredictor(RegionPredictorConfig(image_dim=d, instruction_dim=32, clip_dim=d, dim=32, heads=4, text_dim=text_dim))
    sem = SemanticAlignment(32, d)
    src = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the frozen generator's output: sampled without gradient
        generated = torch.rand(2, 3, 32, 32) * 2 - 1
    proc = tiny.clip_processor
    size = proc.crop_size["height"]
    f_img, e_src = image_features(clip, clip_pixels(src, size, proc.image_mean, proc.image_std))
    ins = ["remove the red circle", "add a star"]
    inputs = instruction_inputs(tiny, pred, ins)
    assert ("f_txt" in inputs) == clip_text
    out = pred(f_img, pixels=src, **inputs)
    if clip_text:
        with pytest.raises(ValueError, match="f_txt"):
            pred(f_img, inputs["f_ins"], inputs["ins_mask"])
    res = soft_composite(src, generated, out["region"])
    f_res, e_res = image_features(clip, clip_pixels(res, size, proc.image_mean, proc.image_std))
    t_tgt = text_embeddings(clip, tok, ["a white background", "a star"])
    t_src = text_embeddings(clip, tok, ["a red circle", "a red circle"])
    loss = (
        semantic_alignment_loss(sem(out["f_edited"]), t_tgt, sem(pred.proj_img(f_img)), t_src)
        + clip_global_loss(e_res, t_tgt)
        + clip_directional_loss(e_res, e_src, t_tgt, t_src)
        + clip_structural_loss(f_img, f_res)
    )
    loss.backward()
    for name, prm in list(pred.named_parameters()) + list(sem.named_parameters()):
        assert prm.grad is not None, f"{name} got no gradient"
        assert prm.grad.abs().sum() > 0, f"{name} got a zero gradient"
    # the frozen CLIP stays frozen
    assert all(p.grad is None for p in clip.parameters())


def test_clip_losses_hand_values():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    assert clip_global_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert clip_global_loss(a, b).item() == pytest.approx(1.0)
    assert clip_directional_loss(a + b, b, a, torch.zeros(1, 2)).item() == pytest.approx(0.0, abs=1e-6)
    f = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    g = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    # Sim(f) = I, Sim(g) = ones: two off-diagonal entries differ by 1 -> mean over 4 = 0.5
    assert clip_structural_loss(f, g).item() == pytest.approx(0.5)
    src, gen = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    m = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    assert torch.allclose(soft_composite(src, gen, m)[0, 0], m[0, 0])


def test_clip_contrastive_loss_hand_values():
    import math

    from regionedit.localize import clip_contrastive_loss

    img = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    negatives = torch.tensor([[[0.0, 1.0], [5.0, 5.0]], [[1.0, 0.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, False], [False, False]])  # sample 0: one negative; sample 1: none
    got = clip_contrastive_loss(img, target, negatives, valid, logit_scale=1.0)
    # sample 0: cosines target 1, negative 0 -> -log(e / (e + 1)); sample 1 is left out
    assert math.isclose(got.item(), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    assert clip_contrastive_loss(img, target, negatives, torch.zeros(2, 2, dtype=torch.bool), 1.0).item() == 0


def test_config_from_saved_dicts():
    c = RegionPredictorConfig.from_dict({"_class_name": "RegionPredictor", "threshold": 0.4, "dim": 32, "scales": [1, 2]})
    assert c.dim == 32 and c.scales == (1, 2) and c.text_dim == 0


def test_presence_head_shapes_gradient_and_loss_hand_value():
    from regionedit.localize.losses import presence_loss

    torch.manual_seed(0)
    p = RegionPredictor(RegionPredictorConfig(image_dim=16, instruction_dim=16, dim=16, heads=2, presence=True))
    out = p(torch.randn(3, 16, 16), torch.randn(3, 5, 16))
    assert out["presence_logit"].shape == (3,) and ((out["presence"] > 0) & (out["presence"] < 1)).all()
    presence_loss(out["presence_logit"], torch.tensor([1, 0, 1])).backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in p.presence_head.parameters())
    # BCE by hand: logits (0, 2) against labels (1, 0) -> (log 2 + log(1 + e^2)) / 2
    want = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(2.0)))) / 2
    assert torch.isclose(presence_loss(torch.tensor([0.0, 2.0]), torch.tensor([1, 0])), want)
    assert "presence_logit" not in RegionPredictor(RegionPredictorConfig(image_dim=16, instruction_dim=16, dim=16, heads=2))(
        torch.randn(1, 16, 16), torch.randn(1, 5, 16))
