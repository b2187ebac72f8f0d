"""Seed 004, DescriptiveEdit (regionedit.methods.descriptive_edit) on tiny random models of the real classes:
zero-init identity with the frozen T2I UNet, the Q / K,V roles of the Attention Bridge, gradients only in the
bridges, the dual-guidance arithmetic, save/load, the edit call, and the resumable trainer."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from regionedit import models
from regionedit.methods import AttentionBridge, DescriptiveEdit, DescriptiveEditConfig, RefFeatures, dual_guidance
from regionedit.methods.attention_bridge import BridgeProcessor, RefCacheProcessor
from regionedit.models.tiny import save_tiny_models
from regionedit.training.descriptive import DescriptiveTrainConfig, descriptive_loss, prepare_batch, train_descriptive


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny(folder):
    return models.load(folder)


def _inputs(method, seed=0, b=2):
    g = torch.Generator().manual_seed(seed)
    s = int(method.unet.config.sample_size)
    lat = torch.randn(b, 4, s, s, generator=g)
    src = torch.randn(b, 4, s, s, generator=g)
    emb = method.encode_text(["a photo of a cat on a sofa", "make the sky pink"][:b])
    return lat, torch.tensor([500] * b), emb, src


def _randomise_bridges(method, seed=1, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in method.bridges.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


@dataclasses.dataclass
class Sample:
    source: np.ndarray
    target: np.ndarray
    target_caption: str


def _samples(n=2):
    out = []
    for i in range(n):
        src = np.full((32, 32, 3), 255, np.uint8)
        tgt = src.copy()
        y, x = 6 + 4 * i, 5 + 5 * i
        src[y:y + 12, x:x + 12] = (220, 30, 30)
        tgt[y:y + 12, x:x + 12] = (30, 30, 220)
        out.append(Sample(src, tgt, ["a photo of a cat on a sofa", "make the sky pink", "add a hat to the man"][i % 3]))
    return out


# -- structure ---------------------------------------------------------------------------------------------------
def test_ref_unet_is_frozen_and_structurally_identical(tiny):
    m = DescriptiveEdit(tiny)
    assert dict(m.ref_unet.config) == dict(m.unet.config) == dict(tiny.unet.config)
    assert [n for n, _ in m.ref_unet.named_parameters()] == [n for n, _ in m.unet.named_parameters()]
    assert all(not p.requires_grad for p in m.ref_unet.parameters())
    assert all(not p.requires_grad for p in m.unet.parameters())
    # the frozen T2I weights themselves (shared, not copied); the loaded base UNet keeps its own processors
    for a, b in zip(m.ref_unet.parameters(), tiny.unet.parameters()):
        assert a is b
    procs = tiny.unet.attn_processors
    assert not any(isinstance(p, (BridgeProcessor, RefCacheProcessor)) for p in procs.values())
    bridged = [k for k, p in m.unet.attn_processors.items() if isinstance(p, BridgeProcessor)]
    cached = [k for k, p in m.ref_unet.attn_processors.items() if isinstance(p, RefCacheProcessor)]
    assert bridged == cached == [k for k in procs if k.endswith("attn1.processor")] and len(bridged) == 4
    # the trainable part is the bridges, and only they
    assert {id(p) for p in m.trainable_parameters()} == {id(p) for p in m.bridges.parameters()}
    assert m.num_trainable() > 0


def test_bridge_layer_choice_and_bridge_only(tiny):
    name = "mid_block.attentions.0.transformer_blocks.0.attn1"
    m = DescriptiveEdit(tiny, DescriptiveEditConfig(bridge_layers=(name,), lora_rank=0))
    assert m.bridge_names == [name] and len(m.bridges) == 1
    assert sorted(n for n, _ in m.bridges.named_parameters()) == [f"{name.replace('.', '__')}.fuse.bias",
                                                                    f"{name.replace('.', '__')}.fuse.weight"]
    with pytest.raises(ValueError, match="not self-attention layers"):
        DescriptiveEdit(tiny, DescriptiveEditConfig(bridge_layers=("down_blocks.0.attentions.0.transformer_blocks.0.attn2",)))


# -- zero-init identity -------------------------------------------------------------------------------------------
def test_zero_init_reproduces_the_frozen_t2i_unet_exactly(tiny, folder):
    """Freshly attached bridges (zero fusion Linear): the Cross-Attentive UNet, with the reference on, gives
    exactly the frozen T2I UNet's output for the same inputs (and so does the guided prediction's image branch)."""
    from diffusers import UNet2DConditionModel

    frozen = UNet2DConditionModel.from_pretrained(folder, subfolder="unet").eval()
    m = DescriptiveEdit(tiny)
    lat, t, emb, src = _inputs(m)
    ref = m.reference_features(src)
    assert sorted(ref) == sorted(m.bridge_names)
    with torch.no_grad():
        bridged = m.predict_noise(lat, t, emb, ref, torch.ones(2))
        plain = frozen(lat, t, encoder_hidden_states=emb).sample
    assert torch.equal(bridged, plain)
    # ... and the bridges did run: with non-zero weights the same call depends on the source image
    _randomise_bridges(m)
    with torch.no_grad():
        moved = m.predict_noise(lat, t, emb, ref, torch.ones(2))
        other = m.predict_noise(lat, t, emb, m.reference_features(src.flip(-1)), torch.ones(2))
        off = m.predict_noise(lat, t, emb, ref, torch.zeros(2))  # I_o = ∅: exactly the T2I UNet again
    assert not torch.allclose(moved, plain) and not torch.allclose(moved, other)
    assert torch.equal(off, plain)


# -- the Attention Bridge's roles (seed 004, Method > Key Designs 1) -------------------------------------------------
def test_bridge_takes_q_from_the_ref_unet_and_kv_from_the_denoising_unet(tiny):
    """Z' = CA(Q_{I_o}, K_{T_e}, V_{T_e}): permuting the Ref-UNet's tokens permutes the output rows (they are the
    queries); permuting the denoising UNet's tokens leaves it unchanged (they are the keys/values). Also checked
    against a hand computation of the attention."""
    m = DescriptiveEdit(tiny, DescriptiveEditConfig(lora_rank=2))
    _randomise_bridges(m, seed=3, scale=0.3)
    name = m.bridge_names[0]
    attn = m.unet.get_submodule(name)
    bridge: AttentionBridge = m.bridges[name.replace(".", "__")]
    g = torch.Generator().manual_seed(5)
    n, c = 16, attn.to_q.in_features
    h_ref, h_den = torch.randn(1, n, c, generator=g), torch.randn(1, n, c, generator=g)
    ref_attn = m.ref_unet.get_submodule(name)
    feats = RefFeatures(hidden=h_ref, query=ref_attn.to_q(h_ref))
    perm = torch.randperm(n, generator=g)
    with torch.no_grad():
        out = bridge(feats, attn, h_den)
        out_ref_perm = bridge(RefFeatures(hidden=h_ref[:, perm], query=feats.query[:, perm]), attn, h_den)
        out_den_perm = bridge(feats, attn, h_den[:, perm])
        q = feats.query + bridge.lora_q(h_ref)
        k = attn.to_k(h_den) + bridge.lora_k(h_den)
        v = attn.to_v(h_den) + bridge.lora_v(h_den)
        hd = q.shape[-1] // attn.heads
        split = lambda x: x.view(1, n, attn.heads, hd).transpose(1, 2)  # noqa: E731
        w = torch.softmax(split(q) @ split(k).transpose(-1, -2) / hd ** 0.5, dim=-1)
        hand = bridge.fuse((w @ split(v)).transpose(1, 2).reshape(1, n, -1))
    assert torch.allclose(out_ref_perm, out[:, perm], atol=1e-5)
    assert torch.allclose(out_den_perm, out, atol=1e-5)
    assert not torch.allclose(out[:, perm], out, atol=1e-3)
    assert torch.allclose(out, hand, atol=1e-5)


# -- gradients only in the bridges --------------------------------------------------------------------------------
def test_only_bridge_and_lora_parameters_get_gradients(tiny):
    m = DescriptiveEdit(tiny, DescriptiveEditConfig(lora_rank=2))
    _randomise_bridges(m, scale=0.05)  # non-zero fusion, so the LoRA factors get non-zero gradients too
    lat, _, emb, src = _inputs(m)
    loss = descriptive_loss(m, src, lat, emb, m.encode_text([""]), tiny.scheduler, torch.Generator().manual_seed(0),
                            p_drop_text=0.0, p_drop_image=0.0)
    loss.backward()
    for module in (m.unet, m.ref_unet, tiny.unet, tiny.vae, tiny.text_encoder):
        assert all(p.grad is None for p in module.parameters())
    grads = {n: p.grad for n, p in m.bridges.named_parameters()}
    assert grads and all(g is not None for g in grads.values())
    for kind in ("fuse.weight", "lora_q.up.weight", "lora_k.up.weight", "lora_v.up.weight", "lora_q.down.weight"):
        assert any(n.endswith(kind) and float(g.abs().sum()) > 0 for n, g in grads.items()), kind


def test_dropped_image_trains_nothing_and_dropped_text_uses_the_null_prompt(tiny):
    """With p_drop_image = 1 every sample is I_o = ∅: the loss is the frozen model's and no bridge gets gradient."""
    m = DescriptiveEdit(tiny)
    _randomise_bridges(m)
    lat, _, emb, src = _inputs(m)
    loss = descriptive_loss(m, src, lat, emb, m.encode_text([""]), tiny.scheduler, torch.Generator().manual_seed(0),
                            p_drop_text=0.0, p_drop_image=1.0)
    loss.backward()
    assert all(float(p.grad.abs().sum()) == 0 for p in m.bridges.parameters())


