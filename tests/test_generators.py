"""Generator backends (issue 29, item 3): whole diffusers inpainting pipelines behind the generator interface
(PipelineInpaintGenerator on tiny real-class SD / SDXL inpainting folders), the folder's own scheduler class in
regionedit's own loop (Models.scheduler), and float16 / bfloat16 models through the learned localizer."""

import json
import shutil

import numpy as np
import pytest
import torch

from regionedit import models
from regionedit.generate import InpaintConfig, InpaintGenerator, PipelineInpaintGenerator
from regionedit.models.tiny import save_tiny_models
from regionedit.models.tiny_pipelines import (save_tiny_flux_fill, save_tiny_sd3_inpaint, save_tiny_sd_inpaint,
                                              save_tiny_sdxl_inpaint, tiny_scheduler)

STEPS = 2


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    return save_tiny_sd_inpaint(tmp_path_factory.mktemp("sd-inpaint"))


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    return save_tiny_sdxl_inpaint(tmp_path_factory.mktemp("sdxl-inpaint"))


@pytest.fixture(scope="module")
def generators(sd_dir, sdxl_dir):
    return {"sd": PipelineInpaintGenerator.from_pretrained(sd_dir),
            "sdxl": PipelineInpaintGenerator.from_pretrained(sdxl_dir)}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """regionedit's own tiny folder (a StableDiffusionPipeline + unet_inpaint, CLIP, T5, a region predictor)."""
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)


def _inputs(b: int, size: int):
    """(B, 3, S, S) in [-1, 1] and a (B, 1, S, S) {0, 1} square region in the middle."""
    g = torch.Generator().manual_seed(1)
    img = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    region = torch.zeros(b, 1, size, size)
    region[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    return img, region


def _seed(s: int) -> torch.Generator:
    return torch.Generator().manual_seed(s)


# -- PipelineInpaintGenerator ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, pipeline, scheduler", [
    ("sd", "StableDiffusionInpaintPipeline", "PNDMScheduler"),
    ("sdxl", "StableDiffusionXLInpaintPipeline", "EulerDiscreteScheduler"),
])
def test_pipeline_generator_interface(generators, kind, pipeline, scheduler):
    gen = generators[kind]
    assert gen.native_size == 64  # UNet sample size 8 x the VAE's 8x
    assert gen.describe()["pipeline"] == pipeline
    assert type(gen.scheduler).__name__ == scheduler  # the folder's own class: no substitution
    assert gen.pipeline.unet.config.in_channels == 9
    img, region = _inputs(2, gen.native_size)
    prompts = ["a cat", "a dog"]
    a = gen(img, region, prompts, generator=_seed(0), steps=STEPS)
    b = gen(img, region, prompts, generator=_seed(0), steps=STEPS)
    c = gen(img, region, prompts, generator=_seed(1), steps=STEPS)
    assert a.shape == (2, 3, 64, 64) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.isfinite(a).all() and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kind", ["sd3", "flux-fill"])
def test_transformer_pipelines(tmp_path, kind):
    """Flow-matching transformer pipelines through the same code path: SD3 inpainting (without T5) and Flux Fill."""
    if kind == "sd3":
        gen = PipelineInpaintGenerator.from_pretrained(save_tiny_sd3_inpaint(tmp_path / kind))
        assert gen.native_size == 64 and gen.describe()["pipeline"] == "StableDiffusion3InpaintPipeline"
        extra = {}
    else:
        folder = save_tiny_flux_fill(tmp_path / kind)
        assert PipelineInpaintGenerator.from_pretrained(folder).native_size == 1024  # FluxFill's fixed default
        gen = PipelineInpaintGenerator.from_pretrained(folder, native_size=64)
        assert gen.describe()["pipeline"] == "FluxFillPipeline"
        extra = {"max_sequence_length": 16}  # extra keywords go through to the pipeline
    assert type(gen.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    img, region = _inputs(1, 64)
    a = gen(img, region, ["a cat"], generator=_seed(0), steps=STEPS, **extra)
    assert a.shape == (1, 3, 64, 64) and torch.isfinite(a).all() and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, gen(img, region, ["a cat"], generator=_seed(0), steps=STEPS, **extra))
    assert not torch.equal(a, gen(img, region, ["a cat"], generator=_seed(1), steps=STEPS, **extra))


def test_per_image_generators_draw_as_alone(generators):
    """A list of B generators: image i is drawn from generator i, as when drawn alone (the Editor's best-of-n)."""
    gen = generators["sd"]
    img, region = _inputs(2, gen.native_size)
    both = gen(img, region, ["a cat", "a cat"], generator=[_seed(3), _seed(4)], steps=STEPS)
    alone = gen(img[1:], region[1:], ["a cat"], generator=[_seed(4)], steps=STEPS)
    assert torch.allclose(both[1], alone[0], atol=1e-4)
    with pytest.raises(ValueError, match="one per image"):
        gen(img, region, ["a", "b"], generator=[_seed(0)], steps=STEPS)


