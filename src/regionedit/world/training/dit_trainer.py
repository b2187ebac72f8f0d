"""The bundled miniature diffusion transformer (``--only dit``): an ``SD3Transformer2DModel`` trained as a
text-to-image rectified-flow model on the shapes world, on the frozen bundled VAE and text encoder, exported as
a whole ``StableDiffusion3Pipeline`` folder (``<export>/dit``) that the stock pipeline loads and runs.

The folder, beside the transformer:

- ``text_encoder`` and ``text_encoder_2``: ``CLIPTextModelWithProjection``, both the bundled ``text_encoder``'s
  weights with an identity ``text_projection`` (SD3 takes two CLIP towers and a T5; the T5 is left out, as
  ``StableDiffusion3Pipeline(text_encoder_3=None)`` allows: its tokens are zeros);
- ``tokenizer`` and ``tokenizer_2``: the world tokenizer;
- ``vae``: the bundled VAE with ``shift_factor`` 0 (the SD3 pipeline reads it);
- ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` (shift 1).

Training uses the pipeline's own ``encode_prompt`` (so what it learns is what the stock pipeline feeds it):
velocity target ``noise - latents`` at ``x_t = (1 - s) x_0 + s noise``, ``s`` logit-normal (SD3), CFG dropout
10%, object cells weighted as the UNet's (``unet_trainers.T2I_OBJECT_WEIGHT``), EMA 0.999, exported fp16.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from regionedit.models import configs as C
from regionedit.training.common import EMA, Run, earlier_record, train_loop
from regionedit.world.training import world_data as D
from regionedit.world.training.component_common import adamw, cosine_lr, save_fp16, write_state
from regionedit.world.training.unet_trainers import T2I_OBJECT_WEIGHT, _cfg_drop

DIT_FOLDER = "dit"
DIT_MODEL_INDEX = {
    "_class_name": "StableDiffusion3Pipeline",
    "_diffusers_version": "0.42.1",
    "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "text_encoder_3": [None, None],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "tokenizer_3": [None, None],
    "transformer": ["diffusers", "SD3Transformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def write_dit_components(export: Path) -> Path:
    """Everything of ``<export>/dit`` but the transformer, from the bundled ``text_encoder``, ``tokenizer`` and
    ``vae`` in ``export`` (rewritten each call: they follow the folder's text encoder and VAE)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    folder = Path(export) / DIT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    text = CLIPTextModelWithProjection.from_pretrained(export / "text_encoder", torch_dtype=torch.float32)
    with torch.no_grad():
        text.text_projection.weight.copy_(torch.eye(*text.text_projection.weight.shape))
    tok = CLIPTokenizer.from_pretrained(export / "tokenizer")
    vae = AutoencoderKL.from_pretrained(export / "vae", torch_dtype=torch.float32)
    vae.register_to_config(shift_factor=0.0)
    for name in ("text_encoder", "text_encoder_2"):
        save_fp16(text, folder / name)
    for name in ("tokenizer", "tokenizer_2"):
        if (folder / name).exists():
            shutil.rmtree(folder / name)
        tok.save_pretrained(folder / name)
    save_fp16(vae, folder / "vae")
    C.build_flow_scheduler().save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(DIT_MODEL_INDEX, indent=2) + "\n")
    return folder


def dit_pipeline(folder: Path, transformer=None, dtype=torch.float32):
    """The stock ``StableDiffusion3Pipeline`` of ``folder`` (``transformer`` replaces the folder's, e.g. one in
    training); frozen, in ``dtype``. The folder has no T5: it loads, as diffusers documents SD3 without T5, with
    ``text_encoder_3=None, tokenizer_3=None``."""
    from diffusers import StableDiffusion3Pipeline

    kw = {"transformer": transformer} if transformer is not None else {}
    pipe = StableDiffusion3Pipeline.from_pretrained(folder, torch_dtype=dtype, text_encoder_3=None, tokenizer_3=None, **kw)
    for m in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        m.eval().requires_grad_(False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def flow_sigmas(n: int, gen: torch.Generator) -> torch.Tensor:
    """``(n,)`` noise levels in (0, 1), logit-normal(0, 1) as SD3 trains (the middle of the path weighted)."""
    return torch.sigmoid(torch.randn(n, generator=gen))


def flow_loss(transformer, latents, cond, pooled, gen, weight=None) -> torch.Tensor:
    """Rectified-flow loss: ``transformer(x_t, 1000 s)`` against the velocity ``noise - latents``.
    latents: (B, 4, 16, 16) scaled VAE latents; weight: (B, 1, 16, 16) per-cell loss weight or None."""
    noise = torch.randn(latents.shape, generator=gen)
    s = flow_sigmas(latents.shape[0], gen)
    sv = s[:, None, None, None]
    noisy = (1 - sv) * latents + sv * noise
    pred = transformer(hidden_states=noisy, timestep=s * 1000, encoder_hidden_states=cond,
                       pooled_projections=pooled).sample
    err = (pred - (noise - latents)).pow(2)
    if weight is not None:
        err = err * weight
    return err.mean()


def train_dit(args) -> dict:
    """Text-to-image SD3 transformer on rendered scenes and their captions (resumable; see the module doc)."""
    from diffusers import SD3Transformer2DModel

    folder = write_dit_components(args.export)
    run = Run.for_args(args.out / DIT_FOLDER, args)
    earlier = earlier_record(run, folder / "transformer")
    if (folder / "transformer" / "config.json").exists() and not run.exists():
        model = SD3Transformer2DModel.from_pretrained(folder / "transformer", torch_dtype=torch.float32)
    else:
        model = C.build_dit()
    pipe = dit_pipeline(folder, transformer=model)
    vae = pipe.vae
    sf = vae.config.scaling_factor
    opt = adamw(model, 3e-4, 0.01)
    ema = EMA(model, 0.999)
    rng = np.random.default_rng(args.seed + 9)
    batch = args.batch or 32

    def step_fn(step, gen):
        x, prompts, objects = D.t2i_batch(rng, batch, with_objects=True)
        with torch.no_grad():
            lat = vae.encode(x).latent_dist.sample(generator=gen) * sf
            cond, _, pooled, _ = pipe.encode_prompt(_cfg_drop(prompts, rng), None, None, do_classifier_free_guidance=False,
                                                    max_sequence_length=C.DIT_MAX_SEQUENCE_LENGTH)
        w = 1.0 + (T2I_OBJECT_WEIGHT - 1.0) * torch.nn.functional.max_pool2d(objects, 4)
        loss = flow_loss(model, lat, cond, pooled, gen, weight=w)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        return {"loss": loss.item()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, ema=ema,
                     extra_state=lambda: {"earlier_training": earlier}, lr_at=cosine_lr(3e-4, 200, 20000))
    save_fp16(ema.model, folder / "transformer")
    record = {"batch": batch, "ema": 0.999, "objective": "rectified flow (velocity), logit-normal sigmas",
              "max_sequence_length": C.DIT_MAX_SEQUENCE_LENGTH, **({"earlier_training": earlier} if earlier else {})}
    write_state(folder / "transformer", "dit", res["step"], res["seconds"], args.seed, record)
    return res
