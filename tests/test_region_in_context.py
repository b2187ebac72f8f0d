"""Seed 000, Region in Context (regionedit.methods.region_in_context and its trainer), on tiny random models of the
real classes: the gate ablation changes the edit, only the new modules get gradients, the losses on hand-made
embeddings, save/load round trip, the edit's shape and compose, gate statistics, and the trainer (loss falls on a
fixed batch, a resumed run takes the same next step)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from regionedit import models as M
from regionedit.methods.region_in_context import (
    EvalAdapter,
    GatedContextAttention,
    RegionInContext,
    RegionInContextConfig,
    contrastive_loss,
    cosine_distance,
    gate_statistics,
    region_box,
    same_text_positives,
)
from regionedit.training.method_runner import RunOptions
from regionedit.training.region_in_context import RegionInContextTrainConfig, collate, train_region_in_context


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from regionedit.models.tiny_pipelines import save_tiny_ip2p_unet
    from regionedit.models.tiny import save_tiny_models

    f = save_tiny_models(tmp_path_factory.mktemp("ric") / "tiny")
    save_tiny_ip2p_unet(f / "unet_ip2p")
    return f


@pytest.fixture(scope="module")
def models(folder):
    return M.load(str(folder))


def _method(models, **kw) -> RegionInContext:
    return RegionInContext.from_models(models, RegionInContextConfig(**kw))


COLORS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "yellow": (230, 220, 40)}


def _sample(i: int, size: int = 40):
    """A square of one colour recoloured to another: source, target, mask, instruction, captions."""
    names = list(COLORS)
    a, b = names[i % 4], names[(i + 1 + i // 4) % 4]
    y, x = 4 + (7 * i) % 18, 6 + (5 * i) % 16
    src = np.full((size, size, 3), 128, np.uint8)
    mask = np.zeros((size, size), bool)
    mask[y:y + 12, x:x + 14] = True
    tgt = src.copy()
    src[mask], tgt[mask] = COLORS[a], COLORS[b]
    return dict(source=src, target=tgt, mask=mask, instruction=f"make the {a} square {b}",
                target_caption=f"a {b} square on a gray background", region_description=f"a {b} square")


def _image(h=40, w=48, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# the gate


def test_gate_ablation_changes_the_output(models):
    """With the gate away from 0 (sigmoid(2) = 0.88), g = 0 (the seed's ablation) changes z, the conditioning
    tokens and the edited image; with g = 0, z is exactly e~_r = W_r e_r."""
    m = _method(models, gate_init=2.0)
    img = _image()
    on = m(img, "make the sky pink", seed=3, steps=3, compose=False)
    off = m(img, "make the sky pink", seed=3, steps=3, compose=False, gate_off=True)
    assert not np.array_equal(on, off)
    again = m(img, "make the sky pink", seed=3, steps=3, compose=False)
    assert np.array_equal(on, again)  # deterministic: the difference is the gate's
    # the config switch is the same ablation
    m_off = RegionInContext.from_models(models, dataclasses.replace(m.config, gate_off=True), unet=m.unet, weights=m.weights)
    assert np.array_equal(m_off(img, "make the sky pink", seed=3, steps=3, compose=False), off)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    masks = torch.zeros(2, 32, 32)
    masks[:, 8:20, 4:24] = 1
    with torch.no_grad():
        z_on, g_on, attn, feats = m.region_in_context(x, masks, gate_off=False)
        z_off, g_off, _, _ = m.region_in_context(x, masks, gate_off=True)
        assert torch.equal(z_off, m.weights.fusion.region_proj(feats.region))
        assert torch.allclose(z_off, feats.region, atol=1e-5)  # W_r is the identity at init
        assert torch.allclose(g_on, torch.full_like(g_on, 1 / (1 + math.exp(-2.0))))
        assert torch.all(g_off == 0) and not torch.allclose(z_on, z_off)
        assert torch.allclose(attn.sum(-1), torch.ones(2), atol=1e-5)  # the region attends over all image tokens
        assert not torch.allclose(m.weights.tokens(z_on), m.weights.tokens(z_off))


def test_gated_attention_is_region_as_query():
    """The query is the region (one output per region), keys/values the image tokens: changing a token changes h;
    a scalar gate reports one value broadcast over the channels."""
    att = GatedContextAttention(8, heads=2, gate="scalar", gate_init=-1.0, mark_region=False)
    gen = torch.Generator().manual_seed(0)
    e, toks = torch.randn(3, 8, generator=gen), torch.randn(3, 5, 8, generator=gen)
    z, g, attn = att(e, toks)
    assert z.shape == (3, 8) and attn.shape == (3, 5)
    assert torch.allclose(g, torch.full_like(g, 1 / (1 + math.exp(1.0))))
    toks2 = toks.clone()
    toks2[:, 2] = torch.randn(3, 8, generator=gen)  # (a constant shift would vanish in the LayerNorm)
    assert not torch.allclose(att(e, toks2)[0], z)
    assert torch.allclose(att(e, toks, gate_off=True)[0], att.region_proj(e))


def test_gate_statistics_report(models):
    g = torch.tensor([[0.01, 0.02, 0.5, 0.99], [0.97, 0.5, 0.5, 0.5]])
    s = gate_statistics(g)
    assert s["n"] == 8 and s["mean"] == pytest.approx(float(g.mean()))
    assert s["frac_low"] == pytest.approx(2 / 8) and s["frac_high"] == pytest.approx(2 / 8)
    assert s["min"] == pytest.approx(0.01) and s["max"] == pytest.approx(0.99)
    img = _image(seed=1)
    region = np.zeros(img.shape[:2], bool)
    region[5:25, 10:30] = True
    saturated = _method(models, gate_init=6.0).gate_statistics(img, region)
    assert saturated["frac_high"] == 1.0 and saturated["frac_low"] == 0.0  # saturation is visible
    half = _method(models, gate_init=0.0)
    assert half.gate_statistics(img)["mean"] == pytest.approx(0.5)
    half(img, "make the sky pink", region=region, steps=2)
    assert half.gate_statistics()["n"] == half.encoder.dim  # the last edit's gate
    assert _method(models, gate_init=6.0, gate_off=True).gate_statistics(img)["frac_low"] == 1.0


# --------------------------------------------------------------------------------------------------
# what is trained


def _frozen_grads(m: RegionInContext) -> dict[str, bool]:
    return {name: any(p.grad is not None for p in mod.parameters())
            for name, mod in (("clip", m.clip), ("vae", m.vae), ("text_encoder", m.text_encoder), ("unet", m.unet))}


def _loss_batch(m: RegionInContext, seed: int = 0):
    S = m.size
    g = torch.Generator().manual_seed(seed)
    src, tgt = torch.rand(2, 3, S, S, generator=g) * 2 - 1, torch.rand(2, 3, S, S, generator=g) * 2 - 1
    masks = torch.zeros(2, S, S)
    masks[0, 4:12, 4:20] = 1
    masks[1, 10:30, 2:9] = 1
    return (src, tgt, masks, ["make the sky pink", "remove the person"], ["a pink sky", "background"],
            ["a pink sky over a field", "an empty street"], g)


def test_only_the_new_modules_get_gradients(models):
    """CLIP, the VAE, the text encoder and the InstructPix2Pix UNet stay frozen (grad None); every new weight
    (fusion, gate, scene head, tokens) gets one. With train_unet (the seed's stage 3) the UNet does too."""
    m = _method(models, gate_init=1.0)
    losses = m.training_losses(*_loss_batch(m), x0_weight=0.1, cfg_drop=0.5)
    assert set(losses) >= {"loss", "denoise", "region", "scene", "region_x0", "scene_x0"}
    losses["loss"].backward()
    missing = [n for n, p in m.weights.named_parameters() if p.grad is None]
    assert missing == []
    assert not any(_frozen_grads(m).values())
    assert {id(p) for p in m.trainable_parameters()} == {id(p) for p in m.weights.parameters()}

    mu = _method(models, train_unet=True)
    mu.training_losses(*_loss_batch(mu), x0_weight=0.0)["loss"].backward()
    got = _frozen_grads(mu)
    assert got["unet"] and not (got["clip"] or got["vae"] or got["text_encoder"])
    assert len(mu.trainable_parameters()) == len(list(mu.weights.parameters())) + len(list(mu.unet.parameters()))


def test_x0_losses_train_only_what_makes_x0(models):
    """The x^_0 terms see the fusion and scene head as fixed critics: alone they give the scene head no gradient."""
    m = _method(models)
    losses = m.training_losses(*_loss_batch(m), x0_weight=1.0, cfg_drop=0.0)
    (losses["region_x0"] + losses["scene_x0"]).backward()
    assert all(p.grad is None for p in m.weights.scene_head.parameters())
    assert m.weights.tokens.proj.weight.grad is not None  # what conditions the UNet does get one


# --------------------------------------------------------------------------------------------------
# losses on hand-made embeddings


def test_contrastive_loss_on_hand_made_embeddings():
    e = torch.eye(3, 4)  # three orthogonal unit vectors
    aligned = contrastive_loss(e, e.clone(), temperature=0.1)
    shuffled = contrastive_loss(e, e[[1, 2, 0]], temperature=0.1)
    assert aligned < shuffled
    # by hand at temperature 1: logits are 1 on the diagonal and 0 elsewhere: -log(e / (e + 2))
    assert float(contrastive_loss(e, e, 1.0)) == pytest.approx(-math.log(math.e / (math.e + 2)), rel=1e-6)
    assert float(contrastive_loss(e, e[[1, 2, 0]], 1.0)) == pytest.approx(-math.log(1 / (math.e + 2)), rel=1e-6)
    # symmetric: both directions count
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = a @ b.T / 0.5  # both rows of a and b are unit vectors
    by_hand = 0.5 * (-(s.diag() - torch.logsumexp(s, 1)).mean() - (s.diag() - torch.logsumexp(s, 0)).mean())
    assert float(contrastive_loss(a, b, 0.5)) == pytest.approx(float(by_hand), rel=1e-6)
    assert float(contrastive_loss(a, b, 0.5)) == pytest.approx(float(contrastive_loss(b, a, 0.5)), rel=1e-6)
    # scale does not matter (cosine similarity)
    assert float(contrastive_loss(3 * e, e, 0.1)) == pytest.approx(float(aligned), rel=1e-5)


def test_repeated_descriptions_are_positives_and_batch_of_one():
    texts = ["a red square", "a blue square", "a red square"]
    pos = same_text_positives(texts)
    assert pos.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # the text embeddings (two identical)
    z = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, -0.1]])
    # with the identical texts as positives, the loss is lower than treating the twin as a negative
    assert contrastive_loss(z, t, 0.1, pos) < contrastive_loss(z, t, 0.1)
    one = contrastive_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert float(one) == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-6)
    assert float(cosine_distance(torch.tensor([[2.0, 0.0]]), torch.tensor([[5.0, 0.0]]))) == pytest.approx(0.0, abs=1e-7)


