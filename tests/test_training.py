"""Every world-model trainer runs a few steps, exports a loadable folder, and resumes after a stop."""

import json
import shutil

import numpy as np
import pytest
import torch

from regionedit import models
from regionedit.evaluation import region_thresholds
from regionedit.models.bundled import bundled_dir
from regionedit.world.training import world_models
from regionedit.world.training.model_cards import write_card
from regionedit.world import Background, Scene, WorldObject, render


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    shutil.copytree(bundled_dir() / "tokenizer", d / "tokenizer")  # skip BPE training (tested elsewhere)
    return d


def _steps(run_dir):
    return torch.load(run_dir / "state.pt", weights_only=True)["step"]


@pytest.mark.parametrize("component", ["clip", "vae", "instruction_encoder", "unet", "unet_inpaint", "unet_ip2p"])
def test_train_export_resume(component, export, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "runs"
    args = ["--only", component, "--out", str(out), "--export", str(export), "--batch", "2", "--threads", "1"]
    assert world_models.main(args + ["--max-steps", "2"]) == 0
    assert _steps(out / component) == 2
    # a second invocation resumes from the checkpoint instead of starting over
    assert world_models.main(args + ["--max-steps", "3"]) == 0
    assert _steps(out / component) == 3
    state = json.loads((export / component / "training_state.json").read_text())
    assert state["steps"] == 3
    m = models.load(export)
    if component == "clip":
        assert m.clip.config.vision_config.image_size == 64 and m.text_encoder is not None
    elif component == "vae":
        assert m.vae.config.latent_channels == 4 and m.vae.config.scaling_factor > 0
    elif component == "instruction_encoder":
        ids = m.instruction_tokenizer(["remove the red circle"], return_tensors="pt").input_ids
        assert m.instruction_encoder(ids)[0].shape[-1] == 128
    elif component == "unet":
        assert m.unet.config.in_channels == 4
    elif component == "unet_inpaint":
        assert m.unet_inpaint.config.in_channels == 9
    else:
        from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(export / "unet_ip2p")
        assert unet.config.in_channels == 8
        pipe = StableDiffusionInstructPix2PixPipeline(vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer,
                                                      unet=unet, scheduler=m.scheduler, safety_checker=None,
                                                      feature_extractor=None, requires_safety_checker=False)
        from PIL import Image

        out = pipe("remove the red circle", image=Image.new("RGB", (64, 64), "white"), num_inference_steps=2,
                   generator=torch.Generator().manual_seed(0), output_type="np").images
        assert out.shape == (1, 64, 64, 3)


def test_ip2p_conv_in_lr_scale_and_a_resume_that_drops_it(export, tmp_path):
    """--conv-in-lr-scale puts conv_in in its own optimizer group at that multiple of the learning rate; resuming the
    run without it is refused with the flag to use (not an optimizer-state traceback)."""
    args = ["--only", "unet_ip2p", "--out", str(tmp_path), "--export", str(export), "--batch", "2", "--threads", "1"]
    assert world_models.main(args + ["--max-steps", "1", "--conv-in-lr-scale", "10"]) == 0
    groups = torch.load(tmp_path / "unet_ip2p" / "state.pt", weights_only=True)["optimizer"]["param_groups"]
    assert sorted(g.get("lr_scale", 1.0) for g in groups) == [1.0, 10.0]
    rest, conv_in = sorted(groups, key=lambda g: g.get("lr_scale", 1.0))
    assert conv_in["lr"] == pytest.approx(10 * rest["lr"]) and len(conv_in["params"]) == 2  # conv_in weight + bias
    assert json.loads((export / "unet_ip2p" / "training_state.json").read_text())["conv_in_lr_scale"] == 10.0
    with pytest.raises(SystemExit, match=r"--conv-in-lr-scale 10"):
        world_models.main(args + ["--max-steps", "2"])
    assert world_models.main(args + ["--max-steps", "2", "--conv-in-lr-scale", "10"]) == 0


def test_inpaint_unet_initialised_from_text_to_image(export, tmp_path):
    """SD-inpainting recipe: the 9-channel UNet starts as the 4-channel one plus zero channels."""
    from diffusers import UNet2DConditionModel

    args = ["--only", "unet_inpaint", "--out", str(tmp_path), "--export", str(export), "--batch", "2", "--max-steps", "0"]
    shutil.rmtree(export / "unet_inpaint", ignore_errors=True)
    world_models.main(args)
    t2i = UNet2DConditionModel.from_pretrained(export / "unet")
    inp = UNet2DConditionModel.from_pretrained(export / "unet_inpaint")
    w4, w9 = t2i.conv_in.weight, inp.conv_in.weight
    assert torch.allclose(w9[:, :4].float(), w4.float(), atol=1e-2)
    assert w9[:, 4:].abs().max() < 1e-2


def test_unet_continued_from_shipped_weights_keeps_their_record(tmp_path):
    export = tmp_path / "export"
    for name in ("tokenizer", "vae", "text_encoder", "unet"):  # the shipped UNet and what it conditions on
        shutil.copytree(bundled_dir() / name, export / name)
    args = ["--only", "unet", "--export", str(export), "--batch", "2", "--threads", "1"]
    first = json.loads((export / "unet" / "training_state.json").read_text())
    assert world_models.main(args + ["--out", str(tmp_path / "b"), "--max-steps", "2"]) == 0
    state = json.loads((export / "unet" / "training_state.json").read_text())
    assert state["steps"] == 2 and state["earlier_training"] == first
    assert "_name_or_path" not in json.loads((export / "unet" / "config.json").read_text())  # no local paths shipped
    assert world_models.main(args + ["--out", str(tmp_path / "b"), "--max-steps", "3"]) == 0  # a resume keeps it
    state = json.loads((export / "unet" / "training_state.json").read_text())
    assert state["steps"] == 3 and state["earlier_training"] == first
    from regionedit.world.training.model_cards import write_card

    write_card(export / "unet", "unet", {"objects_right": 0.5}, "python benchmarks/world_models.py")
    assert "continued from an earlier training" in (export / "unet" / "README.md").read_text()


def test_edit_to_text_covers_every_edit():
    from regionedit.world import sample_edit

    for i in range(60):
        s = sample_edit(3, i)
        if s.category != "absent":
            assert world_models.edit_to_text(s.edit).split()[0] in {"remove", "add", "replace", "recolor", "resize", "background"}


def test_region_training_runs_resumes_and_exports(tmp_path):
    """`regionedit train region` on tiny models: a few steps, resume, export, reload."""
    from regionedit.cli.main import main as cli
    from regionedit.world.tiny import save_tiny_models
    from regionedit.localize import load_region_predictor

    tiny = save_tiny_models(tmp_path / "tiny")
    args = ["train", "region", "--model", str(tiny), "--out", str(tmp_path / "run"), "--batch", "2",
            "--gen-steps", "1", "--threads", "1", "--degrade", "1.0"]  # every image JPEG'd or noisy
    assert cli(args + ["--max-steps", "2"]) == 0
    assert cli(args + ["--max-steps", "3"]) == 0
    assert _steps(tmp_path / "run" / "region") == 3
    exported = tmp_path / "run" / "export" / "region_predictor"  # the default --export, never the model folder
    pred = load_region_predictor(exported)
    assert json.loads((exported / "training_state.json").read_text())["steps"] == 3
    assert not (tiny / "region_predictor").exists()
    assert pred.config.text_dim > 0  # a new predictor also reads CLIP's text tokens (default --clip-text)
    out = pred(torch.randn(1, 64, 32), torch.randn(1, 5, 32), f_txt=torch.randn(1, 7, pred.config.text_dim))
    assert out["patch_region"].shape == (1, 1, 8, 8)


def test_instructions_from_captions_use_text_only():
    import numpy as np

    from regionedit.world.training.region_data import instruction_from_caption

    rng = np.random.default_rng(0)
    made = [instruction_from_caption("a red circle and a blue star on a white background", rng) for _ in range(40)]
    made = [m for m in made if m]
    assert len(made) > 30
    ops = {m[2] for m in made}
    assert "background" in ops and any(m[1] != "a red circle and a blue star on a white background" for m in made)


def test_examples_from_captions_score_edits_of_objects_against_the_caption_without_them():
    import numpy as np

    from regionedit.world.training.region_data import example_from_caption

    cap = "a red circle and a blue star on a white background"
    rng = np.random.default_rng(1)
    exs = [e for e in (example_from_caption(cap, rng) for _ in range(200)) if e]
    by_op = {}
    for e in exs:
        by_op.setdefault(e["op"], []).append(e)
    assert set(by_op) == {"remove", "color", "local", "size", "background", "add", "absent"}
    for op in ("remove", "color", "local", "size"):
        for e in by_op[op]:
            assert e["clip_target"] in {"a blue star on a white background", "a red circle on a white background"}
    assert all(e["clip_target"] == cap and e["target"] == cap for e in by_op["absent"])
    assert all(e["clip_target"] == e["target"] != cap for e in by_op["background"] + by_op["add"])
    assert all(e["background"] and e["background"][0] != "white" for e in by_op["background"])


def test_background_estimate_removes_objects_and_keeps_gradients():
    import numpy as np

    from regionedit.training.region import background_estimate
    from regionedit.world.training.region_data import background_from_text
    from regionedit.world.rendering import render, render_background
    from regionedit.world.scene import sample_scene

    rng = np.random.default_rng(4)
    scenes = [sample_scene(rng) for _ in range(8)]
    x = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2).float() / 127.5 - 1
    bg = torch.from_numpy(np.stack([render_background(s.background) for s in scenes])).permute(0, 3, 1, 2).float() / 127.5 - 1
    est = background_estimate(x)
    assert est.shape == x.shape
    assert ((est - bg).abs() / 2).mean() < 0.5 * ((x - bg).abs() / 2).mean()
    drawn = background_from_text(("white", "sky blue"), 64, 64)
    assert drawn.shape == (3, 64, 64) and drawn[:, 0].mean() > drawn[:, -1].mean() - 0.01


