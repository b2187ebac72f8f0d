"""Architectures of the bundled miniature models ("shapes-64"), built from the real library classes.

Each builder returns a freshly initialised model of a transformers / diffusers class with the sizes
fixed here, so training, loading and tests share one definition. Real checkpoints (Stable Diffusion,
CLIP ViT-L/14, FLAN-T5) use the same classes with their own configs.
"""

from __future__ import annotations

import dataclasses

IMAGE_SIZE = 64  # pixels, native world size
LATENT_SIZE = 16  # VAE downsamples 4x
LATENT_CHANNELS = 4
TEXT_DIM = 128  # hidden size of every text / vision tower (instruction features share CLIP's width)
MAX_TOKENS = 48  # tokenizer model_max_length


@dataclasses.dataclass
class UNetSize:
    block_out_channels: tuple[int, ...] = (64, 128, 128)  # channels per resolution 16, 8, 4
    layers_per_block: int = 2
    attention_head_dim: int = 4  # in diffusers this is the number of heads
    cross_attention_dim: int = TEXT_DIM


def clip_config(vocab_size: int, bos_token_id: int, eos_token_id: int):
    """CLIP with a ViT on 64x64 images (patch 4 -> 16x16 patch grid) and a 4-layer text tower."""
    from transformers import CLIPConfig

    text = dict(
        vocab_size=vocab_size,
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        projection_dim=TEXT_DIM,
    )
    vision = dict(
        image_size=IMAGE_SIZE,
        patch_size=4,
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        num_hidden_layers=4,
        num_attention_heads=4,
        projection_dim=TEXT_DIM,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=TEXT_DIM)


def build_clip(tokenizer):
    from transformers import CLIPModel

    return CLIPModel(clip_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id))


def build_instruction_encoder(tokenizer):
    """A small T5 (encoder-decoder) whose encoder becomes the frozen instruction encoder E_ins.

    It is pre-trained seq2seq (instruction -> structured edit), the way FLAN-T5 is instruction-tuned;
    only :class:`transformers.T5EncoderModel` weights ship.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=TEXT_DIM,
        d_kv=32,
        d_ff=4 * TEXT_DIM,
        num_layers=4,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
    )
    return T5ForConditionalGeneration(cfg)


def build_vae():
    """AutoencoderKL 64x64x3 <-> 16x16x4 (two downsamplings)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
    )


def build_unet(in_channels: int = LATENT_CHANNELS, size: UNetSize | None = None):
    """UNet2DConditionModel on 16x16 latents: 4 input channels for text-to-image, 9 for inpainting."""
    from diffusers import UNet2DConditionModel

    size = size or UNetSize()
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=in_channels,
        out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=size.block_out_channels,
        layers_per_block=size.layers_per_block,
        attention_head_dim=size.attention_head_dim,
        cross_attention_dim=size.cross_attention_dim,
        norm_num_groups=32,
    )


def build_scheduler():
    """DDPM training schedule (SD's scaled-linear betas) with v-prediction; DDIM at inference."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="trailing",
    )


# -- the miniature diffusion transformer (issue: seeds 002 / 003 on a frozen DiT) -------------------------------
DIT_MAX_SEQUENCE_LENGTH = 1  # T5 tokens (zeros without a T5) the bundled DiT trains with: pass max_sequence_length=1


@dataclasses.dataclass
class DiTSize:
    """Width and depth of the bundled SD3-class transformer on 16x16x4 latents (patch 2: 64 image tokens)."""

    num_layers: int = 6
    num_attention_heads: int = 4
    attention_head_dim: int = 32  # inner width 128, as the text towers


def build_dit(size: DiTSize | None = None):
    """``SD3Transformer2DModel`` (MM-DiT, joint text-image attention) for the bundled VAE's 16x16x4 latents.

    Text conditioning as ``StableDiffusion3Pipeline`` prepares it without a T5: both CLIP towers' penultimate
    hidden states concatenated on features (2 x 128 = 256 = ``joint_attention_dim``), and their pooled,
    projected outputs concatenated (256 = ``pooled_projection_dim``)."""
    from diffusers import SD3Transformer2DModel

    size = size or DiTSize()
    return SD3Transformer2DModel(
        sample_size=LATENT_SIZE,
        patch_size=2,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        num_layers=size.num_layers,
        attention_head_dim=size.attention_head_dim,
        num_attention_heads=size.num_attention_heads,
        joint_attention_dim=2 * TEXT_DIM,
        caption_projection_dim=size.num_attention_heads * size.attention_head_dim,
        pooled_projection_dim=2 * TEXT_DIM,
        pos_embed_max_size=LATENT_SIZE // 2,
    )


def build_flow_scheduler():
    """Rectified-flow schedule of SD3 (``FlowMatchEulerDiscreteScheduler``), shift 1 (16x16 latents are small)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