# -- dual guidance (seed 004, Method > Key Designs 3) --------------------------------------------------------------
def test_dual_guidance_arithmetic_matches_a_hand_computation(tiny, monkeypatch):
    # eps(∅,∅) = 1, eps(I_o,∅) = 3, eps(I_o,T_e) = 10; lambda_I = 1.5, lambda_T = 4:
    # 1 + 1.5 * (3 - 1) + 4 * (10 - 3) = 1 + 3 + 28 = 32
    one = torch.ones(1, 4, 2, 2)
    assert torch.equal(dual_guidance(one * 1, one * 3, one * 10, 1.5, 4.0), one * 32)
    assert torch.equal(dual_guidance(one * 1, one * 3, one * 10, 0.0, 0.0), one * 1)  # both off: unconditional
    assert torch.equal(dual_guidance(one * 1, one * 3, one * 10, 1.0, 1.0), one * 10)  # both 1: the full prediction
    # the method's batched call routes each condition to its slot: stub the UNet prediction
    m = DescriptiveEdit(tiny)
    lat, t, emb, _ = _inputs(m, b=2)
    null = m.encode_text([""]).expand(2, -1, -1)
    calls = []

    def stub(latents, t_, text_emb, reference, image_mask):
        calls.append((latents.shape[0], reference))
        has_text = torch.tensor([0.0 if torch.equal(e, null[0]) else 1.0 for e in text_emb])
        value = 1.0 + 2.0 * image_mask + 7.0 * has_text  # (∅,∅) -> 1, (I,∅) -> 3, (I,T) -> 10
        return value.view(-1, 1, 1, 1).expand_as(latents) * torch.tensor([1.0, -1.0]).repeat(3).view(-1, 1, 1, 1)

    monkeypatch.setattr(m, "predict_noise", stub)
    ref = {"any": None}
    out = m.guided_noise(lat, t, emb, null, ref, lambda_I=1.5, lambda_T=4.0)
    assert len(calls) == 1 and calls[0] == (6, ref)
    assert torch.equal(out[0], torch.full_like(out[0], 32.0)) and torch.equal(out[1], torch.full_like(out[1], -32.0))