def test_region_box():
    m = np.zeros((40, 48), bool)
    m[10:20, 5:9] = True  # 10 x 4
    y0, y1, x0, x1 = region_box(m, margin=0.15)
    assert y1 - y0 == x1 - x0 == 13  # square, 10 * 1.3
    assert y0 <= 10 and y1 >= 20 and x0 <= 5 and x1 >= 9
    m2 = np.zeros((40, 48), bool)
    m2[35:40, 0:3] = True  # at a corner: shifted inside the image, not cut
    y0, y1, x0, x1 = region_box(m2, 0.5)
    assert (y0, x0) == (30, 0) and y1 == 40 and x1 == 10
    assert region_box(np.zeros((40, 48), bool)) == (0, 40, 0, 48)


# --------------------------------------------------------------------------------------------------
# the edit


def test_edit_shape_compose_and_localizer(models):
    m = _method(models)
    img = _image(40, 48)
    out = m(img, "make the sky pink", seed=0, steps=2)
    assert out.shape == img.shape and out.dtype == np.uint8
    region = np.zeros(img.shape[:2], bool)
    region[8:22, 10:30] = True
    res = m.edit(img, "make the sky pink", region=region, seed=0, steps=2)
    assert res.status == "edited" and res.image.shape == img.shape and res.image.dtype == np.uint8
    assert np.array_equal(res.image[~region], img[~region])  # composed: bit-exact outside the region
    assert not np.array_equal(res.image[region], img[region])
    empty = m.edit(img, "make the sky pink", region=np.zeros(img.shape[:2], bool), steps=2)
    assert empty.status == "no_edit" and np.array_equal(empty.image, img)
    calls = []

    def localizer(image, text):
        calls.append(text)
        return region.astype(np.float32), 0.9  # a zero-shot localizer's (prob, presence)

    m.localizer = localizer
    loc = m.edit(img, "make the sky pink", seed=0, steps=2)
    assert calls == ["make the sky pink"] and np.array_equal(loc.region, region)
    assert np.array_equal(loc.image, res.image)  # the localizer's region is used as a given one
    with pytest.raises(ValueError, match="uint8"):
        m(img.astype(np.float32), "x")
    with pytest.raises(ValueError, match="region"):
        m(img, "x", region=np.ones((10, 10), bool))
    adapter = EvalAdapter(m, region_source="ground_truth", steps=2)
    ed, reg, status = adapter(img, "make the sky pink", 0, type("S", (), {"mask": region})())
    assert status == "edited" and np.array_equal(reg, region) and np.array_equal(ed, res.image)
    assert adapter.last_gate["n"] == m.encoder.dim and adapter.params["region_source"] == "ground_truth"
    off = EvalAdapter(m, region_source="ground_truth", steps=2, gate_off=True)
    ed_off, _, _ = off(img, "make the sky pink", 0, type("S", (), {"mask": region})())
    assert off.params["gate_off"] is True and off.last_gate["mean"] == 0.0
    assert np.array_equal(ed_off, m.edit(img, "make the sky pink", region=region, seed=0, steps=2, gate_off=True).image)


