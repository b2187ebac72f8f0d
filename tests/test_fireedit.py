"""Seed 003, FireEdit, on a tiny random model folder (the real diffusers / transformers classes) with a tiny 8-channel
``unet_ip2p``: the backbone stays frozen (checksum) and only FireEdit's modules get gradients, TATI's weight follows
the timestep (constant 1 when ablated), HVCA reads >= 2 scales and, zero-initialised, leaves the UNet's prediction
exactly unchanged, region tokens change the VL encoder's output (and are gone when ablated), edits are deterministic
and compose bit-exactly, save/load round-trips, and the trainer, its resume, the evaluation methods and
``regionedit edit --method fireedit-compose`` work from the command line."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from method_helpers import check_trains_and_resumes, checksum, edit_batch

from regionedit import models as M
from regionedit.methods.fireedit import FireEdit
from regionedit.methods.fireedit_modules import (FireEditConfig, Proposals, box_masks, inference_proposals, local_scale,
                                                 mask_boxes, training_proposals)

INSTRUCTION = "make the sky pink"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread (restored after): tiny models on a shared 2-core machine run ~10x faster without the
    thread pool's contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from regionedit.models.tiny_pipelines import save_tiny_ip2p_unet
    from regionedit.world.tiny import save_tiny_models

    f = save_tiny_models(tmp_path_factory.mktemp("fireedit") / "tiny", region_bias=2.0)
    save_tiny_ip2p_unet(f / "unet_ip2p")
    return f


@pytest.fixture(scope="module")
def models(folder):
    return M.load(str(folder))


def _batch(b=2, seed=0, size=32):
    return edit_batch(b, seed, size)


_checksum = checksum


def _perturb(m: FireEdit, seed=1):
    """Non-zero outputs for the zero-initialised projections (HVCA's and the condition's)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        outs = [m.net["encoder"].out] + ([h.out for h in m.net["hvca"]] if "hvca" in m.net else [])
        for lin in outs:
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.3)


def _image(h=40, w=56, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_training_moves_only_the_method_and_never_the_backbone(models):
    m = FireEdit(models)
    backbone = [m.unet, m.vae, m.text_encoder, m.clip]
    before = [_checksum(x) for x in backbone]
    trained_before = _checksum(m.net)
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    src, tgt, region = _batch()
    for _ in range(2):
        loss, logs = m.training_loss(src, tgt, region, ["make the box red"] * 2, g)
        loss.backward()
        grads = {id(p) for x in backbone for p in x.parameters() if p.grad is not None}
        got = [p.grad is not None for p in m.trainable_parameters()]
        opt.step()
        opt.zero_grad()
    assert np.isfinite(logs["loss"]) and set(logs) >= {"tati_w", "proposals"}
    assert [_checksum(x) for x in backbone] == before  # frozen: bit-identical parameters
    assert not grads and all(not p.requires_grad for x in backbone for p in x.parameters())
    assert all(got)  # every trainable part (VL encoder, region tokens, TATI, HVCA) is reached by the loss
    assert {"encoder", "tati", "hvca"} <= set(m.net) and m.net["encoder"].regions is not None
    assert _checksum(m.net) != trained_before
    assert {id(p) for p in m.trainable_parameters()} <= {id(p) for p in m.net.parameters()}


def test_tati_weight_varies_with_the_timestep_and_is_1_when_ablated(models):
    m = FireEdit(models)
    t = torch.tensor([0, 250, 500, 999])
    with torch.no_grad():
        w = m.tati_weights(t)
        ref = torch.sigmoid(m.net["tati"].mlp(m.unet.time_proj(t)))[..., None]  # the spec: MLP on time_proj
    n = m.net["encoder"].length
    assert w.shape == (4, n, 1) and torch.all((w > 0) & (w < 1)) and torch.equal(w, ref)
    assert all(not torch.allclose(w[i], w[j]) for i in range(4) for j in range(i + 1, 4))
    # the condition the UNet reads is w c + (1 - w) c_null
    src = m.encode_source(_batch(1)[0])
    c = m.condition(src, m.encode_text([INSTRUCTION]), inference_proposals(None, 4, 32))
    null = m.null_condition(1)
    from regionedit.methods.fireedit_modules import inject

    assert torch.allclose(inject(c, null, w[:1]), w[:1] * c + (1 - w[:1]) * null)
    off = FireEdit(models, FireEditConfig(use_tati=False))
    assert "tati" not in off.net and torch.equal(off.tati_weights(t), torch.ones(4, n, 1))


def test_hvca_reads_several_scales_and_starts_as_the_frozen_unet(models):
    m = FireEdit(models)
    src = m.encode_source(_batch(1)[0])
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(1, 4, 16, 16, generator=g), src.latents], 1)
    t = torch.tensor([500])
    cond = m.condition(src, m.encode_text([INSTRUCTION]), inference_proposals(None, 4, 32))
    with torch.no_grad():
        plain = m.unet(x, t, encoder_hidden_states=cond).sample
        hooked = m.denoise(x, t, cond, src)
    assert torch.equal(plain, hooked)  # zero-initialised: exactly the frozen UNet's prediction
    seen = list(m.last_hvca)
    assert len(seen) == len(m.sites) == len(m.net["hvca"])
    assert len({s for _, s in seen}) >= 2 and len({lv for lv, _ in seen}) >= 2  # several scales, one per UNet level
    for level, size in seen:
        assert size == local_scale(m.pyramid, level)[0] and size in src.maps and src.maps[size].shape[-1] == size
    _perturb(m)
    with torch.no_grad():
        assert not torch.equal(m.denoise(x, t, cond, src), plain)
        assert torch.equal(m.denoise(x, t, cond, src, keep=torch.zeros(1)), plain)  # image dropped: HVCA off
    off = FireEdit(models, FireEditConfig(use_hvca=False))
    with torch.no_grad():
        assert torch.equal(off.denoise(x, t, cond, src), plain) and not off.last_hvca and "hvca" not in off.net


