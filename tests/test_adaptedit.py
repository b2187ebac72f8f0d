"""Seed 002, AdaptEdit, on a tiny random SD3 pipeline folder (the real diffusers classes): the backbone stays
frozen (checksum), the SpatialGate confines the adapter output (zero outside the region), untrained adapters
leave the DiT unchanged, the Region-Aware Loss weights the changed cells, the MaskPredictor's loss is decoupled,
edits are deterministic and compose bit-exactly, save/load round-trips, and the trainer, its resume and the
evaluation methods work from the command line."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from method_helpers import check_trains_and_resumes, checksum, edit_batch

from regionedit.methods.adaptedit import AdaptEdit, resolve_dit
from regionedit.methods.adaptedit_modules import (AdaptEditConfig, BlockAdapter, SpatialGate, changed_cells,
                                                  region_aware_flow_loss)


@pytest.fixture(scope="module")
def dit(tmp_path_factory):
    from regionedit.models.tiny_pipelines import save_tiny_sd3

    return save_tiny_sd3(tmp_path_factory.mktemp("dit") / "dit")


def _batch(b=2, seed=0, size=64):
    return edit_batch(b, seed, size)


_checksum = checksum


def _perturb(m: AdaptEdit, seed=1):
    """Non-zero adapter outputs (the zero-initialised up projections set at random)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in m.net["adapters"]:
            a.up.weight.copy_(torch.randn(a.up.weight.shape, generator=g) * 0.5)


def test_training_moves_only_the_method_and_never_the_backbone(dit):
    m = AdaptEdit(dit)
    backbone = [m.pipe.transformer, m.pipe.vae, m.pipe.text_encoder, m.pipe.text_encoder_2]
    before = [_checksum(x) for x in backbone]
    trained_before = _checksum(m.net)
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    src, tgt, region = _batch()
    for _ in range(2):
        loss, logs = m.training_loss(src, tgt, region, ["make the box red"] * 2, g)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert np.isfinite(logs["loss"]) and set(logs) >= {"edit", "mask", "mask_iou"}
    assert [_checksum(x) for x in backbone] == before  # frozen: bit-identical parameters
    assert all(p.grad is None and not p.requires_grad for x in backbone for p in x.parameters())
    assert _checksum(m.net) != trained_before
    assert {id(p) for p in m.trainable_parameters()} == {id(p) for p in m.net.parameters()}


def test_untrained_adapters_leave_the_dit_unchanged(dit):
    m = AdaptEdit(dit)
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 16, 8, 8, generator=g)
    text, pooled = m.encode_text(["a red box"])
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 2:6] = 1
    with torch.no_grad():
        plain = m.pipe.transformer(hidden_states=lat, timestep=torch.tensor([500.0]), encoder_hidden_states=text,
                                   pooled_projections=pooled).sample
        adapted = m.velocity(lat, torch.tensor([500.0]), text, pooled, lat, region)
    assert torch.equal(plain, adapted)


def test_gate_confines_the_adapter_output_to_the_region(dit):
    m = AdaptEdit(dit)
    _perturb(m)
    first = m.pipe.transformer.transformer_blocks[0]
    seen = []
    hook = first.register_forward_hook(lambda mod, a, out: seen.append(out[1].detach().clone()))  # after ours
    lat = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    text, pooled = m.encode_text(["a red box"])
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 2:6] = 1
    inside = region.flatten(1).bool()[0]
    try:
        with torch.no_grad():
            m.velocity(lat, torch.tensor([500.0]), text, pooled, lat, region)
            gates = [g[0, :, 0] for g in m.last_gates]
            m.pipe.transformer(hidden_states=lat, timestep=torch.tensor([500.0]), encoder_hidden_states=text,
                               pooled_projections=pooled)
    finally:
        hook.remove()
    delta = (seen[0] - seen[1]).abs().amax(-1)[0]  # block 0's image tokens, adapted minus plain
    assert len(gates) == len(m.net["adapters"])
    for g in gates:
        assert torch.all(g[~inside] == 0) and torch.all(g[inside] > 0)
    assert torch.all(delta[~inside] == 0) and torch.all(delta[inside] > 0)
    # ablation: without the gate the adapter reaches every token
    m.config.use_gate = False
    with torch.no_grad():
        m.velocity(lat, torch.tensor([500.0]), text, pooled, lat, region)
    assert all(torch.all(g == 1) for g in m.last_gates)


