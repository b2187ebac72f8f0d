"""The editing pipeline and `regionedit edit` on tiny random models: mechanics, pixel-exact compose at
several sizes, no-edit reporting, batch mode, provenance metadata and bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit import models
from regionedit.cli.main import main as cli
from regionedit.io import read_png_metadata
from regionedit.pipeline import Editor, EditorConfig
from regionedit.world import sample_edit
from regionedit.world.plugin import world_editor
from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig
from regionedit.world.tiny import save_tiny_models, tiny_region_predictor


def _predictor(bias: float):
    return tiny_region_predictor(bias)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)  # region: ~the whole image


@pytest.fixture(scope="module")
def editor(tiny_dir):
    return world_editor(models.load(tiny_dir), _predictor(3.0), config=EditorConfig(steps=2))


def _changed_outside(out: np.ndarray, src: np.ndarray, mask: np.ndarray) -> int:
    """How many pixels outside ``mask`` differ between ``out`` and ``src`` ((H, W, 3) uint8)."""
    return int(((out != src).any(-1) & ~mask).sum())


@pytest.mark.parametrize("hw", [(64, 64), (100, 173), (512, 512), (2048, 2048)])
def test_outside_region_bit_identical(editor, hw):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    mask = np.zeros(hw, bool)
    mask[hw[0] // 4 : hw[0] // 2, hw[1] // 3 : hw[1] // 2] = True
    res = editor(img, "remove the red circle", seed=0, mask=mask)
    assert res.status == "edited" and res.image.shape == img.shape and np.array_equal(res.mask, mask)
    assert _changed_outside(res.image, img, mask) == 0  # exactly the mask: no blend margin around it
    assert not np.array_equal(res.image[mask], img[mask])


def test_predicted_region_edit_and_seed(editor):
    s = sample_edit(0, 2)
    a = editor(s.source, s.instruction, seed=1)
    b = editor(s.source, s.instruction, seed=1)
    assert a.region_probability.shape == (64, 64)
    assert a.status == "edited" and np.array_equal(a.image, b.image)
    assert _changed_outside(a.image, s.source, a.mask) == 0


def test_no_region_means_no_edit(tiny_dir):
    ed = world_editor(models.load(tiny_dir), _predictor(-30.0), config=EditorConfig(steps=2))
    s = sample_edit(0, 2)
    res = ed(s.source, "remove the green star")
    assert res.status == "no_edit" and "no region" in res.reason
    assert np.array_equal(res.image, s.source) and not res.mask.any()


def test_several_edits_run_in_turn(editor):
    s = sample_edit(0, 2)
    res = editor(s.source, "remove the red circle and make the square blue", seed=3)
    assert res.status == "edited" and [r.instruction for r in res.steps] == ["remove the red circle", "make the square blue"]
    assert [r.seed for r in res.steps] == [3, 4]  # edit k: seed + k
    assert np.array_equal(res.image, res.steps[-1].image)  # the second edit ran on the first's result
    assert np.array_equal(res.mask, res.steps[0].mask | res.steps[1].mask)
    assert _changed_outside(res.image, s.source, res.mask) == 0
    assert json.loads(res.metadata()["regionedit:steps"]) == ["remove the red circle", "make the square blue"]
    assert [st["instruction"] for st in res.to_json()["steps"]] == ["remove the red circle", "make the square blue"]
    again = editor(s.source, "remove the red circle and make the square blue", seed=3)
    assert np.array_equal(res.image, again.image)
    one = world_editor(editor.models, editor.region_predictor, EditorConfig(steps=2), WorldPriorConfig(split_edits=False))
    assert not one(s.source, "remove the red circle and make the square blue", seed=3).steps


def test_several_edits_all_or_nothing(tiny_dir):
    ed = world_editor(models.load(tiny_dir), _predictor(-30.0), config=EditorConfig(steps=2))  # finds no referent
    s = sample_edit(0, 2)
    res = ed(s.source, "add a red star in the top left, then remove the green star")
    assert res.steps[0].status == "edited"  # the add is placed by rule: it edits
    assert res.status == "no_edit" and np.array_equal(res.image, s.source) and not res.mask.any()
    assert res.reason.startswith("edit 2 of 2 ('remove the green star'): no region")
    assert "nothing was changed" in res.reason
    mask = np.zeros(s.source.shape[:2], bool)
    mask[10:20, 10:20] = True
    res = ed(s.source, "remove the red circle and the blue star", mask=mask)
    assert res.status == "no_edit" and "one edit" in res.reason and np.array_equal(res.image, s.source)


def test_unreadable_caption_is_set_aside_not_fatal(editor):
    # a caption is context: one the parser cannot read must not stop the edit (it did: "no edit"), and the
    # result says it was set aside; a readable caption that lacks the referent still refuses
    s = sample_edit(0, 2)
    res = editor(s.source, "remove the red circle", seed=0, mask=s.mask, source_caption="a photo of some shapes")
    assert res.status == "edited" and "caption set aside" in res.reason
    res = editor(s.source, "remove the green star", seed=0, mask=s.mask, source_caption="a red circle on white")
    assert res.status == "no_edit"


def test_unparseable_instruction_is_no_edit(editor):
    res = editor(np.zeros((64, 64, 3), np.uint8), "sing me a song")
    assert res.status == "no_edit" and "understand" in res.reason and not res.mask.any()


def test_bad_inputs(editor, tmp_path):
    with pytest.raises(ValueError, match="instruction"):
        editor(np.zeros((64, 64, 3), np.uint8), "   ")
    with pytest.raises(ValueError):
        editor(str(tmp_path / "missing.png"), "remove the star")
    with pytest.raises(ValueError, match="size"):
        editor(np.zeros((64, 64, 3), np.uint8), "remove the star", mask=np.ones((32, 32), bool))


def _write_sample(tmp_path, i=2):
    s = sample_edit(0, i)
    p = tmp_path / f"in{i}.png"
    Image.fromarray(s.source).save(p)
    return p, s


def test_cli_single_json_and_metadata(tiny_dir, tmp_path, capsys):
    src, s = _write_sample(tmp_path)
    before = src.read_bytes()
    out, mout = tmp_path / "out.png", tmp_path / "mask.png"
    # the learned parts alone (--priors off): the tiny predictor lights ~the whole image, so this edits
    rc = cli(["edit", str(src), s.instruction, "-o", str(out), "--mask-out", str(mout), "--seed", "3", "--steps", "2",
              "--model", str(tiny_dir), "--priors", "off", "--json"])
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and rec["status"] == "edited" and rec["method"] == "region" and rec["priors"] == []
    meta = read_png_metadata(out)
    assert meta["regionedit:instruction"] == s.instruction and meta["regionedit:seed"] == "3"
    assert meta["regionedit:model"] == str(tiny_dir) and meta["regionedit:priors"] == ""
    written = np.asarray(Image.open(mout).convert("L")) > 127
    edited = np.asarray(Image.open(out).convert("RGB"))
    assert written.any() and _changed_outside(edited, s.source, written) == 0
    assert src.read_bytes() == before
    # the input is never overwritten, even with --overwrite
    rc = cli(["edit", str(src), s.instruction, "-o", str(src), "--model", str(tiny_dir), "--steps", "2", "--json", "--overwrite"])
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and rec["status"] == "error" and src.read_bytes() == before


def test_cli_is_quiet_unless_verbose(tiny_dir, tmp_path, capsys):
    # the model libraries' per-load progress bars stay off stderr (where our errors go) unless --verbose
    from transformers.utils import logging as tlog

    src, s = _write_sample(tmp_path)
    args = ["edit", str(src), s.instruction, "-o", str(tmp_path / "o.png"), "--steps", "1", "--model", str(tiny_dir)]
    tlog.set_verbosity_warning()
    tlog.enable_progress_bar()
    assert cli(["--verbose"] + args) == 0
    loud = capsys.readouterr().err
    assert cli(args + ["--overwrite"]) == 0
    quiet = capsys.readouterr().err
    assert "Loading weights" in loud and "Loading weights" not in quiet, (loud[-300:], quiet[-300:])


@pytest.mark.parametrize("blend", ["laplacian", "poisson"])
def test_cli_blend_methods_keep_outside(tiny_dir, tmp_path, capsys, blend):
    src, s = _write_sample(tmp_path)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / f"{blend}.png"
    rc = cli(["edit", str(src), "remove the red diamond", "-o", str(out), "--mask", str(tmp_path / "m.png"),
              "--method", "mask", "--blend", blend, "--steps", "2", "--model", str(tiny_dir), "--json"])
    assert rc == 0
    res = np.asarray(Image.open(out).convert("RGB"))
    assert _changed_outside(res, s.source, mask > 0) == 0 and (res[mask > 0] != s.source[mask > 0]).any()


def test_cli_batch_mode(tiny_dir, tmp_path, capsys):
    jobs = []
    for i in range(3):
        src, s = _write_sample(tmp_path, i)
        jobs.append({"image": str(src), "instruction": s.instruction, "output": str(tmp_path / f"o{i}.png"), "seed": i})
    jobs.append({"image": str(tmp_path / "nope.png"), "instruction": "remove the star", "output": str(tmp_path / "o9.png")})
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("\n".join(json.dumps(j) for j in jobs) + "\n")
    rc = cli(["edit", "--batch", str(jl), "--model", str(tiny_dir), "--steps", "2", "--priors", "off", "--json"])
    recs = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
    assert len(recs) == 4 and rc == 1
    assert [r["status"] for r in recs] == ["edited", "edited", "edited", "error"]
    assert all((tmp_path / f"o{i}.png").exists() for i in range(3))


def test_cli_empty_instruction_and_bad_files(tiny_dir, tmp_path, capsys):
    src, _ = _write_sample(tmp_path)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(src.read_bytes()[:60])
    for image, text in ((src, ""), (trunc, "remove the star")):
        rc = cli(["edit", str(image), text, "-o", str(tmp_path / "x.png"), "--model", str(tiny_dir), "--json"])
        rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert rc == 1 and rec["status"] == "error" and rec["reason"]


def test_image_embedding_is_cached_by_content(editor):
    a = np.zeros((64, 64, 3), np.uint8)
    b = a.copy()
    b[5, 7] = 255  # one pixel differs: must not reuse a's features
    fa = editor.embed_image(a)
    assert editor.embed_image(a.copy()) is fa
    assert editor.embed_image(b) is not fa
    editor.clear_cache()
    fa2 = editor.embed_image(a)
    assert fa2 is not fa and torch.equal(fa2[0], fa[0])  # recomputed, the same features
    big = np.kron(b, np.ones((16, 16, 1), np.uint8))  # 1024 px: resized on the bytes, in [-1, 1]
    small = editor.embed_image(big)[1]
    size = editor.models.clip_processor.crop_size["height"]
    assert small.shape == (1, 3, size, size) and small.dtype == torch.float32 and -1 <= small.min() and small.max() <= 1


def test_calibrated_threshold_comes_from_the_predictor_folder_unless_configured(tmp_path):
    import shutil

    from regionedit.localize import load_region_predictor

    d = save_tiny_models(tmp_path / "tiny", region_bias=3.0)
    cfg_p = d / "region_predictor" / "config.json"
    assert Editor.from_pretrained(d).threshold == 0.5  # nothing calibrated
    cfg = json.loads(cfg_p.read_text())
    cfg["threshold"] = 0.995  # above the tiny predictor's ~0.95 everywhere: every region is empty
    cfg_p.write_text(json.dumps(cfg))
    assert load_region_predictor(d / "region_predictor").threshold == 0.995
    ed = Editor.from_pretrained(d, config=EditorConfig(steps=1))
    assert ed.threshold == 0.995
    img = sample_edit(0, 1).source
    region, prob = ed.find_region(img, "remove the red circle")
    assert not region.any() and prob.min() > 0.5
    assert ed(img, "remove the red circle").status == "no_edit"
    ed2 = Editor.from_pretrained(d, config=EditorConfig(steps=1, threshold=0.5))
    assert ed2.threshold == 0.5 and ed2.find_region(img, "remove the red circle")[0].all()
    shutil.rmtree(d)


def test_presence_head_turns_referent_edits_into_no_edit(tmp_path):
    """A predictor whose presence head says "absent": remove/recolour/replace/resize -> no edit with a
    reason; "add" (no referent) is still edited; a configured presence threshold overrides."""
    d = save_tiny_models(tmp_path / "tiny", region_bias=3.0, presence_bias=-5.0)
    ed = Editor.from_pretrained(d, config=EditorConfig(steps=1))
    img = sample_edit(0, 1).source
    prob, presence = ed.localize(img, "remove the red circle")
    assert presence == pytest.approx(1 / (1 + np.exp(5)), rel=1e-3) and prob.min() > 0.5
    for ins in ("remove the red circle", "make the blue square red", "make the star bigger", "replace the circle with a star"):
        r = ed(img, ins)
        assert r.status == "no_edit" and "nothing in the image matches" in r.reason and not r.mask.any(), ins
        assert (r.image == img).all()
    assert ed(img, "add a red star").status == "edited"
    ed2 = Editor.from_pretrained(d, config=EditorConfig(steps=1, presence_threshold=0.001))
    assert ed2.presence_threshold == 0.001 and ed2(img, "remove the red circle").status == "edited"
    cfg_p = d / "region_predictor" / "config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["presence_threshold"] = 0.0001  # calibrated in the folder (benchmarks/region.py --write-card)
    cfg_p.write_text(json.dumps(cfg))
    assert Editor.from_pretrained(d, config=EditorConfig(steps=1)).presence_threshold == 0.0001
    cfg["presence_threshold"] = 0.0  # calibrated "no presence gate" is kept, not replaced by the default
    cfg_p.write_text(json.dumps(cfg))
    assert Editor.from_pretrained(d, config=EditorConfig(steps=1)).presence_threshold == 0.0


def test_predicted_regions_are_snapped_to_colour_segments(tmp_path):
    """find_region = threshold -> snap (colour segments, +1 px) -> shaping; snapping can be switched off."""
    d = save_tiny_models(tmp_path / "tiny", region_bias=3.0)
    img = sample_edit(0, 1).source
    ed = Editor.from_pretrained(d, config=EditorConfig(steps=1),
                                plugin_options={"config": WorldPriorConfig(shape_regions=False, single_object=False)})
    prob = ed.predict_region(img, "remove the red circle")
    ed.config.threshold = th = float(np.median(prob))  # a random predictor: about half the image
    raw = prob >= th
    from regionedit.world.priors.refine import snap_region

    snapped = ed.find_region(img, "remove the red circle")[0]
    assert (snapped == snap_region(raw, img)).all() and (snapped != raw).any()
    ed.prior(WorldPrior).config.snap = False
    assert (ed.find_region(img, "remove the red circle")[0] == raw).all()


def test_region_predictor_reads_the_parsed_edit(tiny_dir, editor):
    # canonical_instruction: any wording of one edit gives the predictor the same text, so the same map
    s = sample_edit(0, 2)
    words = ["hey, the red ball: erase thanks", "remove the red circle"]
    assert editor.region_instruction(words[0]) == "remove the red circle"
    a, b = (editor.predict_region(s.source, w) for w in words)
    assert np.array_equal(a, b)
    raw = world_editor(editor.models, editor.region_predictor, EditorConfig(steps=2), WorldPriorConfig(canonical_instruction=False))
    assert raw.region_instruction(words[0]) == words[0]
    assert not np.array_equal(*(raw.predict_region(s.source, w) for w in words))
    # an instruction the parser cannot read goes to the predictor as given
    assert editor.region_instruction("do something nice") == "do something nice"


def test_candidates_best_of_several_draws(editor, tmp_path):
    from regionedit.pipeline.editor import CANDIDATE_STRIDE

    s = sample_edit(0, 2)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    three = world_editor(editor.models, editor.region_predictor, config=EditorConfig(steps=2, candidates=3))
    one = world_editor(editor.models, editor.region_predictor, config=EditorConfig(steps=2, candidates=1))
    res = three(s.source, "make the red circle blue", seed=5, mask=mask)
    assert res.status == "edited" and len(res.candidate_scores) == 3
    assert res.candidate == int(np.argmax(res.candidate_scores))
    # the kept candidate is the one-draw edit at its own seed: reproducible from the metadata (the candidates are
    # drawn in one batch, and a CPU convolution may round a batch and a single image differently: +-1 level)
    again = one(s.source, "make the red circle blue", seed=5 + res.candidate * CANDIDATE_STRIDE, mask=mask)
    diff = np.abs(res.image.astype(int) - again.image.astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() > 0.98 and again.candidate_scores == ()
    others = [one(s.source, "make the red circle blue", seed=5 + k * CANDIDATE_STRIDE, mask=mask).image for k in range(3)]
    assert any(not np.array_equal(o, res.image) for o in others)  # the draws differ: the choice is real
    meta = res.metadata()
    assert meta["regionedit:candidate"] == str(res.candidate)
    assert json.loads(meta["regionedit:candidate_scores"]) == [round(x, 4) for x in res.candidate_scores]
    assert res.to_json()["candidate"] == res.candidate
    # a removal has nothing for CLIP to read: one draw, as with candidates=1
    rem = three(s.source, "remove the red circle", seed=5, mask=mask)
    assert rem.candidate_scores == () and np.array_equal(rem.image, one(s.source, "remove the red circle", seed=5, mask=mask).image)
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        EditorConfig(candidates=0)


def test_priors_off_is_the_learned_parts_alone_with_their_own_thresholds(tmp_path):
    """``priors=False``: no world rule runs (no snapping, no placement for "add"), the folder's describer still
    reads the instruction, and the thresholds calibrated for the learned parts alone are the ones used."""
    d = save_tiny_models(tmp_path / "tiny", region_bias=3.0)
    on = Editor.from_pretrained(d, config=EditorConfig(steps=1))
    off = Editor.from_pretrained(d, config=EditorConfig(steps=1), priors=False)
    assert [type(p) for p in on.priors] == [WorldPrior] and off.priors == []
    assert type(off.describer) is type(on.describer)  # the plugin's grammar describes in both
    img = sample_edit(0, 1).source
    r = off(img, "remove the red circle", seed=0)
    assert r.status == "edited" and r.priors == () and r.mask.all()  # the raw map: ~the whole image, unsnapped
    assert on(img, "remove the red circle", seed=0).priors == ("shapes-world",)
    cfg_p = d / "region_predictor" / "config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["threshold"], cfg["learned_thresholds"] = 0.5, {"threshold": 0.995, "presence_threshold": 0.2}
    cfg_p.write_text(json.dumps(cfg))
    on = Editor.from_pretrained(d, config=EditorConfig(steps=1))
    off = Editor.from_pretrained(d, config=EditorConfig(steps=1), priors=False)
    assert (on.threshold, off.threshold, off.presence_threshold) == (0.5, 0.995, 0.2)
    assert off(img, "remove the red circle").status == "no_edit"  # 0.995 is above the tiny map everywhere


def test_general_editor_global_edit_and_template_describer(tmp_path):
    """A folder that names no plugin: the general describer; a global instruction edits the whole image."""
    from regionedit.models.tiny import save_tiny_models as save_general

    d = save_general(tmp_path / "general", region_bias=-30.0)  # the map finds nothing anywhere
    ed = Editor.from_pretrained(d, config=EditorConfig(steps=1, candidates=1))
    assert ed.priors == [] and type(ed.describer).__name__ == "TemplateDescriber"
    img = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    g = ed(img, "it should be snowing", seed=0)
    assert g.status == "edited" and g.mask.all() and g.local_prompt == "it should be snowing"
    r = ed(img, "remove the cat", seed=0)
    assert r.status == "no_edit" and "'cat'" in r.reason


def test_compose_rows_edit_inside_the_region_learned_rows_region(tmp_path):
    """The seed methods' -compose rows take their region from the learned-parts-alone Editor's own rule: the
    folder's learned-only thresholds (probability, presence), the presence gate on edits of an existing object only
    ("add" has no referent), 0.5 / the with-priors values where the folder has no learned-only ones."""
    from regionedit.evaluation.baselines import _learned_localizer
    from regionedit.methods import FireEdit
    from regionedit.models.tiny_pipelines import save_tiny_ip2p_unet

    d = save_tiny_models(tmp_path / "tiny", region_bias=3.0, presence_bias=-5.0)  # prob ~0.95, presence ~0.0067
    save_tiny_ip2p_unet(d / "unet_ip2p")  # FireEdit's frozen UNet
    img = sample_edit(0, 1).source
    cfg_p = d / "region_predictor" / "config.json"
    base = json.loads(cfg_p.read_text())

    def region(learned: dict | None, instruction: str = "remove the red circle"):
        cfg_p.write_text(json.dumps({**base, **({"learned_thresholds": learned} if learned else {}),
                                     "threshold": 0.2, "presence_threshold": 0.5}))
        m = models.load(d)
        got = _learned_localizer(m, "descriptive-compose")(img, instruction)
        assert np.array_equal(got, Editor.from_models(m, priors=False).find_region(img, instruction)[0])
        assert np.array_equal(FireEdit(m).locate(img, instruction), got)  # FireEdit's own default region too
        return got

    assert region({"threshold": 0.9, "presence_threshold": 0.001}).all()
    assert not region({"threshold": 0.9, "presence_threshold": 0.01}).any()  # presence 0.0067 < 0.01: absent
    assert not region({"threshold": 0.99, "presence_threshold": 0.001}).any()  # above the ~0.95 map everywhere
    assert region({"threshold": 0.9, "presence_threshold": 0.01}, "add a red star").all()  # no referent: no gate
    assert not region(None).any()  # uncalibrated for the learned parts: the with-priors presence threshold 0.5