def test_call_validation_and_callback(generators):
    gen = generators["sd"]
    img, region = _inputs(1, 64)
    with pytest.raises(ValueError, match="one prompt per image"):
        gen(img, region, ["a", "b"], steps=STEPS)
    with pytest.raises(ValueError, match="not a multiple of the VAE factor"):
        gen(img[..., :60, :60], region[..., :60, :60], ["a"], steps=STEPS)
    seen = []

    def callback(pipe, i, t, kwargs):
        seen.append(i)
        return kwargs

    gen(img, region, ["a"], generator=_seed(0), steps=3, callback_on_step_end=callback)
    assert len(seen) >= 3  # PNDM (PLMS) takes steps + 1 model calls


def test_scheduler_override(sd_dir):
    gen = PipelineInpaintGenerator.from_pretrained(sd_dir, scheduler="DDIMScheduler")
    assert type(gen.scheduler).__name__ == "DDIMScheduler"
    img, region = _inputs(1, 64)
    assert torch.isfinite(gen(img, region, ["a"], generator=_seed(0), steps=STEPS)).all()
    with pytest.raises(ValueError, match="FlowMatchEulerDiscreteScheduler cannot replace"):
        PipelineInpaintGenerator.from_pretrained(sd_dir, scheduler="FlowMatchEulerDiscreteScheduler")
    with pytest.raises(ValueError, match="unknown scheduler"):
        PipelineInpaintGenerator.from_pretrained(sd_dir, scheduler="NoSuchScheduler")


@pytest.mark.parametrize("kind, dtype", [("sd", torch.float16), ("sd", torch.bfloat16), ("sdxl", torch.float16)])
def test_half_precision_loads_run_on_cpu(sd_dir, sdxl_dir, kind, dtype):
    gen = PipelineInpaintGenerator.from_pretrained(sd_dir if kind == "sd" else sdxl_dir, torch_dtype=dtype)
    assert gen.pipeline.unet.dtype == dtype
    img, region = _inputs(1, gen.native_size)
    try:
        out = gen(img, region, ["a cat"], generator=_seed(0), steps=STEPS)
    except (RuntimeError, NotImplementedError) as e:
        if "not implemented for" in str(e):
            pytest.skip(f"a CPU kernel for {dtype} is missing in this torch: {e}")
        raise
    assert out.dtype == torch.float32 and out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


def test_non_finite_output_is_a_clear_error(sd_dir):
    gen = PipelineInpaintGenerator.from_pretrained(sd_dir)
    with torch.no_grad():
        gen.pipeline.vae.decoder.conv_out.bias.fill_(float("nan"))
    img, region = _inputs(1, 64)
    with pytest.raises(RuntimeError, match="non-finite values"):
        gen(img, region, ["a"], generator=_seed(0), steps=STEPS)


def test_not_a_pipeline_folder(tmp_path, sd_dir):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a diffusers pipeline folder.*no model_index.json"):
        PipelineInpaintGenerator.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="inpaint=<folder>"):  # a bare UNet folder: points to models.load(inpaint=)
        PipelineInpaintGenerator.from_pretrained(sd_dir / "unet")
    with pytest.raises(ValueError, match="not in the Hugging Face cache"):
        PipelineInpaintGenerator.from_pretrained("no-such-org/no-such-inpainting-model-xyz")


def test_text_to_image_pipeline_without_inpaint_counterpart(tmp_path, sd_dir):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPanoramaPipeline

    comps = StableDiffusionInpaintPipeline.from_pretrained(sd_dir).components
    comps["scheduler"] = tiny_scheduler("ddim")
    StableDiffusionPanoramaPipeline(**comps).save_pretrained(tmp_path / "panorama")
    assert json.loads((tmp_path / "panorama" / "model_index.json").read_text())["_class_name"] == "StableDiffusionPanoramaPipeline"
    with pytest.raises(ValueError, match="StableDiffusionPanoramaPipeline, a pipeline with no inpainting counterpart"):
        PipelineInpaintGenerator.from_pretrained(tmp_path / "panorama")


def test_text_to_image_folder_loads_as_its_inpainting_counterpart(tiny_dir):
    """regionedit's layout (a StableDiffusionPipeline folder + unet_inpaint) -> StableDiffusionInpaintPipeline over
    the 9-channel UNet, with the folder's own DDIM scheduler."""
    gen = PipelineInpaintGenerator.from_pretrained(tiny_dir)
    assert type(gen.pipeline).__name__ == "StableDiffusionInpaintPipeline"
    assert gen.pipeline.unet.config.in_channels == 9 and gen.native_size == 32
    img, region = _inputs(1, 32)
    out = gen(img, region, ["a cat"], generator=_seed(0), steps=STEPS)
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_stock_diffusers_loads_the_tiny_folders(sd_dir, sdxl_dir):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(sd_dir)
    assert type(pipe.scheduler).__name__ == "PNDMScheduler" and pipe.scheduler.config.skip_prk_steps
    assert pipe.unet.config.in_channels == 9 and pipe.vae_scale_factor == 8
    xl = StableDiffusionXLInpaintPipeline.from_pretrained(sdxl_dir)
    assert xl.text_encoder_2 is not None and xl.unet.config.cross_attention_dim == 64


