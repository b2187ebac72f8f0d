"""Tiny randomly initialised *pipeline* folders of the real diffusers classes (for tests; no weights, no network).

Each builder writes a folder with ``pipe.save_pretrained`` (``model_index.json`` + one subfolder per component), so
stock diffusers loads it exactly as it loads a downloaded checkpoint::

    folder = save_tiny_sd_inpaint(tmp / "sd-inpaint")            # StableDiffusionInpaintPipeline, PNDM scheduler
    StableDiffusionInpaintPipeline.from_pretrained(folder)        # works
    PipelineInpaintGenerator.from_pretrained(folder)              # regionedit's generator backend over it

The components are the real classes with very small configs (as in diffusers' own fast tests): an
``AutoencoderKL`` that downsamples 8x like Stable Diffusion's (4 blocks, 8-16 channels), ``UNet2DConditionModel``
(9 input channels for the SD inpainting UNet), ``CLIPTextModel`` (+ ``CLIPTextModelWithProjection`` for SDXL) and a
CLIP BPE tokenizer trained offline (:func:`regionedit.models.tiny.tiny_tokenizer`); SD3 / Flux Fill: their
transformers, flow-matching scheduler and 16- / 4-channel VAEs. Native sizes: 64 px (SD, SDXL, SD3; Flux Fill reads
1024, its fixed default). Each builder takes about a second; the global RNG is left untouched
(``torch.random.fork_rng``).
"""

from __future__ import annotations

from pathlib import Path

import torch

# short names of the schedulers a tiny SD folder can carry (any diffusers scheduler class name works too)
SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}

# Stable Diffusion's training schedule (as in the SD-1.5 / SD-2 inpainting scheduler_config.json)
SD_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                   steps_offset=1)


def tiny_scheduler(name: str = "pndm"):
    """A scheduler of class ``name`` (a short name of :data:`SCHEDULERS` or a diffusers scheduler class name) with
    Stable Diffusion's schedule; PNDM as SD-2 inpainting ships it (``skip_prk_steps``, ``set_alpha_to_one=False``)."""
    import diffusers

    cls_name = SCHEDULERS.get(name.lower(), name)
    cls = getattr(diffusers, cls_name, None)
    if cls is None or not cls_name.endswith("Scheduler"):
        raise ValueError(f"unknown scheduler {name!r}; pass one of {sorted(SCHEDULERS)} or a diffusers scheduler class "
                         "name such as 'DDIMScheduler'")
    extra = {"skip_prk_steps": True, "set_alpha_to_one": False} if cls_name == "PNDMScheduler" else {}
    if cls_name == "DDIMScheduler":
        extra = {"clip_sample": False, "set_alpha_to_one": False}
    return cls(**SD_SCHEDULE, **extra)