def test_region_tokens_change_the_vl_encoder_and_the_ablation_removes_them(models):
    m = FireEdit(models)
    enc = m.net["encoder"]
    src = m.encode_source(_batch(1)[0])
    text = m.encode_text([INSTRUCTION])
    a = torch.zeros(1, 32, 32)
    a[:, 2:12, 2:12] = 1
    b = torch.zeros(1, 32, 32)
    b[:, 18:30, 16:30] = 1
    with torch.no_grad():
        sa = enc(src.patches, src.grid, text, inference_proposals(a, 4, 32))[0]
        sb = enc(src.patches, src.grid, text, inference_proposals(b, 4, 32))[0]
        s0 = enc(src.patches, src.grid, text, inference_proposals(None, 4, 32))[0]
    tl = enc.text_len
    assert not torch.allclose(sa[:, -tl:], sb[:, -tl:]) and not torch.allclose(sa[:, -tl:], s0[:, -tl:])
    types = enc.token_types(1)[0].tolist()
    assert types.count(1) == 4 and sa.shape[1] == enc.length == 8 * 8 + 4 + tl
    off = FireEdit(models, FireEditConfig(use_region_tokens=False))
    e2 = off.net["encoder"]
    assert e2.regions is None and 1 not in e2.token_types(1)[0].tolist() and e2.length == 8 * 8 + tl
    with torch.no_grad():
        ca = off.condition(src, text, inference_proposals(a, 4, 32))
        cb = off.condition(src, text, inference_proposals(b, 4, 32))
    assert torch.equal(ca, cb) and ca.shape[1] == e2.length


def test_proposals():
    r = torch.zeros(3, 1, 16, 16)
    r[:2, :, 4:8, 2:10] = 1
    assert torch.allclose(mask_boxes(r[:, 0])[0], torch.tensor([2 / 16, 4 / 16, 10 / 16, 8 / 16]))
    assert torch.equal(box_masks(mask_boxes(r[:, 0]), 16)[:2], r[:2, 0])  # box of a rectangle = the rectangle
    p = training_proposals(r, 4, torch.Generator().manual_seed(0), jitter=0.5, no_region_prob=0.0)
    assert p.masks.shape == (3, 4, 16, 16) and p.boxes.shape == (3, 4, 4) and p.valid.shape == (3, 4)
    true_slot = [(p.masks[i] == r[i, 0]).flatten(1).all(-1) & p.valid[i] for i in range(2)]
    assert all(s.sum() == 1 for s in true_slot)  # the true region is one (shuffled) slot
    assert p.valid[2].sum() <= 2 and torch.all(p.masks[~p.valid] == 0)  # no region: distractors at most
    q = training_proposals(r, 4, torch.Generator().manual_seed(0), no_region_prob=1.0)
    assert not q.valid.any()
    i = inference_proposals(r[:1, 0], 4, 16)
    assert i.valid.tolist() == [[True, True, False, False]] and torch.equal(i.masks[0, 0], r[0, 0])


