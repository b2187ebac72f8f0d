"""The seed methods wired into the app: ``regionedit train descriptive`` / ``regionedit train region_in_context``
(the shapes world's edit samples by default) write exports that load, and the evaluation harness's
``descriptive`` / ``descriptive-compose`` / ``region_in_context`` / ``region_in_context-compose`` methods are skipped with the train command
when the model folder has no trained weights, and edit once the exports are copied in. Tiny random models."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from regionedit import models as M
from regionedit.cli.main import main
from regionedit.evaluation.baselines import MethodSettings, MethodUnavailable, build_methods

SEED_METHODS = ["descriptive", "descriptive-compose", "descriptive-instruction", "region_in_context",
                "region_in_context-compose", "region_in_context-gate_off"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from regionedit.models.tiny_pipelines import save_tiny_ip2p_unet
    from regionedit.world.tiny import save_tiny_models

    f = save_tiny_models(tmp_path_factory.mktemp("methods") / "tiny", region_bias=2.0)
    save_tiny_ip2p_unet(f / "unet_ip2p")
    return f


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory):
    """Both trainers through the command line, 2 steps each."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "descriptive", "--model", str(folder), "--out", str(root / "descriptive"), "--steps", "2",
                 "--batch", "1"]) == 0
    assert main(["train", "region_in_context", "--model", str(folder), "--out", str(root / "ric"), "--steps", "2",
                 "--batch", "1", "--x0-weight", "0"]) == 0
    return root


def test_world_stream_is_deterministic_and_skips_absent():
    from itertools import islice

    from regionedit.cli.train import WorldEditStream

    a = list(islice(WorldEditStream(), 12))
    b = list(islice(WorldEditStream(), 12))
    assert all(s.category != "absent" and not np.array_equal(s.source, s.target) for s in a)
    assert all(np.array_equal(x.target, y.target) and x.instruction == y.instruction for x, y in zip(a, b))


def test_trainers_export_loadable_weights(folder, runs):
    from regionedit.methods import DescriptiveEdit
    from regionedit.methods.region_in_context import RegionInContext

    models = M.load(str(folder))
    d = DescriptiveEdit.from_pretrained(runs / "descriptive" / "export", models=models)
    assert d.config.to_dict()
    assert (runs / "descriptive" / "state.pt").exists()
    r = RegionInContext.from_pretrained(runs / "ric" / "export", models=models)
    assert r.config.base == str(folder)
    png = runs / "descriptive" / "loss.png"  # the loss curves beside the log (Region in Context: its own test)
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_descriptive_resumes(folder, runs, tmp_path):
    out = tmp_path / "d"
    shutil.copytree(runs / "descriptive", out)
    assert main(["train", "descriptive", "--model", str(folder), "--out", str(out), "--steps", "3", "--batch", "1"]) == 0
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3  # steps 1-2 from the first run, step 3 from the resumed one


def test_descriptive_reexports_fp16(folder, runs, tmp_path):
    """A finished run rerun with --fp16-export writes an fp16 copy (a bundle's) and trains no step; it loads back."""
    from safetensors.torch import load_file

    from regionedit.methods import DescriptiveEdit

    out = tmp_path / "d"
    shutil.copytree(runs / "descriptive", out)
    before = (out / "log.jsonl").read_text()
    assert main(["train", "descriptive", "--model", str(folder), "--out", str(out), "--steps", "2", "--batch", "1",
                 "--fp16-export", "--export", str(tmp_path / "half")]) == 0
    assert (out / "log.jsonl").read_text() == before
    full, half = load_file(out / "export" / "bridges.safetensors"), load_file(tmp_path / "half" / "bridges.safetensors")
    assert set(full) == set(half) and all(half[k].dtype == torch.float16 and torch.equal(half[k], full[k].half())
                                          for k in full)
    loaded = DescriptiveEdit.from_pretrained(tmp_path / "half", models=M.load(str(folder)))
    assert all(p.dtype == torch.float32 for p in loaded.bridges.parameters())


def test_unavailable_without_weights_names_the_train_command(folder):
    models = M.load(str(folder))
    methods, skipped = build_methods(SEED_METHODS, models, MethodSettings(steps=2))
    assert not methods and set(skipped) == set(SEED_METHODS)
    assert "regionedit train descriptive" in skipped["descriptive"]
    assert "regionedit train region_in_context" in skipped["region_in_context"]
    assert "regionedit train region_in_context" in skipped["region_in_context-compose"]
    assert "regionedit train descriptive" in skipped["descriptive-compose"]
    from regionedit.evaluation.baselines import DescriptiveMethod

    with pytest.raises(MethodUnavailable, match="regionedit train descriptive"):
        DescriptiveMethod(models, MethodSettings(steps=2))