def _tiny_vae(seed: int):
    """AutoencoderKL 64x64x3 <-> 8x8x4: 4 blocks, 3 downsamplings (8x, as Stable Diffusion's VAE)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=64)


def _text_config(tok, **kw):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=tok.model_max_length,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id,
                          **kw)


def save_tiny_sd_inpaint(folder: str | Path, scheduler: str = "pndm", seed: int = 0, in_channels: int = 9) -> Path:
    """Write a tiny random ``StableDiffusionInpaintPipeline`` folder (native size 64 px: UNet sample size 8 x VAE 8x).

    ``scheduler``: ``"pndm"`` (default, as SD-2 inpainting), ``"ddim"``, ``"euler"``, ``"dpm++"``, ... or a diffusers
    scheduler class name; ``in_channels``: 9 (a real inpainting UNet: latents, mask, masked-image latents) or 4
    (a text-to-image UNet, which the pipeline inpaints by latent blending). Returns the folder."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from .tiny import tiny_tokenizer

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        tok = tiny_tokenizer()
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=8,
                                    in_channels=in_channels, out_channels=4,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                    attention_head_dim=2, norm_num_groups=8)
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(_text_config(tok))
        pipe = StableDiffusionInpaintPipeline(vae=_tiny_vae(seed), text_encoder=text_encoder, tokenizer=tok, unet=unet,
                                              scheduler=tiny_scheduler(scheduler), safety_checker=None,
                                              feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_sdxl_inpaint(folder: str | Path, seed: int = 0, scheduler: str = "euler") -> Path:
    """Write a tiny random ``StableDiffusionXLInpaintPipeline`` folder (native size 64 px: UNet sample size 8 x VAE 8x).

    As SDXL: two text encoders (``CLIPTextModel`` + ``CLIPTextModelWithProjection``, hidden states concatenated to
    the UNet's 64-wide cross-attention), the UNet's ``text_time`` added conditioning (6 size/crop ids x 8 + the
    32-wide pooled text embedding = 80), a 9-channel UNet, an Euler scheduler by default (as SDXL ships)."""
    from diffusers import StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from .tiny import tiny_tokenizer

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        tok = tiny_tokenizer()
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=9,
                                    out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                    use_linear_projection=True, addition_embed_type="text_time",
                                    addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                                    projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
                                    norm_num_groups=8)
        torch.manual_seed(seed)
        te1 = CLIPTextModel(_text_config(tok, projection_dim=32))
        torch.manual_seed(seed + 1)
        te2 = CLIPTextModelWithProjection(_text_config(tok, projection_dim=32))
        pipe = StableDiffusionXLInpaintPipeline(vae=_tiny_vae(seed), text_encoder=te1, text_encoder_2=te2, tokenizer=tok,
                                                tokenizer_2=tok, unet=unet, scheduler=tiny_scheduler(scheduler),
                                                requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(folder)
    return folder


def _tiny_vae_16(seed: int, latent_channels: int):
    """AutoencoderKL with SD3 / Flux's settings (no quant convs, shift and scale factors), 8x like theirs."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3,
                         latent_channels=latent_channels, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=4,
                         sample_size=64, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False,
                         use_post_quant_conv=False)


def save_tiny_sd3_inpaint(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``StableDiffusion3InpaintPipeline`` folder (native size 64 px: transformer sample size 8 x
    VAE 8x): an SD3 MMDiT (1 layer), two CLIP text encoders with projection, no T5 (saved as None, as SD3 runs
    without it), a 16-channel VAE, the flow-matching Euler scheduler."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3InpaintPipeline
    from transformers import CLIPTextModelWithProjection

    from .tiny import tiny_tokenizer

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        tok = tiny_tokenizer()
        torch.manual_seed(seed)
        transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=16, out_channels=16, num_layers=1,
                                            attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                            joint_attention_dim=64, pooled_projection_dim=64)
        torch.manual_seed(seed)
        te1 = CLIPTextModelWithProjection(_text_config(tok, projection_dim=32))
        torch.manual_seed(seed + 1)
        te2 = CLIPTextModelWithProjection(_text_config(tok, projection_dim=32))
        pipe = StableDiffusion3InpaintPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                               vae=_tiny_vae_16(seed, 16), text_encoder=te1, tokenizer=tok,
                                               text_encoder_2=te2, tokenizer_2=tok, text_encoder_3=None, tokenizer_3=None)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_ip2p_unet(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random 8-channel InstructPix2Pix ``UNet2DConditionModel`` (noisy + source latents, 16x16, cross
    attention 32 wide: the tiny world models' text width) into ``folder`` (a model folder's ``unet_ip2p``)."""
    from diffusers import UNet2DConditionModel

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=8,
                             out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                             attention_head_dim=2, norm_num_groups=8).save_pretrained(folder)
    return folder


def save_tiny_sd3(folder: str | Path, seed: int = 0, num_layers: int = 2) -> Path:
    """Write a tiny random text-to-image ``StableDiffusion3Pipeline`` folder (native size 64 px: transformer sample
    size 8 x VAE 8x, patch 1): an SD3 MMDiT of ``num_layers`` blocks, two CLIP text encoders with projection, no T5,
    a 16-channel VAE, the flow-matching Euler scheduler (shift 1). The frozen backbone of the DiT methods' tests."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    from .tiny import tiny_tokenizer

    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        tok = tiny_tokenizer()
        torch.manual_seed(seed)
        transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=16, out_channels=16,
                                            num_layers=num_layers, attention_head_dim=8, num_attention_heads=4,
                                            caption_projection_dim=32, joint_attention_dim=64, pooled_projection_dim=64)
        torch.manual_seed(seed)
        te1 = CLIPTextModelWithProjection(_text_config(tok, projection_dim=32))
        torch.manual_seed(seed + 1)
        te2 = CLIPTextModelWithProjection(_text_config(tok, projection_dim=32))
        pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
                                        vae=_tiny_vae_16(seed, 16), text_encoder=te1, tokenizer=tok, text_encoder_2=te2,
                                        tokenizer_2=tok, text_encoder_3=None, tokenizer_3=None)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_flux_fill(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``FluxFillPipeline`` folder: a Flux transformer (1 double + 1 single block) whose input is
    the packed latents, masked-image latents and 8x8 mask (4*4 + 4*4 + 4*64 channels), CLIP + T5 text encoders (the
    T5 slot reads the tiny CLIP-format tokenizer), a 4-channel VAE (8x). FluxFillPipeline fixes its default sample
    size at 128 latents, so its native size reads 1024 px: pass ``native_size=64`` to the generator in tests."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    from .tiny import tiny_tokenizer

    folder = Path(folder)
    lc, f = 4, 8
    with torch.random.fork_rng(devices=[]):
        tok = tiny_tokenizer()
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(patch_size=1, in_channels=4 * lc * 2 + 4 * f * f, out_channels=4 * lc,
                                             num_layers=1, num_single_layers=1, attention_head_dim=16,
                                             num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                                             axes_dims_rope=[4, 4, 8])
        torch.manual_seed(seed)
        te1 = CLIPTextModel(_text_config(tok, projection_dim=32))
        torch.manual_seed(seed)
        te2 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
        pipe = FluxFillPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_tiny_vae_16(seed, lc), text_encoder=te1,
                                tokenizer=tok, text_encoder_2=te2, tokenizer_2=tok, transformer=transformer)
    pipe.save_pretrained(folder)
    return folder