def test_gate_and_adapter_modules():
    torch.manual_seed(0)
    a, gate = BlockAdapter(16, 8), SpatialGate(16, 8)
    h, c = torch.randn(2, 10, 16), torch.randn(2, 10, 8)
    assert torch.equal(a(h, c), torch.zeros(2, 10, 16))  # zero-initialised output projection
    region = torch.zeros(2, 10, 1)
    region[:, 3:6] = 1.0
    g = gate(h, c, region)
    assert g.shape == (2, 10, 1) and torch.all(g[:, :3] == 0) and torch.all(g[:, 6:] == 0)
    assert torch.allclose(g[:, 3:6], torch.sigmoid(torch.tensor(2.0)).expand(2, 3, 1))


def test_region_aware_loss_weights_the_changed_cells():
    pred, target = torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)
    target[..., 0, 0] = 1.0  # one cell wrong, in the changed area
    changed = torch.zeros(1, 1, 4, 4)
    changed[..., 0, 0] = 1
    plain = region_aware_flow_loss(pred, target, changed, 0.0)
    assert torch.isclose(plain, torch.nn.functional.mse_loss(pred, target))
    weighted = region_aware_flow_loss(pred, target, changed, 4.0)
    assert torch.isclose(weighted, torch.tensor(5.0 / (16 + 4)))  # (1 + 4) * 1 over the weights' sum
    src, tgt, _ = _batch(1)
    c = changed_cells(src, tgt, (8, 8), 0.08)
    assert c[0, 0, 2:5, 1:4].all() and c.sum() <= 4 * 4  # the 24x24-pixel change covers cells 2-4 x 1-3 (+ edges)


def test_mask_predictor_loss_is_decoupled(dit):
    m = AdaptEdit(dit, AdaptEditConfig(mask_loss_weight=0.0))
    src, tgt, region = _batch()
    loss, _ = m.training_loss(src, tgt, region, ["make the box red"] * 2, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in m.net["predictor"].parameters())  # no edit-loss gradient
    m2 = AdaptEdit(dit)
    loss, _ = m2.training_loss(src, tgt, region, ["make the box red"] * 2, torch.Generator().manual_seed(0))
    loss.backward()
    assert any(p.grad is not None and p.grad.any() for p in m2.net["predictor"].parameters())


def test_edit_is_deterministic_composes_and_round_trips(dit, tmp_path):
    m = AdaptEdit(dit)
    _perturb(m)
    rng = np.random.default_rng(0)
    img = (rng.random((48, 72, 3)) * 255).astype(np.uint8)
    a = m(img, "make the box red", seed=3, steps=3)
    b = m(img, "make the box red", seed=3, steps=3)
    assert a.image.shape == img.shape and a.image.dtype == np.uint8 and np.array_equal(a.image, b.image)
    assert a.region_from == "predicted" and a.region.shape == img.shape[:2]
    mask = np.zeros(img.shape[:2], np.float32)
    mask[10:30, 20:50] = 1
    c = m(img, "make the box red", mask=mask, seed=3, steps=3, compose=True)
    outside = c.region < 0.5
    assert c.region_from == "given" and outside.any() and (~outside).any()
    assert np.array_equal(c.image[outside], img[outside])  # composed: bit-exact outside the region
    assert not np.array_equal(c.image[~outside], img[~outside])
    whole = AdaptEdit(dit, AdaptEditConfig(use_mask_predictor=False))(img, "make the box red", steps=2)
    assert whole.region_from == "whole image" and np.all(whole.region == 1)
    m.save_pretrained(tmp_path / "ae")
    meta = json.loads((tmp_path / "ae" / "config.json").read_text())
    assert meta["_class_name"] == "AdaptEdit" and meta["base_model"] == str(dit)
    assert "AdaptEdit" in (tmp_path / "ae" / "README.md").read_text()
    m2 = AdaptEdit.from_pretrained(tmp_path / "ae")
    assert np.array_equal(m2(img, "make the box red", seed=3, steps=3).image, a.image)
    m.save_pretrained(tmp_path / "ae16", dtype=torch.float16)  # a bundle's copy: fp16 on disk, fp32 once loaded
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ae16" / "adaptedit.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    m16 = AdaptEdit.from_pretrained(tmp_path / "ae16")
    assert all(p.dtype == torch.float32 for p in m16.trainable_parameters())
    with pytest.raises(ValueError, match="fixed by the saved weights"):
        AdaptEdit.from_pretrained(tmp_path / "ae", adapter_dim=8)
    with pytest.raises(FileNotFoundError, match="not an AdaptEdit folder"):
        AdaptEdit.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        m(img.astype(np.float32), "make the box red")
    with pytest.raises(FileNotFoundError, match="train world-models --only dit"):
        resolve_dit(tmp_path)


