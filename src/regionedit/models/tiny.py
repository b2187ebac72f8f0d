"""Tiny randomly initialised models of the real classes, in the bundled folder layout (for tests).

As diffusers' own tests do: the same classes as the real checkpoints (Stable Diffusion VAE / UNets / CLIP text
encoder, CLIPModel, T5 encoder) with very small configs, so the real-model code paths run in seconds without
weights or network.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .bundled import MODEL_INDEX

CORPUS = ("replace the cat with a dog", "remove the person on the left", "make the sky pink",
          "add a hat to the man", "a photo of a cat on a sofa", "change the background to a forest")


def tiny_tokenizer():
    """A small CLIP-format BPE tokenizer trained on a few everyday instructions and captions."""
    from .tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(list(CORPUS) * 3, vocab_size=300, model_max_length=16)


def tiny_region_predictor(bias: float = 3.0, seed: int = 0, presence_bias: float | None = None):
    """A random region predictor for the tiny models; ``bias`` sets the region logits' offset
    (+3: nearly everything is region, -30: nothing is); ``presence_bias`` adds a presence head whose
    logit is that constant (-5: "the referent is absent" for every input)."""
    from regionedit.localize import RegionPredictor, RegionPredictorConfig

    torch.manual_seed(seed)
    p = RegionPredictor(RegionPredictorConfig(image_dim=32, instruction_dim=32, clip_dim=32, dim=32, heads=4,
                                              presence=presence_bias is not None))
    with torch.no_grad():
        for head in p.heads:
            head[-1].bias.fill_(bias)
        if presence_bias is not None:
            p.presence_head.mlp[-1].weight.zero_()
            p.presence_head.mlp[-1].bias.fill_(presence_bias)
    return p


def save_tiny_models(folder: str | Path, seed: int = 0, region_bias: float | None = None,
                     presence_bias: float | None = None, tokenizer=None, plugin: str | None = None) -> Path:
    """Write a tiny random model folder (SD layout + unet_inpaint, clip, instruction_encoder, and a
    region_predictor when ``region_bias`` is given, with a presence head when ``presence_bias`` is).
    ``tokenizer``: a CLIP-format tokenizer (default: :func:`tiny_tokenizer`); ``plugin``: the plugin the folder
    names in ``regionedit.json`` (default none)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextModel, T5Config, T5EncoderModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = tokenizer if tokenizer is not None else tiny_tokenizer()
    tok.save_pretrained(folder / "tokenizer")
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=16, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.eos_token_id, projection_dim=32)
    vision = dict(image_size=32, patch_size=4, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                  num_attention_heads=4, projection_dim=32)
    torch.manual_seed(seed)
    clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32))
    clip.save_pretrained(folder / "clip")
    tok.save_pretrained(folder / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                       image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder / "clip")
    torch.manual_seed(seed)
    CLIPTextModel(clip.config.text_config).save_pretrained(folder / "text_encoder")
    torch.manual_seed(seed)
    AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  layers_per_block=1, sample_size=32).save_pretrained(folder / "vae")
    for sub, cin in (("unet", 4), ("unet_inpaint", 9)):
        torch.manual_seed(seed)
        UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=cin,
                             out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                             attention_head_dim=2, norm_num_groups=8).save_pretrained(folder / sub)
    torch.manual_seed(seed)
    T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(
        folder / "instruction_encoder")
    tok.save_pretrained(folder / "instruction_encoder")
    DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction").save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    if plugin is not None:
        (folder / "regionedit.json").write_text(json.dumps({"plugin": plugin}) + "\n")
    if region_bias is not None:
        from regionedit.localize import save_region_predictor

        save_region_predictor(tiny_region_predictor(region_bias, seed, presence_bias), folder / "region_predictor", {"steps": 0})
    return folder
