"""The evaluation harness (`regionedit eval`) on tiny random models: the shapes protocol end to end,
resume, MagicBrush (world export, release-folder layout with chained turns) and Emu Edit (world
export, published columns only), the explicit configuration in results.json, results.md, grids and
skipped methods / unavailable metrics with their reasons."""

import argparse
import dataclasses
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit.cli import eval as eval_cli
from regionedit.world.export import export_dataset
from regionedit.evaluation import baselines
from regionedit.evaluation.harness import EvalConfig, MagicBrushProtocol, read_records, run_evaluation
from regionedit.evaluation.report import render_markdown
from regionedit.world.tiny import save_tiny_models, tiny_region_predictor
from regionedit.world import sample_edit

torch.set_num_threads(1)


def _predictor(bias: float):
    return tiny_region_predictor(bias)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)  # region: ~the whole image


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory):
    from transformers import ViTConfig, ViTModel

    d = tmp_path_factory.mktemp("dino")
    torch.manual_seed(0)
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       intermediate_size=37), add_pooling_layer=False).save_pretrained(d)
    return d


def _lines(out):
    return (out / "samples.jsonl").read_text().strip().splitlines()


def _cli(argv):
    parser = argparse.ArgumentParser(prog="regionedit")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


def test_shapes_end_to_end_and_resume(tiny_dir, tmp_path):
    out = tmp_path / "shapes"
    cfg = EvalConfig(protocol="shapes", out=out, methods=["oracle", "region", "sdedit", "diffedit", "instructpix2pix"],
                     n=3, steps=2, model=str(tiny_dir), dino=str(tmp_path / "no-dino-here"), grid_k=2)
    res = run_evaluation(cfg, progress=False)
    assert res["computed"] == 12
    saved = json.loads((out / "results.json").read_text())
    # the exact configuration
    c = saved["config"]
    assert (c["protocol"], c["seed"], c["n"], c["steps"]) == ("shapes", 20000, 3, 2)
    assert c["resolution"]["images"] == ["64x64"] and c["resolution"]["methods"]["sdedit"] == 32
    assert saved["machine"]["torch"] == torch.__version__
    clip = saved["feature_extractors"]["clip"]
    assert clip["name"] == f"clip:{tiny_dir}@32px" and clip["config"]["interpolation"] == "bicubic"
    assert clip["config"]["center_crop"] == [32, 32]
    # skipped methods and unavailable metrics, with reasons
    assert "not been trained yet" in saved["skipped_methods"]["instructpix2pix"]
    assert "does not exist" in saved["unavailable_metrics"]["dino"]
    assert "lpips" in saved["not_computed"]
    # every metric per method, overall and per category
    ms = saved["settings"]["shapes"]["methods"]
    assert list(ms) == ["oracle", "region", "sdedit", "diffedit"]
    for name, m in ms.items():
        assert m["n"] == 3 and m["n_errors"] == 0
        for k in ("leakage", "preservation", "edit_success", "false_no_edit", "l1", "l2", "clip_i", "clip_t", "clip_dir"):
            assert m["metrics"][k] is not None, (name, k)
        assert "dino" not in m["metrics"]
        assert sum(cat["n"] for cat in m["categories"].values()) == 3
    assert ms["oracle"]["metrics"]["region_iou"] == 1.0  # the GT mask is its region
    assert "region_iou" not in ms["sdedit"]["metrics"]  # global method: no region
    assert 0.0 <= ms["diffedit"]["metrics"]["region_iou"] <= 1.0
    assert ms["oracle"]["metrics"]["preservation"] > ms["sdedit"]["metrics"]["preservation"]
    assert ms["oracle"]["metrics"]["leakage"] < ms["sdedit"]["metrics"]["leakage"]
    # markdown: command, seed, N, machine, a row per method, per-category tables
    md = (out / "results.md").read_text()
    assert "seed: 20000, N: 3" in md and f"torch {torch.__version__}" in md and "regionedit eval --protocol shapes" in md
    for name in ms:
        assert f"| {name} | 3 |" in md
    assert "per category" in md and "instructpix2pix" in md
    assert md == render_markdown(saved)
    # grid: source | GT target | 4 methods, first 2 samples
    grid = Image.open(out / "grid_shapes.png")
    assert grid.width > 6 * 128 and grid.height > 2 * 128
    assert (out / "outputs" / "shapes" / "diffedit" / "000001_region.png").exists()
    # contact sheet: the same cases as HTML, every linked image on disk, a row per case, each method's status
    import re

    page = (out / "contact_shapes.html").read_text()
    links = re.findall(r'src="([^"]+)"', page)
    assert links and all((out / link).is_file() for link in links)
    assert page.count("<tr>") == 1 + 2 and all(f"{m}: result" in page for m in ms)
    assert "edit_success" in page
    # per-sample records
    lines = _lines(out)
    assert len(lines) == 12
    rec = json.loads(lines[0])
    assert {"method", "index", "metrics", "status", "seed", "prompts"} <= set(rec)
    assert rec["prompts"]["target_from"] == "dataset target caption"

    # resume: nothing new; then a larger N computes only the new samples
    assert run_evaluation(cfg, progress=False)["computed"] == 0
    assert len(_lines(out)) == 12
    cfg.n = 4
    assert run_evaluation(cfg, progress=False)["computed"] == 4
    assert len(_lines(out)) == 16
    # a different configuration is refused in the same folder
    cfg.steps = 3
    with pytest.raises(ValueError, match="different configuration"):
        run_evaluation(cfg, progress=False)