def test_world_region_data_gives_seeded_batches_of_the_documented_form():
    from regionedit.training.region import RegionBatch, RegionExample
    from regionedit.world.training.region_data import WorldRegionData

    a = WorldRegionData(seed=3, absent_prob=0.5, degrade=0.5)
    b = WorldRegionData(seed=3, absent_prob=0.5, degrade=0.5)
    for _ in range(3):
        x, exs = ba = a(8)
        assert isinstance(ba, RegionBatch) and x.shape == (8, 3, 64, 64) and x.dtype == torch.float32
        assert -1 <= x.min() and x.max() <= 1 and len(exs) == 8
        bb = b(8)
        assert torch.equal(x, bb.images) and [e.instruction for e in exs] == [e.instruction for e in bb.examples]
        for e in exs:
            assert isinstance(e, RegionExample) and e.instruction and e.source
            assert e.referent is (True if e.op in ("remove", "color", "local", "size") else False if e.op == "absent" else None)
            if e.op == "background":
                assert e.proxy_fill.shape == (3, 64, 64) and -1 <= e.proxy_fill.min() and e.proxy_fill.max() <= 1
            else:
                assert e.proxy_fill == ("generate" if e.op == "add" else "estimate")
    with pytest.raises(SystemExit, match="needs a data source"):
        from regionedit.training import region

        region.main(["--out", "unused"])


