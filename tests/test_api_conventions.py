"""The Editor's Python API follows diffusers' conventions (issue 34 item 2) and keeps every unedited pixel across
many turns (item 3): output types, the step callback, generator reproducibility, batch equals single, .to(),
save_pretrained / from_pretrained, EditSession with undo, and the CLI's repeated -i."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit.cli.main import main
from regionedit.io import load_image, read_png_metadata, save_png
from regionedit.pipeline import Editor, EditorConfig, EditorOutput, EditSession
from regionedit.world.rendering import render
from regionedit.world.scene import sample_scene


@pytest.fixture(scope="module")
def editor():
    return Editor.from_pretrained("shapes-64", config=EditorConfig(steps=4, candidates=1))


def _scene(seed: int, n: int = 2):
    scene = sample_scene(np.random.default_rng(seed), n_objects=n)
    return render(scene, 64), scene.objects


def test_output_types(editor):
    img, objs = _scene(1)
    ins = f"remove the {objs[0].color} {objs[0].shape}"
    np_out = editor(img, ins, seed=0)
    assert np_out.status == "edited" and isinstance(np_out.images[0], np.ndarray)
    pil = editor(img, ins, seed=0, output_type="pil").images[0]
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), np_out.image)
    pt = editor(img, ins, seed=0, output_type="pt").images[0]
    assert isinstance(pt, torch.Tensor) and pt.shape == (3, 64, 64) and pt.dtype == torch.float32
    assert 0 <= float(pt.min()) and float(pt.max()) <= 1
    assert torch.equal((pt * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(np_out.image))
    with pytest.raises(ValueError, match="output_type"):
        editor(img, ins, output_type="latent")


def test_callback_is_called_after_every_step(editor):
    img, objs = _scene(2)
    calls = []

    def cb(gen, i, t, kwargs):
        calls.append((i, int(t), tuple(kwargs["latents"].shape)))
        return kwargs

    res = editor(img, f"remove the {objs[0].color} {objs[0].shape}", num_inference_steps=5, callback_on_step_end=cb)
    assert res.status == "edited"
    assert [c[0] for c in calls] == [0, 1, 2, 3, 4]
    assert len({c[1] for c in calls}) == 5  # five distinct timesteps
    # a callback that replaces the latents changes the edit
    zero = editor(img, f"remove the {objs[0].color} {objs[0].shape}", num_inference_steps=5,
                  callback_on_step_end=lambda g, i, t, kw: {"latents": kw["latents"] * 0})
    assert not np.array_equal(zero.image, res.image)


def test_generator_reproducibility(editor):
    img, _ = _scene(3)
    ins = "add a small green star in the top left"
    a = editor(img, ins, generator=torch.Generator().manual_seed(11))
    b = editor(img, ins, generator=torch.Generator().manual_seed(11))
    c = editor(img, ins, generator=torch.Generator().manual_seed(12))
    assert a.status == "edited" and np.array_equal(a.image, b.image) and a.seed == b.seed
    assert c.seed != a.seed
    g = torch.Generator().manual_seed(11)  # a generator is consumed, as in diffusers: two draws differ
    assert editor(img, ins, generator=g).seed != editor(img, ins, generator=g).seed


def test_batch_equals_single(editor):
    (img1, o1), (img2, o2) = _scene(4), _scene(5)
    ins = [f"remove the {o1[0].color} {o1[0].shape}", f"make the {o2[0].color} {o2[0].shape} bigger"]
    out = editor([img1, img2], ins, seed=[3, 4], output_type="pil")
    assert isinstance(out, EditorOutput) and len(out) == 2
    for k, (img, i, s) in enumerate(((img1, ins[0], 3), (img2, ins[1], 4))):
        single = editor(img, i, seed=s)
        assert np.array_equal(np.asarray(out.images[k]), single.image)
        assert np.array_equal(out.masks[k], single.mask) and out.results[k].status == single.status
    # one image, several instructions; one instruction, several images
    assert len(editor(img1, ins, seed=0)) == 2 and len(editor([img1, img2], "add a small red star", seed=0)) == 2
    with pytest.raises(ValueError, match="2 images and 3 instructions"):
        editor([img1, img2], ins + ["x"])
    with pytest.raises(ValueError, match="disagree"):
        editor(img1, ins[0], steps=3, num_inference_steps=4)


def test_to_bf16_still_edits():
    ed = Editor.from_pretrained("shapes-64", config=EditorConfig(steps=3, candidates=1)).to(dtype="bf16")
    assert ed.models.vae.dtype == torch.bfloat16 and ed.models.unet_inpaint.dtype == torch.bfloat16
    assert ed.localizer.dtype == torch.bfloat16  # the region predictor too
    loaded = Editor.from_pretrained("shapes-64", torch_dtype="bf16")
    assert loaded.localizer.dtype == torch.bfloat16 and loaded.models.clip.dtype == torch.bfloat16
    img, objs = _scene(6)
    res = ed(img, f"remove the {objs[0].color} {objs[0].shape}")
    assert res.status == "edited" and np.array_equal(res.image[~res.mask], img[~res.mask])


def test_save_pretrained_roundtrip(editor, tmp_path):
    img, objs = _scene(7)
    ins = f"make the {objs[0].color} {objs[0].shape} smaller"
    cfg = EditorConfig(steps=3, candidates=2, blend="hard")
    ed = Editor.from_pretrained("shapes-64", config=cfg)
    saved = ed.save_pretrained(tmp_path / "my-editor")
    again = Editor.from_pretrained(saved)
    assert again.config == cfg and [p.name for p in again.priors] == [p.name for p in ed.priors]
    a, b = ed(img, ins, seed=5), again(img, ins, seed=5)
    assert a.status == b.status == "edited" and np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    with pytest.raises(FileExistsError):
        ed.save_pretrained(saved)
    assert ed.save_pretrained(saved, overwrite=True) == saved
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_save_pretrained_with_swapped_components(tmp_path):
    from skimage import data

    from regionedit.models.tiny_localizers import save_tiny_clipseg
    from regionedit.models.tiny_pipelines import save_tiny_sd_inpaint

    sd, seg = save_tiny_sd_inpaint(tmp_path / "sd"), save_tiny_clipseg(tmp_path / "clipseg")
    ed = Editor.from_pretrained(generator=str(sd), localizer=f"clipseg:{seg}",
                                config=EditorConfig(steps=2, threshold=0.0, presence_threshold=0.0))
    saved = ed.save_pretrained(tmp_path / "photo-editor")
    meta = json.loads((saved / "regionedit.json").read_text())
    assert meta["components"] == {"generator": "generator", "localizer": f"clipseg:{seg}"}
    again = Editor.from_pretrained(saved)
    photo = data.chelsea()
    a, b = ed(photo, "replace the cat with a dog", seed=1), again(photo, "replace the cat with a dog", seed=1)
    assert a.status == "edited" and np.array_equal(a.image, b.image)


def test_ten_turns_bit_exact_outside_the_union_of_masks(editor):
    scene = sample_scene(np.random.default_rng(8), n_objects=2)
    img = render(scene, 96)
    a, b = scene.objects
    turns = [f"make the {a.color} {a.shape} bigger", "add a small yellow star in the top left",
             f"remove the {b.color} {b.shape}", "add a small green circle in the bottom right",
             "make the yellow star red", "add a small blue triangle in the bottom left",
             "change the background to black", "add a small white square in the top right",
             "make the blue triangle bigger", "remove the green circle"]
    session = EditSession(editor, img)
    for t in turns:
        session.edit(t)
    edited = [r for r in session.history if r.status == "edited"]
    assert len(session.history) == 10 and len(edited) >= 6, [(r.instruction, r.reason) for r in session.history]
    outside = ~session.changed
    assert outside.any() and np.array_equal(session.image[outside], img[outside])
    assert np.array_equal(session.original, img) and not session.original.flags.writeable
    # undo goes back exactly one kept edit
    before_last = session.turns[-2].image.copy()
    session.undo()
    assert np.array_equal(session.image, before_last)
    whole = session.result()
    assert whole.status == "edited" and np.array_equal(whole.mask, session.changed)


def test_cli_several_instructions_in_turn(tmp_path, capsys):
    scene = sample_scene(np.random.default_rng(9), n_objects=2)
    img = render(scene, 64)
    a = scene.objects[0]
    src, out, mask_out = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "mask.png"
    save_png(src, img)
    argv = ["edit", str(src), "-i", f"remove the {a.color} {a.shape}", "-i", "add a small white star in the top left",
            "-o", str(out), "--mask-out", str(mask_out), "--steps", "3", "--candidates", "1", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["status"] == "edited" and len(record["steps"]) == 2
    result, mask = load_image(out), load_image(mask_out)[..., 0] > 127
    assert np.array_equal(result[~mask], img[~mask])
    assert read_png_metadata(out)["regionedit:instruction"].count(";") == 1