def test_cli_magicbrush_on_world_export(tiny_dir, tmp_path, capsys):
    data = export_dataset(tmp_path / "mb", n=4, seed=3, fmt="magicbrush", progress=False)
    out = tmp_path / "eval_mb"
    argv = ["--protocol", "magicbrush", "--data", str(data), "--methods", "oracle,sdedit", "--n", "4", "--steps", "2",
            "--model", str(tiny_dir), "--dino", "none", "--out", str(out), "--no-progress"]
    assert _cli(argv) == 0
    assert "results.json" in capsys.readouterr().out
    saved = json.loads((out / "results.json").read_text())
    st, mt = saved["settings"]["single-turn"], saved["settings"]["multi-turn"]
    assert st["n_samples"] == 4 and mt["n_samples"] == 4  # one turn per world session
    for setting in (st, mt):
        for m in ("oracle", "sdedit"):
            got = setting["methods"][m]["metrics"]
            assert {"l1", "l2", "clip_i", "clip_t"} <= set(got)
            assert set(setting["methods"][m]["categories"])  # our export carries categories
    assert st["methods"]["oracle"]["metrics"]["l1"] == mt["methods"]["oracle"]["metrics"]["l1"]
    assert saved["unavailable_metrics"]["dino"].endswith("disabled (--dino none)")
    recs = read_records(out)
    assert len(recs) == 16 and all(r["reused_from"] == "single-turn" for k, r in recs.items() if k[0] == "multi-turn")
    assert (out / "grid_single-turn.png").exists() and (out / "grid_multi-turn.png").exists()
    md = (out / "results.md").read_text()
    assert "## single-turn" in md and "## multi-turn" in md and "| oracle | 4 |" in md
    # resume through the CLI
    assert _cli(argv) == 0
    assert "(0 new edits)" in capsys.readouterr().out


def _write_magicbrush_release(root):
    """The original MagicBrush release layout: session A has two turns, session B one."""
    sessions = {}
    a0, a1, b0 = sample_edit(5, 0), sample_edit(5, 1), sample_edit(5, 2)
    for img_id, turns in (("A", [a0, a1]), ("B", [b0])):
        folder = root / "images" / img_id
        folder.mkdir(parents=True)
        sessions[img_id] = []
        for t, s in enumerate(turns, 1):
            Image.fromarray(s.source).save(folder / f"input{t}.png")
            Image.fromarray(s.target).save(folder / f"output{t}.png")
            Image.fromarray(s.mask.astype(np.uint8) * 255).save(folder / f"mask{t}.png")
            sessions[img_id].append({"input": f"input{t}.png", "output": f"output{t}.png", "mask": f"mask{t}.png",
                                     "instruction": s.instruction})
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    return root


