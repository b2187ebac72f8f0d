"""Model loading through the real classes, with tiny random folders (no weights, no network)."""

import numpy as np
import pytest
import torch

from regionedit import models
from regionedit.world.tiny import save_tiny_models


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"))


def test_load_components_shapes_and_dtypes(tiny_dir):
    m = models.load(tiny_dir)
    ids = m.tokenizer(["a red circle"], padding="max_length", max_length=16, return_tensors="pt").input_ids
    h = m.text_encoder(ids)[0]
    assert h.shape == (1, 16, 32) and h.dtype == torch.float32
    z = m.vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mode()
    assert z.shape == (1, 4, 16, 16)
    assert m.unet.config.in_channels == 4 and m.unet_inpaint.config.in_channels == 9
    out = m.clip.vision_model(pixel_values=torch.zeros(1, 3, 32, 32)).last_hidden_state
    assert out.shape == (1, 1 + 8 * 8, 32)
    f = m.instruction_encoder(m.instruction_tokenizer(["remove the red circle"], return_tensors="pt").input_ids)[0]
    assert f.shape[-1] == 32
    assert all(not p.requires_grad for p in m.unet.parameters())


def test_inpainting_only_checkpoint(tmp_path, tiny_dir):
    """An SD-inpainting folder (9-channel `unet`, no unet_inpaint) loads as inpainting-only."""
    import shutil

    d = tmp_path / "sd-inpaint"
    shutil.copytree(tiny_dir, d)
    shutil.rmtree(d / "unet")
    shutil.rmtree(d / "unet_inpaint")
    shutil.copytree(tiny_dir / "unet_inpaint", d / "unet")
    m = models.load(d)
    assert m.unet is None and m.unet_inpaint.config.in_channels == 9


def test_missing_hub_model_fails_clearly():
    with pytest.raises(Exception):
        models.load("no-such-org/no-such-model-xyz", local_files_only=True).vae


def test_stock_diffusers_pipelines_run(tiny_dir):
    """diffusers' own pipelines load the folder and run 2 steps."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False)
    g = torch.Generator().manual_seed(0)
    img = pipe("a red circle", num_inference_steps=2, height=32, width=32, generator=g, output_type="np").images
    assert img.shape == (1, 32, 32, 3) and np.isfinite(img).all()
    unet = UNet2DConditionModel.from_pretrained(tiny_dir, subfolder="unet_inpaint")
    ip = StableDiffusionInpaintPipeline.from_pretrained(tiny_dir, unet=unet, safety_checker=None,
                                                        feature_extractor=None, requires_safety_checker=False)
    from PIL import Image

    src = Image.new("RGB", (32, 32), (255, 255, 255))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    out = ip("a red star", image=src, mask_image=mask, num_inference_steps=2, height=32, width=32,
             generator=torch.Generator().manual_seed(0), output_type="np").images
    assert out.shape == (1, 32, 32, 3) and np.isfinite(out).all()