def test_sigterm_checkpoints_and_exports(tmp_path, export):
    """A training run stopped by SIGTERM finishes its step, checkpoints and exports (resumable)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "regionedit.world.training.world_models", "--only", "vae", "--out", str(out),
           "--export", str(tmp_path / "exp"), "--batch", "2", "--threads", "1", "--minutes", "5"]
    (tmp_path / "exp").mkdir()
    shutil.copytree(export / "tokenizer", tmp_path / "exp" / "tokenizer")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ""
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "vae" / "log.jsonl").exists():
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)
    log = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, log
    assert "stopping after this step" in log
    assert _steps(out / "vae") >= 20
    assert (tmp_path / "exp" / "vae" / "diffusion_pytorch_model.safetensors").exists()


def test_absent_examples_name_objects_the_caption_lacks_in_every_phrasing():
    import numpy as np

    from regionedit.world.grammar import WorldDescriber
    from regionedit.world.training.region_data import example_from_caption

    cap = "a red circle and a blue star on a white background"
    rng = np.random.default_rng(2)
    exs = [e for e in (example_from_caption(cap, rng, absent_prob=1.0) for _ in range(120)) if e]
    assert len(exs) > 100 and all(e["op"] == "absent" and e["clip_target"] == cap for e in exs)
    ops, near_miss = set(), 0
    for e in exs:
        intent = WorldDescriber()(e["instruction"]).intent
        ops.add(intent.op)
        ref = intent.target
        assert (ref.color, ref.shape) not in {("red", "circle"), ("blue", "star")}
        assert ref.color is not None or ref.shape not in {"circle", "star"}  # a bare shape only if none is there
        near_miss += ref.shape in {"circle", "star"} or ref.color in {"red", "blue"}
    assert ops == {"remove", "color", "local", "size"} and near_miss > len(exs) // 3


def test_region_training_adds_and_trains_a_presence_head_on_a_shipped_predictor(tmp_path):
    """`--presence` on a folder whose predictor has no presence head: same weights plus a new head."""
    from regionedit.cli.main import main as cli
    from regionedit.world.tiny import save_tiny_models
    from regionedit.localize import load_region_predictor

    tiny = save_tiny_models(tmp_path / "tiny", region_bias=-3.0)
    before = load_region_predictor(tiny / "region_predictor")
    assert not before.config.presence
    args = ["train", "region", "--model", str(tiny), "--out", str(tmp_path / "run"), "--batch", "4",
            "--gen-steps", "1", "--threads", "1", "--presence", "--absent-prob", "0.5", "--max-steps", "2"]
    assert cli(args) == 0
    export = tmp_path / "run" / "export"
    after = load_region_predictor(export / "region_predictor")
    assert after.config.presence and after.presence_head is not None
    assert not load_region_predictor(tiny / "region_predictor").config.presence  # --model's folder is only read
    assert after.config.text_dim == before.config.text_dim
    changed = [k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])]
    assert changed  # trained on from the shipped weights, not from scratch or left alone
    # --presence-only: the head learns, every region weight stays exactly as it was
    head_before = {k: v.clone() for k, v in after.state_dict().items() if k.startswith("presence_head.")}
    assert cli(["train", "region", "--model", str(tiny), "--out", str(tmp_path / "run_po"), "--batch", "8",
                "--threads", "1", "--presence-only", "--absent-prob", "0.5", "--max-steps", "2",
                "--export", str(export)]) == 0  # continues from the predictor already in --export
    po = load_region_predictor(export / "region_predictor")
    sd, sa = po.state_dict(), after.state_dict()
    assert all(torch.equal(sd[k], sa[k]) for k in sa if not k.startswith("presence_head."))
    assert any(not torch.equal(sd[k], head_before[k]) for k in head_before)
    state = json.loads((export / "region_predictor" / "training_state.json").read_text())
    assert state["steps"] == 2 and state["presence_head"]["steps"] == 2  # both stages on record
    assert state["earlier_training"] == {"steps": 0}  # and the predictor the first stage continued from
    from regionedit.world.training.model_cards import write_card

    write_card(export / "region_predictor", "region_predictor", {"iou_remove": 0.5}, "python benchmarks/region.py")
    card = (export / "region_predictor" / "README.md").read_text()
    assert "continued from an earlier training (on the frozen models of its time): 0 steps" in card and "presence head alone" in card
    line = next(x for x in card.splitlines() if x.startswith("- reproduce / continue:"))
    assert line.count("`") == 4 and line.endswith("--minutes M`")  # both commands, each whole in backticks
    assert not list((tiny / "region_predictor").glob("*.tmp"))  # written through a temporary file, renamed


def test_vae_decoder_only_finetune_keeps_the_latent_space(export, tmp_path):
    from diffusers import AutoencoderKL

    args = ["--only", "vae", "--export", str(export), "--batch", "2", "--threads", "1"]
    world_models.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "2"])
    before = AutoencoderKL.from_pretrained(export / "vae")
    assert world_models.main(args + ["--out", str(tmp_path / "b"), "--max-steps", "3", "--vae-decoder-only"]) == 0
    after = AutoencoderKL.from_pretrained(export / "vae")
    sb, sa = before.state_dict(), after.state_dict()
    assert all(torch.equal(sb[k], sa[k]) for k in sb if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(sb[k], sa[k]) for k in sb if k.startswith("decoder."))
    state = json.loads((export / "vae" / "training_state.json").read_text())
    assert state["decoder_finetune"]["steps"] == 3 and "earlier" not in state["decoder_finetune"]
    # a second decoder fine-tune (fresh --out; the stage's own name) keeps the first one's record, also across its resume
    stage2 = ["--only", "vae_decoder", "--export", str(export), "--batch", "2", "--threads", "1", "--out", str(tmp_path / "c")]
    assert world_models.main(stage2 + ["--max-steps", "1"]) == 0
    assert world_models.main(stage2 + ["--max-steps", "2"]) == 0
    assert (tmp_path / "c" / "vae_decoder" / "state.pt").exists()
    ft = json.loads((export / "vae" / "training_state.json").read_text())["decoder_finetune"]
    assert ft["steps"] == 2 and ft["earlier"]["steps"] == 3 and "weighted" in ft["loss"]
    card = write_card(export / "vae", "vae", {}, "cmd")
    assert card.count("decoder-only fine-tune") == 2


def test_edge_weight_marks_only_pixels_near_edges():
    from regionedit.world.training.world_models import edge_weight

    img = render(Scene(Background("white"), (WorldObject("star", "red", 0.5, 0.5, 0.3),)))
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    w = edge_weight(x, 9.0)[0, 0]
    assert w.shape == (64, 64) and set(w.unique().tolist()) == {1.0, 10.0}
    assert w[0, 0] == 1 and w[32, 32] == 1  # far from the star / deep inside it
    inside = torch.from_numpy(img[..., 1] < 128)  # red on white: the star's pixels
    boundary = (inside[:, 1:] != inside[:, :-1])
    assert (w[:, 1:][boundary] == 10).all() and (w[:, :-1][boundary] == 10).all()
    assert (edge_weight(x, 0.0) == 1).all()
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert (edge_weight(flat, 9.0) == 1).all()


def test_clip_finetune_from_shipped_keeps_record_and_learns_dense_shape(export, tmp_path):
    args = ["--only", "clip", "--export", str(export), "--batch", "2", "--threads", "1"]
    world_models.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "2", "--clip-shape-aux", "0"])
    first = json.loads((export / "clip" / "training_state.json").read_text())
    assert world_models.main(args + ["--out", str(tmp_path / "b"), "--max-steps", "2"]) == 0
    state = json.loads((export / "clip" / "training_state.json").read_text())
    assert state["steps"] == first["steps"] and state["finetune"]["steps"] == 2  # both runs on record
    assert state["finetune"]["shape_aux_weight"] == 1.0
    run = torch.load(tmp_path / "b" / "clip" / "state.pt", weights_only=True)
    assert run["from_shipped"] and any(k.startswith("shape_head.") for k in run["model"])
    # a resume of the fine-tune stays a fine-tune (the record is not reset)
    assert world_models.main(args + ["--out", str(tmp_path / "b"), "--max-steps", "3"]) == 0
    state = json.loads((export / "clip" / "training_state.json").read_text())
    assert state["steps"] == first["steps"] and state["finetune"]["steps"] == 3


def test_clip_resume_with_other_shape_loss_setting_is_a_clear_error(export, tmp_path):
    args = ["--only", "clip", "--export", str(export), "--batch", "2", "--threads", "1", "--out", str(tmp_path / "a")]
    assert world_models.main(args + ["--max-steps", "1"]) == 0
    with pytest.raises(SystemExit, match="--clip-shape-aux > 0, or start a fresh --out"):
        world_models.main(args + ["--max-steps", "2", "--clip-shape-aux", "0"])


def test_text_encoder_is_kept_once_unets_exist_unless_replaced(tmp_path):
    from safetensors.torch import load, load_file

    export = tmp_path / "export"
    shutil.copytree(bundled_dir() / "tokenizer", export / "tokenizer")
    args = ["--only", "clip", "--export", str(export), "--batch", "2", "--threads", "1"]
    assert world_models.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "1"]) == 0  # no UNet yet: written
    (export / "unet").mkdir()
    (export / "unet" / "config.json").write_text("{}")  # stands in for a UNet trained on this text encoder
    before = (export / "text_encoder" / "model.safetensors").read_bytes()
    assert world_models.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "2"]) == 0
    assert (export / "text_encoder" / "model.safetensors").read_bytes() == before  # the UNets' conditioning is kept
    assert world_models.main(args + ["--out", str(tmp_path / "a"), "--max-steps", "3", "--replace-text-encoder"]) == 0
    text = load_file(export / "text_encoder" / "model.safetensors")
    clip = load_file(export / "clip" / "model.safetensors")
    tower = {k.removeprefix("text_model."): v for k, v in clip.items() if k.startswith("text_model.")}
    text = {k.removeprefix("text_model."): v for k, v in text.items()}  # key prefix differs across transformers versions
    assert text.keys() == tower.keys() and all(torch.equal(v, tower[k]) for k, v in text.items())  # CLIP's text tower
    old = {k.removeprefix("text_model."): v for k, v in load(before).items()}
    assert not torch.equal(text["encoder.layers.0.mlp.fc1.weight"], old["encoder.layers.0.mlp.fc1.weight"])
    card = (export / "text_encoder" / "README.md").read_text()
    record = json.loads((export / "clip" / "training_state.json").read_text())
    assert "text tower of the bundled CLIP" in card and f'"steps": {record["steps"]}' in card
    # the README's recipe: no training, only the export, and the CLIP record stands
    assert world_models.main(args + ["--out", str(tmp_path / "c"), "--max-steps", "0", "--replace-text-encoder"]) == 0
    assert json.loads((export / "clip" / "training_state.json").read_text()) == record


def test_patch_shape_labels_mark_each_object_and_the_background():
    from regionedit.world.training.world_data import clip_batch, patch_shape_labels
    from regionedit.world import spec
    from regionedit.world.scene import Background, Scene, WorldObject

    scene = Scene(Background("white"), (WorldObject("star", "red", 0.25, 0.25, 0.15), WorldObject("square", "blue", 0.75, 0.7, 0.1)))
    lab = patch_shape_labels(scene)  # 16 x 16 patches of 4 px, row 0 at the top
    assert lab.shape == (16, 16) and lab.dtype == np.int64
    assert lab[4, 4] == spec.SHAPES.index("star") and lab[11, 12] == spec.SHAPES.index("square")
    assert lab[0, 15] == lab[15, 0] == len(spec.SHAPES)  # background
    assert (lab == spec.SHAPES.index("square")).sum() < (lab == spec.SHAPES.index("star")).sum()
    # the labelled batch shows the same scenes as the unlabelled one
    a = clip_batch(np.random.default_rng(3), 4)
    b = clip_batch(np.random.default_rng(3), 4, with_labels=True)
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and b[3].shape == (4, 16, 16)


def test_background_samples_repaint_everything_but_the_objects():
    from regionedit.world.training.world_data import background_sample, inpaint_batch
    from regionedit.world.rendering import object_coverage, render
    from regionedit.world.scene import Background, Scene, WorldObject

    scene = Scene(Background("white"), (WorldObject("star", "red", 0.3, 0.3, 0.15), WorldObject("square", "blue", 0.7, 0.7, 0.1)))
    rng = np.random.default_rng(0)
    for margin in (0, 2):
        target, mask, prompt = background_sample(rng, scene, margin=margin)
        assert target.shape == (64, 64, 3) and mask.shape == (64, 64) and mask.dtype == bool
        assert prompt.endswith(" background") and "white background" not in prompt  # a new background
        objects = object_coverage(scene.objects[0], 64) + object_coverage(scene.objects[1], 64) > 0.02
        assert not (mask & objects).any() and mask.mean() > 0.8
        source = render(scene)
        assert (target[mask] != source[mask]).any(axis=-1).all()  # every masked pixel is repainted
        inside = object_coverage(scene.objects[0], 64) >= 1.0
        assert inside.sum() > 50 and np.array_equal(target[inside], source[inside])  # objects kept
    wider = background_sample(np.random.default_rng(1), scene, margin=3)[1]
    assert wider.sum() < mask.sum()  # a larger margin leaves more around the objects
    b = inpaint_batch(np.random.default_rng(0), 40, background_prob=0.5)
    n_bg = sum(p.endswith(" background") and not p.startswith("background") and " on " not in p for p in b.prompt)
    assert 8 <= n_bg <= 32 and b.image.shape == (40, 3, 64, 64)
    assert all(not p.endswith(" background") or " on " in p for p in inpaint_batch(np.random.default_rng(0), 20).prompt)


def test_text_to_image_object_masks_mark_the_objects_of_the_same_scenes():
    from regionedit.world.training.world_data import t2i_batch

    x, texts, objects = t2i_batch(np.random.default_rng(5), 6, with_objects=True)
    x0, texts0 = t2i_batch(np.random.default_rng(5), 6)
    assert torch.equal(x, x0) and texts == texts0 and objects.shape == (6, 1, 64, 64)
    for img, m in zip(x, objects[:, 0].bool()):
        assert 0.005 < m.float().mean() < 0.6
        far = (img - img[:, :, :1]).abs().amax(0)  # distance from each row's leftmost (background) pixel
        assert far[m].mean() > 4 * far[~m].mean()  # object pixels stand out from the background


def test_tight_inpainting_regions_are_the_objects_footprint():
    from regionedit.world.training.world_data import inpaint_batch, tight_mask
    from regionedit.world.rendering import object_coverage
    from regionedit.world.scene import WorldObject

    star = WorldObject("star", "red", 0.5, 0.5, 0.2)
    cov = object_coverage(star, 64)
    rng = np.random.default_rng(0)
    for _ in range(6):
        m = tight_mask(rng, star)
        assert m[cov > 0.5].all()  # the whole object is inside
        assert m.sum() <= (cov > 0).sum() * 1.9  # and hardly anything else: a star, not a disc or box
        assert m.sum() < 0.75 * np.pi * (0.2 * 64 + 2) ** 2  # less than the disc around it
    tight = inpaint_batch(np.random.default_rng(0), 24, tight_prob=1.0, zoom_prob=0.0).mask
    loose = inpaint_batch(np.random.default_rng(0), 24, tight_prob=0.0, zoom_prob=0.0).mask
    assert tight.mean() < loose.mean() * 0.7  # footprints are smaller than regions with a margin


def test_recipe_runs_its_phases_once_each_into_a_new_folder(tmp_path, monkeypatch, capsys):
    from regionedit.world.training import recipe

    phases = (recipe.Phase("vae", "world-models", 200, ("--only", "vae", "--batch", "2")),
              recipe.Phase("instruction_encoder", "world-models", 300, ("--only", "instruction_encoder", "--batch", "2")))
    monkeypatch.setattr(recipe, "PHASES", phases)
    out, export = tmp_path / "repro", tmp_path / "repro" / "export"
    shutil.copytree(bundled_dir() / "tokenizer", export / "tokenizer")  # the tokenizer phase is not under test
    args = ["--out", str(out), "--scale", "0.01", "--threads", "1"]
    assert recipe.main(args + ["--minutes", "0"]) == 0  # no time: nothing trained, nothing marked done
    assert "out of time before vae" in capsys.readouterr().out and not (out / "vae" / "DONE").exists()
    assert recipe.main(args + ["--minutes", "30"]) == 0
    for ph, budget in (("vae", 2), ("instruction_encoder", 3)):  # steps x scale, from scratch (a new folder)
        assert json.loads((out / ph / "DONE").read_text())["steps"] == budget
        assert _steps(out / ph / ph) == budget
        assert json.loads((export / ph / "training_state.json").read_text())["steps"] == budget
    assert "every phase done" in capsys.readouterr().out
    assert recipe.main(args + ["--minutes", "30"]) == 0  # done phases are skipped
    assert "[recipe] vae:" not in capsys.readouterr().out and _steps(out / "vae" / "vae") == 2
    assert recipe.main(args + ["--list"]) == 0
    assert capsys.readouterr().out.count("done") == 2
    assert models.load(export).vae.config.latent_channels == 4
    with pytest.raises(SystemExit, match="bundled folder"):
        recipe.main(["--out", str(out), "--export", str(bundled_dir())])
    argv = recipe.phase_argv(recipe.Phase("region", "region", 100, ("--batch", "16")), out, export, 5.0, 0.5, 0, 2)
    assert argv[argv.index("--max-steps") + 1] == "50" and argv[argv.index("--model") + 1] == str(export)


def test_recipe_start_at_copies_the_earlier_phases_and_trains_the_rest_from_scratch(tmp_path, monkeypatch, capsys):
    from regionedit.world.training import recipe

    # a fine-tune phase is reproduced together with what it tunes (the copy would be the finished model)
    for phase, first in (("clip_shape", "clip"), ("vae_decoder", "vae"), ("region_presence", "region")):
        with pytest.raises(SystemExit, match=f"start at {first}$"):
            recipe.copy_earlier_phases(phase, bundled_dir(), tmp_path / "x", tmp_path / "x" / "export")
    assert not (tmp_path / "x").exists()
    phases = (recipe.Phase("tokenizer", "world-models", None, ("--only", "tokenizer"), "", ("tokenizer",)),
              recipe.Phase("vae", "world-models", 200, ("--only", "vae", "--batch", "2"), "", ("vae",)),
              recipe.Phase("instruction_encoder", "world-models", 300, ("--only", "instruction_encoder", "--batch", "2"),
                           "", ("instruction_encoder",)))
    monkeypatch.setattr(recipe, "PHASES", phases)
    out, export = tmp_path / "repro", tmp_path / "repro" / "export"
    args = ["--out", str(out), "--scale", "0.01", "--threads", "1", "--minutes", "30"]
    with pytest.raises(SystemExit, match="go together"):
        recipe.main(args + ["--start-at", "instruction_encoder"])
    with pytest.raises(SystemExit, match="neither a folder nor a bundled model"):
        recipe.main(args + ["--start-at", "instruction_encoder", "--inputs", str(tmp_path / "nowhere")])
    partial = tmp_path / "partial"
    shutil.copytree(bundled_dir() / "tokenizer", partial / "tokenizer")
    with pytest.raises(SystemExit, match="lacks vae"):  # the named fix: a complete model folder
        recipe.main(args + ["--start-at", "instruction_encoder", "--inputs", str(partial)])
    assert not (out / "tokenizer" / "DONE").exists()  # nothing copied when the inputs are incomplete

    assert recipe.main(args + ["--start-at", "instruction_encoder", "--inputs", "shapes-64"]) == 0
    assert "copied from shapes-64, not trained: tokenizer, vae" in capsys.readouterr().out
    for ph in ("tokenizer", "vae"):
        done = json.loads((out / ph / "DONE").read_text())
        assert done["copied_from"] == str(bundled_dir()) and done["steps"] is None
        assert not (out / ph / ph / "state.pt").exists()  # copied, not trained
    shipped = (bundled_dir() / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert (export / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == shipped
    assert (export / "scheduler").is_dir() and (export / "model_index.json").is_file()
    # the phase it starts at trains from scratch: the shipped instruction encoder is not its starting point
    state = json.loads((export / "instruction_encoder" / "training_state.json").read_text())
    assert state["steps"] == 3 and "earlier_training" not in state
    assert _steps(out / "instruction_encoder" / "instruction_encoder") == 3
    assert recipe.main(args + ["--list", "--start-at", "instruction_encoder", "--inputs", "shapes-64"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("copied") == 2 and listed.count(" done ") == 1
    # a rerun copies nothing again and trains nothing again
    (export / "vae" / "marker").write_text("kept")
    assert recipe.main(args + ["--start-at", "instruction_encoder", "--inputs", "shapes-64"]) == 0
    assert "copied from" not in capsys.readouterr().out and (export / "vae" / "marker").exists()
    assert models.load(export).vae.config.latent_channels == 4


def test_recipe_last_phase_calibrates_the_exports_thresholds(tmp_path, capsys):
    from regionedit.pipeline import Editor
    from regionedit.world.training import recipe

    assert recipe.PHASES[-1].name == "region_thresholds" and recipe.PHASES[-1].trainer == "calibrate"
    out, export = tmp_path / "repro", tmp_path / "repro" / "export"
    recipe.copy_earlier_phases("region_thresholds", bundled_dir(), out, export)
    cfg_p = export / "region_predictor" / "config.json"
    cfg = json.loads(cfg_p.read_text())
    for k in ("threshold", "presence_threshold", "verify_threshold", "learned_thresholds"):  # as exported: none
        cfg.pop(k, None)
    cfg_p.write_text(json.dumps(cfg))
    assert Editor.from_pretrained(export).region_predictor.threshold is None
    args = ["--out", str(out), "--scale", "0.03", "--threads", "1", "--minutes", "30",
            "--start-at", "region_thresholds", "--inputs", "shapes-64"]
    assert recipe.main(args) == 0
    printed = capsys.readouterr().out
    assert "on 2 calibration edits per category" in printed and "every phase done" in printed
    done = json.loads((out / "region_thresholds" / "DONE").read_text())
    stored = json.loads(cfg_p.read_text())
    assert {k: stored[k] for k in ("threshold", "presence_threshold", "verify_threshold")} == \
        {k: done[k] for k in ("threshold", "presence_threshold", "verify_threshold")}
    assert stored["threshold"] in region_thresholds.THRESHOLDS and done["calibration_n"] == 2
    assert done["calibration"]["false_no_edit"] <= 0.5  # the shipped models refuse few real edits
    assert {k: v for k, v in stored.items() if "threshold" not in k} == cfg  # its other keys kept
    editor = Editor.from_pretrained(export)
    assert (editor.threshold, editor.priors[0].verify_threshold) == (stored["threshold"], stored["verify_threshold"])
    learned = Editor.from_pretrained(export, priors=False)  # the learned parts' own thresholds, chosen without priors
    assert stored["learned_thresholds"] == done["learned_thresholds"] and learned.priors == []
    assert (learned.threshold, learned.presence_threshold) == (done["learned_thresholds"]["threshold"],
                                                               done["learned_thresholds"]["presence_threshold"])
    shipped = json.loads((bundled_dir() / "region_predictor" / "config.json").read_text())
    assert shipped["threshold"] == 0.4  # the package's folder is never written
    assert recipe.main(args) == 0 and "choosing" not in capsys.readouterr().out  # done: not calibrated again
    cfg_p.write_text(json.dumps(cfg))  # the predictor exported again (its thresholds gone): calibrated again
    assert recipe.main(args[:-4] + ["--list"]) == 0 and "to do" in capsys.readouterr().out
    assert recipe.main(args) == 0 and "choosing" in capsys.readouterr().out
    assert json.loads(cfg_p.read_text())["threshold"] == stored["threshold"]


def test_threshold_choice_within_the_false_no_edit_bar_else_fewest_refusals(tmp_path):
    rt = region_thresholds
    def row(iou, absent, false):
        return {"mean_iou_main": iou, "absent_no_edit": absent, "false_no_edit": false}

    table = {(0.4, 0.0, 0.0): row(0.90, 0.50, 0.01), (0.4, 0.0, 0.05): row(0.85, 0.98, 0.02),
             (0.5, 0.0, 0.1): row(0.80, 1.00, 0.10)}  # the last refuses too many real edits
    assert rt.choose_thresholds(table) == (0.4, 0.0, 0.05)  # 0.85 + 0.49 beats 0.90 + 0.25
    table = {(0.4, 0.0, 0.01): row(0.86, 0.90, 0.04), (0.4, 0.0, 0.05): row(0.85, 0.98, 0.04),
             (0.6, 0.0, 0.05): row(0.70, 0.99, 0.05)}  # none within the bar: fewest refusals, tie on the score
    assert rt.choose_thresholds(table) == (0.4, 0.0, 0.05)
    with pytest.raises(FileNotFoundError, match="region predictor folder"):
        rt.store_thresholds(tmp_path, (0.4, None, 0.05))
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "RegionPredictor", "presence_threshold": 0.2}))
    rt.store_thresholds(tmp_path, (0.5, None, 0.02))  # no presence head: its key is left as it was
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "_class_name": "RegionPredictor", "presence_threshold": 0.2, "threshold": 0.5, "verify_threshold": 0.02}


def test_card_metrics_reads_back_what_write_card_wrote(tmp_path):
    from regionedit.world.training.model_cards import card_metrics

    metrics = {"iou_remove": 0.8775, "add_iou_ceiling": 0.426, "n_per_category": 40, "false_no_edit": 0.008333}
    write_card(tmp_path, "region_predictor", metrics, "python benchmarks/region.py --write-card")
    got = card_metrics(tmp_path)
    assert got == pytest.approx({k: float(f"{v:.4g}") for k, v in metrics.items()})
    assert card_metrics(tmp_path / "missing") == {}
    shipped = card_metrics(bundled_dir() / "unet")
    assert 0.85 <= shipped["objects_right"] <= 1.0  # the shipped card: its bar, met


def test_degrade_jpeg_or_noise_as_asked():
    from regionedit.world.training.world_data import clip_batch, degrade
    from regionedit.world import render
    img = render(Scene(Background("beige"), (WorldObject("star", "blue", 0.5, 0.5, 0.15),)))
    same = degrade(img, np.random.default_rng(0), 0.0)
    assert same is not img and np.array_equal(same, img)
    outs = [degrade(img, np.random.default_rng(k), 1.0) for k in range(12)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 and not np.array_equal(o, img) for o in outs)
    assert np.array_equal(outs[0], degrade(img, np.random.default_rng(0), 1.0))  # seeded
    # both kinds occur: noise varies pixel to pixel on the flat background, a JPEG shifts its 8x8 block evenly
    kinds = [len(np.unique((o[:8, :8].astype(int) - img[:8, :8]).reshape(-1, 3), axis=0)) for o in outs]
    assert min(kinds) <= 2 and max(kinds) > 10
    assert all(np.abs(o.astype(int) - img).mean() < 8 for o in outs)  # mild: the scene stays readable
    a = clip_batch(np.random.default_rng(5), 4)
    b = clip_batch(np.random.default_rng(5), 4, degrade_prob=0.0)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    c = clip_batch(np.random.default_rng(5), 4, degrade_prob=1.0)
    assert c[0].shape == a[0].shape


def test_ip2p_from_the_inpainting_unet_keeps_every_pixel_as_inpainting_does(tmp_path):
    """--ip2p-init unet_inpaint: the 8-channel UNet on (noisy, source latents unscaled) computes what the inpainting
    UNet computes on (noisy, mask 0, source latents scaled): its "keep everything" call; the run records the init and
    the learning rate."""
    from diffusers import UNet2DConditionModel

    from regionedit.models import configs as C
    from regionedit.world.training.unet_trainers import _ip2p_from_inpaint

    export = tmp_path / "export"
    for name in ("tokenizer", "vae", "text_encoder"):
        shutil.copytree(bundled_dir() / name, export / name)
    torch.manual_seed(0)
    inp = C.build_unet(9)
    with torch.no_grad():
        inp.conv_in.weight.normal_()  # every channel matters (a trained one's mask channel is not zero)
    inp.save_pretrained(export / "unet_inpaint")
    sf = json.loads((export / "vae" / "config.json").read_text())["scaling_factor"]
    ip2p = _ip2p_from_inpaint(export).eval()
    inp = UNet2DConditionModel.from_pretrained(export / "unet_inpaint").eval()
    g = torch.Generator().manual_seed(1)
    noisy, src = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    text = torch.randn(2, 5, inp.config.cross_attention_dim, generator=g)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        a = ip2p(torch.cat([noisy, src], 1), t, text).sample
        b = inp(torch.cat([noisy, torch.zeros(2, 1, 16, 16), src * sf], 1), t, text).sample
    assert torch.allclose(a, b, atol=1e-5)
    with torch.no_grad():  # the mask channel was dropped, not ignored: a mask of 1 is another call
        c = inp(torch.cat([noisy, torch.ones(2, 1, 16, 16), src * sf], 1), t, text).sample
    assert not torch.allclose(a, c, atol=1e-3)

    args = ["--only", "unet_ip2p", "--out", str(tmp_path / "run"), "--export", str(export), "--batch", "2",
            "--threads", "1", "--max-steps", "1", "--ip2p-init", "unet_inpaint", "--lr", "1e-4"]
    assert world_models.main(args) == 0
    state = json.loads((export / "unet_ip2p" / "training_state.json").read_text())
    assert state["init"] == "unet_inpaint" and state["lr"] == 1e-4 and "earlier_training" not in state
    shutil.rmtree(export / "unet_inpaint")
    with pytest.raises(SystemExit, match="no inpainting UNet"):
        world_models.main(args[:3] + [str(tmp_path / "run2")] + args[4:])


def test_ip2p_region_weight_weighs_the_edited_cells_and_is_kept_by_the_run(tmp_path):
    """--ip2p-region-weight W: W on the latent cells holding an edited pixel, 1 elsewhere; recorded in the folder's
    training record (the card) and the run; a resume with another weight is refused with the one to use."""
    from regionedit.world.training.unet_trainers import edit_cell_weights

    m = np.zeros((64, 64), bool)
    m[10, 10] = m[40:48, 0:3] = True
    w = edit_cell_weights([m, np.zeros_like(m)], 5.0)
    assert w.shape == (2, 1, 16, 16)
    hot = torch.zeros(16, 16, dtype=torch.bool)
    hot[2, 2] = True
    hot[10:12, 0] = True
    assert torch.equal(w[0, 0], torch.where(hot, 5.0, 1.0)) and bool((w[1] == 1).all())

    export = tmp_path / "export"
    for name in ("tokenizer", "vae", "text_encoder", "unet"):
        shutil.copytree(bundled_dir() / name, export / name)
    args = ["--only", "unet_ip2p", "--out", str(tmp_path / "run"), "--export", str(export), "--batch", "2",
            "--threads", "1", "--max-steps", "1", "--ip2p-init", "unet", "--ip2p-region-weight", "5"]
    assert world_models.main(args) == 0
    state = json.loads((export / "unet_ip2p" / "training_state.json").read_text())
    assert state["region_weight"] == 5.0 and state["init"] == "unet"
    with pytest.raises(SystemExit, match="--ip2p-region-weight 5"):
        world_models.main(args[:-1] + ["3", "--max-steps", "2"])