def test_magicbrush_multi_turn_chains_outputs(tiny_dir, tiny_dino, tmp_path):
    data = _write_magicbrush_release(tmp_path / "magicbrush")
    assert MagicBrushProtocol(data, 1).complete == []  # session A cut after its first turn: not chained
    out = tmp_path / "eval"
    cfg = EvalConfig(protocol="magicbrush", data=data, out=out, methods=["oracle", "sdedit"], n=3, steps=2,
                     model=str(tiny_dir), dino=str(tiny_dino))
    res = run_evaluation(cfg, progress=False)
    assert res["computed"] == 12  # 3 single-turn + 3 chained turns (first turns reused), x 2 methods
    assert res["feature_extractors"]["dino"]["name"] == f"dino:{tiny_dino}@224px"
    mt = res["settings"]["multi-turn"]
    assert mt["n_samples"] == 2  # the final turn of each session
    for m in ("oracle", "sdedit"):
        assert {"l1", "l2", "clip_i", "dino"} <= set(mt["methods"][m]["metrics"])
        assert "clip_t" not in mt["methods"][m]["metrics"]  # no captions in this release folder
    recs = read_records(out)
    assert recs[("multi-turn", "sdedit", 1)]["turn"] == 2 and "reused_from" not in recs[("multi-turn", "sdedit", 1)]
    # turn 2 of session A was edited from turn 1's output, not from its GT input
    single = np.asarray(Image.open(out / "outputs" / "single-turn" / "sdedit" / "000001.png"))
    chained = np.asarray(Image.open(out / "outputs" / "multi-turn" / "sdedit" / "000001.png"))
    assert not np.array_equal(single, chained)
    assert recs[("single-turn", "sdedit", 1)]["metrics"] != recs[("multi-turn", "sdedit", 1)]["metrics"]