def test_tiny_builders_leave_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    save_tiny_sdxl_inpaint(tmp_path / "xl", seed=5)
    assert torch.equal(before, torch.random.get_rng_state())


def test_editor_with_a_pipeline_generator(tiny_dir, generators):
    """The Editor's stages 4-5 through a whole pipeline (today: assigned after construction)."""
    from regionedit.pipeline import Editor, EditorConfig

    ed = Editor(models.load(tiny_dir), config=EditorConfig(steps=STEPS))
    ed.generator = generators["sd"]
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    mask = np.zeros((80, 100), bool)
    mask[20:50, 30:70] = True
    res = ed(img, "replace the cat with a dog", seed=0, mask=mask)
    assert res.status == "edited" and res.image.shape == img.shape
    assert np.array_equal(res.image[~mask], img[~mask]) and not np.array_equal(res.image[mask], img[mask])


# -- Models.scheduler: the folder's class in regionedit's own loop ---------------------------------------------------
@pytest.fixture(scope="module")
def pndm_dir(tiny_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("pndm") / "tiny-pndm"
    shutil.copytree(tiny_dir, d)
    shutil.rmtree(d / "scheduler")
    tiny_scheduler("pndm").save_pretrained(d / "scheduler")
    return d


def test_pndm_folder_gives_pndm_and_the_loop_runs(pndm_dir):
    m = models.load(pndm_dir)
    assert type(m.scheduler).__name__ == "PNDMScheduler"  # was silently read as DDIM
    assert type(m.inpaint_pipeline().scheduler).__name__ == "PNDMScheduler"
    gen = InpaintGenerator(m, InpaintConfig(steps=3))
    img, region = _inputs(1, 32)
    a = gen(img, region, ["a cat"], generator=_seed(0))
    b = gen(img, region, ["a cat"], generator=_seed(0))
    assert a.shape == (1, 3, 32, 32) and torch.isfinite(a).all() and torch.equal(a, b)


@pytest.mark.parametrize("name", ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"])
def test_deterministic_schedulers_run_in_the_loop(tiny_dir, name):
    m = models.load(tiny_dir, scheduler=name)
    assert type(m.scheduler).__name__ == name
    img, region = _inputs(1, 32)
    gen = InpaintGenerator(m, InpaintConfig(steps=3))
    a, lat = gen(img, region, ["a cat"], generator=_seed(0), return_latents=True)
    assert torch.isfinite(a).all() and torch.equal(a, gen(img, region, ["a cat"], generator=_seed(0)))


@pytest.mark.parametrize("name, match", [
    ("EulerAncestralDiscreteScheduler", "draws fresh noise in every step"),
    ("DDPMScheduler", "draws fresh noise in every step"),
    ("FlowMatchEulerDiscreteScheduler", "has no init_noise_sigma"),
])
def test_schedulers_the_loop_cannot_run_are_named(tiny_dir, name, match):
    m = models.load(tiny_dir, scheduler=name)
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    with pytest.raises(ValueError, match=f"{name} .*{match}.*PipelineInpaintGenerator"):
        m.scheduler
    assert torch.equal(before, torch.random.get_rng_state())  # the probe leaves the global generator alone
    assert type(m.folder_scheduler).__name__ == name  # diffusers' own pipelines still get it
    with pytest.raises(ValueError, match="no such scheduler class"):
        models.load(tiny_dir, scheduler="NoSuchScheduler").scheduler


# -- float16 / bfloat16 Models through the learned localizer ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_learned_localizer_with_half_precision_models(tiny_dir, dtype):
    from regionedit.localize import load_region_predictor
    from regionedit.localize.learned import LearnedLocalizer

    img = np.random.default_rng(0).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    pred = load_region_predictor(tiny_dir / "region_predictor")
    ref, _ = LearnedLocalizer(models.load(tiny_dir), pred)(img, "remove the cat")
    m = models.load(tiny_dir, dtype=dtype)
    loc = LearnedLocalizer(m, pred)
    try:
        prob, presence = loc(img, "remove the cat")
    except (RuntimeError, NotImplementedError) as e:
        if "not implemented for" in str(e):
            pytest.skip(f"a CPU kernel for {dtype} is missing in this torch: {e}")
        raise
    assert m.clip.dtype == dtype and loc.dtype == torch.float32
    assert prob.dtype == np.float32 and prob.shape == (40, 48) and 0 <= prob.min() and prob.max() <= 1
    assert presence is None
    assert np.abs(prob - ref).max() < 0.05
    loc.to(dtype=dtype)  # the predictor itself in half precision: still a float32 map
    prob2, _ = loc(img, "remove the cat")
    assert prob2.dtype == np.float32 and np.abs(prob2 - ref).max() < 0.05
    loc.to(dtype=torch.float32)