# --------------------------------------------------------------------------------------------------
# save / load


def test_save_load_round_trip(models, folder, tmp_path):
    m = _method(models, gate="scalar", gate_init=1.5, num_tokens=2)
    with torch.no_grad():  # weights unlike the initial ones
        g = torch.Generator().manual_seed(1)
        for p in m.weights.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    out = m.save_pretrained(tmp_path / "ric", training={"steps": 7})
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "training_state.json"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "region_in_context" and cfg["base"] == str(folder) and cfg["gate"] == "scalar"
    assert "steps: 7" in (out / "README.md").read_text()
    back = RegionInContext.from_pretrained(out)  # the base named in config.json
    assert back.config == m.config
    a, b = m.weights.state_dict(), back.weights.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    img = _image(seed=2)
    assert np.array_equal(m(img, "make the sky pink", seed=1, steps=2), back(img, "make the sky pink", seed=1, steps=2))
    # trained UNet weights travel in unet/ (safetensors)
    mu = _method(models, train_unet=True)
    with torch.no_grad():
        mu.unet.conv_in.bias.add_(0.1)
    outu = mu.save_pretrained(tmp_path / "ric_unet")
    assert (outu / "unet" / "diffusion_pytorch_model.safetensors").exists()
    backu = RegionInContext.from_pretrained(outu, models=models)
    assert torch.equal(backu.unet.conv_in.bias, mu.unet.conv_in.bias)
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))