def _write_emu_published(path, samples):
    """Emu Edit's published columns only (no target, no mask, no metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def png(a):
        b = io.BytesIO()
        Image.fromarray(a).save(b, format="PNG")
        return {"bytes": b.getvalue(), "path": None}

    rows = {"idx": [], "image": [], "instruction": [], "task": [], "input_caption": [], "output_caption": [],
            "hash": [], "split": []}
    for i, s in enumerate(samples):
        for k, v in (("idx", i), ("image", png(s.source)), ("instruction", s.instruction), ("task", s.category),
                     ("input_caption", s.source_caption), ("output_caption", s.target_caption), ("hash", str(i)),
                     ("split", "test")):
            rows[k].append(v)
    path.mkdir(parents=True)
    pq.write_table(pa.table(rows), path / "test-00000-of-00001.parquet")
    return path


def test_emu_on_world_export_and_published_layout(tiny_dir, tmp_path):
    data = export_dataset(tmp_path / "emu", n=4, seed=4, fmt="emu", progress=False)
    out = tmp_path / "eval_emu"
    res = run_evaluation(EvalConfig(protocol="emu", data=data, out=out, methods=["oracle", "diffedit"], n=4, steps=2,
                                    model=str(tiny_dir), dino=None), progress=False)
    ms = res["settings"]["emu"]["methods"]
    for m in ("oracle", "diffedit"):
        assert ms[m]["n"] == 4
        assert {"clip_i_src", "l1_src", "clip_t", "clip_dir"} <= set(ms[m]["metrics"])
        assert sum(c["n"] for c in ms[m]["categories"].values()) == 4
    assert "Emu Edit CLIPim" in res["metric_definitions"]["clip_i_src"]
    md = (out / "results.md").read_text()
    assert "| diffedit | 4 |" in md and "#### " in md
    assert (out / "grid_emu.png").exists()

    # the published Emu Edit test-set columns: no GT target and no masks -> oracle skipped
    pub = _write_emu_published(tmp_path / "emu_pub", [sample_edit(4, i) for i in range(2)])
    res = run_evaluation(EvalConfig(protocol="emu", data=pub, out=tmp_path / "eval_pub", methods=["oracle", "sdedit"],
                                    n=2, steps=2, model=str(tiny_dir), dino=None), progress=False)
    assert "no ground-truth masks" in res["skipped_methods"]["oracle"]
    assert res["settings"]["emu"]["methods"]["sdedit"]["n"] == 2
    assert res["config"]["data"]["layout"] == "parquet"


def test_instructpix2pix_runs_with_an_8_channel_unet(tiny_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    from regionedit import models

    d = tmp_path / "with_ip2p"
    shutil.copytree(tiny_dir, d)
    torch.manual_seed(0)
    UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=8, out_channels=4,
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                         attention_head_dim=2, norm_num_groups=8).save_pretrained(d / baselines.IP2P_SUBFOLDER)
    methods, skipped = baselines.build_methods(["instructpix2pix"], models.load(d), baselines.MethodSettings(steps=2))
    assert skipped == {}
    s = sample_edit(0, 3)
    edited, region, status = methods["instructpix2pix"](s.source, s.instruction, 0, None)
    assert edited.shape == s.source.shape and edited.dtype == np.uint8 and region is None and status == "edited"

    # its model-card numbers (benchmarks/world_models.py --only unet_ip2p)
    from regionedit.world.model_quality import eval_ip2p

    r = eval_ip2p(models.load(d), n=2, steps=1)
    assert r["n"] == 2 and 0 <= r["edit_success"] <= 1 and 0 < r["l1_to_target"] < 1 and 0 <= r["leakage_outside_gt"] < 1

    # `regionedit eval --image-guidance`: the pipeline's image_guidance_scale, recorded in the row and the command;
    # another value is another output
    out = {}
    for g in (1.5, 3.0):
        rc = _cli(["--protocol", "shapes", "--methods", "instructpix2pix", "--n", "1", "--steps", "2", "--model", str(d),
                   "--out", str(tmp_path / f"ig{g}"), "--image-guidance", str(g), "--save-outputs", "--no-progress",
                   "--dino", "none"])
        assert rc == 0
        res = json.loads((tmp_path / f"ig{g}" / "results.json").read_text())
        assert res["methods"]["instructpix2pix"]["image_guidance"] == g
        assert ("--image-guidance 3.0" in res["command"]) == (g == 3.0)
        out[g] = sorted((tmp_path / f"ig{g}" / "outputs").rglob("*.png"))
    a, b = (np.asarray(Image.open(out[g][0])) for g in (1.5, 3.0))
    assert len(out[1.5]) == len(out[3.0]) == 1 and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="image_guidance must be >= 0"):
        run_evaluation(EvalConfig(protocol="shapes", out=tmp_path / "neg", methods=["instructpix2pix"], model=str(d), n=1,
                                  steps=2, image_guidance=-1.0), progress=False)


def test_bad_configuration_messages(tiny_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match="needs --data"):
        run_evaluation(EvalConfig(protocol="emu", out=tmp_path / "x"), progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        run_evaluation(EvalConfig(protocol="shapes", out=tmp_path / "y", methods=["magic"], model=str(tiny_dir), n=1, steps=2),
                       progress=False)
    rc = _cli(["--protocol", "magicbrush", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "z"),
               "--model", str(tiny_dir), "--no-progress"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    emu = export_dataset(tmp_path / "emu", n=1, seed=0, fmt="emu", progress=False)
    with pytest.raises(ValueError, match="shapes protocol only"):
        run_evaluation(EvalConfig(protocol="emu", data=emu, out=tmp_path / "v", renderer="pil"), progress=False)
    with pytest.raises(ValueError, match="use --protocol emu"):
        run_evaluation(EvalConfig(protocol="magicbrush", data=emu, out=tmp_path / "w", model=str(tiny_dir), steps=2),
                       progress=False)


def test_shapes_protocol_on_another_renderer(tiny_dir, tmp_path):
    # --renderer pil: the same edits drawn by evaluation/alt_render (its own images and ground-truth masks)
    from regionedit.world.alt_render import render_pil
    from regionedit.evaluation.harness import make_protocol
    from regionedit.world import sample_edit

    out = tmp_path / "pil"
    cfg = EvalConfig(protocol="shapes", out=out, methods=["oracle"], n=2, steps=2, model=str(tiny_dir),
                     dino=None, grid_k=1, renderer="pil")
    res = run_evaluation(cfg, progress=False)
    assert res["computed"] == 2
    s = make_protocol(cfg).sample(1)
    assert np.array_equal(s.source, render_pil(sample_edit(cfg.seed, 1).source_scene, 64))
    assert not np.array_equal(s.source, sample_edit(cfg.seed, 1).source)
    saved = json.loads((out / "results.json").read_text())
    assert "--renderer pil" in saved["command"] and saved["config"]["data"]["renderer"].startswith("pil:")
    # the folder holds pil results: ours (the default) may not resume into it, nor the reverse
    with pytest.raises(ValueError, match="renderer"):
        run_evaluation(dataclasses.replace(cfg, renderer="regionedit"), progress=False)
    ours = dataclasses.replace(cfg, out=tmp_path / "ours", renderer="regionedit")
    run_evaluation(ours, progress=False)
    with pytest.raises(ValueError, match="renderer"):
        run_evaluation(dataclasses.replace(ours, renderer="pil-aliased"), progress=False)
    with pytest.raises(ValueError, match="unknown renderer"):
        run_evaluation(dataclasses.replace(cfg, renderer="blender"), progress=False)
