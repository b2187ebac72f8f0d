"""The shipped shapes-64 models: they load through the public API and the stock diffusers pipelines,
run, and reproduce their golden values (regenerate with `python tests/bundled_golden.py`)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from regionedit import models
from regionedit.models.bundled import bundled_dir

ROOT = bundled_dir()
GOLDEN = json.loads((Path(__file__).with_name("bundled_golden.json")).read_text())


def _need(*components):
    missing = [c for c in components if not (ROOT / c / "config.json").exists() and not (ROOT / c / "tokenizer.json").exists()]
    if missing:
        pytest.skip(f"bundled folder lacks {missing} (train them: regionedit train world-models)")


@pytest.fixture(scope="module")
def m():
    return models.load("shapes-64")


def test_bundled_size_budget():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total <= 100 * 1024 * 1024  # the DiT issue allows ~150 MB in all (the seed methods add ~4.3 MB)
    assert not list(ROOT.rglob("*.bin")) and not list(ROOT.rglob("*.pt"))
    for st in ROOT.rglob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(st, "pt") as f:
            assert all(f.get_slice(k).get_dtype() in ("F16", "I64") for k in f.keys()), st


def test_every_component_has_a_model_card():
    for comp in ("clip", "vae", "instruction_encoder", "unet", "unet_inpaint", "unet_ip2p", "region_predictor", "dit"):
        if (ROOT / comp / "config.json").exists() or (ROOT / comp / "model_index.json").exists():
            card = (ROOT / comp / "README.md")
            assert card.exists(), f"{comp} has no model card"
            assert "Measured quality" in card.read_text() or comp == "instruction_encoder"


def test_golden_values(m):
    from bundled_golden import compute

    got = compute(m)
    assert set(got) == set(GOLDEN), f"components changed: {set(got) ^ set(GOLDEN)}; rerun tests/bundled_golden.py"
    for k, v in GOLDEN.items():
        np.testing.assert_allclose(got[k], v, atol=2e-3, rtol=2e-3, err_msg=k)


def test_stock_pipelines_load_bundled_folder():
    _need("vae", "unet", "text_encoder")
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    # weights are stored fp16; on the CPU load them as fp32, as for any fp16 checkpoint
    pipe = StableDiffusionPipeline.from_pretrained(ROOT, torch_dtype=torch.float32, safety_checker=None,
                                                   feature_extractor=None, requires_safety_checker=False)
    img = pipe("a red star on a white background", num_inference_steps=2, height=64, width=64,
               generator=torch.Generator().manual_seed(0), output_type="np").images
    assert img.shape == (1, 64, 64, 3) and np.isfinite(img).all()
    _need("unet_inpaint")
    unet = UNet2DConditionModel.from_pretrained(ROOT, subfolder="unet_inpaint", torch_dtype=torch.float32)
    ip = StableDiffusionInpaintPipeline.from_pretrained(ROOT, unet=unet, torch_dtype=torch.float32, safety_checker=None,
                                                        feature_extractor=None, requires_safety_checker=False)
    from PIL import Image

    out = ip("a red star", image=Image.new("RGB", (64, 64), "white"), mask_image=Image.new("L", (64, 64), 255),
             num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert out.shape == (1, 64, 64, 3)


def test_demo_command_runs_on_the_bundled_models(tmp_path, capsys):
    """The README's first command: a real edit with the shipped models, written as a PNG with provenance."""
    _need("vae", "unet_inpaint", "text_encoder")
    from regionedit.cli.main import main
    from regionedit.io import read_png_metadata

    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out)]) == 0
    meta = read_png_metadata(out)
    assert meta["regionedit:model"] == "shapes-64" and meta["regionedit:status"] == "edited"
    assert main(["demo", "--out", str(out)]) == 0  # rerunnable: replaces its own output
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_stock_pipeline_loads_bundled_folder_without_or_with_a_dtype(dtype):
    """`StableDiffusionPipeline.from_pretrained(<bundled>)` with no dtype argument (every component fp32: the
    transformers components' configs say float32, their fp16 weights are upcast) and with torch_dtype=float16."""
    _need("vae", "unet", "text_encoder")
    from diffusers import StableDiffusionPipeline

    kw = {} if dtype is None else {"torch_dtype": dtype}
    pipe = StableDiffusionPipeline.from_pretrained(ROOT, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, **kw)
    want = torch.float32 if dtype is None else dtype
    assert {pipe.text_encoder.dtype, pipe.unet.dtype, pipe.vae.dtype} == {want}
    img = pipe("a red star on a white background", num_inference_steps=2, height=64, width=64,
               generator=torch.Generator().manual_seed(0), output_type="np").images
    assert img.shape == (1, 64, 64, 3) and np.isfinite(img).all()


# the trained seed methods shipped in the bundle: subfolder -> the edit methods that read it
SEED_METHOD_FOLDERS = {"adaptedit": "adaptedit-compose", "fireedit": "fireedit-compose",
                       "descriptive_edit": "descriptive-compose", "region_in_context": "region_in_context-compose"}


@pytest.mark.parametrize("sub", sorted(SEED_METHOD_FOLDERS))
def test_bundled_seed_methods_are_fp16_carded_and_measured(sub):
    folder = ROOT / sub
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors")), f"{sub} is not bundled"
    card = (folder / "README.md").read_text()
    quality = json.loads((folder / "quality.json").read_text())  # regionedit eval --write-cards
    assert "## Measured quality" in card and SEED_METHOD_FOLDERS[sub] in quality["rows"]
    assert quality["rows"][SEED_METHOD_FOLDERS[sub]]["shapes"]["n"] >= 200


@pytest.mark.parametrize("method", sorted(SEED_METHOD_FOLDERS.values()))
def test_bundled_seed_methods_edit_out_of_the_box(method):
    """`regionedit edit --method <seed method>` on the bundled default: the region predictor (AdaptEdit: its
    MaskPredictor) finds the green triangle, the edit changes pixels inside the reported mask only, and the same
    seed gives the same image."""
    from regionedit.pipeline.seed_editor import SeedMethodEditor
    from regionedit.world import sample_edit

    s = sample_edit(seed=7, index=5)  # "kindly take away the green triangle"
    editor = SeedMethodEditor(method, "shapes-64", steps=4)
    a = editor(s.source, s.instruction, seed=0)
    b = editor(s.source, s.instruction, seed=0)
    assert a.status == "edited", a.reason
    assert a.mask.any() and not a.mask.all()
    assert np.array_equal(a.image[~a.mask], s.source[~a.mask]) and not np.array_equal(a.image, s.source)
    np.testing.assert_array_equal(a.image, b.image)