def test_train_command_resumes_and_the_eval_methods_edit(dit, tmp_path):
    from regionedit import models as M
    from regionedit.cli.main import main
    from regionedit.evaluation.baselines import MethodSettings, build_methods
    from regionedit.world import sample_edit
    from regionedit.world.tiny import save_tiny_models

    out = tmp_path / "run"
    args = ["train", "adaptedit", "--dit", str(dit), "--out", str(out), "--batch", "2", "--log-every", "1",
            "--checkpoint-steps", "1", "--no-progress"]
    check_trains_and_resumes(main, args, out)

    folder = save_tiny_models(tmp_path / "model")
    names = ["adaptedit", "adaptedit-compose", "adaptedit-no_predictor"]
    methods, skipped = build_methods(names, M.load(str(folder)), MethodSettings(steps=2))
    assert not methods and all("--only dit" in skipped[n] for n in names)
    shutil.copytree(dit, folder / "dit")
    methods, skipped = build_methods(names + ["adaptedit-no_gate"], M.load(str(folder)), MethodSettings(steps=2))
    assert not methods and "regionedit train adaptedit" in skipped["adaptedit"] and "--no-gate" in skipped["adaptedit-no_gate"]
    shutil.copytree(out / "export", folder / "adaptedit")
    methods, skipped = build_methods(names, M.load(str(folder)), MethodSettings(steps=2))
    assert set(methods) == set(names), skipped
    s = sample_edit(seed=3, index=0)
    for name, method in methods.items():
        edited, region, status = method(s.source, s.instruction, 0, SimpleNamespace(mask=s.mask))
        assert edited.shape == s.source.shape and edited.dtype == np.uint8 and region.shape == s.source.shape[:2] and region.dtype == bool
        if name == "adaptedit-no_predictor":
            assert status == "edited" and np.all(region == 1)
        elif name == "adaptedit-compose" and status == "edited":
            assert np.array_equal(edited[region < 0.5], s.source[region < 0.5])
        if status == "no_edit":
            assert np.array_equal(edited, s.source) and method.last_reason

    # the command line: `regionedit edit --method adaptedit-compose`, provenance in the PNG
    from PIL import Image

    from regionedit.io import read_png_metadata

    Image.fromarray(s.source).save(tmp_path / "in.png")
    edit = ["edit", str(tmp_path / "in.png"), s.instruction, "--model", str(folder), "--steps", "2"]
    assert main(edit + ["-o", str(tmp_path / "out.png"), "--method", "adaptedit-no_predictor"]) == 0
    meta = read_png_metadata(tmp_path / "out.png")
    assert meta["regionedit:method"] == "adaptedit-no_predictor" and meta["regionedit:instruction"] == s.instruction
    assert meta["regionedit:model"].endswith("+adaptedit-no_predictor") and meta["regionedit:status"] == "edited"
    with pytest.raises(SystemExit, match="--method adaptedit-no_gate cannot run.*--no-gate"):
        main(edit + ["-o", str(tmp_path / "out2.png"), "--method", "adaptedit-no_gate"])