def test_edit_is_deterministic_composes_and_round_trips(models, folder, tmp_path):
    left = np.zeros((40, 56), np.float32)
    left[:, :24] = 0.9
    calls = []

    def localizer(image, text):
        calls.append(text)
        return left, None

    m = FireEdit(models, localizer=localizer)
    _perturb(m)
    img = _image()
    a = m(img, INSTRUCTION, seed=3, steps=2)
    b = m(img, INSTRUCTION, seed=3, steps=2)
    assert a.image.shape == img.shape and a.image.dtype == np.uint8 and np.array_equal(a.image, b.image)
    assert not np.array_equal(m(img, INSTRUCTION, seed=4, steps=2).image, a.image)
    assert a.region_from == "localizer" and calls == [INSTRUCTION] * 3 and np.array_equal(a.region, left >= 0.5)
    c = m(img, INSTRUCTION, seed=3, steps=2, compose=True)
    outside = c.region < 0.5
    assert outside.any() and (~outside).any()
    assert np.array_equal(c.image[outside], img[outside])  # composed: bit-exact outside the localizer's region
    assert not np.array_equal(c.image[~outside], img[~outside])
    mask = np.zeros(img.shape[:2], np.float32)
    mask[10:30, 30:50] = 1
    d = m(img, INSTRUCTION, mask=mask, seed=3, steps=2)
    assert d.region_from == "given" and np.array_equal(d.region, mask) and not np.array_equal(d.image, a.image)
    m.save_pretrained(tmp_path / "fe")
    meta = json.loads((tmp_path / "fe" / "config.json").read_text())
    assert meta["_class_name"] == "FireEdit" and meta["base_model"] == str(folder)
    assert "FireEdit" in (tmp_path / "fe" / "README.md").read_text()
    m2 = FireEdit.from_pretrained(tmp_path / "fe", localizer=localizer)
    assert np.array_equal(m2(img, INSTRUCTION, seed=3, steps=2).image, a.image)
    with pytest.raises(ValueError, match="fixed by the saved weights"):
        FireEdit.from_pretrained(tmp_path / "fe", vl_dim=8)
    with pytest.raises(FileNotFoundError, match="not a FireEdit folder"):
        FireEdit.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        m(img.astype(np.float32), INSTRUCTION)
    with pytest.raises(ValueError, match="mask has shape"):
        m(img, INSTRUCTION, mask=mask[:10])