# --------------------------------------------------------------------------------------------------
# the trainer


def _train(models, data, out, steps, tc, **method_kw):
    """``train_region_in_context`` on the tiny models, ``steps`` steps in all, logging every 10 steps."""
    cfg = RegionInContextConfig(base=str(models.location), **method_kw)
    return train_region_in_context(models, data, RunOptions(out=out, max_steps=steps, minutes=4, log_every=10), cfg, tc)


def test_trainer_loss_falls_on_a_fixed_batch(models, tmp_path):
    batch = [_sample(i) for i in range(2)]
    # (x0_weight 0 halves the step's cost; the x^_0 terms are exercised by the gradient and resume tests)
    tc = RegionInContextTrainConfig(batch_size=2, lr=3e-3, weight_decay=0.0, x0_weight=0.0, cfg_drop=0.0)
    probe = _method(models, gate_init=1.0)  # the same initial weights as the trained one (init_seed 0)

    def losses(m):
        b, _ = collate(batch, m.size)
        with torch.no_grad():
            out = m.training_losses(b.source, b.target, b.masks, b.instructions, b.region_texts, b.scene_texts,
                                    torch.Generator().manual_seed(5), x0_weight=0.0, cfg_drop=0.0)
        return {k: float(v) for k, v in out.items()}

    before = losses(probe)
    res = _train(models, batch, tmp_path / "run", 30, tc, gate_init=1.0)
    after = losses(res["method"].method)
    assert res["step"] == 30 and res["method"].counters == {"region_texts_given": 60, "samples": 60}
    assert after["loss"] < before["loss"]
    assert after["region"] < before["region"] and after["scene"] < before["scene"]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20, 30] and 0 <= log[-1]["gate_frac_high"] <= 1 and "gate_mean" in log[-1]
    png = tmp_path / "run" / "loss.png"  # the loss curves beside the log, drawn at the last checkpoint
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((tmp_path / "run" / "export" / "training_state.json").read_text())
    assert rec["steps"] == 30 and rec["region_descriptions"].startswith("60 of 60")  # all had their own
    assert "frac_high" in rec["gate"] and rec["last_losses"]["loss"] > 0
    back = RegionInContext.from_pretrained(tmp_path / "run" / "export", models=models)
    a, b = res["method"].method.weights.state_dict(), back.weights.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trainer_resume_takes_the_same_steps(models, tmp_path):
    """3 steps, stop, resume to 4 == 4 steps straight (weights bit-equal): the data position (mid-epoch), the
    generator and the optimizer travel in the checkpoint, and a resumed run keeps its own method config."""
    data = [_sample(i) for i in range(5)]  # odd length: the resumed position is mid-epoch
    tc = RegionInContextTrainConfig(batch_size=2, lr=1e-3, cfg_drop=0.3)
    straight = _train(models, data, tmp_path / "a", 4, tc, gate_init=0.5)
    _train(models, data, tmp_path / "b", 3, tc, gate_init=0.5)
    assert (tmp_path / "b" / "state.pt").exists()
    resumed = _train(models, data, tmp_path / "b", 4, tc, gate_init=-3.0)  # the saved gate_init wins
    assert resumed["step"] == 4 and resumed["steps_this_run"] == 1
    assert resumed["method"].config.gate_init == 0.5 and resumed["method"].counters["samples"] == 8
    a, b = straight["method"].net.state_dict(), resumed["method"].net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_trainer_command_line_trains_resumes_and_exports(folder, tmp_path):
    from regionedit.cli.main import main

    data = tmp_path / "data"
    from regionedit.world.export import export_dataset

    export_dataset(data, 3, 5, "magicbrush", progress=False)
    argv = ["train", "region_in_context", "--model", str(folder), "--out", str(tmp_path / "run"), "--batch", "2",
            "--x0-weight", "0", "--data", str(data), "--fp16-export", "--no-progress"]
    assert main(argv + ["--gate", "scalar", "--max-steps", "1"]) == 0
    assert main(argv + ["--max-steps", "2", "--gate", "channel"]) == 0  # resumes with its own settings
    export = tmp_path / "run" / "export"
    m = RegionInContext.from_pretrained(export)
    assert m.config.gate == "scalar" and json.loads((export / "training_state.json").read_text())["steps"] == 2
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(export / "model.safetensors")).values())


def test_trainer_names_a_sample_without_the_fields_it_needs(models, tmp_path):
    bad = [{"source": np.zeros((8, 8, 3), np.uint8), "target": np.zeros((8, 8, 3), np.uint8), "instruction": "x"}]
    with pytest.raises(TypeError, match="target_caption"):
        _train(models, bad, tmp_path / "bad", 1, RegionInContextTrainConfig(batch_size=1))