def test_methods_edit_with_exported_weights(folder, runs, tmp_path):
    from regionedit.world import sample_edit

    f = tmp_path / "model"
    shutil.copytree(folder, f)
    shutil.copytree(runs / "descriptive" / "export", f / "descriptive_edit")
    shutil.copytree(runs / "ric" / "export", f / "region_in_context")
    methods, skipped = build_methods(SEED_METHODS, M.load(str(f)), MethodSettings(steps=2))
    assert set(methods) == set(SEED_METHODS), skipped
    s = sample_edit(seed=3, index=0)
    sample = SimpleNamespace(target_prompt=s.target_caption, source_caption=None, mask=s.mask)
    for name, method in methods.items():
        edited, region, status = method(s.source, s.instruction, 0, sample)
        assert edited.shape == s.source.shape and edited.dtype == np.uint8, name
        assert status == "edited", (name, method.last_reason)  # region_bias 2: the tiny predictor finds a region
        assert not np.array_equal(edited, s.source), name
        if name.endswith("-compose"):
            assert region is not None and region.shape == s.source.shape[:2] and region.any(), name
            assert np.array_equal(edited[~region], s.source[~region]), name  # composed: bit-exact outside
        else:
            assert region is None, name
    # a predictor that finds nothing: the composed row refuses (the input back, a reason), never a garbage edit
    d = methods["descriptive-compose"]
    d.localizer = lambda image, text: (np.zeros(image.shape[:2], np.float32), None)
    edited, region, status = d(s.source, s.instruction, 0, sample)
    assert status == "no_edit" and "no region" in d.last_reason and np.array_equal(edited, s.source)
    assert region is not None and not region.any()


def test_descriptive_instruction_row_reads_no_caption(folder, runs, tmp_path):
    """``descriptive-instruction`` edits from the instruction alone: the dataset's captions do not change its
    output, and it equals the method called on the instruction; ``descriptive`` follows the target caption."""
    from regionedit.world import sample_edit

    f = tmp_path / "model"
    shutil.copytree(folder, f)
    shutil.copytree(runs / "descriptive" / "export", f / "descriptive_edit")
    methods, _ = build_methods(["descriptive", "descriptive-instruction"], M.load(str(f)), MethodSettings(steps=2))
    s = sample_edit(seed=3, index=0)
    with_caption = SimpleNamespace(target_prompt=s.target_caption, source_caption=s.source_caption, mask=None)
    other_caption = SimpleNamespace(target_prompt="a white background", source_caption="a red star", mask=None)
    row = methods["descriptive-instruction"]
    a, _, status = row(s.source, s.instruction, 0, with_caption)
    b, _, _ = row(s.source, s.instruction, 0, other_caption)
    assert status == "edited" and np.array_equal(a, b)
    assert np.array_equal(a, row.method(s.source, s.instruction, seed=0))
    c, _, _ = methods["descriptive"](s.source, s.instruction, 0, with_caption)
    d, _, _ = methods["descriptive"](s.source, s.instruction, 0, other_caption)
    assert not np.array_equal(c, d)


def test_descriptive_compose_pastes_inside_the_predicted_region(folder, runs, tmp_path):
    """A half-image region from the localizer: outside it the source, bit for bit; inside, the generation."""
    from regionedit.world import sample_edit

    f = tmp_path / "model"
    shutil.copytree(folder, f)
    shutil.copytree(runs / "descriptive" / "export", f / "descriptive_edit")
    methods, _ = build_methods(["descriptive", "descriptive-compose"], M.load(str(f)), MethodSettings(steps=2))
    s = sample_edit(seed=3, index=0)
    sample = SimpleNamespace(target_prompt=s.target_caption, source_caption=None, mask=s.mask)
    half = np.zeros(s.source.shape[:2], np.float32)
    half[:, : half.shape[1] // 2] = 1.0
    methods["descriptive-compose"].localizer = lambda image, text: (half, 0.9)
    whole, _, _ = methods["descriptive"](s.source, s.instruction, 0, sample)
    edited, region, status = methods["descriptive-compose"](s.source, s.instruction, 0, sample)
    assert status == "edited" and np.array_equal(region, half > 0.5)
    assert np.array_equal(edited[~region], s.source[~region])
    assert not np.array_equal(edited[region], s.source[region])
    assert np.abs(edited[region].astype(int) - whole[region].astype(int)).mean() < \
        np.abs(s.source[region].astype(int) - whole[region].astype(int)).mean()  # inside: nearer the generation


def test_train_on_a_dataset(folder, tmp_path):
    """``--data``: an exported dataset (MagicBrush layout) through regionedit.data.open_dataset."""
    from regionedit.cli.train import DatasetEditStream
    from regionedit.methods import DescriptiveEdit
    from regionedit.methods.region_in_context import RegionInContext
    from regionedit.world.export import export_dataset

    data = export_dataset(tmp_path / "data", 4, 5, "magicbrush", progress=False)
    recs = list(DatasetEditStream(str(data), None, ("instruction", "target_caption")))
    assert len(recs) == 4 and all(r["mask"] is not None and r["target"] is not None for r in recs)
    assert main(["train", "descriptive", "--model", str(folder), "--out", str(tmp_path / "d"), "--steps", "1",
                 "--batch", "2", "--data", str(data)]) == 0
    assert main(["train", "region_in_context", "--model", str(folder), "--out", str(tmp_path / "r"), "--steps", "1",
                 "--batch", "2", "--x0-weight", "0", "--data", str(data)]) == 0
    models = M.load(str(folder))
    DescriptiveEdit.from_pretrained(tmp_path / "d" / "export", models=models)
    RegionInContext.from_pretrained(tmp_path / "r" / "export", models=models)