def test_train_command_resumes_and_the_eval_methods_edit(folder, tmp_path):
    from PIL import Image

    from regionedit.cli.main import main
    from regionedit.evaluation.baselines import MethodSettings, build_methods
    from regionedit.io import read_png_metadata
    from regionedit.world import sample_edit

    out = tmp_path / "run"
    args = ["train", "fireedit", "--model", str(folder), "--out", str(out), "--batch", "2", "--log-every", "1",
            "--checkpoint-steps", "1", "--no-progress"]
    check_trains_and_resumes(main, args, out)

    names = ["fireedit", "fireedit-compose", "fireedit-no_region_tokens", "fireedit-no_tati", "fireedit-no_hvca"]
    no_ip2p = tmp_path / "no_ip2p"
    shutil.copytree(folder, no_ip2p, ignore=shutil.ignore_patterns("unet_ip2p"))
    methods, skipped = build_methods(names[:1], M.load(str(no_ip2p)), MethodSettings(steps=2))
    assert not methods and "unet_ip2p" in skipped["fireedit"]
    model = tmp_path / "model"
    shutil.copytree(folder, model)
    methods, skipped = build_methods(names, M.load(str(model)), MethodSettings(steps=2))
    assert not methods and all("regionedit train fireedit" in skipped[n] for n in names)
    assert "--no-tati" in skipped["fireedit-no_tati"] and "--no-region-tokens" in skipped["fireedit-no_region_tokens"]
    shutil.copytree(out / "export", model / "fireedit")
    FireEdit(M.load(str(model)), FireEditConfig(use_region_tokens=False)).save_pretrained(
        model / "fireedit-no_region_tokens")
    built = ["fireedit", "fireedit-compose", "fireedit-no_region_tokens"]
    methods, skipped = build_methods(built, M.load(str(model)), MethodSettings(steps=2))
    assert set(methods) == set(built), skipped
    s = sample_edit(seed=3, index=0)
    for name, method in methods.items():
        edited, region, status = method(s.source, s.instruction, 0, SimpleNamespace(mask=None))
        assert edited.shape == s.source.shape and edited.dtype == np.uint8 and status in ("edited", "no_edit"), name
        if name == "fireedit-compose":
            assert region.shape == s.source.shape[:2] and np.array_equal(edited[~region], s.source[~region])
        else:
            assert region is None and status == "edited"

    # the command line: `regionedit edit --method fireedit-compose`, provenance in the PNG
    Image.fromarray(s.source).save(tmp_path / "in.png")
    edit = ["edit", str(tmp_path / "in.png"), s.instruction, "--model", str(model), "--steps", "2"]
    assert main(edit + ["-o", str(tmp_path / "out.png"), "--method", "fireedit-compose"]) == 0
    meta = read_png_metadata(tmp_path / "out.png")
    assert meta["regionedit:method"] == "fireedit-compose" and meta["regionedit:instruction"] == s.instruction
    assert meta["regionedit:model"].endswith("+fireedit-compose")
    with pytest.raises(SystemExit, match="--method fireedit-no_hvca cannot run.*--no-hvca"):
        main(edit + ["-o", str(tmp_path / "out2.png"), "--method", "fireedit-no_hvca"])
    # the InstructPix2Pix peer from the same command (the frozen UNet FireEdit steers, driven by the instruction)
    assert main(edit + ["-o", str(tmp_path / "ip2p.png"), "--method", "instructpix2pix"]) == 0
    meta = read_png_metadata(tmp_path / "ip2p.png")
    assert meta["regionedit:method"] == "instructpix2pix" and meta["regionedit:model"].endswith("+instructpix2pix")
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "ip2p.png").convert("RGB")), s.source)
    no_ip2p_edit = ["edit", str(tmp_path / "in.png"), s.instruction, "--model", str(no_ip2p), "--steps", "2"]
    with pytest.raises(SystemExit, match="--method instructpix2pix cannot run.*unet_ip2p"):
        main(no_ip2p_edit + ["-o", str(tmp_path / "out3.png"), "--method", "instructpix2pix"])

    # weights trained on another frozen UNet of the folder name it (unet_subfolder): the rows and the web menu use
    # that one, so a folder can ship a newer unet_ip2p beside the base older FireEdit weights were trained on
    from regionedit.web.methods import SeedMethods, required_files

    shutil.copytree(model / "unet_ip2p", model / "unet_base")
    cfg_p = model / "fireedit" / "config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["config"]["unet_subfolder"] = "unet_base"
    cfg_p.write_text(json.dumps(cfg))
    assert "unet_base/config.json" in required_files("fireedit", model)
    from diffusers import UNet2DConditionModel

    newer = UNet2DConditionModel.from_pretrained(model / "unet_ip2p")  # a newer unet_ip2p the row must not read
    with torch.no_grad():
        for p in newer.parameters():
            p.add_(0.5)
    newer.save_pretrained(model / "unet_ip2p")
    row = build_methods(["fireedit"], M.load(str(model)), MethodSettings(steps=2))[0]["fireedit"]
    base = _checksum(UNet2DConditionModel.from_pretrained(model / "unet_base"))
    assert _checksum(row.method.unet) == pytest.approx(base, rel=1e-6) != _checksum(newer)
    shutil.rmtree(model / "unet_base")
    methods, skipped = build_methods(["fireedit"], M.load(str(model)), MethodSettings(steps=2))
    assert not methods and "unet_base" in skipped["fireedit"]
    assert "fireedit" not in SeedMethods(model).available


def test_config_checks():
    with pytest.raises(ValueError, match="vl_heads"):
        FireEditConfig(vl_dim=30, vl_heads=4)
    with pytest.raises(ValueError, match="num_regions"):
        FireEditConfig(num_regions=1)
    with pytest.raises(ValueError, match="unknown FireEditConfig"):
        FireEditConfig.from_dict({"nope": 1})
    assert isinstance(Proposals(*inference_proposals(None, 3, 8)), Proposals)