# -- save / load ----------------------------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_outputs(tiny, tmp_path):
    m = DescriptiveEdit(tiny, DescriptiveEditConfig(lora_rank=2, lambda_I=2.0, steps=3))
    _randomise_bridges(m, seed=7)
    folder = m.save_pretrained(tmp_path / "de", training={"steps": 0, "note": "random bridges for a test"})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "bridges.safetensors", "config.json"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["base_model"] == str(tiny.model_id) and meta["config"]["lora_rank"] == 2
    assert "random bridges for a test" in (folder / "README.md").read_text()
    m2 = DescriptiveEdit.from_pretrained(folder, models=tiny)
    assert m2.config == m.config
    for (k, a), (k2, b) in zip(m.bridges.state_dict().items(), m2.bridges.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    lat, t, emb, src = _inputs(m)
    with torch.no_grad():
        assert torch.equal(m.predict_noise(lat, t, emb, m.reference_features(src), torch.ones(2)),
                           m2.predict_noise(lat, t, emb, m2.reference_features(src), torch.ones(2)))
    img = _samples(1)[0].source
    assert np.array_equal(m(img, "a photo of a cat", is_description=True, seed=3),
                          m2(img, "a photo of a cat", is_description=True, seed=3))
    # the base model loads by the name config.json records; inference settings can be overridden, weights' cannot
    m3 = DescriptiveEdit.from_pretrained(folder, lambda_T=2.5)
    assert m3.config.lambda_T == 2.5 and m3.base_model == m.base_model
    with pytest.raises(ValueError, match="fixed by the saved weights"):
        DescriptiveEdit.from_pretrained(folder, models=tiny, lora_rank=8)
    with pytest.raises(FileNotFoundError, match="not a DescriptiveEdit folder"):
        DescriptiveEdit.from_pretrained(tmp_path, models=tiny)


# -- the edit call --------------------------------------------------------------------------------------------------
def test_edit_returns_the_input_shape_as_uint8_and_follows_the_seed(tiny):
    m = DescriptiveEdit(tiny, DescriptiveEditConfig(steps=2))
    _randomise_bridges(m)
    img = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    before = torch.random.get_rng_state()
    out = m(img, "a photo of a cat on a sofa", is_description=True, seed=1)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert torch.equal(torch.random.get_rng_state(), before)  # no global RNG use
    assert np.array_equal(out, m(img, "a photo of a cat on a sofa", is_description=True, seed=1))
    assert not np.array_equal(out, m(img, "a photo of a cat on a sofa", is_description=True, seed=2))
    # an instruction goes through the describer first
    native = np.random.default_rng(1).integers(0, 256, (m.native_size, m.native_size, 3), dtype=np.uint8)
    assert m.describe("replace the cat with a dog") == "a dog"
    a = m(native, "replace the cat with a dog", seed=0, lambda_I=1.0, lambda_T=2.0)
    b = m(native, "a dog", is_description=True, seed=0, lambda_I=1.0, lambda_T=2.0)
    assert a.shape == native.shape and np.array_equal(a, b)
    with pytest.raises(ValueError, match="empty"):
        m(native, "", seed=0)
    from regionedit.describe import Description

    m.describer = lambda ins, cap=None: Description(intent=None, target_description="", local_prompt="", error="not understood")
    with pytest.raises(ValueError, match="is_description=True"):
        m(native, "frobnicate it", seed=0)


# -- the trainer ----------------------------------------------------------------------------------------------------
def _fixed_loss(method, samples, n=6):
    """Loss on a fixed batch at fixed timesteps / noise (no drops): the overfit check's yardstick."""
    src, tgt, emb = prepare_batch(method, samples)
    null = method.encode_text([""])
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(float(descriptive_loss(method, src, tgt, emb, null, method.models.scheduler, g, 0.0, 0.0))
                   for _ in range(n)) / n


def test_trainer_overfits_a_fixed_tiny_batch(tiny, tmp_path):
    data = _samples(1)
    before = _fixed_loss(DescriptiveEdit(tiny), data)
    run = train_descriptive(tiny, data, tmp_path / "run", steps=30,
                            train_config=DescriptiveTrainConfig(batch_size=1, lr=1e-2))
    assert run["step"] == 30 and len(run["losses"]) == 30 and all(np.isfinite(run["losses"]))
    after = _fixed_loss(run["method"], data)
    assert after < 0.85 * before, (before, after)
    export = run["export"]
    assert (export / "bridges.safetensors").exists()
    card = (export / "README.md").read_text()
    assert "steps: 30" in card
    trained = DescriptiveEdit.from_pretrained(export, models=tiny)
    assert abs(_fixed_loss(trained, data) - after) < 1e-6
    # the base model did not move
    from diffusers import UNet2DConditionModel

    fresh = UNet2DConditionModel.from_pretrained(tiny.location, subfolder="unet")
    for a, b in zip(tiny.unet.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)


def test_trainer_checkpoint_and_resume_give_the_same_next_step_loss(tiny, tmp_path):
    data = _samples(3)  # batch 2 over 3 samples: the batches rotate, so resuming must skip the used samples
    cfg = DescriptiveTrainConfig(batch_size=2, lr=1e-3, p_drop_text=0.3, p_drop_image=0.3)
    straight = train_descriptive(tiny, data, tmp_path / "a", steps=4, train_config=cfg)
    first = train_descriptive(tiny, data, tmp_path / "b", steps=3, train_config=cfg)
    assert (tmp_path / "b" / "state.pt").exists()
    resumed = train_descriptive(tiny, data, tmp_path / "b", steps=4)
    assert resumed["resumed_from"] == 3 and resumed["step"] == 4 and len(resumed["losses"]) == 1
    assert first["losses"] == straight["losses"][:3]
    assert resumed["losses"][0] == straight["losses"][3]
    for a, b in zip(straight["method"].bridges.parameters(), resumed["method"].bridges.parameters()):
        assert torch.equal(a, b)
    log = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="another DescriptiveEditConfig"):
        train_descriptive(tiny, data, tmp_path / "b", steps=5, config=DescriptiveEditConfig(lora_rank=1))
    with pytest.raises(TypeError, match="target_caption"):
        train_descriptive(tiny, [object()], tmp_path / "c", steps=1)
    # record dicts (regionedit.data.load_dataset) work as well as sample objects
    as_dicts = prepare_batch(straight["method"], [dataclasses.asdict(s) for s in data[:2]])
    for a, b in zip(as_dicts, prepare_batch(straight["method"], data[:2])):
        assert torch.equal(a, b)
